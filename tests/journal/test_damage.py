"""A journal file that cannot be trusted gets one line naming it and the problem."""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xxhash

from tradeloom import __version__
from tradeloom.journal import (
    FORMAT_VERSION,
    ChainBroken,
    FillEvent,
    JournalDamaged,
    JournalOwnerError,
    JournalVersionError,
    RejectionEvent,
    RunIdentity,
    SignalEvent,
    journal_digest,
    open_journal,
    read_events,
    read_frames,
    verify,
)
from tradeloom.journal.chain import chain_step, xxh64_words
from tradeloom.journal.columns import stored_digests
from tradeloom.journal.schema import schema_of

IDENTITY = RunIdentity("strategy", "run-1", "paper")
TS = pd.Timestamp("2024-01-01", tz="UTC")


def _journal(path: Path, rows: int = 6) -> Path:
    journal = open_journal(path, IDENTITY)
    for i in range(rows):
        journal.append(
            SignalEvent(bar=i, timestamp=TS, direction=1, confidence=0.5, probability=0.6)
        )
        journal.append(
            FillEvent(
                order_id=f"o-{i}",
                bar=i,
                timestamp=TS,
                side=1,
                quantity=1.0,
                price=10.0 + i,
                fee=0.0,
                slippage=0.0,
                correlation_id=i,
            )
        )
    journal.append(RejectionEvent(code="X", message="m", bar=9, timestamp=TS, values={"a": 1.0}))
    journal.close()
    return path


def _unlocked(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` with the append-only triggers dropped (as an attacker would)."""
    db = sqlite3.connect(path, isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f'DROP TRIGGER "{name}"')
    return db


def _all_readers(path: Path) -> list[str]:
    """Every reader's message on ``path`` (all must refuse with the same kind of line)."""
    messages = []
    for read in (lambda: list(read_events(path)), lambda: read_frames(path), lambda: verify(path)):
        with pytest.raises(JournalDamaged) as caught:
            read()
        messages.append(str(caught.value))
    return messages


# --- the hash ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 8, 13])
def test_xxh64_is_the_reference_xxhash(n: int) -> None:
    words = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for seed in (0, 1, 2**64 - 1):
        ours = int(xxh64_words(words, n, np.uint64(seed)))
        assert ours == xxhash.xxh64_intdigest(words.tobytes(), seed)


def test_the_chain_step_is_documented_xxh64() -> None:
    words = np.array([1, 2, 3], dtype=np.uint64)
    digest = xxhash.xxh64_intdigest(words.tobytes(), 0)
    assert int(chain_step(words, 3, np.uint64(77))) == xxhash.xxh64_intdigest(
        struct.pack("<Q", digest), 77
    )


def test_an_intact_journal_verifies(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.sqlite")
    assert verify(path).rows == 13


# --- tampering ---------------------------------------------------------------------


def test_a_deleted_row_is_named(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.sqlite")
    with _unlocked(path) as db:
        db.execute("DELETE FROM fill WHERE seq = 4")
    with pytest.raises(ChainBroken) as caught:
        verify(path)
    assert str(caught.value) == (
        f"{path}: the hash chain breaks at sequence 4: the row of sequence 4 is missing (deleted)"
    )
    assert caught.value.seq == 4


def test_an_edited_row_is_named(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.sqlite")
    with _unlocked(path) as db:
        db.execute("UPDATE fill SET quantity = 2.0 WHERE seq = 6")
    with pytest.raises(ChainBroken, match=r"breaks at sequence 6: the row does not match its hash"):
        verify(path)


@pytest.mark.parametrize("stored", [b"slippage", "text", b""])
def test_a_number_read_as_another_type_hashes_as_a_damaged_row(
    tmp_path: Path, stored: object
) -> None:
    # a damaged page can hand a STRICT REAL column a text or a blob (the reader fuzzer
    # found one): its row must not match its hash, and nothing but that may be raised
    path = _journal(tmp_path / "j.sqlite")
    schema = schema_of("fill")
    with sqlite3.connect(path) as db:
        rows = [list(r[:-1]) for r in db.execute("SELECT * FROM fill ORDER BY seq")]
    price = 1 + schema.names.index("price")
    damaged = [list(r) for r in rows]
    damaged[1][price] = stored
    found, genuine = stored_digests(schema, damaged), stored_digests(schema, rows)
    assert found[0] == genuine[0] and found[2:].tolist() == genuine[2:].tolist()
    assert found[1] != genuine[1]


def test_an_inserted_row_is_named(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.sqlite")
    with _unlocked(path) as db:
        row = list(db.execute("SELECT * FROM fill WHERE seq = 2").fetchone())
        row[0] = 5  # the seq of a signal: two rows claim it
        db.execute(f"INSERT INTO fill VALUES ({','.join('?' * len(row))})", row)
    with pytest.raises(ChainBroken, match=r"breaks at sequence 5: two rows have sequence 5"):
        verify(path)


def test_a_row_appended_without_the_chain_is_named(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.sqlite")
    with _unlocked(path) as db:
        row = list(db.execute("SELECT * FROM fill WHERE seq = 2").fetchone())
        row[0] = 14
        db.execute(f"INSERT INTO fill VALUES ({','.join('?' * len(row))})", row)
    with pytest.raises(ChainBroken, match=r"breaks at sequence 14: the row does not match"):
        verify(path)


def test_an_edited_meta_breaks_the_first_row(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.sqlite")
    with _unlocked(path) as db:
        db.execute("UPDATE meta SET value = 'run-2' WHERE key = 'run_id'")
    with pytest.raises(ChainBroken, match=r"sequence 1: .*, or the meta table was edited$"):
        verify(path)


def test_the_triggers_refuse_updates_and_deletes(tmp_path: Path) -> None:
    path = _journal(tmp_path / "j.sqlite")
    with sqlite3.connect(path) as db:
        for statement in ("UPDATE fill SET fee = 1", "DELETE FROM signal", "DELETE FROM meta"):
            with pytest.raises(sqlite3.IntegrityError, match="the journal is append-only"):
                db.execute(statement)


# --- damaged files -------------------------------------------------------------------


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    assert _all_readers(path) == [f"{path}: no such journal"] * 3


def test_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.mkdir()
    assert _all_readers(path) == [f"{path}: is a directory, not a journal file"] * 3


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"")
    assert _all_readers(path) == [f"{path}: an empty file, not a journal"] * 3


@pytest.mark.parametrize("damage", ["zeroed header", "random bytes"])
def test_not_a_database(tmp_path: Path, damage: str) -> None:
    path = _journal(tmp_path / "journal.sqlite")
    data = bytearray(path.read_bytes())
    if damage == "zeroed header":
        data[:100] = bytes(100)
    else:
        data[:] = np.random.default_rng(1).bytes(len(data))
    path.write_bytes(bytes(data))
    expected = f"{path}: not a SQLite database (damaged, or another kind of file)"
    assert _all_readers(path) == [expected] * 3


def test_a_truncated_file(tmp_path: Path) -> None:
    path = _journal(tmp_path / "journal.sqlite", rows=400)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    for message in _all_readers(path):
        assert message.startswith(f"{path}: ")
        assert "malformed" in message or "breaks at sequence" in message, message
        assert "\n" not in message


def test_a_lost_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY, flush_every=1_000_000)
    journal.append(SignalEvent(bar=0, timestamp=TS, direction=1, confidence=0.5, probability=0.6))
    journal.flush()
    # kill -9 now, then the -wal file deleted: the main file holds no committed table
    crashed = tmp_path / "crashed" / "journal.sqlite"
    crashed.parent.mkdir()
    shutil.copyfile(path, crashed)
    journal.close()
    assert (
        _all_readers(crashed)
        == [
            f"{crashed}: holds no journal tables (no such table: meta); its write-ahead log "
            "(journal.sqlite-wal) was lost after a crash, or it is not a journal"
        ]
        * 3
    )


def test_a_row_that_does_not_decode(tmp_path: Path) -> None:
    path = _journal(tmp_path / "journal.sqlite")
    with _unlocked(path) as db:
        db.execute("""UPDATE rejection SET "values" = 'not json'""")
    with pytest.raises(JournalDamaged) as caught:
        list(read_events(path))
    assert str(caught.value) == (
        f"{path}: rejection row 13 cannot be decoded (rejection.values: not JSON (Expecting "
        "value: line 1 column 1 (char 0)))"
    )
    with pytest.raises(ChainBroken, match=r"breaks at sequence 13"):
        verify(path)


def test_a_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = _journal(tmp_path / "journal.sqlite")
    with _unlocked(path) as db:
        db.execute("UPDATE fill SET order_id = CAST(x'ff00' AS TEXT) WHERE seq = 2")
    unreadable = r"^.*: the fill table cannot be read \(SQLite: Could not"
    with pytest.raises(JournalDamaged, match=unreadable):
        list(read_events(path))
    with pytest.raises(ChainBroken, match=r"breaks at sequence 2: the row does not match"):
        verify(path)


# --- another format or owner -----------------------------------------------------------


def test_a_format_1_journal_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT)")
    with pytest.raises(JournalVersionError) as caught:
        verify(path)
    assert str(caught.value) == (
        f"{path}: a journal of format 1 (tradeloom before the typed journal); this tradeloom "
        f"reads format {FORMAT_VERSION}: start a new run in another folder, or read it with "
        "the tradeloom that wrote it"
    )


def test_a_newer_format_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = _journal(tmp_path / "journal.sqlite")
    with _unlocked(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    before = path.read_bytes()
    with pytest.raises(JournalVersionError) as caught:
        open_journal(path, IDENTITY)
    assert str(caught.value) == (
        f"{path}: a journal of format 99; this tradeloom ({__version__}) reads format "
        f"{FORMAT_VERSION}: upgrade tradeloom to read it"
    )
    assert path.read_bytes() == before  # nothing overwritten


def test_a_journal_of_another_strategy_is_refused(tmp_path: Path) -> None:
    path = _journal(tmp_path / "journal.sqlite")
    before = path.read_bytes()
    with pytest.raises(JournalOwnerError) as caught:
        open_journal(path, RunIdentity("other", "run-2", "paper"))
    assert str(caught.value) == (
        f"{path}: the journal of a paper run of 'strategy' (run run-1); it cannot continue as "
        "a paper run of 'other': use another folder"
    )
    assert path.read_bytes() == before
    assert not os.path.exists(f"{path}-wal") or verify(path).rows == 13


def test_the_digest_leaves_out_run_rows_and_sequence_numbers(tmp_path: Path) -> None:
    first = _journal(tmp_path / "a.sqlite")
    second = _journal(tmp_path / "b.sqlite")
    assert journal_digest(first) == journal_digest(second)


@pytest.mark.parametrize("where", [60460, 173429])
def test_a_zeroed_range_inside_the_tables(tmp_path: Path, where: int) -> None:
    # found by fuzz_reader.py: zeroed record bytes read back as NULLs in NOT NULL columns
    from tests.journal.fuzz_reader import check, mutate, seed_journal

    path = tmp_path / "journal.sqlite"
    seed = seed_journal(tmp_path)
    path.write_bytes(mutate(bytearray(seed.read_bytes()), [("zero", where, 5000)]))
    check(path)  # every reader answers, or raises one JournalError line


def test_a_full_disk_is_the_error_a_flush_raises_and_nothing_half_written_stays(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, IDENTITY, flush_every=1_000_000)
    journal.append(SignalEvent(bar=0, timestamp=TS, direction=1, confidence=0.5, probability=0.6))
    journal.flush()
    db = journal._db  # type: ignore[attr-defined]
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for i in range(1, 5000):
        journal.append(
            RejectionEvent(code="X", message="m" * 200, bar=i, timestamp=TS, values={"a": 1.0})
        )
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        journal.flush()
    # the commit that failed left nothing behind: the journal still verifies, as it was
    assert [e.bar for e in read_events(path)] == [0]
    assert verify(path).rows == 1
