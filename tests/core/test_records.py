"""The core's event rows, declared once (`tradeloom.core.records`), and read back by the
one decoder (`tradeloom.core.columns`) the same way as columns and as objects."""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.core import codes, records
from tradeloom.core import layout as L
from tradeloom.core.columns import RowContext, Texts, decode, few_events
from tradeloom.domain import Rejection, Trade
from tradeloom.engine.bulk_journal import journal_batches
from tradeloom.journal import KINDS, ColumnBatch, Event

ROOT = Path(__file__).resolve().parents[2]
HEADER = {f.name for f in dataclasses.fields(Event)}


def test_the_layout_kinds_are_the_records_codes() -> None:
    assert [r.code for r in records.RECORDS] == list(range(1, len(records.RECORDS) + 1))
    assert len({r.name for r in records.RECORDS}) == len(records.RECORDS)
    named = {name: getattr(L, name) for name in dir(L) if name.startswith("EV_")}
    named.pop("EV_VALUES"), named.pop("EV_WIDTH")
    assert sorted(named.values()) == [r.code for r in records.RECORDS]
    assert (L.EV_VALUES, L.EV_WIDTH) == (records.VALUES, records.HEAD + records.VALUES)
    assert (records.FILL.code, records.PARENT.code) == (L.EV_FILL, L.EV_PARENT)


def test_every_journaled_record_maps_onto_its_journal_event_field_by_field() -> None:
    for record in records.RECORDS:
        if not record.journal:
            continue
        event = KINDS[record.journal]
        own = {f.name for f in dataclasses.fields(event)} - HEADER
        given = {name for f in record.fields for name in f.journal} | set(record.head)
        assert given == own, f"{record.name} -> {record.journal}: {sorted(given ^ own)}"


def test_no_numeric_offset_into_an_event_row_outside_records() -> None:
    """Event rows are read and written by field name: in a module that knows them (it
    imports the layout or the records), a literal column into ``ev``, ``rows``, ``row``
    or ``fills`` (``ev[k, 3 + 7]``, ``row[3:]``) is an undeclared schema."""
    found = []
    for path in sorted((ROOT / "tradeloom").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if path == ROOT / "tradeloom/core/records.py" or not re.search(
            r"tradeloom\.core(\.| import )(layout|records)\b", source
        ):
            continue
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)):
                continue
            if node.value.id not in ("ev", "rows", "row", "fills"):
                continue
            index = node.slice.elts[-1] if isinstance(node.slice, ast.Tuple) else node.slice
            if _literal_offset(index):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _literal_offset(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int)
    if isinstance(node, ast.Slice):
        return any(_literal_offset(p) for p in (node.lower, node.upper) if p is not None)
    if isinstance(node, ast.List):  # fancy indexing: ``rows[:, [BAR, 3 + 7]]``
        return any(_literal_offset(p) for p in node.elts)
    if isinstance(node, ast.BinOp):
        return isinstance(node.left, ast.Constant)
    return False


def _row(record: records.Record, bar: int, symbol: int, **values: float) -> list[float]:
    row = [float(record.code), float(bar), float(symbol)] + [0.0] * records.VALUES
    for name, value in values.items():
        row[record.column(name)] = value
    return row


def _rows() -> np.ndarray:
    R = records
    return np.array(
        [
            _row(R.SIGNAL, 1, 1, direction=1, confidence=0.7, probability=0.85),
            _row(R.DECISION, 1, 1, outcome=codes.ACCEPTED, reason=codes.ENTRY, target_fraction=0.5),
            _row(
                R.ORDER,
                1,
                1,
                seq=1,
                side=1,
                quantity=2.0,
                reason=codes.ENTRY,
                reference_price=100.0,
                type=L.ORDER_LIMIT,
                price=99.5,
            ),
            _row(R.REJECT, 2, 0, code=codes.SHORT_NOT_ALLOWED),
            _row(
                R.FILL,
                2,
                1,
                seq=1,
                side=1,
                quantity=2.0,
                price=99.5,
                fee=0.1,
                decision_bar=1,
                position=2.0,
                cash=800.0,
                liquidity=L.LIQ_MAKER,
            ),
            _row(R.REJECT, 3, 1, code=0, values=0),
            _row(
                R.TRADE,
                3,
                1,
                direction=1,
                entry_bar=2,
                exit_bar=3,
                quantity=2.0,
                entry_price=99.5,
                exit_price=101.0,
                fees=0.2,
                pnl=2.8,
            ),
            _row(
                R.ORDER,
                3,
                0,
                seq=2,
                side=-1,
                quantity=1.0,
                reason=codes.EXIT_SIGNAL,
                reference_price=50.0,
                type=L.ORDER_MARKET,
                price=math.nan,
            ),
            _row(R.CANCEL, 3, 0, seq=2, remaining=1.0, reason=codes.REPLACED, decision_bar=3),
            _row(R.DECISION, 4, 0, outcome=codes.HOLD),
            _row(R.REGIME, 4, 0, code=5, previous=3),
            _row(
                R.FILL,
                4,
                0,
                seq=7,
                side=-1,
                quantity=1.0,
                price=51.0,
                fee=0.05,
                decision_bar=0,
                position=0.0,
                cash=850.0,
                liquidity=L.LIQ_TAKER,
            ),
        ]
    )


def _context() -> RowContext:
    return RowContext(
        times=lambda bar: pd.Timestamp(1_700_000_000 + 60 * bar, unit="s", tz="UTC"),
        order_id=lambda seq: f"run-{seq:06d}",
        symbols=("BTC/USDT", "ETH/USDT"),
        refs=[Rejection(3, pd.Timestamp(0, tz="UTC"), "PLUGIN_NO", "a plugin says no")],
    )


def test_a_tables_columns_and_objects_say_the_same() -> None:
    """The journal's columns (a backtest's) and the events' objects (a live run's)
    are two views of one read: every field agrees, in the rows' order."""
    tables = decode(_rows(), _context())
    events = tables.events()
    assert [e.kind for e in events] == [
        "signal", "decision", "order", "rejection", "fill", "rejection", "trade", "order",
        "cancel", "decision", "regime", "fill",
    ]  # fmt: skip
    for kind in ("signal", "order", "fill", "cancel"):
        table = tables.by_kind[kind]
        objects = table.objects()
        for name, value in table.columns.items():
            column = value.tolist() if isinstance(value, Texts) else list(value)
            assert _same(column, [getattr(o, name) for o in objects]), (kind, name)
    assert events[4].value.order_id == "run-000001" and events[4].decision_bar == 1
    assert events[11].value.order_id == "run-000007"  # an order of an earlier read
    assert events[5].value.code == "PLUGIN_NO"
    assert events[3].value.code == "SHORT_NOT_ALLOWED"
    assert events[2].value.kind == "limit" and events[2].value.limit_price == 99.5
    decision = tables.by_kind["decision"]
    assert [decision.objects()[0]["target_fraction"], decision.columns["outcome"].tolist()] == [
        0.5,
        ["accepted", "hold"],
    ]


def test_a_few_rows_read_straight_are_the_events_the_tables_give() -> None:
    """A quiet bar's rows (signals, decisions of every outcome, a regime's change) read
    straight into events are `decode`'s events, field for field and type for type; an
    order's row, or more rows than a few, are left to `decode` (None)."""
    R = records
    rows = np.array(
        [
            _row(R.SIGNAL, 5, 0, direction=-1, confidence=0.25, probability=0.375),
            _row(R.DECISION, 5, 0, outcome=codes.HOLD),
            _row(
                R.DECISION, 5, 1, outcome=codes.ACCEPTED, reason=codes.ENTRY, target_fraction=-0.5
            ),
            _row(R.DECISION, 6, 1, outcome=codes.IGNORED, reason=codes.EXIT_SIGNAL),
            _row(R.DECISION, 6, 0, outcome=codes.FILTERED, reason=5),
            _row(R.REGIME, 6, 1, code=5, previous=3),
            _row(R.SIGNAL, 6, 1, direction=1, confidence=0.5, probability=0.75),
        ]
    )
    ctx = _context()
    ctx.allowed_regimes = ("up", "down")
    expected = decode(rows, ctx).events()
    straight = few_events(rows, ctx)
    assert straight == expected
    for at in (0, 6):  # a signal's fields: an int direction, float figures
        one, other = straight[at].value, expected[at].value
        assert [type(getattr(one, f.name)) for f in dataclasses.fields(one)] == [
            type(getattr(other, f.name)) for f in dataclasses.fields(other)
        ]
    assert [e.kind for e in straight] == [
        "signal", "decision", "decision", "decision", "decision", "regime", "signal",
    ]  # fmt: skip
    assert straight[2].value["target_fraction"] == -0.5
    refused = np.array(
        [
            _row(R.SIGNAL, 7, 0, direction=-1, confidence=0.25, probability=0.375),
            _row(R.REJECT, 7, 0, code=codes.SHORT_NOT_ALLOWED),
            _row(R.REJECT, 7, 1, code=0, values=0),  # a plugin's
            _row(R.REGIME, 7, 1, code=5, previous=3),
        ]
    )
    assert few_events(refused, ctx) == decode(refused, ctx).events()
    assert [e.value.code for e in few_events(refused, ctx)[1:3]] == [  # type: ignore[index]
        "SHORT_NOT_ALLOWED",
        "PLUGIN_NO",
    ]
    assert few_events(_rows()[:3], ctx) is None  # an order among them
    assert few_events(np.concatenate([rows, rows]), ctx) is None  # not a few


def test_the_journal_batches_place_every_row_but_the_trades() -> None:
    ctx = _context()
    tables = decode(_rows(), ctx)
    times = (1_700_000_000 + 60 * np.arange(10)) * 1_000_000_000
    bulk = journal_batches(tables, ctx, times, "BTC/USDT")
    places = sorted(p for b in bulk.batches for p in b.positions.tolist())
    assert places == list(range(len(_rows()) - 1))
    by_kind: dict[type[Event], ColumnBatch] = {b.kind: b for b in bulk.batches}
    fills = next(b for k, b in by_kind.items() if k.KIND == "fill")
    assert fills.positions.tolist() == [4, 10]
    assert list(fills.columns["symbol"]) == ["ETH/USDT", "BTC/USDT"]
    assert fills.columns["correlation_id"].tolist() == [1, 0]
    assert bulk.counts == {
        "signal": 1, "risk_decision": 2, "order": 2, "fill": 2, "order_cancelled": 1,
        "regime_changed": 1, "rejection": 2,
    }  # fmt: skip


def _same(a: list[object], b: list[object]) -> bool:
    return len(a) == len(b) and all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        or x == y
        for x, y in zip(a, b, strict=True)
    )


def test_a_dispatch_over_the_rows_says_what_it_does_with_every_kind() -> None:
    """A module's table over the kinds of rows is checked against the records: a kind
    it neither handles nor leaves out (one added to the records) fails it at once."""
    R = records
    handled = {r: r.code for r in R.RECORDS if r is not R.FUNDING}
    with pytest.raises(
        ValueError,
        match=r"^a dispatch over the event rows: funding unhandled, none both handled and "
        r"left out$",
    ):
        R.dispatch(handled)
    with pytest.raises(
        ValueError,
        match=r"^a dispatch over the event rows: none unhandled, signal both handled and "
        r"left out$",
    ):
        R.dispatch(handled, without=(R.FUNDING, R.SIGNAL))
    table = R.dispatch(handled, without=(R.FUNDING,))
    assert table == {r.name: r.code for r in R.RECORDS if r is not R.FUNDING}


def _values(record: records.Record, name: str, row: list[float], *values: float) -> list[float]:
    """Write ``values`` into field ``name`` of several values."""
    at = record.column(name)
    row[at : at + len(values)] = values
    return row


def test_the_rarer_kinds_and_the_trades_are_read_by_field_name() -> None:
    """Each field of a rarer row (a state change, a liquidation, a funding booking, a
    sliced order) and of a trade is the value written under its name."""
    R = records
    state = _row(R.STATE, 5, -1, previous=codes.ACTIVE, state=codes.HALTED_STATE)
    state = _values(R.STATE, "code", state, codes.DAILY_LOSS, 0.06, 0.05, 1000.0)
    rows = np.array(
        [
            state,
            _row(
                R.LIQUIDATION,
                5,
                1,
                side=-1,
                quantity=2.0,
                price=90.0,
                fee=0.9,
                equity_before=10.0,
                maintenance=12.0,
            ),
            _row(
                R.FUNDING,
                6,
                0,
                rate=1e-4,
                price=50.0,
                quantity=1.5,
                amount=-0.0075,
                position=1.5,
                cash=700.0,
            ),
            _row(
                R.PARENT,
                6,
                0,
                seq=3,
                side=1,
                quantity=4.0,
                reason=codes.ENTRY,
                reference_price=50.0,
                slicing=L.SLICE_TWAP,
                detail=4,
            ),
            _row(
                R.TRADE,
                7,
                1,
                direction=-1,
                entry_bar=2,
                exit_bar=7,
                quantity=2.0,
                entry_price=99.5,
                exit_price=98.0,
                fees=0.2,
                pnl=2.8,
            ),
        ]
    )
    ctx = _context()
    events = {e.kind: e.value for e in decode(rows, ctx).events()}
    message, _ = codes.describe(codes.DAILY_LOSS, (0.06, 0.05, 1000.0), ctx.table)
    assert events["state"] == {
        "previous": "ACTIVE",
        "state": "HALTED",
        "code": "DAILY_LOSS",
        "message": message,
        "at": ctx.times(5),
    }
    assert events["liquidation"] == {
        "side": -1,
        "quantity": 2.0,
        "price": 90.0,
        "fee": 0.9,
        "equity_before": 10.0,
        "maintenance": 12.0,
    }
    assert type(events["liquidation"]["side"]) is int
    assert events["funding"] == {
        "rate": 1e-4,
        "price": 50.0,
        "position": 1.5,
        "amount": -0.0075,
        "cash": 700.0,
    }
    sliced = events["sliced_order"]
    assert (sliced["id"], sliced["side"], sliced["reason"], sliced["slicing"]) == (
        "run-000003",
        1,
        ctx.table.name(codes.ENTRY),
        "twap",
    )
    assert (sliced["children"], math.isnan(sliced["max_volume_fraction"])) == (4, True)
    entry, exit_ = ctx.times(2), ctx.times(7)
    assert Trade.from_kernel(events["trade"], entry, exit_, "ETH/USDT") == Trade(
        direction=-1,
        entry_bar=2,
        entry_time=entry,
        exit_bar=7,
        exit_time=exit_,
        quantity=2.0,
        entry_price=99.5,
        exit_price=98.0,
        fees=0.2,
        pnl=2.8,
        symbol="ETH/USDT",
    )


def test_a_record_names_its_fields_journal_names_one_for_one() -> None:
    """`Record.journaled` renames a row's fields (a funding's quantity is its event's
    position) and refuses a kind whose field gives several journal fields."""
    R = records
    row = {"rate": 1.0, "price": 2.0, "quantity": 3.0, "amount": 4.0, "unused": (0.0,) * 3}
    row |= {"position": 5.0, "cash": 6.0}
    assert R.FUNDING.journaled(row) == {
        "rate": 1.0,
        "price": 2.0,
        "position": 3.0,
        "amount": 4.0,
        "cash": 6.0,
    }
    with pytest.raises(ValueError, match=r"^record order: field price gives \('stop_price', "):
        R.ORDER.journaled({})
