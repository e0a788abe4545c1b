"""Anyone may read a running run's journal: a paper run read by other processes loses nothing.

A paper run (simulated clock, as fast as it goes) runs as a process; after every few of
its bar lines another process reads its journal and closes it, alternately Python's
``sqlite3`` module and the ``sqlite3`` shell, as a user with pandas or DB Browser would
(a reader's close once deleted the run's write-ahead log: `tradeloom.journal.files`).
Then the run is stopped, started again by the same command, and stopped: the journal
holds a ``live_bar`` row for every bar both runs processed, the restart went on, and
``tradeloom journal verify`` passes. The same with the journal in PostgreSQL, read by a
second psycopg connection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests import forkserver
from tests.builders import strategy_text
from tests.pg_server import PG_URL, PgSchema
from tradeloom.journal import read_rows
from tradeloom.journal.tail import tail_path

pytestmark = pytest.mark.slow  # child processes

PACE = 0.1
"""Seconds between the end of a read and the next (readers share the two cores)."""

REPO = Path(__file__).resolve().parents[2]
"""This checkout: its package first on the commands' path (tests may run from a worktree)."""

FIRST, SECOND = 24, 6
"""Bars the first run and its restart process."""

_MODULE_READ = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])  # read-write, default settings: what a user types
print(db.execute("SELECT COUNT(*) FROM live_bar").fetchone()[0])
db.close()
"""


def _paper(cwd: Path, bars: int) -> list[str]:
    return [
        sys.executable, "-m", "tradeloom.cli.main", "run", "s.yaml", "--mode", "paper",
        "--clock", "simulated", "--speed", "max", "--max-bars", str(bars),
    ]  # fmt: skip


def _play(cwd: Path, bars: int, read: Callable[[int], int], ready: Callable[[], bool]) -> list[int]:
    """Run ``bars`` bars of the paper run in ``cwd``, ``read`` called over and over by
    another thread once ``ready`` (the journal is there) until it exits; return what each
    read counted."""
    counts: list[int] = []
    failed: list[BaseException] = []
    over = threading.Event()

    def reading() -> None:
        try:
            while not over.is_set():
                if ready():
                    counts.append(read(len(counts)))
                over.wait(PACE)
        except BaseException as exc:  # reported by the test's thread
            failed.append(exc)

    reader = threading.Thread(target=reading)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with forkserver.popen(
        _paper(cwd, bars), cwd=cwd, env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        reader.start()
        try:
            out, err = process.communicate(timeout=600)
        finally:
            over.set()
            reader.join()
    assert process.returncode == 0, err
    if failed:
        raise failed[0]
    assert out.count(" bar ") == bars, out
    return counts


def _sqlite_reader(journal: Path) -> Callable[[int], int]:
    shell = shutil.which("sqlite3")

    def read(turn: int) -> int:
        if turn % 2 and shell is not None:
            command = [shell, str(journal), "SELECT COUNT(*) FROM live_bar;"]
        else:
            command = [sys.executable, "-c", _MODULE_READ, str(journal)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
        return int(done.stdout)

    return read


def _verify(cwd: Path, run: Path) -> None:
    done = forkserver.tradeloom("journal", "verify", str(run), cwd=cwd, pythonpath=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hash chain intact" in done.stdout


def _strategy(tmp_path: Path, name: str, journal: str = "") -> Path:
    (tmp_path / "s.yaml").write_text(
        strategy_text(name=name, signal={"threshold": 0.001}) + journal
    )
    return tmp_path / "runs" / f"{name}-paper-simulated"


def test_reading_a_running_papers_sqlite_journal_loses_no_row(tmp_path: Path) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 shell is not installed (Debian's sqlite3; .ci/run installs it)")
    run = _strategy(tmp_path, "readers")
    journal = run / "journal.sqlite"
    read = _sqlite_reader(journal)
    made = tail_path(journal).exists  # written once the journal's tables are committed
    counts = _play(tmp_path, FIRST, read, made)
    assert len(counts) >= 3 and counts == sorted(counts), counts
    assert read(0) == FIRST
    counts = _play(tmp_path, SECOND, read, made)  # the restart goes on, read as it runs
    assert counts and min(counts) >= FIRST
    assert len(list(read_rows(journal, ["live_bar"]))) == FIRST + SECOND
    assert read(1) == FIRST + SECOND
    _verify(tmp_path, run)


def test_reading_a_running_papers_postgresql_journal_loses_no_row(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    run = _strategy(tmp_path, "pg_readers", pg_schema.yaml())
    reader = psycopg.connect(PG_URL)  # one second connection, open all along
    table = f'"{pg_schema.name}".live_bar'

    def ready() -> bool:  # the run has made its tables
        found = reader.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return found is not None and found[0] is not None

    def read(turn: int) -> int:
        # a transaction stays open across two reads while the run writes
        if turn % 2:
            reader.commit()
        found = reader.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # type: ignore[arg-type]
        assert found is not None
        return int(found[0])

    try:
        counts = _play(tmp_path, FIRST, read, ready)
        reader.commit()
        assert len(counts) >= 3 and counts == sorted(counts), counts
        assert read(0) == FIRST
        counts = _play(tmp_path, SECOND, read, ready)
        reader.commit()
        assert read(1) == FIRST + SECOND
    finally:
        reader.close()
    assert len(list(read_rows(run / "journal.json", ["live_bar"]))) == FIRST + SECOND
    _verify(tmp_path, run)
