"""A backtest held in memory (`hold_strategy`) and the folder `HeldRun.save` writes: the
folder `run_strategy` writes for the same run, file for file, its journal's rows and
hash chain included; nothing written before it is saved."""

from __future__ import annotations

import sqlite3
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.builders import REPORTED, strategy, write_strategy
from tradeloom.backtest import journaled_run as journaled_module
from tradeloom.backtest import tables as tables_module
from tradeloom.backtest.held_journal import HeldJournal
from tradeloom.backtest.run import hold_strategy, run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RunIdentity, verify
from tradeloom.journal import stores as stores_module
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
WALL = pd.Timestamp("2026-01-02T03:04:05Z")
MONITORED = {"monitoring": [{"kind": "rolling_auc", "window": 50, "min_samples": 20}]}


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """One wall clock and one folder key for every run: two runs of a strategy then
    journal the same rows, chained the same."""
    monkeypatch.setattr(journaled_module, "now_utc", lambda: WALL)
    monkeypatch.setattr(journaled_module, "time", types.SimpleNamespace(perf_counter=lambda: 1.0))
    monkeypatch.setattr(stores_module, "new_folder_key", lambda: "0123456789abcdef" * 2)


def _config(folder: Path, **overrides: Any) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    # a held run holds, then saves, every file of a user's run: its report and features too
    return load_strategy(write_strategy(folder, strategy(REPORTED, **overrides)), [])


def _files(run_dir: Path) -> dict[str, Path]:
    return {str(p.relative_to(run_dir)): p for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _rows(journal: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of a journal, its hash columns included."""
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: db.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    finally:
        db.close()


@pytest.mark.usefixtures("frozen")
def test_a_saved_held_run_is_the_folder_run_strategy_writes(tmp_path: Path) -> None:
    config, plugins = _config(tmp_path, **MONITORED)  # a forest's folds, a monitor's table
    held = hold_strategy(build_pipeline(config), plugins)
    saved = held.save(tmp_path / "held" / "run")
    direct = run_strategy(build_pipeline(config), plugins, out=tmp_path / "direct" / "run")

    ours, theirs = _files(saved), _files(direct.run_dir)
    assert list(ours) == list(theirs)
    assert {"models/index.json", "monitoring.parquet", "report.html"} <= set(ours)
    for name, path in ours.items():
        if name.startswith("journal.sqlite"):
            continue
        mine = path.read_bytes().replace(str(saved).encode(), b"RUN_DIR")
        other = theirs[name].read_bytes().replace(str(direct.run_dir).encode(), b"RUN_DIR")
        assert mine == other, name
    # the journal's every row, its hash chain's values included
    assert _rows(saved / "journal.sqlite") == _rows(direct.run_dir / "journal.sqlite")
    assert verify(saved / "journal.sqlite").rows == verify(direct.run_dir / "journal.sqlite").rows
    assert dict(held.metrics) == {**direct.metrics, "run_dir": None}


def test_a_held_run_writes_nothing_until_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, plugins = _config(tmp_path / "strategy", **MONITORED)
    here, temporary = tmp_path / "here", tmp_path / "temporary"
    here.mkdir()
    temporary.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setattr("tempfile.tempdir", str(temporary))

    held = hold_strategy(build_pipeline(config), plugins)

    assert list(here.iterdir()) == list(temporary.iterdir()) == []
    assert held.metrics["run_dir"] is None and held.metrics["trades"] > 0
    assert held.journal.identity.run_id.startswith("demo-")  # the folder it would have had


def test_a_failed_save_leaves_nothing_and_the_run_saves_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, plugins = _config(tmp_path)
    held = hold_strategy(build_pipeline(config), plugins)
    out = tmp_path / "out"
    write_table = tables_module.write_table

    def broken(*args: Any) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(tables_module, "write_table", broken)
    with pytest.raises(OSError, match=r"^disk full$"):
        held.save(out)
    assert not out.exists()

    monkeypatch.setattr(tables_module, "write_table", write_table)
    assert (held.save(out) / "positions.csv").is_file()


def test_a_run_whose_metrics_read_its_journal_reads_a_copy_it_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a perpetual's funding is measured from its journal: a held run writes a copy
    # into a temporary folder, removed before the run returns
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    config, plugins = load_strategy(ROOT / "strategies" / "btc_perp.yaml", ["data.bars=1300"])
    monkeypatch.setattr("tempfile.tempdir", str(temporary))

    held = hold_strategy(build_pipeline(config), plugins)

    assert list(temporary.iterdir()) == []
    direct = run_strategy(build_pipeline(config), plugins, out=tmp_path / "run")
    assert held.metrics["funding"] == direct.metrics["funding"] != 0.0


def test_a_held_journal_makes_its_calls_on_a_store_in_order() -> None:
    calls: list[tuple[str, Any]] = []
    store = types.SimpleNamespace(
        append=lambda event: calls.append(("append", event)),
        flush=lambda durable: calls.append(("flush", durable)),
        write_columns=lambda batches, durable: calls.append(("columns", batches, durable)),
    )
    journal = HeldJournal(RunIdentity("s", "s-1", "backtest"))
    batch = types.SimpleNamespace(positions=[0, 1, 2])
    assert journal.append("a") == 1  # type: ignore[arg-type]
    journal.write_columns([batch], durable=False)  # type: ignore[list-item]
    journal.flush(durable=False)
    assert journal.append("b") == 5  # type: ignore[arg-type]
    journal.close()
    with pytest.raises(RuntimeError, match=r"^the held journal is closed$"):
        journal.append("c")  # type: ignore[arg-type]

    at = journal.write_into(store, 0, 2)  # type: ignore[arg-type]
    journal.write_into(store, at)  # type: ignore[arg-type]

    assert calls == [
        ("append", "a"),
        ("columns", [batch], False),
        ("flush", False),
        ("append", "b"),
    ]
