"""A router modelled per venue: splits, fees and balances per venue, outages, worked by hand."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.journal import Event, RouteDecision, VenueFill, VenueHealth
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.execution.routed_model import ModelledRouter
from tradeloom.plugins.execution.router import Router, RouterParams, build
from tradeloom.plugins.protocols import MultiVenue, Venue
from tradeloom.reporting.venue_accounts import venue_accounts

T0 = pd.Timestamp("2024-01-01T00:00:00Z")
HOUR = pd.Timedelta(hours=1)
CTX = BuildContext(strategy_name="t", strategy_dir=None, seed=0)  # type: ignore[arg-type]


def router(*venues: dict[str, object], **keys: object) -> Router:
    return build(RouterParams.model_validate({"venues": list(venues), **keys}), CTX)


def two(**b_keys: object) -> Router:
    # a: 10 bps, 1,001 USDT, exactly one unit at 1,000 with its fee; b: 20 bps, 5,000 USDT
    return router(
        {"name": "a", "kind": "simulated", "fee_bps": 10, "initial_cash": 1001},
        {"name": "b", "kind": "simulated", "fee_bps": 20, "initial_cash": 5000, **b_keys},
    )


def bar(i: int, price: float) -> Bar:
    return Bar(i, T0 + i * HOUR, price, price, price, price, 1e9)


def order(n: int, bar_index: int, side: int, quantity: float, price: float) -> Order:
    return Order(f"t-k-{n:06d}", bar_index, T0 + bar_index * HOUR, side, quantity, "SIGNAL", price)


class Journal:
    def __init__(self) -> None:
        self.rows: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.rows.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [r for r in self.rows if isinstance(r, kind)]


def test_the_router_is_a_multi_venue_whose_model_is_a_venue() -> None:
    r = two()
    assert isinstance(r, MultiVenue)
    model = r.modelled_venue(Journal())
    assert isinstance(model, Venue) and isinstance(model, ModelledRouter)
    assert model.initial_cash == 6001
    terms = r.venue_terms()
    assert [(t.name, t.taker_fee, t.initial_cash) for t in terms] == [
        ("a", 0.001, 1001),
        ("b", 0.002, 5000),
    ]


def test_a_buy_splits_by_fee_and_cash_and_each_venue_books_its_own_fills_and_fees() -> None:
    journal = Journal()
    model = two().modelled_venue(journal)
    assert isinstance(model, ModelledRouter)
    # buy 3 at 1,000: a is cheaper (10 bps) but its cash buys 1,001 / (1,000 * 1.001) = 1
    # unit; the other 2 go to b (20 bps)
    model.submit(order(1, 0, +1, 3.0, 1000.0))
    decisions = journal.of(RouteDecision)
    assert [(d.order_id, d.venue, d.parent_id) for d in decisions] == [  # type: ignore[attr-defined]
        ("t-k-000001-r0", "a", "t-k-000001"),
        ("t-k-000001-r1", "b", "t-k-000001"),
    ]
    assert [d.quantity for d in decisions] == pytest.approx([1.0, 2.0])  # type: ignore[attr-defined]
    assert [d.expected_cost_bps for d in decisions] == pytest.approx([10.0, 20.0])  # type: ignore[attr-defined]
    assert model.match(bar(1, 1000.0), "close") == []  # fill: next_open
    fills = model.match(bar(1, 1000.0), "open")
    # the engine hears the parent's fills, one per child, at each venue's fee
    assert all(isinstance(f, Fill) and f.order_id == "t-k-000001" for f in fills)
    assert [(f.quantity, f.price, f.fee) for f in fills] == [  # type: ignore[union-attr]
        pytest.approx((1.0, 1000.0, 1.0)),  # 1 * 1,000 * 0.001
        pytest.approx((2.0, 1000.0, 4.0)),  # 2 * 1,000 * 0.002
    ]
    venue_fills = journal.of(VenueFill)
    assert [f.order_id for f in venue_fills] == ["t-k-000001-r0", "t-k-000001-r1"]  # type: ignore[attr-defined]
    a, b = model.accounts["a"], model.accounts["b"]
    assert (a.cash, a.base) == pytest.approx((0.0, 1.0))  # 1,001 - 1,000 - 1
    assert (b.cash, b.base) == pytest.approx((2996.0, 2.0))  # 5,000 - 2,000 - 4
    assert model.pending() == []
    # sell 3 at 1,100: each venue sells what it holds, a first (cheaper)
    model.submit(order(2, 1, -1, 3.0, 1100.0))
    fills = model.match(bar(2, 1100.0), "open")
    assert [(f.quantity, f.fee) for f in fills] == [  # type: ignore[union-attr]
        pytest.approx((1.0, 1.1)),  # 1 * 1,100 * 0.001
        pytest.approx((2.0, 4.4)),  # 2 * 1,100 * 0.002
    ]
    assert (a.cash, a.base) == pytest.approx((1098.9, 0.0))  # 1,100 - 1.1
    assert (b.cash, b.base) == pytest.approx((5191.6, 0.0))  # 2,996 + 2,200 - 4.4
    # the journal says the same per venue (metrics.json's "venues", in every mode)
    accounts = {v["venue"]: v for v in venue_accounts(journal.rows)}
    assert accounts["a"] == {
        "venue": "a",
        "fills": 2,
        "bought": pytest.approx(1.0),
        "sold": pytest.approx(1.0),
        "base": pytest.approx(0.0, abs=1e-12),
        "fees": pytest.approx(2.1),
        "quote_flow": pytest.approx(97.9),  # 1,098.9 - 1,001
    }
    assert (accounts["b"]["fees"], accounts["b"]["quote_flow"]) == (
        pytest.approx(8.4),
        pytest.approx(191.6),  # 5,191.6 - 5,000
    )


def test_what_no_venue_can_take_is_cancelled_no_route_once_the_children_are_done() -> None:
    journal = Journal()
    model = two().modelled_venue(journal)
    # 10 units at 1,000: a takes 1, b 5,000 / 1,002 = 4.99002; the rest has no venue
    model.submit(order(1, 0, +1, 10.0, 1000.0))
    assert [o.id for o in model.pending()] == ["t-k-000001"]
    events = model.match(bar(1, 1000.0), "open")
    *fills, cancelled = events
    assert [f.quantity for f in fills] == pytest.approx([1.0, 5000 / 1002])
    assert isinstance(cancelled, Cancellation)
    assert (cancelled.order_id, cancelled.reason) == ("t-k-000001", "NO_ROUTE")
    assert cancelled.remaining == pytest.approx(10.0 - 1.0 - 5000 / 1002)
    assert model.pending() == [] and model.match(bar(2, 1000.0), "open") == []


def test_a_venue_in_an_outage_is_journaled_down_then_up_and_is_not_routed_to() -> None:
    journal = Journal()
    model = two(outages=[{"start": "2024-01-01T01:00:00Z", "end": "2024-01-01T03:00:00Z"}])
    venue = model.modelled_venue(journal)
    venue.match(bar(0, 1000.0), "open")
    venue.match(bar(1, 1000.0), "open")  # b goes down at bar 1's time
    venue.submit(order(1, 1, +1, 3.0, 1000.0))
    [decision] = journal.of(RouteDecision)
    assert (decision.venue, decision.quantity) == ("a", pytest.approx(1.0))  # type: ignore[attr-defined]
    quotes = json.loads(decision.candidates)  # type: ignore[attr-defined]
    assert [(q["venue"], q["excluded"]) for q in quotes] == [("a", ""), ("b", "marked down")]
    venue.match(bar(2, 1000.0), "open")
    venue.match(bar(3, 1000.0), "open")  # up again at the outage's end
    health = [(h.bar, h.venue, h.state, h.reason) for h in journal.of(VenueHealth)]  # type: ignore[attr-defined]
    assert health == [
        (1, "b", "down", "outage until 2024-01-01T03:00:00+00:00"),
        (3, "b", "up", ""),
    ]


def test_cancelling_a_split_order_stops_every_child_and_reports_one_rest() -> None:
    model = router(
        {"name": "a", "kind": "simulated", "fee_bps": 10, "initial_cash": 1001},
        {"name": "b", "kind": "simulated", "fee_bps": 20, "initial_cash": 5000},
        fill="close",
    ).modelled_venue(Journal())
    model.submit(order(1, 0, +1, 3.0, 1000.0))
    cancelled = model.cancel("t-k-000001", bar(0, 1000.0), "REPLACED")
    assert cancelled is not None
    assert (cancelled.remaining, cancelled.reason) == (pytest.approx(3.0), "REPLACED")
    assert model.pending() == [] and model.match(bar(0, 1000.0), "close") == []


def test_outages_must_end_after_they_start() -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        two(outages=[{"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}])


def test_limit_orders_and_slicing_through_a_router_are_refused_for_the_model() -> None:
    limit = router({"name": "a", "kind": "simulated"}, orders={"type": "limit"})
    with pytest.raises(ParamError) as caught:
        limit.modelled_venue(Journal())
    assert (caught.value.key, caught.value.message) == (
        "orders.type",
        "a router is modelled per venue for market orders in backtests and paper, was "
        "limit; use market, or run the limit orders live",
    )
