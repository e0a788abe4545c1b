"""A restart checks the journal's hash chain and refuses a damaged journal before trading."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.live.live_emulated import emulated_run, tick_until
from tradeloom.journal import JournalError


def _unlocked(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f'DROP TRIGGER "{name}"')
    return db


def _first_fill(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT min(seq) FROM fill").fetchone()[0])


TAMPERING = {
    "deleted": (
        "DELETE FROM fill WHERE seq = {seq}",
        "the row of sequence {seq} is missing (deleted)",
    ),
    "edited": (
        "UPDATE fill SET quantity = quantity * 2 WHERE seq = {seq}",
        "the row does not match its hash",
    ),
    "inserted": (
        "INSERT INTO fill SELECT {last} + 1, bar, timestamp, symbol, correlation_id, order_id, "
        "side, quantity, price, fee, slippage, liquidity, hash FROM fill WHERE seq = {seq}",
        "the row does not match its hash",
    ),
}


@pytest.mark.parametrize("damage", sorted(TAMPERING))
def test_a_restart_refuses_a_tampered_journal_naming_the_first_bad_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        tick_until(run, runner, 200)
        runner.stop("done")
        journal = tmp_path / "run" / "journal.sqlite"
        seq = _first_fill(journal)
        statement, why = TAMPERING[damage]
        with _unlocked(journal) as db:
            last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
            db.execute(statement.format(seq=seq, last=last))
        bad = last + 1 if damage == "inserted" else seq
        before = journal.read_bytes()
        sent = len(run.emulator.exchange.orders())
        again = run.runner(tmp_path / "run")
        with pytest.raises(JournalError) as caught:
            again.start()
        again.inbox.release_pid()
        assert str(caught.value) == (
            f"{journal}: the hash chain breaks at sequence {bad}: {why.format(seq=seq)}"
            + ("" if damage == "deleted" else " (edited, inserted or damaged after it was written)")
            + "; refusing to restart: nothing was sent"
        )
        assert len(run.emulator.exchange.orders()) == sent
        assert journal.read_bytes() == before  # nothing overwritten


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("empty file", "an empty file, not a journal"),
        ("zeroed header", "not a SQLite database (damaged, or another kind of file)"),
        ("directory", "is a directory, not a journal file"),
        ("lost write-ahead log", "holds no journal tables (no such table: meta)"),
    ],
)
def test_a_restart_refuses_a_damaged_journal_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str, expected: str
) -> None:
    with emulated_run(tmp_path, monkeypatch) as run:
        runner = run.runner(tmp_path / "run")
        runner.start()
        tick_until(run, runner, 150)
        runner.stop("done")
        journal = tmp_path / "run" / "journal.sqlite"
        if damage == "empty file":
            journal.write_bytes(b"")
        elif damage == "zeroed header":
            journal.write_bytes(bytes(100) + journal.read_bytes()[100:])
        elif damage == "directory":
            journal.unlink()
            journal.mkdir()
        else:
            journal.write_bytes(b"")  # the main file never checkpointed: only the WAL had it
            fresh = sqlite3.connect(journal)
            fresh.execute("PRAGMA journal_mode=WAL")
            fresh.close()
        again = run.runner(tmp_path / "run")
        with pytest.raises(JournalError) as caught:
            again.start()
        again.inbox.release_pid()
        message = str(caught.value)
        assert message.startswith(f"{journal}: {expected}"), message
        assert message.endswith("; refusing to restart: nothing was sent")
        assert "\n" not in message
