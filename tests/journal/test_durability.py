"""A commit made without fsync survives a killed process; the tail record never runs ahead.

Paper and live commit a tick that sends nothing with ``durable=False``: SQLite at
``synchronous=NORMAL`` (no fsync, no tail record), PostgreSQL with ``synchronous_commit``
off for that transaction. A durable commit (before an order is sent, at start, on a
control request, at stop) fsyncs the log, which holds every commit before it, and then
records the tail. So:

- a process killed after commits without fsync leaves them all (the operating system
  has the pages): the journal verifies (its chain at the record's row is the record's
  head) and reopens to append after its last row;
- what a power loss may leave, the files as the last durable commit left them, with the
  tail record as it is on disk now, verifies too: the record names no row that was not
  made durable.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.pg_server import PgSchema
from tradeloom.journal import RunIdentity, SignalEvent, StaleData, open_journal, read_rows, verify
from tradeloom.journal.postgres import PostgresJournal
from tradeloom.journal.sqlite import SqliteJournal
from tradeloom.journal.tail import read_tail, tail_path

TS = pd.Timestamp("2024-01-01", tz="UTC")
ID = RunIdentity("s", "run", "paper")


def _signals(journal: SqliteJournal, bars: range) -> None:
    for bar in bars:
        journal.append(
            SignalEvent(bar=bar, timestamp=TS, direction=1, confidence=0.5, probability=0.5)
        )


def _synchronous(journal: SqliteJournal) -> int:
    return int(journal._db.execute("PRAGMA synchronous").fetchone()[0])


def _tail_rows(path: Path) -> int:
    record = read_tail(path)
    assert record is not None
    return record.rows


def test_a_commit_without_fsync_records_no_tail_until_the_next_durable_one(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ram_tmp_path / "journal.sqlite"
    journal = open_journal(path, ID)
    _signals(journal, range(3))
    journal.flush()
    assert (_synchronous(journal), _tail_rows(path)) == (2, 3)  # FULL
    _signals(journal, range(3, 5))
    journal.flush(durable=False)
    assert (_synchronous(journal), _tail_rows(path)) == (1, 3)  # NORMAL; the record waits
    with sqlite3.connect(path) as reader:  # committed: another connection reads it
        assert reader.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 5

    synced: list[str] = []
    fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    journal.flush()  # nothing buffered: the log of the commits without fsync is fsync'd
    assert synced[:2] == ["journal.sqlite-wal", "journal.sqlite"]
    assert _tail_rows(path) == 5
    synced.clear()
    journal.flush()  # nothing left to make durable
    assert synced == []
    _signals(journal, range(5, 6))
    journal.flush()
    assert (_synchronous(journal), _tail_rows(path)) == (2, 6)
    journal.close()
    verify(path)


@pytest.mark.parametrize("durable", [False, True])
def test_a_commit_of_one_row_is_committed_whole_at_its_synchronous_level(
    ram_tmp_path: Path, durable: bool
) -> None:
    """A tick's commit of its one row (one INSERT, no BEGIN): committed, readable by
    another connection, no transaction left open, at the level it asked for."""
    path = ram_tmp_path / "journal.sqlite"
    journal = open_journal(path, ID)
    for bar in range(3):
        _signals(journal, range(bar, bar + 1))
        journal.flush(durable=durable)
        assert not journal._db.in_transaction
        assert _synchronous(journal) == (2 if durable else 1)  # FULL, NORMAL
        assert _tail_rows(path) == (bar + 1 if durable else 0)
        with sqlite3.connect(path) as reader:
            assert reader.execute("SELECT COUNT(*) FROM events").fetchone()[0] == bar + 1
    _signals(journal, range(3, 5))  # two rows: one transaction
    journal.flush(durable=durable)
    assert not journal._db.in_transaction
    journal.close()
    verify(path)
    assert [row.bar for row in read_rows(path, kinds=["signal"])] == list(range(5))


def test_bulk_columns_after_a_commit_without_fsync_are_durable(ram_tmp_path: Path) -> None:
    from tradeloom.journal.store import ColumnBatch

    path = ram_tmp_path / "journal.sqlite"
    journal = open_journal(path, ID)
    _signals(journal, range(2))
    journal.flush(durable=False)
    events = [
        SignalEvent(bar=b, timestamp=TS, direction=-1, confidence=0.5, probability=0.5)
        for b in (2, 3)
    ]
    journal.write_columns([ColumnBatch.of(events, [0, 1])])
    assert (_synchronous(journal), _tail_rows(path)) == (2, 4)
    journal.close()
    verify(path)


def test_a_backtests_bulk_write_is_made_durable_by_its_close(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk write committed without fsync (a backtest's rows: its close commits
    durably after them) records no tail; the rows before it are committed without fsync
    too, and the close fsyncs the log and records the tail of every row."""
    from tradeloom.journal.store import ColumnBatch

    path = ram_tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run", "backtest"))
    synced: list[str] = []
    fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    _signals(journal, range(2))
    events = [
        SignalEvent(bar=b, timestamp=TS, direction=-1, confidence=0.5, probability=0.5)
        for b in (2, 3)
    ]
    journal.write_columns([ColumnBatch.of(events, [0, 1])], durable=False)
    assert (synced, _synchronous(journal), _tail_rows(path)) == ([], 1, 0)
    with sqlite3.connect(path) as reader:  # committed: another connection reads it
        assert reader.execute("SELECT COUNT(*) FROM signal").fetchone()[0] == 2
    journal.close()  # nothing buffered: the log of the commits without fsync is fsync'd
    assert synced[:2] == ["journal.sqlite-wal", "journal.sqlite"]
    assert _tail_rows(path) == 4
    verify(path)
    assert [row.bar for row in read_rows(path, kinds=["signal"])] == list(range(4))


_KILLED = """
import sys
from pathlib import Path
import pandas as pd
from tradeloom.journal import RunIdentity, SignalEvent, open_journal

journal = open_journal(Path(sys.argv[1]), RunIdentity("s", "run", "paper"))
for bar in range(7):
    journal.append(SignalEvent(bar=bar, timestamp=pd.Timestamp("2024-01-01", tz="UTC"),
                               direction=1, confidence=0.5, probability=0.5))
    journal.flush(durable=bar == 2)  # durable at bar 2, then four commits without fsync
import os
os._exit(9)  # as kill -9: no close, no checkpoint
"""


def test_a_killed_process_keeps_its_commits_without_fsync_and_restarts_after_them(
    ram_tmp_path: Path,
) -> None:
    path = ram_tmp_path / "journal.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED), str(path)], capture_output=True
    )
    assert done.returncode == 9, done.stderr.decode()
    assert _tail_rows(path) == 3  # the last durable commit's
    verify(path)  # the chain at row 3 is the record's head; the rows after it are whole
    assert [row.bar for row in read_rows(path)] == list(range(7))
    journal = open_journal(path, ID)  # a restart appends after the last row
    assert journal.last_seq == 7
    _signals(journal, range(7, 8))
    journal.close()
    assert _tail_rows(path) == 8
    verify(path)


def test_what_a_power_loss_may_leave_verifies(ram_tmp_path: Path) -> None:
    path = ram_tmp_path / "run" / "journal.sqlite"
    path.parent.mkdir()
    journal = open_journal(path, ID)
    _signals(journal, range(4))
    journal.flush()
    # the disk as the durable commit left it (the log fsync'd up to here)
    disk = ram_tmp_path / "disk"
    disk.mkdir()
    for name in ("journal.sqlite", "journal.sqlite-wal"):
        shutil.copy(path.with_name(name), disk / name)
    for bar in range(4, 9):
        _signals(journal, range(bar, bar + 1))
        journal.flush(durable=False)
    # the power goes: the commits without fsync are lost, the tail record is as on disk
    shutil.copy(tail_path(path), tail_path(disk / "journal.sqlite"))
    journal.close()
    assert _tail_rows(disk / "journal.sqlite") == 4
    verify(disk / "journal.sqlite")
    assert len(list(read_rows(disk / "journal.sqlite"))) == 4


def _pg_tails(pg: PgSchema) -> list[int]:
    with pg.connect() as db:
        found = db.execute(
            f'SELECT "rows" FROM "{pg.name}".tails WHERE run_id = %s ORDER BY id',  # type: ignore[arg-type]
            ("run",),
        ).fetchall()
    return [int(row[0]) for row in found]


class _Recording:
    """A cursor that keeps the statements it executes."""

    def __init__(self, cursor: Any, statements: list[str]) -> None:
        self._cursor = cursor
        self._statements = statements

    def execute(self, query: Any, *args: Any) -> Any:
        self._statements.append(str(query))
        return self._cursor.execute(query, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def test_postgres_commits_without_waiting_for_its_disk_and_records_the_tail_with_them(
    pg_schema: PgSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresJournal(pg_schema.target, RunIdentity("s", "run", "live"), new=True)
    statements: list[str] = []
    transaction = store._transaction

    @contextmanager
    def recorded() -> Iterator[Any]:
        with transaction() as cursor:
            yield _Recording(cursor, statements)

    monkeypatch.setattr(store, "_transaction", recorded)
    store.append(StaleData(bar=0, message="a"))
    store.flush()
    assert _pg_tails(pg_schema) == [1]
    assert not any("synchronous_commit" in s for s in statements)
    store.append(StaleData(bar=1, message="b"))
    store.flush(durable=False)
    assert "SET LOCAL synchronous_commit TO off" in statements
    assert _pg_tails(pg_schema) == [1, 2]  # the tail is in the commit's own transaction
    statements.clear()
    store.flush()  # the commit that did not wait is made durable: a tail row, waited for
    assert _pg_tails(pg_schema) == [1, 2, 2]
    assert not any("synchronous_commit" in s for s in statements)
    store.flush()  # nothing left to make durable
    assert _pg_tails(pg_schema) == [1, 2, 2]
    store.close()


@pytest.mark.parametrize(("mode", "page"), [("paper", 4096), ("live", 4096), ("backtest", 16384)])
def test_a_journal_pages_as_its_mode_commits(tmp_path: Path, mode: str, page: int) -> None:
    """A paper or live commit writes each page it touched whole to the log: small pages;
    a backtest writes its rows once, in blocks: large ones. Both verify alike."""
    path = tmp_path / f"{mode}.sqlite"
    journal = open_journal(path, RunIdentity("s", "run", mode))
    for i in range(40):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.75)
        )
        if i % 3 == 2:
            journal.flush(durable=False)
    journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == page
    assert verify(path).rows == 40
