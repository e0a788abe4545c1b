"""A paper or live journal's page cache stays within its cap however long the run.

A paper run appends a few rows each bar to the pages at the end of its tables; with a
backtest's 32 MiB cache its connection kept every page the journal grew by, so the
process grew with every bar until the cap (issue 67: a 40-symbol paper universe grew
~6 KB a bar this way). The memory SQLite holds is read from SQLite itself
(``sqlite3_memory_used``, every connection of the process), where the library Python
uses can be loaded through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.journal import RunIdentity, SignalEvent, open_journal
from tradeloom.journal.sqlite import CACHE_KIB, SqliteJournal

TS = pd.Timestamp("2024-01-01", tz="UTC")
SYMBOLS = 40


def _memory_used() -> ctypes._CFuncPtr:
    """Return SQLite's ``sqlite3_memory_used`` of the library this Python uses, or skip."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("no shared SQLite library to ask how much memory it holds")
    try:
        library = ctypes.CDLL(name)
        version = library.sqlite3_libversion
    except (OSError, AttributeError):
        pytest.skip("SQLite's library cannot be loaded through ctypes")
    version.restype = ctypes.c_char_p
    if version().decode() != sqlite3.sqlite_version:
        pytest.skip("Python's sqlite3 is not the shared SQLite library")
    used = library.sqlite3_memory_used
    used.restype = ctypes.c_int64
    return used


def _bars(journal: SqliteJournal, bars: range) -> None:
    """Journal ``bars`` as a paper universe does: a row per symbol, a commit per bar."""
    for bar in bars:
        for _ in range(SYMBOLS):
            journal.append(
                SignalEvent(bar=bar, timestamp=TS, direction=1, confidence=0.5, probability=0.5)
            )
        journal.flush(durable=False)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_long_paper_journal_holds_no_more_pages_than_its_cache(
    ram_tmp_path: Path, mode: str
) -> None:
    used = _memory_used()
    path = ram_tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run", mode))
    assert isinstance(journal, SqliteJournal)
    _bars(journal, range(500))  # the cache full: the journal is larger than it already
    early, early_size = used(), path.stat().st_size + Path(f"{path}-wal").stat().st_size
    _bars(journal, range(500, 4000))
    late = used()
    journal.flush()
    grown = path.stat().st_size + Path(f"{path}-wal").stat().st_size - early_size
    journal.close()
    cap = CACHE_KIB[mode] << 10
    assert early_size > cap  # the cache was full ...
    assert grown > 2 * cap  # ... the journal grew by more than two caches since ...
    assert late - early < grown // 8  # ... and the memory SQLite holds hardly at all
