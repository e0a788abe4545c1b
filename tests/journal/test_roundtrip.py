"""Every kind round-trips, by each write path, into identical rows and chains.

The journals are written in memory (``ram_tmp_path``, `ram_tmp`): every example opens,
commits and closes a few, and each commit is fsync'd.

The properties over every kind run on groups of kinds (`KIND_GROUPS`): an example draws
events of each kind of its group and writes them all to one journal, so that every kind
gets its examples drawn and checked as it would alone while the journals' opening,
commits, verification and reading are paid per group, not per kind (they were most of the
time: 69 kinds x 6 examples x 3 properties took 121 s of the suite).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.journal_values import events, expected, same
from tradeloom.journal import (
    KINDS,
    ColumnBatch,
    Event,
    FillEvent,
    JournalValueError,
    RunIdentity,
    SignalEvent,
    open_journal,
    read_events,
    read_frame,
    read_rows,
    read_sequenced,
    verify,
)
from tradeloom.journal.schema import Codec, jsonable, schema_of
from tradeloom.journal.source import open_source

IDENTITY = RunIdentity("strategy", "run-1", "backtest")
SETTINGS = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _kind_groups(size: int) -> list[tuple[str, ...]]:
    kinds = sorted(KINDS)
    return [tuple(kinds[i : i + size]) for i in range(0, len(kinds), size)]


KIND_GROUPS = _kind_groups(8)
"""Every kind, in groups of 8 (a few hundred draws an example, far from Hypothesis's
buffer): a failure names its kind in the assertion, the group in the test's id."""


def _group_id(kinds: tuple[str, ...]) -> str:
    return f"{kinds[0]}..{kinds[-1]}"


def _fresh(folder: Path, name: str) -> Path:
    path = folder / name
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every kind's rows as stored (a table's or a block's), without the per-row hash
    (a block holds one for its rows: `verify` compares the chains)."""
    source = open_source(path)
    try:
        return {kind: [row[:-1] for row in source.rows(schema_of(kind))] for kind in KINDS}
    finally:
        source.close()


def _batch(kind: type[Event], items: Sequence[tuple[int, Event]]) -> ColumnBatch:
    return ColumnBatch.of([e for _, e in items], [p for p, _ in items])


@pytest.mark.parametrize("kinds", KIND_GROUPS, ids=_group_id)
@SETTINGS
@given(data=st.data())
def test_every_kind_round_trips(
    ram_tmp_path: Path, kinds: tuple[str, ...], data: st.DataObject
) -> None:
    written = [
        event
        for kind in kinds
        for event in data.draw(st.lists(events(kind), min_size=1, max_size=3), label=kind)
    ]
    path = _fresh(ram_tmp_path, "j.sqlite")
    journal = open_journal(path, IDENTITY)
    for event in written:
        journal.append(event)
    journal.close()
    read = list(read_events(path))
    assert [type(e) for e in read] == [type(e) for e in written]
    for before, after in zip(written, read, strict=True):
        want = expected(before)
        for name, value in want.items():
            assert same(getattr(after, name), value), (after.KIND, name, getattr(after, name))
    assert verify(path).rows == len(written)


@pytest.mark.parametrize("kinds", KIND_GROUPS, ids=_group_id)
@SETTINGS
@given(data=st.data())
def test_every_kind_reads_back_through_every_reader(
    ram_tmp_path: Path, kinds: tuple[str, ...], data: st.DataObject
) -> None:
    """`read_rows` (plain values, what status and reports read) and `read_frame` (typed
    columns) give back what `read_events` does, for every kind."""
    drawn = {
        kind: data.draw(st.lists(events(kind), min_size=1, max_size=3), label=kind)
        for kind in kinds
    }
    written = [event for kind in kinds for event in drawn[kind]]
    path = _fresh(ram_tmp_path, "j.sqlite")
    journal = open_journal(path, IDENTITY)
    for event in written:
        journal.append(event)
    journal.close()
    rows = list(read_rows(path))
    assert [(r.seq, r.kind) for r in rows] == [(i + 1, e.KIND) for i, e in enumerate(written)]
    for kind in kinds:
        schema = schema_of(kind)
        frame = read_frame(path, kind)
        assert list(frame.columns) == ["seq", *(c.name for c in schema.columns)], kind
        mine = [row for row in rows if row.kind == kind]
        assert frame["seq"].tolist() == [row.seq for row in mine], kind
        for event, row, (_, cells) in zip(drawn[kind], mine, frame.iterrows(), strict=True):
            want = expected(event)
            header = {name: want.pop(name) for name in ("bar", "symbol", "correlation_id")}
            stamp = want.pop("timestamp")
            assert (row.bar, row.symbol, row.correlation_id) == tuple(header.values()), kind
            assert row.timestamp == (None if stamp is pd.NaT else stamp.isoformat()), kind
            assert row.values == {name: jsonable(value) for name, value in want.items()}, kind
            for name, value in {**header, "timestamp": stamp, **want}.items():
                cell = cells[name]
                if isinstance(value, dict | list):
                    continue  # JSON columns: their values are read_events' (above)
                assert same(_plain(cell), value) or (cell is pd.NaT and value is pd.NaT), (
                    kind,
                    name,
                )


def _plain(cell: object) -> object:
    if isinstance(cell, np.generic):
        return cell.item()
    return cell


@SETTINGS
@given(data=st.data())
def test_bulk_and_per_event_writes_make_identical_rows_and_chains(
    ram_tmp_path: Path, data: st.DataObject
) -> None:
    kinds = data.draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=6))
    written = [data.draw(events(kind)) for kind in kinds]
    one, bulk = _fresh(ram_tmp_path, "one.sqlite"), _fresh(ram_tmp_path, "bulk.sqlite")
    journal = open_journal(one, IDENTITY)
    for event in written:
        journal.append(event)
    journal.close()
    by_kind: dict[type[Event], list[tuple[int, Event]]] = {}
    for position, event in enumerate(written):
        by_kind.setdefault(type(event), []).append((position, event))
    journal = open_journal(bulk, IDENTITY)
    journal.write_columns([_batch(kind, items) for kind, items in by_kind.items()])
    journal.close()
    assert _rows(one) == _rows(bulk)
    assert verify(one) == verify(bulk)


def _as_vocabulary(batch: ColumnBatch, reverse: bool) -> ColumnBatch:
    """The batch with every text column as a pandas Categorical (None: a missing value)."""
    columns = dict(batch.columns)
    positions = np.asarray(batch.positions)
    for column in schema_of(batch.kind.KIND).columns:
        if column.codec in (Codec.TEXT, Codec.OPT_TEXT) and column.name in columns:
            columns[column.name] = pd.Categorical(columns[column.name])
    if reverse:  # the rows out of position order: the store sorts them
        columns = {
            name: value[::-1] if isinstance(value, pd.Categorical | list | np.ndarray) else value
            for name, value in columns.items()
        }
        positions = positions[::-1]
    return ColumnBatch(batch.kind, positions, columns)


@SETTINGS
@given(data=st.data())
def test_texts_given_as_categoricals_make_the_rows_and_chain_of_single_events(
    ram_tmp_path: Path, data: st.DataObject
) -> None:
    kinds = data.draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=6))
    written = [data.draw(events(kind)) for kind in kinds]
    reverse = data.draw(st.booleans())
    one, bulk = _fresh(ram_tmp_path, "one.sqlite"), _fresh(ram_tmp_path, "bulk.sqlite")
    journal = open_journal(one, IDENTITY)
    for event in written:
        journal.append(event)
    journal.close()
    by_kind: dict[type[Event], list[tuple[int, Event]]] = {}
    for position, event in enumerate(written):
        by_kind.setdefault(type(event), []).append((position, event))
    journal = open_journal(bulk, IDENTITY)
    journal.write_columns(
        [_as_vocabulary(_batch(kind, items), reverse) for kind, items in by_kind.items()]
    )
    journal.close()
    assert _rows(one) == _rows(bulk)
    assert verify(one) == verify(bulk)


def test_a_categorical_text_with_a_missing_value_is_refused_where_a_text_is_required(
    ram_tmp_path: Path,
) -> None:
    fills = {
        "bar": [0, 1],
        "timestamp": [0, 0],
        "order_id": pd.Categorical(["o-1", None]),
        "side": [1, 1],
        "quantity": [1.0, 1.0],
        "price": [2.0, 2.0],
        "fee": [0.0, 0.0],
        "slippage": [0.0, 0.0],
    }
    journal = open_journal(ram_tmp_path / "j.sqlite", IDENTITY)
    with pytest.raises(JournalValueError, match=r"^fill.order_id: expected texts, found None$"):
        journal.write_columns([ColumnBatch(FillEvent, np.arange(2), fills)])
    journal.close()


@pytest.mark.parametrize("kinds", KIND_GROUPS, ids=_group_id)
@SETTINGS
@given(data=st.data())
def test_columns_that_hold_one_value_in_every_row_are_written_as_single_events_write_them(
    ram_tmp_path: Path, kinds: tuple[str, ...], data: st.DataObject
) -> None:
    # per kind, copies of one event: every column but seq and hash repeats (one value for
    # the kind's block). 2 to 20 copies: a fresh journal stores a kind's batch as one block
    # (`BLOCK_ROWS`: 1M rows), whose columns are kept as one value from 2 rows on; no size
    # below 1,000 (the appends' `flush_every`) changes a path, so the 250 copies drawn
    # before proved no more than 20 do.
    drawn = [
        (data.draw(events(kind), label=kind), data.draw(st.integers(2, 20), label="copies"))
        for kind in kinds
    ]
    one, bulk = _fresh(ram_tmp_path, "one.sqlite"), _fresh(ram_tmp_path, "bulk.sqlite")
    journal = open_journal(one, IDENTITY)
    for event, copies in drawn:
        for _ in range(copies):
            journal.append(event)
    journal.close()
    batches: list[ColumnBatch] = []
    first = 0
    for event, copies in drawn:
        batches.append(_batch(type(event), [(p, event) for p in range(first, first + copies)]))
        first += copies
    journal = open_journal(bulk, IDENTITY)
    journal.write_columns(batches)
    journal.close()
    assert _rows(one) == _rows(bulk)
    assert verify(one) == verify(bulk)


def test_bulk_after_appended_events_continues_the_sequence_and_chain(ram_tmp_path: Path) -> None:
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    fills = [
        FillEvent(
            order_id=f"o-{i}",
            bar=i,
            timestamp=ts,
            side=1,
            quantity=1.0,
            price=2.0,
            fee=0.0,
            slippage=0.0,
        )
        for i in range(3)
    ]
    signal = SignalEvent(bar=0, timestamp=ts, direction=1, confidence=0.5, probability=0.6)
    one, bulk = ram_tmp_path / "one.sqlite", ram_tmp_path / "bulk.sqlite"
    journal = open_journal(one, IDENTITY)
    for event in [signal, *fills, signal]:
        journal.append(event)
    journal.close()
    journal = open_journal(bulk, IDENTITY)
    journal.append(signal)
    journal.write_columns([_batch(FillEvent, [(0, f) for f in fills[:1]] + [(1, fills[1])])])
    journal.write_columns([_batch(FillEvent, [(0, fills[2])]), _batch(SignalEvent, [(1, signal)])])
    journal.close()
    assert _rows(one) == _rows(bulk)
    assert verify(one) == verify(bulk)
    assert [seq for seq, _ in read_sequenced(bulk)] == [1, 2, 3, 4, 5]


def test_a_reopened_journal_appends_after_its_last_row(ram_tmp_path: Path) -> None:
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    signal = SignalEvent(bar=0, timestamp=ts, direction=1, confidence=0.5, probability=0.6)
    path = ram_tmp_path / "j.sqlite"
    for _ in range(3):
        journal = open_journal(path, IDENTITY)
        journal.append(signal)
        journal.close()
    assert verify(path).rows == 3


def test_bulk_positions_must_cover_the_write_once(ram_tmp_path: Path) -> None:
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    signal = SignalEvent(bar=0, timestamp=ts, direction=1, confidence=0.5, probability=0.6)
    journal = open_journal(ram_tmp_path / "j.sqlite", IDENTITY)
    with pytest.raises(JournalValueError, match=r"^position 0 is given 2 times$"):
        journal.write_columns([_batch(SignalEvent, [(0, signal), (0, signal)])])
    with pytest.raises(JournalValueError, match=r"^signal: the column 'direction' is missing$"):
        journal.write_columns(
            [ColumnBatch(SignalEvent, np.arange(1), {"bar": [0], "timestamp": [0]})]
        )
    journal.close()


def test_an_int_beyond_64_bits_is_refused_with_its_field(ram_tmp_path: Path) -> None:
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    journal = open_journal(ram_tmp_path / "j.sqlite", IDENTITY)
    message = r"^signal.direction: 18446744073709551616 does not fit a 64-bit integer$"
    with pytest.raises(JournalValueError, match=message):
        journal.append(
            SignalEvent(bar=0, timestamp=ts, direction=2**64, confidence=0.5, probability=0.6)
        )
    journal.close()


def test_frames_have_typed_columns(ram_tmp_path: Path) -> None:
    ts = pd.Timestamp("2024-01-01 01:00", tz="UTC")
    path = ram_tmp_path / "j.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.append(
        FillEvent(
            order_id="o-1",
            bar=3,
            timestamp=ts,
            side=-1,
            quantity=1.5,
            price=math.nan,
            fee=0.25,
            slippage=0.0,
            symbol="BTC/USDT",
            correlation_id=2,
        )
    )
    journal.close()
    frame = read_frame(path, FillEvent)
    assert list(frame.columns) == [
        "seq",
        "bar",
        "timestamp",
        "symbol",
        "correlation_id",
        "order_id",
        "side",
        "quantity",
        "price",
        "fee",
        "slippage",
        "liquidity",
    ]
    row = frame.iloc[0]
    assert (row.seq, row.bar, row.timestamp, row.symbol, row.correlation_id) == (
        1,
        3,
        ts,
        "BTC/USDT",
        2,
    )
    assert math.isnan(row.price) and row.fee == 0.25 and row.side == -1
    assert read_frame(path, "signal").empty


def test_sql_reads_fills_orders_and_rejections_without_json(ram_tmp_path: Path) -> None:
    path = ram_tmp_path / "j.sqlite"
    journal = open_journal(path, IDENTITY)
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    journal.append(
        FillEvent(
            order_id="o-1",
            bar=3,
            timestamp=ts,
            side=1,
            quantity=2.0,
            price=10.0,
            fee=0.1,
            slippage=0.0,
        )
    )
    journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT order_id, quantity * price FROM fill").fetchall() == [
            ("o-1", 20.0)
        ]
        assert db.execute("SELECT seq, kind FROM events").fetchall() == [(1, "fill")]
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM rejection").fetchone() == (0,)
