"""Execution quality from small journals worked by hand, and how groups combine.

The journal is written and read through the real store (`open_journal`,
`journal_execution_quality`); the expected figures are worked out in the comments.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.journal import (
    Event,
    FillEvent,
    OrderCancelled,
    OrderEvent,
    OrderSent,
    RouteDecision,
    RouteModel,
    RunIdentity,
    SlicedOrder,
    VenueFill,
    open_journal,
    read_frames,
)
from tradeloom.reporting.execution_quality import (
    ROUTE_KIND,
    ExecutionLedger,
    ExecutionTerms,
    _plain_orders_quality,
    execution_quality,
    journal_execution_quality,
    journal_kinds,
    plain_execution_quality,
)

T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOUR = 3600.0


def _at(bar: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=bar)


def _order(oid: str, bar: int, side: int, qty: float, ref: float, **kw: Any) -> OrderEvent:
    return OrderEvent(
        id=oid, bar=bar, timestamp=_at(bar), side=side, quantity=qty, reason="ENTRY",
        reference_price=ref, correlation_id=bar, **kw,
    )  # fmt: skip


def _fill(
    oid: str, bar: int, side: int, qty: float, price: float, fee: float, liq: str
) -> FillEvent:
    return FillEvent(
        order_id=oid, bar=bar, timestamp=_at(bar), side=side, quantity=qty, price=price,
        fee=fee, slippage=0.0, liquidity=liq,
    )  # fmt: skip


def _worked() -> list[Event]:
    """Four orders: a maker limit, a slipped market sell, a part-filled limit, a TWAP."""
    return [
        # A: buy 10 limit at 99 (decided at 100, bar 0); rests, filled at bar 2 as maker:
        #    shortfall (99 - 100) / 100 = -100 bps, fee 0.198 / (10 x 100) = 1.98 bps
        _order("A", 0, 1, 10.0, 100.0, kind="limit", limit_price=99.0),
        _fill("A", 2, 1, 10.0, 99.0, 0.198, "maker"),
        # B: sell 4 at market (decided at 100, bar 3), filled at 99.9 at bar 4:
        #    shortfall -(99.9 - 100) / 100 = +10 bps, fee 0.3996 / 400 = 9.99 bps
        _order("B", 3, -1, 4.0, 100.0),
        _fill("B", 4, -1, 4.0, 99.9, 0.3996, "taker"),
        # C: buy 8 limit at 49.5 (decided at 50, bar 5): 2 filled at bar 6, the rest
        #    cancelled at bar 7: fill ratio 2 / 8, shortfall -100 bps, fee 1.98 bps
        _order("C", 5, 1, 8.0, 50.0, kind="limit", limit_price=49.5),
        _fill("C", 6, 1, 2.0, 49.5, 0.0198, "maker"),
        OrderCancelled(order_id="C", bar=7, timestamp=_at(7), remaining=6.0, reason="REPLACED"),
        # D: a TWAP parent, buy 9 decided at 20 (bar 10), three children of 3 filled at
        #    bars 11, 12, 13 at 20.02, 20.04, 19.98 (each child's own close is not the
        #    reference): +10, +20, -10 bps -> 20 / 3 bps; fee 0.06 / 60 = 10 bps each
        SlicedOrder(
            id="D",
            bar=10,
            timestamp=_at(10),
            side=1,
            quantity=9.0,
            reason="ENTRY",
            reference_price=20.0,
            slicing="twap",
            children=3,
            max_volume_fraction=math.nan,
        ),
        _order("D1", 10, 1, 3.0, 20.0, parent_id="D"),
        _fill("D1", 11, 1, 3.0, 20.02, 0.06, "taker"),
        _order("D2", 11, 1, 3.0, 20.5, parent_id="D"),
        _fill("D2", 12, 1, 3.0, 20.04, 0.06, "taker"),
        _order("D3", 12, 1, 3.0, 19.0, parent_id="D"),
        _fill("D3", 13, 1, 3.0, 19.98, 0.06, "taker"),
    ]


def _journal(tmp_path: Path, events: list[Event]) -> Path:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("worked", "run-1", "backtest"))
    for event in events:
        journal.append(event)
    journal.close()
    return path


def _group(block: dict[str, Any], order_type: str) -> dict[str, Any]:
    (group,) = [g for g in block["groups"] if g["order_type"] == order_type]
    return group


def test_hand_worked_journal_gives_the_worked_figures(tmp_path: Path) -> None:
    block = journal_execution_quality(_journal(tmp_path, _worked()), {"execution": {}})

    limit = _group(block, "limit")  # A and C
    assert limit["venue"] == "simulated"
    assert (limit["orders"], limit["fills"], limit["open_orders"]) == (2, 2, 0)
    assert limit["fill_ratio"] == pytest.approx(12.0 / 18.0)
    assert limit["shortfall_bps"] == pytest.approx(-100.0)
    assert limit["fee_bps"] == pytest.approx(1.98)
    assert limit["total_cost_bps"] == pytest.approx(-98.02)
    assert limit["maker_share"] == 1.0
    assert limit["bars_to_first_fill"] == {"median": 1.5, "p90": pytest.approx(1.9)}
    assert limit["seconds_to_first_fill"]["median"] == pytest.approx(1.5 * HOUR)

    market = _group(block, "market")
    assert market["shortfall_bps"] == pytest.approx(10.0)
    assert market["fee_bps"] == pytest.approx(9.99)
    assert (market["fill_ratio"], market["maker_share"]) == (1.0, 0.0)
    assert market["bars_to_first_fill"] == {"median": 1.0, "p90": 1.0}
    assert market["seconds_to_last_fill"] == {"median": HOUR, "p90": HOUR}

    twap = _group(block, "twap")  # the children are measured as their parent
    assert (twap["orders"], twap["fills"], twap["ordered_quantity"]) == (1, 3, 9.0)
    assert twap["shortfall_bps"] == pytest.approx(20.0 / 3.0)
    assert twap["fee_bps"] == pytest.approx(10.0)
    assert twap["fill_ratio"] == 1.0
    assert twap["bars_to_first_fill"]["median"] == 1.0
    assert twap["bars_to_last_fill"]["median"] == 3.0
    assert twap["seconds_to_last_fill"]["median"] == pytest.approx(3 * HOUR)

    overall = block["overall"]
    # (10 x -100 + 4 x 10 + 2 x -100 + 9 x 20/3) / 25 = -1100 / 25
    assert overall["shortfall_bps"] == pytest.approx(-44.0)
    assert overall["fill_ratio"] == pytest.approx(25.0 / 31.0)
    maker, taker = 990.0 + 99.0, 399.6 + 3 * 20.02 + 3 * 20.04 + 3 * 19.98
    assert overall["maker_share"] == pytest.approx(maker / (maker + taker))
    assert overall["unknown_liquidity_share"] == 0.0
    assert [g["order_type"] for g in block["by_order_type"]] == ["market", "limit", "twap"]


def test_post_only_limits_are_their_own_type() -> None:
    block = execution_quality(_worked(), ExecutionTerms("simulated", post_only=True))
    assert {g["order_type"] for g in block["groups"]} == {"market", "limit_post_only", "twap"}


def test_an_order_working_when_the_data_ended_is_open_not_unfilled() -> None:
    events = [_order("A", 0, 1, 10.0, 100.0, kind="limit", limit_price=99.0)]
    figures = execution_quality(events, ExecutionTerms())["overall"]
    assert (figures["orders"], figures["open_orders"]) == (1, 1)
    assert math.isnan(figures["fill_ratio"]) and math.isnan(figures["shortfall_bps"])


@dataclass(frozen=True, kw_only=True)
class _Route(Event):
    """The router's row, as the router journals it (not a registered kind here)."""

    KIND: ClassVar[str] = ROUTE_KIND
    order_id: str
    venue: str


def test_route_decisions_name_each_orders_venue() -> None:
    events = [
        *_worked(),
        _Route(order_id="A", venue="kraken"),
        _Route(order_id="D1", venue="binance"),
        _Route(order_id="D2", venue="kraken"),
        _Route(order_id="D3", venue="kraken"),
    ]
    block = execution_quality(events, ExecutionTerms())
    venues = {(g["venue"], g["order_type"]): g["orders"] for g in block["groups"]}
    assert venues == {
        ("kraken", "limit"): 1,
        ("simulated", "limit"): 1,
        ("simulated", "market"): 1,
        ("binance+kraken", "twap"): 1,
    }


def _routed(child: str, parent: str, venue: str) -> RouteDecision:
    return RouteDecision(
        order_id=child, parent_id=parent, venue=venue, quantity=1.0, expected_price=100.0,
        expected_cost_bps=1.0, candidates="[]",
    )  # fmt: skip


def test_the_live_routers_children_name_their_parents_venues() -> None:
    # the live router journals each child under its own id, {parent}-r{k}, with the
    # engine's order as its parent; a TWAP's children are engine orders of their own
    events = [
        *_worked(),
        _routed("A-r0", "A", "deep"),
        _routed("B-r0", "B", "cheap"),
        _routed("B-r1", "B", "deep"),
        _routed("D1-r0", "D1", "cheap"),
        _routed("D2-r0", "D2", "cheap"),
        _routed("D3-r0", "D3", "cheap"),
    ]
    block = execution_quality(events, ExecutionTerms(venue="router"))
    venues = {(g["venue"], g["order_type"]): g["orders"] for g in block["groups"]}
    assert venues == {
        ("deep", "limit"): 1,
        ("cheap+deep", "market"): 1,
        ("router", "limit"): 1,
        ("cheap", "twap"): 1,
    }


def test_a_modelled_router_books_resting_orders_on_its_limit_venue() -> None:
    model = RouteModel(
        market_venue="cheap", limit_venue="deep", taker_fee=0.0004, slippage=0.0002,
        maker_fee=0.0, initial_cash=100_000.0,
    )  # fmt: skip
    unfilled = _order("E", 20, 1, 1.0, 100.0, kind="limit", limit_price=90.0)
    block = execution_quality([model, *_worked(), unfilled], ExecutionTerms(venue="router"))
    venues = {(g["venue"], g["order_type"]): g["orders"] for g in block["groups"]}
    # A and C rested (maker fills), E never filled; B (market) and D (TWAP) took
    assert venues == {("deep", "limit"): 3, ("cheap", "market"): 1, ("cheap", "twap"): 1}


def test_live_orders_take_post_only_and_times_from_what_was_sent() -> None:
    sent_at = _at(1).value / 1e9 + 2.0
    events = [
        _order("L", 0, 1, 1.0, 100.0, kind="limit", limit_price=99.0),
        OrderSent(
            id="L",
            bar=0,
            timestamp=_at(0),
            side=1,
            quantity=1.0,
            reason="ENTRY",
            reference_price=100.0,
            order_type="limit",
            amount=1.0,
            limit_price=99.0,
            sent_at=sent_at,
            post_only=True,
        ),
        VenueFill(
            order_id="L",
            bar=1,
            timestamp=_at(1) + pd.Timedelta(seconds=47),
            side=1,
            quantity=1.0,
            price=99.0,
            fee=0.0,
            slippage=0.0,
            liquidity="maker",
            trade_id="t1",
            venue_order_id="v1",
            fee_cost=0.0,
            fee_currency=None,
        ),
        _fill("L", 1, 1, 1.0, 99.0, 0.0, "maker"),
    ]
    block = execution_quality(events, ExecutionTerms("binance"))
    (group,) = block["groups"]
    assert (group["venue"], group["order_type"]) == ("binance", "limit_post_only")
    assert group["seconds_to_first_fill"]["median"] == pytest.approx(45.0)
    assert group["bars_to_first_fill"]["median"] == 1.0


_LIQUIDITY = st.sampled_from(["maker", "taker", ""])


@st.composite
def _orders(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    for k in range(draw(st.integers(1, 8))):
        oid = f"o{k}"
        side = draw(st.sampled_from([1, -1]))
        qty = draw(st.floats(0.5, 100.0))
        ref = draw(st.floats(10.0, 1000.0))
        kind = draw(st.sampled_from(["market", "limit", "stop"]))
        events.append(_order(oid, k, side, qty, ref, kind=kind))
        left = qty
        for j in range(draw(st.integers(0, 3))):
            part = left * draw(st.floats(0.1, 1.0))
            price = ref * draw(st.floats(0.97, 1.03))
            fee = part * price * draw(st.floats(0.0, 0.002))
            events.append(_fill(oid, k + j + 1, side, part, price, fee, draw(_LIQUIDITY)))
            left -= part
        if draw(st.booleans()):
            cancel = OrderCancelled(
                order_id=oid, bar=k + 5, timestamp=_at(k + 5), remaining=left, reason="REPLACED"
            )
            events.append(cancel)
    return events


@settings(max_examples=examples(60), deadline=None)
@given(_orders(), st.lists(st.sampled_from(["a", "b", "c"]), min_size=8, max_size=8))
def test_overall_figures_combine_the_groups_by_quantity(
    events: list[Event], venues: list[str]
) -> None:
    routes = [_Route(order_id=f"o{k}", venue=v) for k, v in enumerate(venues)]
    block = execution_quality([*events, *routes], ExecutionTerms())
    overall, groups = block["overall"], block["groups"]

    def combined(key: str, weight: str) -> float:
        chosen = [g for g in groups if g[weight] > 0]
        total = sum(g[weight] for g in chosen)
        return sum(g[key] * g[weight] for g in chosen) / total if total else math.nan

    assert overall["orders"] == sum(g["orders"] for g in groups)
    assert overall["fills"] == sum(g["fills"] for g in groups)
    for key, weight in (
        ("shortfall_bps", "filled_quantity"),
        ("fee_bps", "filled_quantity"),
        ("total_cost_bps", "filled_quantity"),
        ("maker_share", "filled_notional"),
        ("unknown_liquidity_share", "filled_notional"),
        ("fill_ratio", "ordered_quantity"),
    ):
        expected = combined(key, weight)
        if math.isnan(expected):
            assert math.isnan(overall[key]), key
        else:
            assert overall[key] == pytest.approx(expected, rel=1e-9, abs=1e-9), key
    for listing in ("by_venue", "by_order_type"):
        assert sum(g["filled_quantity"] for g in block[listing]) == pytest.approx(
            overall["filled_quantity"]
        )


@settings(max_examples=examples(25, suite=12), deadline=None)
@given(
    _orders(),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=8, max_size=8),
    st.lists(st.integers(0, 40), max_size=6),
    st.booleans(),
    st.lists(st.integers(0, 60), min_size=3, max_size=3),
    st.integers(1, 3),
)
def test_a_ledger_fed_in_parts_gives_the_figures_of_every_event_so_far(
    events: list[Event],
    venues: list[str],
    cuts: list[int],
    post_only: bool,
    at: list[int],
    every: int,
) -> None:
    routes = [_routed(f"o{k}-r0", f"o{k}", v) for k, v in enumerate(venues)]
    worked = [*_worked(), *events, *routes[: len(routes) // 2]]
    worked[len(worked) // 2 : len(worked) // 2] = routes[len(routes) // 2 :]
    model = RouteModel(
        market_venue="cheap", limit_venue="deep", taker_fee=0.0004, slippage=0.0002,
        maker_fee=0.0, initial_cash=100_000.0,
    )  # fmt: skip
    sent = OrderSent(
        id="o0", bar=0, timestamp=_at(0), side=1, quantity=1.0, reason="ENTRY",
        reference_price=100.0, order_type="limit", amount=1.0, limit_price=99.0,
        sent_at=_at(0).value / 1e9, post_only=True,
    )  # fmt: skip
    traded = VenueFill(
        order_id="o0", bar=1, timestamp=_at(1), side=1, quantity=1.0, price=99.0, fee=0.0,
        slippage=0.0, liquidity="maker", trade_id="t1", venue_order_id=None, fee_cost=0.0,
        fee_currency=None,
    )  # fmt: skip
    for event, position in zip((model, sent, traded), at, strict=True):
        worked.insert(min(position, len(worked)), event)
    terms = ExecutionTerms("x", post_only)
    ledger = ExecutionLedger(terms)
    start = 0
    ends = sorted({min(c, len(worked)) for c in cuts} | set(range(0, len(worked), every)))
    for end in [*ends, len(worked)]:
        ledger.add(worked[start:end])
        start = end
        assert json.dumps(ledger.figures()) == json.dumps(execution_quality(worked[:end], terms))


@st.composite
def _interleaved(draw: st.DrawFn) -> list[Event]:
    """Plain orders (`_orders`) whose rows interleave: each order's own rows in order."""
    lanes: dict[str, list[Event]] = {}
    for event in draw(_orders()):
        key = event.id if isinstance(event, OrderEvent) else event.order_id  # type: ignore[attr-defined]
        lanes.setdefault(key, []).append(event)
    events: list[Event] = []
    while lanes:
        key = draw(st.sampled_from(sorted(lanes)))
        events.append(lanes[key].pop(0))
        if not lanes[key]:
            del lanes[key]
    return events


@settings(max_examples=examples(40, suite=20), deadline=None)
@given(_interleaved(), st.booleans())
def test_a_journal_of_plain_orders_is_measured_from_its_columns_as_the_ledger_measures_it(
    tmp_path_factory: pytest.TempPathFactory, events: list[Event], post_only: bool
) -> None:
    path = _journal(tmp_path_factory.mktemp("journal"), events)
    document = {"execution": {"orders": {"limit": {"post_only": post_only}}}}
    terms = ExecutionTerms(post_only=post_only)

    columns = _plain_orders_quality(read_frames(path, journal_kinds()), terms)

    assert columns is not None  # measured from the columns, not event by event
    assert json.dumps(columns) == json.dumps(execution_quality(events, terms))
    assert json.dumps(journal_execution_quality(path, document)) == json.dumps(columns)
    # a backtest's, from the orders, fills and cancellations it kept instead of its journal
    kept = [
        [e for e in events if type(e) is kind] for kind in (OrderEvent, FillEvent, OrderCancelled)
    ]
    assert json.dumps(plain_execution_quality(*kept, terms)) == json.dumps(columns)


def test_a_run_with_no_order_is_measured_from_its_columns_as_the_ledger_measures_it() -> None:
    terms = ExecutionTerms()
    assert json.dumps(plain_execution_quality([], [], [], terms)) == json.dumps(
        execution_quality([], terms)
    )
    assert plain_execution_quality([], [], [], terms)["by_venue"] == []
