"""A bulk write's typed columnar blocks: read, hashed and checked as the same rows appended.

`tradeloom.journal.blocks`: a backtest's rows go to the ``segment`` table as one
block per kind; every reader, the chain, the digest and the tail see the events that
appending them one by one gives. An edited byte in a block and a cut block are caught
in one line; a format-2 journal (rows only) still reads, verifies and appends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tradeloom.journal.sqlite as journal_sqlite
from tests.journal.journal_values import events
from tradeloom.cli.main import main
from tradeloom.journal import (
    KINDS,
    ChainBroken,
    ColumnBatch,
    Event,
    FillEvent,
    JournalDamaged,
    RunIdentity,
    SignalEvent,
    blocks,
    journal_digest,
    open_journal,
    read_frames,
    read_info,
    read_rows,
    verify,
)
from tradeloom.journal.schema import Codec, schema_of
from tradeloom.journal.source import open_source

IDENTITY = RunIdentity("strategy", "run-1", "backtest")
SETTINGS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TS = pd.Timestamp("2024-01-01", tz="UTC")


def _fresh(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm", ".tail"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _reader_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every kind's rows as the readers see them, without the per-row hash."""
    source = open_source(path)
    try:
        return {kind: [row[:-1] for row in source.rows(schema_of(kind))] for kind in KINDS}
    finally:
        source.close()


def _stored(path: Path) -> tuple[int, int]:
    """How many blocks and how many table rows the file holds."""
    with sqlite3.connect(path) as db:
        blocks = db.execute("SELECT count(*) FROM segment").fetchone()[0]
        rows = sum(
            db.execute(f'SELECT count(*) FROM "{schema_of(k).table}"').fetchone()[0] for k in KINDS
        )
    return blocks, rows


def _vocabulary(batch: ColumnBatch) -> ColumnBatch:
    """The batch with its text columns as pandas Categoricals (stored as a vocabulary)."""
    columns = dict(batch.columns)
    for column in schema_of(batch.kind.KIND).columns:
        if column.codec in (Codec.TEXT, Codec.OPT_TEXT):
            columns[column.name] = pd.Categorical(columns[column.name])
    return ColumnBatch(batch.kind, batch.positions, columns)


def _write_bulk(path: Path, writes: list[list[Event]], vocabulary: bool) -> None:
    journal = open_journal(path, IDENTITY)
    for written in writes:
        by_kind: dict[type[Event], list[tuple[int, Event]]] = {}
        for position, event in enumerate(written):
            by_kind.setdefault(type(event), []).append((position, event))
        batches = [
            ColumnBatch.of([e for _, e in items], [p for p, _ in items])
            for items in by_kind.values()
        ]
        journal.write_columns([_vocabulary(b) for b in batches] if vocabulary else batches)
    journal.close()


def _write(data: st.DataObject) -> list[Event]:
    """One write's events: a few kinds, each in several rows (some all alike), interleaved."""
    written: list[Event] = []
    for kind in data.draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5)):
        count = data.draw(st.integers(1, 4))
        if data.draw(st.booleans()):
            written += [data.draw(events(kind))] * count  # a column of one value: stored once
        else:
            written += [data.draw(events(kind)) for _ in range(count)]
    return data.draw(st.permutations(written))


@SETTINGS
@given(data=st.data())
def test_blocks_read_back_as_the_same_events_appended_one_by_one(
    tmp_path: Path, data: st.DataObject
) -> None:
    writes = [_write(data) for _ in range(data.draw(st.integers(1, 3)))]
    one, bulk = _fresh(tmp_path, "one.sqlite"), _fresh(tmp_path, "bulk.sqlite")
    journal = open_journal(one, IDENTITY)
    for written in writes:
        for event in written:
            journal.append(event)
    journal.close()
    _write_bulk(bulk, writes, data.draw(st.booleans()))
    kinds_per_write = sum(len({type(e) for e in written}) for written in writes)
    assert _stored(bulk) == (kinds_per_write, 0)  # every bulk row lives in a block
    assert _reader_rows(one) == _reader_rows(bulk)
    assert verify(one) == verify(bulk)  # the same row count and chain head
    assert journal_digest(one) == journal_digest(bulk)
    assert list(read_rows(one)) == list(read_rows(bulk))
    frames_one, frames_bulk = read_frames(one), read_frames(bulk)
    for kind in KINDS:
        pd.testing.assert_frame_equal(frames_one[kind], frames_bulk[kind], check_dtype=True)


def _signals(n: int, start: int = 0) -> ColumnBatch:
    bars = np.arange(start, start + n)
    return ColumnBatch(
        SignalEvent,
        np.arange(n) * 2,
        {
            "bar": bars,
            "timestamp": TS.value + bars * 60_000_000_000,
            "symbol": "BTC/USDT",
            "direction": np.where(bars % 2 == 0, 1, -1),
            "confidence": bars / 1000.0,
            "probability": np.full(n, 0.625),
        },
    )


def _fills(n: int, start: int = 0) -> ColumnBatch:
    bars = np.arange(start, start + n)
    return ColumnBatch(
        FillEvent,
        np.arange(n) * 2 + 1,
        {
            "bar": bars,
            "timestamp": TS.value + bars * 60_000_000_000,
            "symbol": "BTC/USDT",
            "correlation_id": bars,
            "order_id": [f"o-{b:06d}" for b in bars],
            "side": np.ones(n, dtype=np.int64),
            "quantity": np.full(n, 1.5),
            "price": 100.0 + bars,
            "fee": np.full(n, 0.25),
            "slippage": np.zeros(n),
            "liquidity": pd.Categorical(["taker"] * n),
        },
    )


def _backtest_dir(folder: Path, writes: int = 2) -> Path:
    folder.mkdir()
    journal = open_journal(folder / "journal.sqlite", RunIdentity("s", folder.name, "backtest"))
    for k in range(writes):
        journal.write_columns([_signals(50, 50 * k), _fills(50, 50 * k)])
    journal.close()
    return folder


def test_a_frame_of_blocks_is_the_frame_of_the_same_rows(tmp_path: Path) -> None:
    run = _backtest_dir(tmp_path / "run")
    fills = read_frames(run / "journal.sqlite", ["fill"])["fill"]
    assert fills["seq"].tolist() == [2 * i for i in range(1, 51)] + [
        100 + 2 * i for i in range(1, 51)
    ]
    assert fills["order_id"].tolist() == [f"o-{b:06d}" for b in range(100)]
    assert fills["price"].tolist() == [100.0 + b for b in range(100)]
    assert str(fills["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert set(fills["liquidity"]) == {"taker"}


def _edit_fill_block(path: Path, edit: Callable[[bytes], bytes]) -> None:
    """Replace the first fill block's stored data by ``edit`` of it, on disk."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER segment_no_update")
        first, data = db.execute(
            "SELECT min(first_seq), data FROM segment WHERE kind = 'fill'"
        ).fetchone()
        db.execute("UPDATE segment SET data = ? WHERE first_seq = ?", (edit(data), first))


def _flip_a_price(data: bytes) -> bytes:
    """Change one byte of one fill's price inside a block's layout (compressed again)."""
    layout = blocks.unpack(data, "the fill block")
    assert len(layout) > len(data)  # it was stored compressed
    target = np.array([100.0 + 7], dtype="<f8").tobytes()  # the price of the 8th fill
    edited = bytearray(layout)
    at = edited.find(target)
    assert at >= 0 and edited.find(target, at + 1) < 0
    edited[at + 7] ^= 0x01
    return blocks.pack(bytes(edited))


def test_blocks_are_stored_compressed_and_read_back_the_same(tmp_path: Path) -> None:
    run = _backtest_dir(tmp_path / "run")
    with sqlite3.connect(run / "journal.sqlite") as db:
        stored = db.execute("SELECT kind, data FROM segment ORDER BY first_seq").fetchall()
    kinds = schema_of("signal"), schema_of("fill")
    for kind, data in stored:
        assert np.frombuffer(data, "<i8", 1)[0] == -1  # the mark of a compressed block
        layout = blocks.unpack(data, kind)
        assert len(layout) == np.frombuffer(data, "<i8", 1, 8)[0] > len(data)
    # the layout as written before compression reads as the same rows
    raw = _backtest_dir(tmp_path / "raw")
    with sqlite3.connect(raw / "journal.sqlite") as db:
        db.execute("DROP TRIGGER segment_no_update")
        for first, data in db.execute("SELECT first_seq, data FROM segment").fetchall():
            db.execute(
                "UPDATE segment SET data = ? WHERE first_seq = ?",
                (blocks.unpack(data, "a block"), first),
            )
    verify(raw / "journal.sqlite")  # the chain holds over the uncompressed layout too
    for schema in kinds:
        a = read_frames(run / "journal.sqlite", [schema.kind])[schema.kind]
        b = read_frames(raw / "journal.sqlite", [schema.kind])[schema.kind]
        pd.testing.assert_frame_equal(a, b)


def test_a_block_whose_data_would_not_shrink_is_stored_as_it_is() -> None:
    layout = np.random.default_rng(1).integers(1, 2**62, 64).astype("<i8").tobytes()
    assert blocks.pack(layout) == layout
    assert blocks.unpack(layout, "a block") == layout


def test_a_damaged_compressed_block_is_refused_in_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _backtest_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    _edit_fill_block(path, lambda data: data[:-9])  # its frame cut short
    assert main(["journal", "verify", str(run)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"{path}: the fill block of sequences 2..100: its compressed data does not decode ("
    )
    assert err.count("\n") == 1


def test_an_edited_byte_in_a_block_breaks_verify_in_one_line_naming_the_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _backtest_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    assert main(["journal", "verify", str(run)]) == 0
    capsys.readouterr()
    _edit_fill_block(path, _flip_a_price)
    assert main(["journal", "verify", str(run)]) == 2
    assert capsys.readouterr() == (
        "",
        f"{path}: the hash chain breaks in the fill block of sequences 2..100: its bytes do "
        "not match its digest (edited or damaged after it was written)\n",
    )


def test_cut_blocks_are_caught_by_the_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _backtest_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    with sqlite3.connect(path) as db:  # the last write's blocks lost
        db.execute("DROP TRIGGER segment_no_delete")
        db.execute("DELETE FROM segment WHERE first_seq > 100")
    line = (
        f"{path}: its tail was cut: it holds 100 rows, its tail record says 200 were "
        "committed (100 rows lost)"
    )
    with pytest.raises(JournalDamaged) as caught:
        verify(path)
    assert str(caught.value) == line
    assert main(["journal", "verify", str(run)]) == 2
    assert capsys.readouterr() == ("", line + "\n")


def test_a_block_cut_from_the_middle_breaks_the_chain(tmp_path: Path) -> None:
    run = _backtest_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER segment_no_delete")
        db.execute("DELETE FROM segment WHERE first_seq = 2")  # the first write's fills
    with pytest.raises(ChainBroken) as caught:
        verify(path)
    assert str(caught.value) == (
        f"{path}: the hash chain breaks at sequence 2: the row of sequence 2 is missing (deleted)"
    )


@pytest.mark.parametrize("how", ["DROP TABLE segment", "DELETE FROM segment WHERE kind = 'fill'"])
@pytest.mark.parametrize("command", [["status"], ["report"]], ids=lambda c: c[0])
def test_a_backtest_journal_missing_blocks_is_refused_by_status_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], how: str
) -> None:
    """Its last row (a run's bookkeeping, in a table) is still there: the tail record
    matches; the chain, which status and report check, does not."""
    run = _backtest_dir(tmp_path / "run")
    path = run / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run", "backtest"))
    stamp = pd.Timestamp("2024-01-05", tz="UTC")
    journal.append(SignalEvent(bar=100, timestamp=stamp, direction=1, confidence=1, probability=1))
    journal.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER segment_no_delete")
        db.execute(how)
    capsys.readouterr()
    assert main([*command, str(run)]) == 2
    assert capsys.readouterr() == (
        "",
        f"{path}: the hash chain breaks at sequence {1 if 'DROP' in how else 2}: the row of "
        f"sequence {1 if 'DROP' in how else 2} is missing (deleted)\n",
    )


def test_a_block_from_another_place_in_the_chain_is_refused(tmp_path: Path) -> None:
    run = _backtest_dir(tmp_path / "run", writes=1)
    other = _backtest_dir(tmp_path / "other", writes=1)
    # the other journal's blocks hold the same rows, bound to another run's chain
    path = run / "journal.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER segment_no_update")
        with sqlite3.connect(other / "journal.sqlite") as source:
            chained = source.execute("SELECT hash FROM segment WHERE kind = 'fill'").fetchone()[0]
        db.execute("UPDATE segment SET hash = ? WHERE kind = 'fill'", (chained,))
    with pytest.raises(ChainBroken) as caught:
        verify(path)
    assert str(caught.value) == (
        f"{path}: the hash chain breaks in the fill block of sequences 2..100: the chain "
        "after its last row is not its hash (rows before it edited, or a block of another "
        "journal)"
    )


def test_a_journal_of_format_2_still_reads_verifies_and_takes_bulk_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite"
    with monkeypatch.context() as patch:  # a file as tradeloom wrote it before blocks
        patch.setattr(journal_sqlite, "FORMAT_VERSION", 2)
        patch.setattr(journal_sqlite, "SEGMENT_SQL", "")
        journal = open_journal(path, IDENTITY)
        journal.write_columns([_signals(20), _fills(20)])
        journal.close()
    assert read_info(path).format_version == 2
    journal = open_journal(path, IDENTITY)  # reopened by this tradeloom
    journal.write_columns([_signals(5, 20), _fills(5, 20)])
    journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'segment'").fetchall() == []
        assert db.execute("SELECT count(*) FROM fill").fetchone() == (25,)
    assert verify(path).rows == 50
    assert read_frames(path, ["fill"])["fill"]["bar"].tolist() == list(range(25))
