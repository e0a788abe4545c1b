"""The live router against two emulated venues, through real ccxt clients.

Which venue gets the POST (the venues' request logs say), failover of a refused or
stopped child to the other venue with no client id POSTed twice, splitting when one
book is too thin, a venue without balance skipped, the journaled decisions, and a
venue marked down after failing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal

import pandas as pd
import pytest

from tradeloom.core.costs import VenueCosts
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.journal import Event, RouteDecision, VenueHealth
from tradeloom.live.accounts.router_venue import RoutedExchange, RouterVenue
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.plugins.execution.router import RoutingPolicyParams
from tradeloom.plugins.protocols_orders.client_ids import client_order_id, derived_client_id
from tradeloom.runtime.retrying import RetryPolicy
from tradeloom.testing import (
    BookProfile,
    EmulatedVenues,
    Latency,
    PartialFill,
    Reject,
    ServerError,
    Timeout,
    VenueSpec,
)

SYMBOL = "BTC/USDT"
POST = "POST /api/v3/order"
ROWS = [(100.0, 101.0, 99.0, 100.0)] * 8
INSUFFICIENT = Reject(-2010, "Account has insufficient balance for requested action.")


def _bars() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["open", "high", "low", "close"])
    frame["volume"] = 1_000.0
    frame.index = pd.date_range("2024-01-01", periods=len(ROWS), freq="1h", tz="UTC")
    return frame


BARS = _bars()


class Journal:
    """Keeps what the router records, in order."""

    def __init__(self) -> None:
        self.rows: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.rows.append(event)

    def decisions(self) -> list[RouteDecision]:
        return [r for r in self.rows if isinstance(r, RouteDecision)]


def spec(
    name: str, *, fee: str = "0.001", offset: int = 0, btc: int = 5, **keys: object
) -> VenueSpec:
    return VenueSpec(
        name,
        {"USDT": 10_000, "BTC": btc},
        price_offset_bps=Decimal(offset),
        taker_fee=Decimal(fee),
        maker_fee=Decimal(fee),
        **keys,  # type: ignore[arg-type]
    )


@pytest.fixture
def two() -> Iterator[EmulatedVenues]:
    yield from _venues(spec("a"), spec("b"))


def _venues(*specs: VenueSpec) -> Iterator[EmulatedVenues]:
    with EmulatedVenues({SYMBOL: BARS}, specs, start=1) as emulated:
        yield emulated
        assert emulated.errors() == {}


def router(
    emulated: EmulatedVenues,
    journal: Journal,
    clock: Callable[[], float] = time.time,
    timeout_ms: int = 5000,
    **policy: object,
) -> RouterVenue:
    routed = {}
    for name in emulated.names:
        emulator = emulated[name]
        venue = CcxtVenue(
            emulator.client(timeout=timeout_ms),
            SYMBOL,
            _Orders(),
            bar_clock=lambda e=emulator: e.exchange.position,  # type: ignore[misc]
            retry=RetryPolicy(max_attempts=1, base_delay=0.1, max_delay=0.1),
            sleep=lambda _: None,
            settle_seconds=0.0,
        )
        venue.client.load_markets()
        exchange = ExchangeVenue(
            venue, initial_cash=10_000.0, costs=VenueCosts.of(0.001), on_trouble=lambda *_: None
        )
        fee = float(emulated.specs[name].taker_fee)
        routed[name] = RoutedExchange(exchange, VenueCosts.of(fee))
    return RouterVenue(
        routed,
        policy=RoutingPolicyParams(**policy),  # type: ignore[arg-type]
        record=journal,
        initial_cash=20_000.0,
        clock=clock,
    )


class _Orders:
    def before_send(self, order: object) -> None:
        pass

    def record(self, event: object) -> None:
        pass


def order(n: int, side: int = -1, quantity: float = 1.0) -> Order:
    return Order(
        client_order_id("rt", "run1", n), 0, BARS.index[0], side, quantity, "SIGNAL", 100.0
    )


def bar(index: int) -> Bar:
    o, h, low, c = ROWS[index]
    return Bar(index, BARS.index[index], o, h, low, c, 1_000.0, SYMBOL)


def posts(emulated: EmulatedVenues, name: str) -> list[tuple[str, str]]:
    """Return ``(client id, quantity)`` of every order POSTed to venue ``name``."""
    return [
        (r.params["newClientOrderId"], r.params["quantity"]) for r in emulated[name].requests(POST)
    ]


def no_id_posted_twice(emulated: EmulatedVenues) -> bool:
    ids = [cid for name in emulated.names for cid, _ in posts(emulated, name)]
    return len(ids) == len(set(ids))


def child(parent: Order, k: int) -> str:
    return derived_client_id(parent.id, f"r{k}")


def fills_of(events: list[Fill | Cancellation], order_id: str) -> float:
    return sum(e.quantity for e in events if isinstance(e, Fill) and e.order_id == order_id)


# --- cost after fees -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "winner"),
    [
        # b quotes 3 bps better, but its fee is 10 bps higher: a receives more
        (spec("a", fee="0.001"), spec("b", fee="0.002", offset=3), "a"),
        # the same fees: b's better price wins
        (spec("a", fee="0.001"), spec("b", fee="0.001", offset=3), "b"),
    ],
)
def test_routing_picks_the_cheaper_venue_after_fees(
    a: VenueSpec, b: VenueSpec, winner: str
) -> None:
    for emulated in _venues(a, b):
        journal = Journal()
        r = router(emulated, journal)
        sent = order(1)
        r.submit(sent)
        loser = "b" if winner == "a" else "a"
        assert posts(emulated, winner) == [(child(sent, 0), "1")]
        assert posts(emulated, loser) == []
        [decision] = journal.decisions()
        assert (decision.order_id, decision.parent_id, decision.venue) == (
            child(sent, 0),
            sent.id,
            winner,
        )
        quotes = {q["venue"]: q for q in json.loads(decision.candidates)}
        assert quotes[winner]["cost_bps"] < quotes[loser]["cost_bps"]
        assert decision.expected_cost_bps == pytest.approx(quotes[winner]["cost_bps"])
        emulated.advance()
        events = r.match(bar(2), "open")
        assert fills_of(events, sent.id) == pytest.approx(1.0)
        assert r.pending() == []


# --- failover ----------------------------------------------------------------------------


def test_a_venue_refusing_the_post_sends_the_order_to_the_other(two: EmulatedVenues) -> None:
    journal = Journal()
    r = router(two, journal)
    two["a"].faults.next(POST, INSUFFICIENT)
    sent = order(1)
    r.submit(sent)
    assert posts(two, "a") == [(child(sent, 0), "1")]
    assert posts(two, "b") == [(child(sent, 1), "1")]
    assert [(d.order_id, d.venue) for d in journal.decisions()] == [
        (child(sent, 0), "a"),
        (child(sent, 1), "b"),
    ]
    quotes = {q["venue"]: q for q in json.loads(journal.decisions()[1].candidates)}
    assert quotes["a"]["excluded"] == "refused this order"
    two.advance()
    events = r.match(bar(2), "open")
    # the engine sees its order filled, not the refusal of a child it never sent
    assert [type(e).__name__ for e in events] == ["Fill"]
    assert fills_of(events, sent.id) == pytest.approx(1.0)
    two.advance()
    r.match(bar(3), "open")
    assert no_id_posted_twice(two)


def test_a_venue_stopping_mid_order_sends_the_remainder_to_the_other(
    two: EmulatedVenues,
) -> None:
    journal = Journal()
    r = router(two, journal)
    two["a"].faults.next(POST, PartialFill(0.4))
    sent = order(1)
    r.submit(sent)
    first = child(sent, 0)
    # a filled 0.4, then stopped working the order (the venue cancelled the rest)
    two["a"].exchange.cancel("BTCUSDT", client_order_id=first)
    two.advance()
    # at the next open: a's 0.4 and its cancelled rest are read; the rest goes to b at
    # once, whose fill is reported in the same bar
    events = r.match(bar(2), "open")
    assert posts(two, "b") == [(child(sent, 1), "0.6")]
    assert [(e.order_id, e.quantity) for e in events if isinstance(e, Fill)] == [
        (sent.id, pytest.approx(0.4)),
        (sent.id, pytest.approx(0.6)),
    ]
    assert not any(isinstance(e, Cancellation) for e in events)
    assert r.pending() == []
    assert [(d.order_id, d.venue, d.quantity, d.bar) for d in journal.decisions()] == [
        (first, "a", 1.0, 0),  # decided at bar 0's close
        (child(sent, 1), "b", pytest.approx(0.6), 2),  # sent on at bar 2's open
    ]
    two.advance()
    assert r.match(bar(4), "open") == []
    assert posts(two, "a") == [(first, "1")]
    assert no_id_posted_twice(two)


def test_no_venue_left_cancels_the_rest_for_the_engine(two: EmulatedVenues) -> None:
    journal = Journal()
    r = router(two, journal)
    two["a"].faults.next(POST, INSUFFICIENT)
    two["b"].faults.next(POST, INSUFFICIENT)
    sent = order(1)
    r.submit(sent)
    two.advance()
    [cancelled] = r.match(bar(2), "open")
    assert isinstance(cancelled, Cancellation)
    assert (cancelled.order_id, cancelled.remaining, cancelled.reason) == (sent.id, 1.0, "NO_ROUTE")
    assert no_id_posted_twice(two)


def test_a_rest_less_than_any_venue_takes_is_cancelled_as_dust_not_unrouted() -> None:
    # each venue holds 0.03 BTC, below its smallest order at 100 (5 USDT: 0.05 BTC):
    # selling the 0.06 the two hold is dust, not a venue missing
    holds = [
        VenueSpec(name, {"USDT": 10_000, "BTC": "0.03"}, taker_fee=Decimal("0.001"))
        for name in ("a", "b")
    ]
    for emulated in _venues(*holds):
        journal = Journal()
        r = router(emulated, journal)
        # a split leaves up to a lot at each venue: a position within both lots is flat
        assert r.dust == pytest.approx(2e-5)
        sent = order(1, side=-1, quantity=0.06)
        r.submit(sent)
        assert posts(emulated, "a") == posts(emulated, "b") == []
        emulated.advance()
        [cancelled] = r.match(bar(2), "open")
        assert isinstance(cancelled, Cancellation)
        assert (cancelled.remaining, cancelled.reason) == (pytest.approx(0.06), "BELOW_MINIMUM")


# --- depth and balance ----------------------------------------------------------------------


def test_an_order_larger_than_one_book_is_split_best_venue_first() -> None:
    thin = BookProfile(levels=3, size=Decimal("0.5"), growth=Decimal(1))
    for emulated in _venues(spec("a", book=thin), spec("b", offset=-5)):
        journal = Journal()
        r = router(emulated, journal)
        sent = order(1, side=-1, quantity=2.0)
        r.submit(sent)
        # a's bids are better but hold 1.5; b takes the rest
        assert posts(emulated, "a") == [(child(sent, 0), "1.5")]
        assert posts(emulated, "b") == [(child(sent, 1), "0.5")]
        assert sum(d.quantity for d in journal.decisions()) == pytest.approx(2.0)


def test_a_venue_without_balance_is_skipped() -> None:
    for emulated in _venues(spec("a", btc=0), spec("b", offset=-5)):
        journal = Journal()
        r = router(emulated, journal)
        sent = order(1)
        r.submit(sent)
        assert posts(emulated, "a") == []
        assert posts(emulated, "b") == [(child(sent, 0), "1")]
        quotes = {q["venue"]: q for q in json.loads(journal.decisions()[0].candidates)}
        assert quotes["a"]["excluded"] == "no free base"


# --- health ------------------------------------------------------------------------------------


def test_a_venue_failing_in_a_row_is_marked_down_journaled_and_skipped(
    two: EmulatedVenues,
) -> None:
    journal = Journal()
    r = router(two, journal, failures_to_down=2)
    two["a"].faults.next(POST, INSUFFICIENT, times=2)
    r.submit(order(1))
    r.submit(order(2))
    [down] = [row for row in journal.rows if isinstance(row, VenueHealth)]
    assert (down.venue, down.state, down.failures) == ("a", "down", 2)
    books = len(two["a"].requests("GET /api/v3/depth"))
    r.submit(order(3))
    assert len(two["a"].requests("GET /api/v3/depth")) == books  # not even asked
    assert posts(two, "b")[-1] == (child(order(3), 0), "1")
    quotes = {q["venue"]: q for q in json.loads(journal.decisions()[-1].candidates)}
    assert quotes["a"]["excluded"] == "marked down"


def test_cancelling_a_split_order_cancels_every_child_and_reports_one_rest() -> None:
    thin = BookProfile(levels=2, size=Decimal("0.5"), growth=Decimal(1))
    for emulated in _venues(spec("a", book=thin), spec("b", offset=-5)):
        journal = Journal()
        r = router(emulated, journal)
        # a limit sell at 100.5: nothing on the books reaches it, so it rests, on a
        sent = replace(order(1, quantity=2.0), kind="limit", limit_price=100.5)
        r.submit(sent)
        assert posts(emulated, "a") == [(child(sent, 0), "2")]
        cancelled = r.cancel(sent.id, bar(1), "REPLACED")
        assert cancelled is not None
        assert (cancelled.order_id, cancelled.remaining, cancelled.reason) == (
            sent.id,
            2.0,
            "REPLACED",
        )
        emulated.advance()
        assert r.match(bar(2), "open") == []
        assert r.pending() == []


def test_a_venue_marked_down_comes_back_after_its_cool_off(two: EmulatedVenues) -> None:
    journal = Journal()
    now = [1_000.0]
    r = router(two, journal, lambda: now[0], failures_to_down=1, cool_off_seconds=60)
    two["a"].faults.next(POST, INSUFFICIENT)
    r.submit(order(1))
    assert r.health.is_down("a")
    now[0] += 60
    two.advance()
    r.match(bar(2), "open")
    health = [(h.venue, h.state) for h in journal.rows if isinstance(h, VenueHealth)]
    assert health == [("a", "down"), ("a", "up")]
    r.submit(order(2))
    assert posts(two, "a")[-1] == (child(order(2), 0), "1")


@pytest.mark.parametrize("accepted", [False, True])
def test_a_post_lost_in_flight_is_looked_up_before_anything_goes_elsewhere(
    accepted: bool,
) -> None:
    for emulated in _venues(spec("a"), spec("b", offset=-5)):
        journal = Journal()
        r = router(emulated, journal, timeout_ms=500)
        emulated["a"].faults.next(POST, Timeout(after_accept=accepted, max_seconds=2))
        sent = order(1)
        r.submit(sent)
        # the answer was lost: a may hold the order, so nothing is sent to b yet
        assert posts(emulated, "b") == []
        assert [o.id for o in r.pending()] == [sent.id]
        emulated["a"].wait_idle()
        emulated.advance()
        events = r.match(bar(2), "open")
        if accepted:  # a had it: found by its client id, filled there
            assert posts(emulated, "b") == []
        else:  # it never arrived: the order goes to b under the next id
            assert posts(emulated, "b") == [(child(sent, 1), "1")]
        assert fills_of(events, sent.id) == pytest.approx(1.0)
        assert r.pending() == []
        assert no_id_posted_twice(emulated)


def test_a_venue_slower_than_the_policys_latency_is_skipped_and_says_why(
    two: EmulatedVenues,
) -> None:
    journal = Journal()
    r = router(two, journal, max_latency_ms=150)
    two["a"].faults.next("GET /api/v3/depth", Latency(0.4))
    r.submit(order(1))  # a is read slowly: its median latency is now above 150 ms
    quotes = {q["venue"]: q for q in json.loads(journal.decisions()[-1].candidates)}
    assert quotes["a"]["excluded"].startswith("slow: median latency ")
    assert posts(two, "a") == []
    assert posts(two, "b") == [(child(order(1), 0), "1")]


def test_a_split_order_is_reported_cancelled_once_when_every_child_is() -> None:
    # a holds 1 BTC: a limit sell of 2 that rests goes 1 to a, the rest to b
    for emulated in _venues(spec("a", btc=1), spec("b", offset=-5)):
        r = router(emulated, Journal())
        sent = replace(order(1, quantity=2.0), kind="limit", limit_price=100.5)
        r.submit(sent)
        assert posts(emulated, "a") == [(child(sent, 0), "1")]
        assert posts(emulated, "b") == [(child(sent, 1), "1")]
        emulated["b"].faults.next("DELETE /api/v3/order", ServerError())
        # a's cancel is confirmed, b's is not: the engine hears nothing yet
        assert r.cancel(sent.id, bar(1), "REPLACED") is None
        assert [o.id for o in r.pending()] == [sent.id]
        cancelled = r.cancel(sent.id, bar(1), "REPLACED")  # the engine asks again
        assert cancelled is not None
        assert (cancelled.order_id, cancelled.remaining) == (sent.id, 2.0)
        emulated.advance()
        assert r.match(bar(2), "open") == []
        assert r.pending() == []
