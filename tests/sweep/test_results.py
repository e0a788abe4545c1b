"""A sweep's parts: one a task wrote where it ran is the part the command would have
written, byte for byte, and reads back as one."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest

from tradeloom.files.writing import OutputFolder
from tradeloom.sweep.results import (
    PARTS_DIR,
    SWEEP_OWNED,
    ResultStore,
    _digest,
    pack_part,
    write_part,
)

IDENTITY = {"test": "parts"}


def _rows() -> list[dict[str, object]]:
    return [
        {"key": "a", "sharpe": 1.25, "halt": None, "trades": 3, "rejections": "{}"},
        {"key": "b", "sharpe": math.nan, "halt": "HALTED at 2024-01-01 00:00", "trades": 0},
    ]


@pytest.mark.parametrize("bars", [7, 0])
def test_a_part_written_where_its_task_ran_is_the_one_the_command_writes(
    tmp_path: Path, bars: int
) -> None:
    returns = np.random.default_rng(3).normal(0.0, 0.01, (2, bars))
    here = ResultStore(tmp_path / "here", IDENTITY)
    here.keep(pack_part("batch-1", _rows(), returns))  # the command's process writes it
    there = OutputFolder(tmp_path / "there", owned=SWEEP_OWNED)
    written = write_part(there, pack_part("batch-1", _rows(), returns))  # a worker does
    assert written.content is None and written.bars == bars
    for suffix in (".npy", ".json", ".sha256"):
        name = f"{PARTS_DIR}/batch-1{suffix}"
        assert (tmp_path / "there" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
    npy = io.BytesIO()
    np.save(npy, returns.astype(np.float32), allow_pickle=False)  # the format parts had
    assert (tmp_path / "here" / PARTS_DIR / "batch-1.npy").read_bytes() == npy.getvalue()
    data = (tmp_path / "here" / PARTS_DIR / "batch-1.json").read_bytes()
    digest = (tmp_path / "here" / PARTS_DIR / "batch-1.sha256").read_text().strip()
    assert digest == _digest(data, npy.getvalue())
    reopened = ResultStore(tmp_path / "there", IDENTITY)
    assert not reopened.damaged
    assert reopened.done() == {"a", "b"}
    assert reopened.rows["b"]["halt"] == "HALTED at 2024-01-01 00:00"
    if bars:
        columns = reopened.returns(["a", "b"])
        assert columns is not None
        assert np.array_equal(columns.columns(0, 2), returns.astype(np.float32).T)


def test_a_part_kept_without_its_bytes_is_recorded_as_written(tmp_path: Path) -> None:
    returns = np.arange(10, dtype=np.float32).reshape(2, 5)
    store = ResultStore(tmp_path / "s", IDENTITY)
    part = write_part(store.folder, pack_part("batch-2", _rows(), returns))
    store.keep(part)
    assert store.rows["a"]["sharpe"] == 1.25
    columns = store.returns(["b", "a"])
    assert columns is not None
    assert np.array_equal(columns.columns(0, 2), returns[::-1].T)
