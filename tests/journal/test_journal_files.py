"""A journal this process writes keeps SQLite's locks: another process's reader cannot end it.

SQLite's locks are POSIX record locks, and closing any descriptor on a file drops all of
a process's locks on it. The store once fsync'd the journal through a descriptor it
opened and closed (and read its header the same way): the writer's SHARED lock was gone,
the next reader in another process to close thought itself the last, checkpointed and
deleted ``-wal`` and ``-shm``, and the writer's later rows went into a log no one could
read. `tradeloom.journal.files` holds one descriptor per journal file for the life of
this process's connections; these tests read the journal from other processes after
every kind of access the writer's process makes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.journal import RunIdentity, SignalEvent, files, open_journal, read_rows, verify
from tradeloom.journal.sqlite import SqliteJournal, connect
from tradeloom.journal.tail import read_tail

TS = pd.Timestamp("2024-01-01", tz="UTC")
ID = RunIdentity("s", "run", "paper")

_READ = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])  # as a user would: read-write, default settings
print(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
db.close()
"""


def _signals(journal: SqliteJournal, bars: range) -> None:
    for bar in bars:
        journal.append(
            SignalEvent(bar=bar, timestamp=TS, direction=1, confidence=0.5, probability=0.5)
        )


def _read_elsewhere(path: Path) -> int:
    """Count the journal's rows from another process with Python's sqlite3, and close."""
    done = subprocess.run(
        [sys.executable, "-c", _READ, str(path)], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def test_a_reader_in_another_process_never_ends_the_log_of_a_journal_being_written(
    ram_tmp_path: Path,
) -> None:
    path = ram_tmp_path / "journal.sqlite"
    before = files.held_count()  # other tests of this worker may hold journals of theirs
    journal = open_journal(path, ID)
    _signals(journal, range(3))
    journal.flush(durable=False)
    journal.flush()  # nothing buffered: the fsync of the commits made without (`_sync`)
    assert read_tail(path) is not None and read_tail(path).rows == 3  # type: ignore[union-attr]
    # this process reads its own journal too, as a live run's figures do
    assert len(list(read_rows(path))) == 3
    verify(path)
    assert _read_elsewhere(path) == 3
    assert _wal(path).exists(), "a reader's close deleted the log of a journal being written"
    _signals(journal, range(3, 6))
    journal.flush()
    assert _read_elsewhere(path) == 6  # the rows after the read are where readers look
    journal.close()
    assert files.held_count() == before
    assert len(list(read_rows(path))) == 6
    verify(path)


def test_the_sqlite3_shell_reading_a_journal_being_written_loses_nothing(
    ram_tmp_path: Path,
) -> None:
    shell = shutil.which("sqlite3")
    if shell is None:
        pytest.skip("the sqlite3 shell is not installed (Debian's sqlite3; .ci/run installs it)")
    path = ram_tmp_path / "journal.sqlite"
    journal = open_journal(path, ID)
    for start in range(0, 12, 3):
        _signals(journal, range(start, start + 3))
        journal.flush(durable=start % 2 == 0)
        journal.flush()
        done = subprocess.run(
            [shell, str(path), "SELECT COUNT(*) FROM events;"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert int(done.stdout) == start + 3
        assert _wal(path).exists()
    journal.close()
    assert len(list(read_rows(path))) == 12
    verify(path)


def test_connections_of_one_process_share_one_descriptor_closed_after_the_last(
    ram_tmp_path: Path,
) -> None:
    path = ram_tmp_path / "journal.sqlite"
    before = files.held_count()  # other tests of this worker may hold journals of theirs
    journal = open_journal(path, ID)
    held = journal._db.held
    assert held is not None and files.held_count() == before + 1
    reader, _ = connect(path)
    assert reader.held is held and held.users == 2
    fd = held.fd
    reader.close()
    os.fstat(fd)  # still open: the writer's connection is
    assert held.users == 1
    journal.close()
    with pytest.raises(OSError):
        os.fstat(fd)
    assert files.held_count() == before


def test_a_journal_file_deleted_while_held_is_not_taken_for_a_new_one(
    ram_tmp_path: Path,
) -> None:
    path = ram_tmp_path / "journal.sqlite"
    before = files.held_count()  # other tests of this worker may hold journals of theirs
    journal = open_journal(path, ID)
    _signals(journal, range(2))
    journal.flush()
    leaked = journal._db  # a connection never closed keeps its hold
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (ram_tmp_path / name).unlink(missing_ok=True)
    (ram_tmp_path / "journal.sqlite.tail").unlink()
    again = open_journal(path, ID)  # a new file, perhaps on the old one's inode
    assert again._db.held is not leaked.held
    assert again.last_seq == 0
    again.close()
    leaked.close()
    assert files.held_count() == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
