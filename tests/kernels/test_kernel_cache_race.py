"""Processes that compile one kernel's signatures at once never leave its index naming
another signature's code (scripts/hunt_kernel_cache.py is the hunt with many processes).

numba numbered a kernel's data files 1, 2..., each process the first number the index it
had read left free: two processes saving two signatures at once wrote one file, and the
index could name the other signature's code; a later run added that code as this
signature's and its callers failed to type (a concurrent first run's TypingError).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tradeloom.kernels import cache as kernel_cache
from tradeloom.kernels.jit import package_stamp

ROOT = Path(__file__).resolve().parents[2]

_HOST = ("x86_64-unknown-linux-gnu", "host", "")
_CODE = ("bytecode", "cells")


def _files(folder: Path) -> Any:
    return kernel_cache._CheckedFiles(
        cache_path=str(folder), filename_base="rows._row-118.py311", source_stamp=package_stamp()
    )


def test_two_processes_saving_two_signatures_at_once_keep_each_its_own_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _files(tmp_path), _files(tmp_path)
    key_one, key_two = (("f8 x 1",), _HOST, _CODE), (("f8 x 2",), _HOST, _CODE)
    save_data = first._save_data

    def then_the_other_process(name: str, data: Any) -> None:
        # the second process saves between the first one's data file and its index
        save_data(name, data)
        second.save(key_two, "code of two")

    monkeypatch.setattr(first, "_save_data", then_the_other_process)
    first.save(key_one, "code of one")
    reader = _files(tmp_path)
    assert (reader.load_fitting(key_one), reader.load_fitting(key_two)) == (
        "code of one",
        "code of two",
    )


_CALLERS = textwrap.dedent(
    """
    import sys
    import numba
    import numpy as np
    from tradeloom.core import rows

    ev, cur = np.zeros((4, 13)), np.zeros(1, dtype=np.int64)
    for m in map(int, sys.argv[1:]):
        scope = {"_row": rows._row, "numba": numba}
        values = "1.5, " * m
        exec(f"@numba.njit\\ndef caller(ev, cur):\\n    _row(ev, cur, 1, 0, 0, ({values}))", scope)
        cur[0] = 0
        scope["caller"](ev, cur)
        assert list(ev[0, 3:]) == [1.5] * m + [0.0] * (10 - m), ev[0]
    """
)


def _callers(cache: Path, *lengths: int) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"TRADELOOM_KERNEL_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_CACHE_DIR", None)
    command = [sys.executable, "-c", _CALLERS, *map(str, lengths)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_an_entry_compiled_for_another_signature_is_compiled_again(tmp_path: Path) -> None:
    # what the race left in a cache: the index names each signature's file the other's
    assert _callers(tmp_path, 1, 2).returncode == 0
    [index] = tmp_path.rglob("rows._row-*.nbi")
    files = kernel_cache._CheckedFiles(
        cache_path=str(index.parent), filename_base=index.stem, source_stamp=package_stamp()
    )
    overloads = files._load_index()
    assert len(overloads) == 2
    (key_one, name_one), (key_two, name_two) = overloads.items()
    files._save_index({key_one: name_two, key_two: name_one})
    done = _callers(tmp_path, 1, 2)
    assert done.returncode == 0, done.stderr[-3000:]
