"""The ccxt venue against the loopback Binance emulator, through the real ccxt client.

Every test talks HTTP to 127.0.0.1: ccxt signs, sends, parses and maps errors as it
would against Binance. The emulator's own books (``emulator.exchange``) are the
ground truth the venue's view is checked against.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from structlog.testing import capture_logs

from tests.builders import walk_bars
from tests.hunting import examples
from tradeloom.domain import Cancellation, Order
from tradeloom.journal import RunIdentity, open_journal, read_rows
from tradeloom.live.orders.ccxt_errors import VenueMessage, submission_outcome
from tradeloom.live.orders.ccxt_venue import LOST_AFTER_LOOKUPS, CcxtVenue
from tradeloom.live.orders.order_journal import JournalOrders
from tradeloom.live.recovery.handover import lost_unbooked
from tradeloom.live.recovery.journal_state import JournalState
from tradeloom.plugins.protocols_orders.client_ids import check_client_id, client_order_id
from tradeloom.plugins.protocols_orders.order_events import (
    RefusedFill,
    TradeFill,
    VenueEvent,
    VenueOrder,
)
from tradeloom.plugins.protocols_orders.order_state import (
    TERMINAL,
    TRANSITIONS,
    OrderLifecycle,
    OrderState,
    Transition,
)
from tradeloom.runtime.retrying import RetriesExhausted, RetryPolicy
from tradeloom.testing import (
    DropConnection,
    ExchangeEmulator,
    Fault,
    PartialFill,
    RateLimited,
    Reject,
    ServerError,
    Timeout,
)

S = OrderState
SYMBOL = "BTC/USDT"
START = 200
POST = "POST /api/v3/order"
TRADES = "GET /api/v3/myTrades"
INSUFFICIENT = "Account has insufficient balance for requested action."


BARS = walk_bars()


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryJournal:
    """Keeps what the venue journals, and how many orders had been posted at each intent."""

    def __init__(self, emulator: ExchangeEmulator) -> None:
        self.emulator = emulator
        self.intents: list[VenueOrder] = []
        self.posts_at_intent: list[int] = []
        self.events: list[VenueEvent] = []

    def before_send(self, order: VenueOrder) -> None:
        self.posts_at_intent.append(len(self.emulator.requests(POST)))
        self.intents.append(order)

    def record(self, event: VenueEvent) -> None:
        self.events.append(event)

    def transitions(self, client_id: str) -> list[tuple[OrderState, OrderState]]:
        return [
            (e.previous, e.state)
            for e in self.events
            if isinstance(e, Transition) and e.client_id == client_id
        ]

    def journaled(self, client_id: str) -> list[tuple[str, str, str]]:
        """The order's ``order_state`` rows as the journal writes them (`JournalOrders`):
        (previous, state, reason), a restart's ``journaled_from`` as the previous."""
        return [
            (e.journaled_from or e.previous.value, e.state.value, e.reason)
            for e in self.events
            if isinstance(e, Transition) and e.client_id == client_id
        ]


@dataclass
class Rig:
    emulator: ExchangeEmulator
    client: ccxt.binance
    venue: CcxtVenue
    journal: MemoryJournal
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)


@pytest.fixture
def emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator(
        {SYMBOL: BARS}, {"USDT": Decimal("100000"), "BTC": Decimal("2")}, start=START
    ) as emu:
        yield emu
        assert emu.wait_idle(), "a request was still being served at the end of the test"
        assert emu.errors == [], "the emulator raised while serving"


def rig(
    emulator: ExchangeEmulator,
    *,
    timeout: int = 5000,
    retry: RetryPolicy | None = None,
    draw: float = 0.5,
    **config: Any,
) -> Rig:
    client = emulator.client(timeout=timeout, **config)
    journal = MemoryJournal(emulator)
    clock = FakeClock()
    sleeps: list[float] = []
    venue = CcxtVenue(
        client,
        SYMBOL,
        journal,
        bar_clock=lambda: emulator.exchange.position,
        retry=retry or RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=4.0),
        sleep=sleeps.append,
        draw=lambda: draw,
        clock=clock,
    )
    return Rig(emulator, client, venue, journal, clock, sleeps)


def order(n: int, side: int = 1, quantity: float = 0.1, bar: int = START) -> Order:
    return Order(
        client_order_id("btc_rf", "1a2b3c4d", n),
        bar,
        BARS.index[bar],
        side,
        quantity,
        "ENTRY",
        float(BARS["close"].iloc[bar - 1]),
    )


def venue_orders(emulator: ExchangeEmulator) -> dict[str, Any]:
    return {o.client_order_id: o for o in emulator.exchange.orders()}


def posts_of(emulator: ExchangeEmulator, client_id: str) -> int:
    return sum(r.params.get("newClientOrderId") == client_id for r in emulator.requests(POST))


def resting_buy() -> tuple[float, int]:
    """A buy limit below the open at START that the range first reaches at a later bar."""
    floor = Decimal(str(BARS["low"].iloc[START]))
    for bar in range(START + 1, len(BARS)):
        low = Decimal(str(BARS["low"].iloc[bar]))
        if low < floor - Decimal("0.02"):
            price = ((low + floor) / 2).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
            return float(price), bar
        floor = min(floor, low)
    raise AssertionError("the bars never dip below the start")


# --- orders that go through ---------------------------------------------------------


def test_a_market_order_fills_at_the_open_under_our_client_order_id(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    sent = order(1, quantity=0.25)
    report = r.venue.submit(sent)
    view = r.venue.order(sent.id)
    assert (view.state, view.filled, view.quantity) == (S.FILLED, 0.25, 0.25)
    assert r.journal.transitions(sent.id) == [
        (S.PENDING, S.SUBMITTED),
        (S.SUBMITTED, S.ACCEPTED),
        (S.ACCEPTED, S.FILLED),
    ]
    [fill] = [f.fill for f in report.fills]
    assert (fill.order_id, fill.bar, fill.side, fill.quantity) == (sent.id, START, 1, 0.25)
    assert fill.price == BARS["open"].iloc[START]
    assert fill.timestamp == BARS.index[START]
    # Binance charges a buy's fee in base: 0.1% of 0.25 BTC, worth that much quote.
    assert (report.fills[0].fee_cost, report.fills[0].fee_currency) == (0.00025, "BTC")
    assert fill.fee == pytest.approx(0.00025 * fill.price)
    [placed] = emulator.exchange.orders()
    assert placed.client_order_id == sent.id == view.request.client_id
    [post] = emulator.requests(POST)
    assert post.params["newClientOrderId"] == sent.id
    assert (post.params["type"], post.params["quantity"]) == ("MARKET", "0.25")
    assert r.venue.pending() == []


def test_the_intent_is_in_the_journal_before_the_request_leaves(
    emulator: ExchangeEmulator, tmp_path: Path
) -> None:
    """The contract with the live runner's WAL journal, with the real SQLite journal."""

    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run", "live"), flush_every=1000)
    wal = JournalOrders(journal, lambda: emulator.exchange.position, symbol=SYMBOL)
    posted_when_durable: list[int] = []
    original = wal.before_send

    def before_send(order: VenueOrder) -> None:
        original(order)  # commits before it returns: the venue sends only after
        rows = list(read_rows(path, ["order_sent"]))  # another connection sees it
        posted_when_durable.append(len(emulator.requests(POST)) if rows else -1)

    wal.before_send = before_send  # type: ignore[method-assign]
    venue = CcxtVenue(
        emulator.client(timeout=5000),
        SYMBOL,
        wal,
        bar_clock=lambda: emulator.exchange.position,
        sleep=lambda _: None,
    )
    venue.submit(order(1))
    venue.submit(order(2, side=-1))
    wal.journal.close()
    assert posted_when_durable == [0, 1]
    kinds = [row.kind for row in read_rows(path)]
    assert kinds[:4] == ["order_sent", "order_state", "order_state", "venue_fill"]
    assert kinds.count("order_sent") == 2


def test_partial_fills_accumulate_over_bars(emulator: ExchangeEmulator) -> None:
    r = rig(emulator)
    emulator.faults.next(POST, PartialFill(0.25))
    sent = order(1, quantity=0.4)
    r.venue.submit(sent)
    seen = [r.venue.order(sent.id).filled]
    states = [r.venue.order(sent.id).state]
    for _ in range(3):
        emulator.advance()
        r.venue.poll()
        seen.append(r.venue.order(sent.id).filled)
        states.append(r.venue.order(sent.id).state)
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert states == [S.PARTIALLY_FILLED] * 3 + [S.FILLED]
    fills = [e for e in r.journal.events if isinstance(e, TradeFill)]
    assert [f.fill.bar for f in fills] == [START, START + 1, START + 2, START + 3]
    assert [f.fill.price for f in fills] == BARS["open"].iloc[START : START + 4].tolist()
    [placed] = emulator.exchange.orders()
    assert Decimal(str(r.venue.order(sent.id).filled)) == placed.executed_qty
    assert {f.trade_id for f in fills} == {str(t.trade_id) for t in emulator.exchange.trades()}


def test_a_limit_order_rests_then_fills_at_its_price(emulator: ExchangeEmulator) -> None:
    r = rig(emulator)
    price, reaching_bar = resting_buy()
    sent = order(1, quantity=0.2)
    report = r.venue.submit(sent, limit_price=price + 0.004)  # rounded to the tick
    assert (report.fills, r.venue.order(sent.id).state) == ((), S.ACCEPTED)
    assert emulator.requests(POST)[0].params["price"] == f"{price:.2f}"
    emulator.set_bar(reaching_bar)
    assert r.venue.poll().fills == ()
    assert [o.id for o in r.venue.pending()] == [sent.id]
    emulator.advance()
    [fill] = [f.fill for f in r.venue.poll().fills]
    assert (fill.price, fill.quantity, fill.bar) == (price, 0.2, reaching_bar + 1)
    assert r.venue.order(sent.id).state == S.FILLED


def test_cancelling_a_partly_filled_limit_order_reports_what_remains(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    price, reaching_bar = resting_buy()
    emulator.faults.next(POST, PartialFill(0.5))
    sent = order(1, quantity=0.2)
    r.venue.submit(sent, limit_price=price)
    emulator.set_bar(reaching_bar + 1)
    r.venue.poll()
    assert (r.venue.order(sent.id).state, r.venue.order(sent.id).filled) == (
        S.PARTIALLY_FILLED,
        0.1,
    )
    report = r.venue.cancel(sent.id, reason="REPLACED")
    [cancellation] = report.cancellations
    assert (cancellation.order_id, cancellation.remaining, cancellation.reason) == (
        sent.id,
        pytest.approx(0.1),
        "REPLACED",
    )
    assert cancellation.bar == reaching_bar + 1
    assert r.venue.order(sent.id).state == S.CANCELLED
    assert emulator.exchange.orders()[0].status == "CANCELED"
    assert r.venue.cancel(sent.id).transitions == ()  # finished: left alone
    assert len(emulator.requests("DELETE /api/v3/order")) == 1


def test_a_market_buy_the_venue_expires_is_cancelled_with_its_remainder(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    emulator.faults.next(POST, PartialFill(0.5))
    buy = order(1, quantity=2.0)
    r.venue.submit(buy)
    # Lock nearly all the quote left, so the second half cannot be paid at the next open.
    free = float(emulator.exchange.balance("USDT").free)
    r.venue.submit(order(2, quantity=round(free / 10_000 - 0.01, 5)), limit_price=10_000.0)
    emulator.advance()
    report = r.venue.poll()
    [cancellation] = report.cancellations
    assert (cancellation.order_id, cancellation.reason, cancellation.remaining) == (
        buy.id,
        "EXPIRED",
        1.0,
    )
    assert r.venue.order(buy.id).state == S.CANCELLED
    assert venue_orders(emulator)[buy.id].status == "EXPIRED"


# --- refused before sending, refused by the venue -------------------------------------


@pytest.mark.parametrize(
    ("quantity", "limit_price", "code", "message"),
    [
        (
            0.000004,
            None,
            "VENUE_MIN_AMOUNT",
            r"^quantity=4e-06 rounds to 0, below the market's minimum 1e-05$",
        ),
        (
            0.0002,
            None,
            "VENUE_MIN_NOTIONAL",
            r"^notional=\d\.\d+ below the market's minimum 5$",
        ),
        (0.001, 1_000.0, "VENUE_MIN_NOTIONAL", r"^notional=1 below the market's minimum 5$"),
        (9_001.0, None, "VENUE_MAX_AMOUNT", r"^quantity=9001 above the market's maximum 9000$"),
        (
            0.1,
            2_000_000.0,
            "VENUE_PRICE_RANGE",
            r"^limit price=2e\+06 outside the market's range \[0\.01, 1e\+06\]$",
        ),
    ],
)
def test_an_order_outside_the_market_limits_is_refused_and_never_sent(
    emulator: ExchangeEmulator,
    quantity: float,
    limit_price: float | None,
    code: str,
    message: str,
) -> None:
    r = rig(emulator)
    sent = order(1, quantity=quantity)
    report = r.venue.submit(sent, limit_price=limit_price)
    [rejection] = report.rejections
    assert rejection.code == code
    assert rejection.bar == START
    assert pytest.approx(rejection.values["quantity"]) == quantity
    assert r.venue.order(sent.id).state == S.REJECTED
    assert r.journal.transitions(sent.id) == [(S.PENDING, S.REJECTED)]
    assert [e.rejection for e in r.journal.events if isinstance(e, Transition)] == [rejection]
    assert r.journal.intents == []
    assert emulator.requests(POST) == []
    assert re.match(message, rejection.message), rejection.message


def test_the_quantity_is_rounded_down_to_the_lot_step_before_sending(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    sent = order(1, quantity=0.123456789)
    r.venue.submit(sent)
    assert emulator.requests(POST)[0].params["quantity"] == "0.12345"
    assert r.journal.intents[0].amount == 0.12345
    assert r.venue.order(sent.id).quantity == 0.12345
    assert r.venue.order(sent.id).state == S.FILLED


def test_insufficient_balance_is_a_journaled_rejection_with_the_venue_message(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    emulator.faults.next(POST, Reject(-2010, INSUFFICIENT))
    sent = order(1)
    report = r.venue.submit(sent)
    [rejection] = report.rejections
    assert (rejection.code, rejection.message) == (
        "VENUE_REJECTED",
        f"InsufficientFunds -2010: {INSUFFICIENT}",
    )
    assert rejection.values == {"venue_code": -2010.0}
    assert r.journal.transitions(sent.id) == [(S.PENDING, S.SUBMITTED), (S.SUBMITTED, S.REJECTED)]
    assert posts_of(emulator, sent.id) == 1
    assert emulator.exchange.orders() == []


def test_a_real_refusal_by_the_venue_carries_its_code(emulator: ExchangeEmulator) -> None:
    r = rig(emulator)
    sent = order(1, side=-1, quantity=5.0)  # holds 2 BTC
    [rejection] = r.venue.submit(sent).rejections
    assert rejection.message == f"InsufficientFunds -2010: {INSUFFICIENT}"


@pytest.mark.parametrize(
    ("fault", "state"),
    [
        (RateLimited(), S.REJECTED),
        (
            Reject(-1015, "Too many new orders; current limit is 100 orders per 10 SECOND."),
            S.REJECTED,
        ),
        (Reject(-1021, "Timestamp for this request is outside of the recvWindow."), S.REJECTED),
        (Reject(-1013, "Filter failure: NOTIONAL"), S.REJECTED),
        (Reject(-1013, "Filter failure: LOT_SIZE"), S.REJECTED),
        (Reject(-1013, "Market is closed."), S.REJECTED),
        (Reject(-2015, "Invalid API-key, IP, or permissions for action.", 401), S.REJECTED),
        (ServerError(503), S.UNKNOWN),
        (
            ServerError(500, code=-1001, msg="Internal error; unable to process your request."),
            S.UNKNOWN,
        ),
        (ServerError(504), S.UNKNOWN),
        (DropConnection(), S.UNKNOWN),
        (Reject(-2010, "Duplicate order sent."), S.UNKNOWN),
    ],
    ids=lambda v: repr(v)[:50],
)
def test_each_failed_submission_is_classified_and_never_resent(
    emulator: ExchangeEmulator, fault: Fault, state: OrderState
) -> None:
    r = rig(emulator, timeout=1000)
    emulator.faults.next(POST, fault)
    sent = order(1)
    report = r.venue.submit(sent)
    assert r.venue.order(sent.id).state == state
    assert [t.state for t in report.transitions] == [S.SUBMITTED, state]
    assert (len(report.rejections), posts_of(emulator, sent.id)) == (state == S.REJECTED, 1)


def test_the_classification_of_every_ccxt_error() -> None:
    rejected = [
        ccxt.InsufficientFunds,
        ccxt.InvalidOrder,
        ccxt.BadRequest,
        ccxt.BadSymbol,
        ccxt.MarketClosed,
        ccxt.AuthenticationError,
        ccxt.PermissionDenied,
        ccxt.DDoSProtection,
        ccxt.RateLimitExceeded,
        ccxt.InvalidNonce,
        ccxt.ExchangeError,
    ]
    unknown = [
        ccxt.RequestTimeout,
        ccxt.NetworkError,
        ccxt.ExchangeNotAvailable,
        ccxt.OnMaintenance,
        ccxt.OperationFailed,
        ccxt.BadResponse,
        ccxt.NullResponse,
        ccxt.DuplicateOrderId,
        KeyError,
    ]
    assert {e.__name__: submission_outcome(e("x")) for e in rejected} == {
        e.__name__: "rejected" for e in rejected
    }
    assert {e.__name__: submission_outcome(e("x")) for e in unknown} == {
        e.__name__: "unknown" for e in unknown
    }
    assert submission_outcome(ccxt.InvalidOrder("binance Duplicate order sent.")) == "unknown"


def test_venue_messages_keep_the_code_and_drop_signed_query_strings() -> None:
    timeout = ccxt.RequestTimeout(
        "binance GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=abc123"
    )
    assert str(VenueMessage.of(timeout)) == (
        "RequestTimeout: binance GET https://api.binance.com/api/v3/order"
    )
    limited = ccxt.DDoSProtection('binance 429 Too Many Requests {"code": -1003, "msg": "Slow."}')
    assert str(VenueMessage.of(limited)) == "DDoSProtection -1003: Slow."
    funds = ccxt.InsufficientFunds(f"binance {INSUFFICIENT}")
    body = f'{{"code": -2010, "msg": "{INSUFFICIENT}"}}'
    assert VenueMessage.of(funds, body).code == -2010
    # A body from an earlier request whose message is not this error's is not trusted.
    assert VenueMessage.of(funds, '{"code": -1013, "msg": "Filter failure: NOTIONAL"}').code is None


# --- lost answers, resolved by client order id ---------------------------------------------


def test_a_timeout_after_the_venue_accepted_is_unknown_until_resolved_by_client_id(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator, timeout=1500)
    emulator.faults.next(POST, PartialFill(0.5), Timeout(after_accept=True))
    sent = order(1, quantity=0.3)
    report = r.venue.submit(sent)
    assert [t.state for t in report.transitions] == [S.SUBMITTED, S.UNKNOWN]
    assert report.transitions[-1].reason.startswith("RequestTimeout: binance POST http://")
    assert [o.id for o in r.venue.pending()] == [sent.id]
    assert emulator.wait_idle()
    emulator.advance()  # the venue fills the rest while we do not know the order
    resolved = r.venue.resolve_unknown()
    view = r.venue.order(sent.id)
    assert (view.state, view.filled) == (S.FILLED, pytest.approx(0.3))
    assert view.venue_id == str(emulator.exchange.orders()[0].order_id)
    assert [t.state for t in resolved.transitions] == [S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED]
    assert resolved.transitions[0].reason == "found by client order id"
    assert [f.fill.price for f in resolved.fills] == BARS["open"].iloc[START : START + 2].tolist()
    [lookup] = emulator.requests("GET /api/v3/order")
    assert lookup.params["origClientOrderId"] == sent.id
    assert posts_of(emulator, sent.id) == 1 and len(emulator.requests(POST)) == 1
    assert r.venue.poll().fills == ()  # the fills are not counted again


def test_a_connection_dropped_before_the_venue_saw_it_resolves_as_never_arrived(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    emulator.faults.next(POST, DropConnection())
    sent = order(1)
    r.venue.submit(sent)
    assert r.venue.order(sent.id).state == S.UNKNOWN
    # Too soon to tell: a request in flight may still arrive within the recvWindow.
    early = r.venue.resolve_unknown()
    assert (early.unresolved, r.venue.order(sent.id).state) == ((sent.id,), S.UNKNOWN)
    r.clock.advance(r.venue.settle_seconds)
    late = r.venue.resolve_unknown()
    [rejection] = late.rejections
    assert rejection.code == "ORDER_NEVER_ARRIVED"
    assert rejection.message == (
        f"the venue has no order {sent.id} 15s after it was sent; it was never placed"
    )
    assert r.venue.order(sent.id).state == S.REJECTED
    assert r.venue.pending() == []
    assert posts_of(emulator, sent.id) == 1
    assert emulator.exchange.orders() == []
    assert r.venue.resolve_unknown().transitions == ()


def test_the_never_arrived_window_runs_from_when_the_send_came_back(
    emulator: ExchangeEmulator,
) -> None:
    """ccxt's rate limiter waits before it signs a request: the venue may take the order
    up to ``recvWindow`` after that signature, later than the send began by the whole
    wait. An order not found ``settle_seconds`` after its send began, but sooner after
    the send came back, may still arrive: it stays unknown (it was journaled never
    arrived, and the venue could then fill an order the run no longer looked for)."""
    r = rig(emulator, enableRateLimit=True)
    held: list[float] = []
    r.client.throttle = lambda cost=None: r.clock.advance(held.pop() if held else 0.0)
    r.venue.load_markets()
    emulator.faults.next(POST, DropConnection())
    held.append(20.0)  # the order waits 20 s in the rate limiter, then is signed and lost
    sent = order(1)
    r.venue.submit(sent)
    assert r.venue.order(sent.id).state == S.UNKNOWN
    r.clock.advance(r.venue.settle_seconds - 1)  # 34 s since the send began
    early = r.venue.resolve_unknown()
    assert (early.unresolved, early.rejections) == ((sent.id,), ())
    assert r.venue.order(sent.id).state == S.UNKNOWN
    r.clock.advance(1)
    [rejection] = r.venue.resolve_unknown().rejections
    assert rejection.code == "ORDER_NEVER_ARRIVED"
    assert rejection.message == (
        f"the venue has no order {sent.id} 35s after it was sent; it was never placed"
    )
    assert posts_of(emulator, sent.id) == 1 and emulator.exchange.orders() == []


def test_a_duplicate_client_id_at_the_venue_adopts_the_order_it_already_has(
    emulator: ExchangeEmulator,
) -> None:
    """A crash after sending and before journaling the answer: the order is there."""
    price, _ = resting_buy()
    sent = order(1, quantity=0.1)
    earlier = emulator.client(timeout=5000)
    earlier.create_order(SYMBOL, "limit", "buy", 0.1, price, {"clientOrderId": sent.id})
    r = rig(emulator)
    report = r.venue.submit(sent, limit_price=price)
    assert report.transitions[-1].state == S.UNKNOWN
    assert report.transitions[-1].reason == "InvalidOrder -2010: Duplicate order sent."
    r.venue.resolve_unknown()
    view = r.venue.order(sent.id)
    assert (view.state, view.venue_id) == (S.ACCEPTED, "1")
    assert len(emulator.exchange.orders()) == 1


def test_after_a_restart_journaled_intents_are_looked_up_never_resent(
    emulator: ExchangeEmulator,
) -> None:
    first = rig(emulator, timeout=1500)
    emulator.faults.next(POST, Timeout(after_accept=True))
    arrived = order(1, quantity=0.2)
    first.venue.submit(arrived)
    assert emulator.wait_idle()
    lost = order(2, quantity=0.3)
    # The process died after journaling this intent and before sending it.
    intents = [first.journal.intents[0], VenueOrder(lost, SYMBOL, "market", "buy", 0.3, None)]

    second = rig(emulator)
    for intent in intents:
        report = second.venue.recover(intent, sent_at=second.clock() - 60)
        assert [(t.previous, t.state) for t in report.transitions] == [
            (S.PENDING, S.SUBMITTED),
            (S.SUBMITTED, S.UNKNOWN),
        ]
    second.venue.resolve_unknown()
    assert (second.venue.order(arrived.id).state, second.venue.order(arrived.id).filled) == (
        S.FILLED,
        0.2,
    )
    assert second.venue.order(lost.id).state == S.REJECTED
    assert len(emulator.requests(POST)) == 1
    with pytest.raises(ValueError, match=r"is already tracked here$"):
        second.venue.recover(intents[0], sent_at=0.0)


def _asked_as_a_full_scan_would(venue: CcxtVenue) -> None:
    """`unfinished`, `pending` and `settled` answer what a scan of every order answers."""
    views = venue.orders()
    open_views = [v for v in views if v.state not in TERMINAL]
    assert venue.unfinished() == open_views
    assert venue.pending() == [v.request.order for v in open_views]
    assert venue.settled == (not open_views)


def test_a_tick_asks_about_the_open_orders_only_and_answers_as_a_full_scan(
    emulator: ExchangeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long run's finished orders are not looked at again at every bar (a view of each
    order was built per tick: O(run length)); restarts' recovered orders count as open."""
    first = rig(emulator)
    price, reaching_bar = resting_buy()
    for n in range(1, 6):  # finished: filled at once
        first.venue.submit(order(n, side=1 if n % 2 else -1, quantity=0.1))
        _asked_as_a_full_scan_would(first.venue)
    resting = order(6, quantity=0.2)
    first.venue.submit(resting, limit_price=price)
    _asked_as_a_full_scan_would(first.venue)
    built: list[str] = []
    view_of = first.venue.order
    monkeypatch.setattr(first.venue, "order", lambda cid: built.append(cid) or view_of(cid))
    assert [v.client_id for v in first.venue.unfinished()] == [resting.id]
    assert built == [resting.id]  # one view: the open order's, not six
    monkeypatch.undo()

    second = rig(emulator)  # a restart: the intent journaled, its end not
    second.venue.recover(first.journal.intents[-1], sent_at=second.clock() - 60)
    assert [v.state for v in second.venue.unfinished()] == [S.UNKNOWN]
    assert not second.venue.settled
    second.venue.resolve_unknown()
    _asked_as_a_full_scan_would(second.venue)
    assert [v.state for v in second.venue.unfinished()] == [S.ACCEPTED]
    emulator.set_bar(reaching_bar + 1)
    second.venue.poll()
    _asked_as_a_full_scan_would(second.venue)
    assert second.venue.order(resting.id).state == S.FILLED
    assert second.venue.settled and second.venue.unfinished() == []


def test_a_timed_out_order_is_cancelled_after_it_is_found(emulator: ExchangeEmulator) -> None:
    r = rig(emulator, timeout=1500)
    price, _ = resting_buy()
    emulator.faults.next(POST, Timeout(after_accept=True))
    sent = order(1)
    r.venue.submit(sent, limit_price=price)
    assert emulator.wait_idle()
    [cancellation] = r.venue.cancel(sent.id, reason="REPLACED").cancellations
    assert (cancellation.remaining, r.venue.order(sent.id).state) == (0.1, S.CANCELLED)
    assert emulator.exchange.orders()[0].status == "CANCELED"


# --- reads: retried, capped, rate limits honoured ----------------------------------------


def test_reads_are_retried_on_5xx_and_429_with_capped_exponential_delays(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator, retry=RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=3.0), draw=0.0)
    r.venue.submit(order(1))
    for fault in (ServerError(503), RateLimited(retry_after=0), ServerError(502), DropConnection()):
        emulator.faults.next(TRADES, fault)
    report = r.venue.poll()
    assert r.sleeps == [1.0, 2.0, 3.0, 3.0]
    assert len(emulator.requests(TRADES)) == 5
    assert report.duplicates == ("1",)  # the first page repeats the order's own fill


def test_jitter_shortens_each_delay_by_up_to_half_of_its_ceiling(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator, retry=RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=4.0), draw=0.5)
    emulator.faults.next(TRADES, ServerError(503), times=4)
    r.venue.poll()
    assert r.sleeps == [0.75, 1.5, 3.0, 3.0]


def test_a_retry_after_longer_than_max_delay_is_waited_in_full(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator, retry=RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=3.0), draw=0.0)
    emulator.faults.next("GET /api/v3/ticker/24hr", RateLimited(retry_after=2))
    emulator.faults.next("GET /api/v3/ticker/24hr", RateLimited(retry_after=60))
    assert r.venue.last_price() == BARS["open"].iloc[START]
    # 60 s is above max_delay: retrying a Binance 429 early earns a 418 ban
    assert r.sleeps == [2.0, 60.0]
    assert len(emulator.requests("GET /api/v3/ticker/24hr")) == 3


def test_a_read_that_keeps_failing_gives_up_after_max_attempts(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator, retry=RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=1.0))
    sent = order(1)
    r.venue.submit(sent)
    emulator.faults.always(TRADES, ServerError(503))
    with pytest.raises(
        RetriesExhausted,
        match=r"^fetch_my_trades: no answer after 3 attempts; last error ExchangeNotAvailable: "
        r"binance GET http://127\.0\.0\.1:\d+/api/v3/myTrades 503 Service Unavailable",
    ):
        r.venue.poll()
    assert len(emulator.requests(TRADES)) == 3
    assert r.venue.order(sent.id).state == S.FILLED
    emulator.faults.clear()
    assert r.venue.poll().fills == ()


def test_a_refused_read_is_not_retried(emulator: ExchangeEmulator) -> None:
    r = rig(emulator)
    emulator.faults.next(TRADES, Reject(-2015, "Invalid API-key, IP, or permissions for action."))
    with pytest.raises(ccxt.AuthenticationError):
        r.venue.poll()
    assert (len(emulator.requests(TRADES)), r.sleeps) == (1, [])


def test_balance_reads_are_retried_and_match_the_venue(emulator: ExchangeEmulator) -> None:
    r = rig(emulator)
    r.venue.submit(order(1, quantity=0.5))
    emulator.faults.next("GET /api/v3/account", ServerError(502))
    totals = r.venue.balance()
    venue = emulator.exchange.balances()
    assert totals["BTC"] == float(venue["BTC"].total)
    assert totals["USDT"] == float(venue["USDT"].total)
    assert len(r.sleeps) == 1


# --- ccxt itself must not retry ---------------------------------------------------------


def test_ccxt_retries_stay_off_even_when_the_client_was_configured_with_them(
    emulator: ExchangeEmulator,
) -> None:
    # ccxt reads the per-endpoint option ("order") before the global one: setting the
    # global option to 0 alone still resends; only the 0 passed with the call stops it.
    r = rig(emulator, options={"maxRetriesOnFailure": 3, "order": {"maxRetriesOnFailure": 3}})
    assert r.client.options["maxRetriesOnFailure"] == 0
    # -1001 is an OperationFailed: the one error ccxt's own loop would resend.
    emulator.faults.next(POST, ServerError(500, code=-1001, msg="Internal error."))
    sent = order(1)
    r.venue.submit(sent)
    assert r.venue.order(sent.id).state == S.UNKNOWN
    assert len(emulator.requests(POST)) == 1
    # The order never got past the fault: after the window it is known never to have arrived.
    r.clock.advance(r.venue.settle_seconds)
    r.venue.resolve_unknown()
    assert r.venue.order(sent.id).state == S.REJECTED


def test_a_client_whose_http_session_retries_is_refused(emulator: ExchangeEmulator) -> None:
    client = emulator.client()
    client.session.mount("http://", HTTPAdapter(max_retries=2))
    with pytest.raises(
        ValueError,
        match=r"^the ccxt client's HTTP session retries requests to 'http://'; an order must "
        r"never be resent: mount adapters with max_retries=0$",
    ):
        CcxtVenue(client, SYMBOL, MemoryJournal(emulator), bar_clock=lambda: 0)


# --- client order ids --------------------------------------------------------------------


def test_client_order_ids_are_deterministic_and_valid_at_the_venue() -> None:
    assert client_order_id("btc_rf", "1a2b3c4d", 7) == "btc_rf-1a2b3c4d-000007"
    long = client_order_id("a very long strategy name.v2 with spaces", "1a2b3c4d", 123)
    assert long == "averylongstrategynam-1a2b3c4d-000123"
    assert len(long) == 36 and check_client_id(long) == long
    assert client_order_id("x", "k", 5) == client_order_id("x", "k", 5)
    with pytest.raises(ValueError, match=r"^client order id 'a\.b' has '\.' at 1; the venue"):
        check_client_id("a.b")
    with pytest.raises(ValueError, match=r"has 37 characters; the venue accepts at most 36$"):
        check_client_id("x" * 37)
    with pytest.raises(ValueError, match=r"^run key 'a b' must be 1 or more of"):
        client_order_id("s", "a b", 1)


def test_an_invalid_or_reused_client_id_is_refused_before_anything_is_sent(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    bad = Order("btc rf 1", START, BARS.index[START], 1, 0.1, "ENTRY", 20_000.0)
    with pytest.raises(ValueError, match=r"^client order id 'btc rf 1' has ' ' at 3"):
        r.venue.submit(bad)
    sent = order(1)
    r.venue.submit(sent)
    with pytest.raises(ValueError, match=r"was submitted before; an order is sent at most once$"):
        r.venue.submit(sent)
    assert len(emulator.requests(POST)) == 1
    assert r.journal.intents == [r.venue.order(sent.id).request]


def test_a_journal_that_fails_stops_the_send(emulator: ExchangeEmulator) -> None:
    r = rig(emulator)

    def broken(order: VenueOrder) -> None:
        raise OSError("disk full")

    r.journal.before_send = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        r.venue.submit(order(1))
    assert emulator.requests(POST) == []
    assert r.venue.orders() == []


# --- fills exactly once --------------------------------------------------------------------


def test_trades_repeated_by_the_venue_are_counted_once(emulator: ExchangeEmulator) -> None:
    r = rig(emulator)
    real = r.client.fetch_my_trades

    def stuttering(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        page = real(*args, **kwargs)
        return page + page  # every trade twice, as a venue paging badly would

    r.client.fetch_my_trades = stuttering  # type: ignore[method-assign]
    emulator.faults.next(POST, PartialFill(0.25))
    sent = order(1, quantity=0.4)
    r.venue.submit(sent)
    for _ in range(3):
        emulator.advance()
        r.venue.poll()
        r.venue.poll()
    fills = [e for e in r.journal.events if isinstance(e, TradeFill)]
    assert Counter(f.trade_id for f in fills) == {"1": 1, "2": 1, "3": 1, "4": 1}
    assert r.venue.order(sent.id).filled == pytest.approx(0.4)
    assert Decimal(str(r.venue.order(sent.id).filled)) == emulator.exchange.orders()[0].executed_qty


def test_injected_duplicates_are_ignored_and_an_overfill_is_refused(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    emulator.faults.next(POST, PartialFill(0.5))
    sent = order(1, quantity=0.2)
    r.venue.submit(sent)
    [trade] = r.client.fetch_my_trades(SYMBOL)
    again = r.venue.ingest([trade, dict(trade)])
    assert (again.fills, again.duplicates) == ((), ("1", "1"))
    forged = {**trade, "id": "999", "amount": 0.15}
    refused = r.venue.ingest([forged])
    [bad] = refused.refused
    assert bad == RefusedFill(
        sent.id,
        "999",
        0.15,
        f"OVERFILL: order {sent.id}: trade 999 would fill 0.25 of at most 0.2; refused",
    )
    assert bad in r.journal.events
    view = r.venue.order(sent.id)
    assert (view.filled, view.trade_ids, view.state) == (0.1, {"1"}, S.PARTIALLY_FILLED)
    emulator.advance()
    r.venue.poll()
    assert (r.venue.order(sent.id).filled, r.venue.order(sent.id).state) == (0.2, S.FILLED)
    foreign = {**trade, "id": "1000", "order": "424242"}
    assert r.venue.ingest([foreign]).fills == ()


def test_a_cancel_whose_answer_is_lost_is_retried_and_settled_by_a_lookup(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    price, _ = resting_buy()
    sent = order(1)
    r.venue.submit(sent, limit_price=price)
    emulator.faults.next("DELETE /api/v3/order", DropConnection(after_accept=True))
    report = r.venue.cancel(sent.id, reason="REPLACED")
    assert [c.reason for c in report.cancellations] == ["REPLACED"]
    assert r.venue.order(sent.id).state == S.CANCELLED
    assert len(emulator.requests("DELETE /api/v3/order")) == 2  # the second: "unknown order"
    assert emulator.requests("GET /api/v3/order")[-1].params["orderId"] == "1"


def test_cancelling_an_order_that_filled_meanwhile_reports_it_filled(
    emulator: ExchangeEmulator,
) -> None:
    r = rig(emulator)
    price, reaching_bar = resting_buy()
    sent = order(1)
    r.venue.submit(sent, limit_price=price)
    emulator.set_bar(reaching_bar + 1)
    report = r.venue.cancel(sent.id)
    assert report.cancellations == ()
    assert [f.fill.price for f in report.fills] == [price]
    assert r.venue.order(sent.id).state == S.FILLED


# --- property: fault schedules -------------------------------------------------------------

POST_FAULTS: list[tuple[Fault, ...]] = [
    (),
    (),
    (PartialFill(0.5),),
    (Timeout(after_accept=True),),
    (PartialFill(0.5), Timeout(after_accept=True)),
    (Timeout(),),
    (DropConnection(after_accept=True),),
    (DropConnection(),),
    (ServerError(503, after_accept=True),),
    (ServerError(503),),
    (RateLimited(),),
    (Reject(-2010, INSUFFICIENT),),
]
READ_ROUTES = [TRADES, "GET /api/v3/order", "GET /api/v3/openOrders", "DELETE /api/v3/order"]
READ_FAULTS: list[Fault] = [ServerError(503), ServerError(502), RateLimited(), DropConnection()]

orders = st.tuples(
    st.just("order"),
    st.sampled_from(["market", "limit"]),
    st.sampled_from([1, -1]),
    st.integers(1, 40),
    st.integers(-200, 200),
    st.sampled_from(POST_FAULTS),
)
plans = st.lists(
    st.one_of(
        orders,
        orders,
        orders,
        st.tuples(st.just("advance"), st.integers(1, 3)),
        st.tuples(st.just("poll")),
        st.tuples(st.just("resolve")),
        st.tuples(st.just("cancel"), st.integers(0, 10)),
        st.tuples(
            st.just("read_fault"), st.sampled_from(READ_ROUTES), st.sampled_from(READ_FAULTS)
        ),
    ),
    min_size=3,
    max_size=16,
)


def _play(r: Rig, plan: list[tuple[Any, ...]]) -> list[str]:
    sent: list[str] = []
    for step, action in enumerate(plan):
        kind = action[0]
        if kind == "order":
            _, order_type, side, size, offset, faults = action
            if faults:
                r.emulator.faults.next(POST, *faults)
            position = min(r.emulator.exchange.position, len(BARS) - 1)
            current = float(BARS["open"].iloc[position])
            the_order = order(step, side=side, quantity=size / 100)
            limit = round(current + offset, 2) if order_type == "limit" else None
            r.venue.submit(the_order, limit_price=limit)
            sent.append(the_order.id)
        elif kind == "advance":
            r.emulator.advance(action[1])
        elif kind == "read_fault":
            r.emulator.faults.next(action[1], action[2])
        else:
            with contextlib.suppress(RetriesExhausted):
                if kind == "poll":
                    r.venue.poll()
                elif kind == "resolve":
                    r.venue.resolve_unknown()
                elif sent:
                    r.venue.cancel(sent[action[1] % len(sent)])
    return sent


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans)
def test_over_fault_schedules_no_order_is_sent_twice_and_no_fill_counts_twice(
    plan: list[tuple[Any, ...]],
) -> None:
    with ExchangeEmulator(
        {SYMBOL: BARS}, {"USDT": Decimal("100000"), "BTC": Decimal("2")}, start=START
    ) as emulator:
        r = rig(emulator, timeout=300, retry=RetryPolicy(max_attempts=3, base_delay=0.1))
        sent = _play(r, plan)
        assert emulator.wait_idle()
        emulator.faults.clear()
        r.clock.advance(r.venue.settle_seconds)
        r.venue.resolve_unknown()
        r.venue.poll()
        posts = Counter(rec.params.get("newClientOrderId") for rec in emulator.requests(POST))
        on_venue = venue_orders(emulator)
        assert emulator.errors == []

    # At most one POST per client order id, and never one the journal did not hold first.
    assert all(count == 1 for count in posts.values())
    assert set(posts) <= {i.client_id for i in r.journal.intents}
    assert r.journal.posts_at_intent == sorted(r.journal.posts_at_intent)
    # No trade counted twice, and every order's fills match the venue's.
    fills = [e for e in r.journal.events if isinstance(e, TradeFill)]
    assert len({f.trade_id for f in fills}) == len(fills)
    assert not [e for e in r.journal.events if isinstance(e, RefusedFill)]
    for client_id in sent:
        view = r.venue.order(client_id)
        assert view.state != S.UNKNOWN
        venue_order = on_venue.get(client_id)
        if venue_order is None:
            assert (view.state, view.filled) == (S.REJECTED, 0.0)
            continue
        assert view.filled == pytest.approx(float(venue_order.executed_qty), abs=1e-12)
        assert view.venue_id == str(venue_order.order_id)
        expected = {
            "NEW": S.ACCEPTED,
            "PARTIALLY_FILLED": S.PARTIALLY_FILLED,
            "FILLED": S.FILLED,
            "CANCELED": S.CANCELLED,
            "EXPIRED": S.CANCELLED,
        }[venue_order.status]
        if venue_order.status == "NEW" and venue_order.executed_qty:
            expected = S.PARTIALLY_FILLED
        assert view.state == expected
        assert sum(f.fill.quantity for f in fills if f.fill.order_id == client_id) == (
            pytest.approx(float(venue_order.executed_qty), abs=1e-12)
        )


# --- restarts: the journal's rows of an order are one chain ----------------------------


class _Rows:
    """The rows a run's venues journaled over its restarts, as `JournalOrders` writes them
    (a transition's ``previous`` is its ``journaled_from`` where it has one)."""

    def __init__(self) -> None:
        self.states: list[tuple[str, str, str]] = []
        self.trades: list[TradeFill] = []
        self.lost: set[str] = set()  # the orders a row ended ORDER_LOST

    def take(self, journal: MemoryJournal, since: int) -> int:
        """Take what ``journal`` recorded from its event ``since`` on; return how many."""
        events = journal.events[since:]
        for event in events:
            if isinstance(event, Transition):
                previous = event.journaled_from or event.previous.value
                self.states.append((event.client_id, previous, event.state.value))
                if event.reason.startswith("ORDER_LOST"):
                    self.lost.add(event.client_id)
            elif isinstance(event, TradeFill):
                self.trades.append(event)
        return len(events)

    def last(self, client_id: str) -> str | None:
        return next((s for i, _, s in reversed(self.states) if i == client_id), None)


_AT_RESTART = ("partly filled", "resting", "answer lost", "cancelled")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.sampled_from(_AT_RESTART),
    kills=st.lists(st.integers(0, 2), min_size=5, max_size=5),
)
def test_an_order_restarted_at_any_bar_journals_each_change_once_in_one_chain(
    shape: str, kills: list[int]
) -> None:
    """A venue killed and restarted ``kills[i]`` times before it polls at bar i (as a
    restart does: `CcxtVenue.recover` from the journal's rows, then resolve and poll)
    journals each state an order enters once, each row moving from the state the row
    before it entered, and each trade once; a restart with nothing new at the venue
    journals nothing. Before, each restart journaled the order ``unknown`` and its
    states from there again."""
    with ExchangeEmulator(
        {SYMBOL: BARS}, {"USDT": Decimal("100000"), "BTC": Decimal("2")}, start=START
    ) as emulator:
        r = rig(emulator, timeout=1500)
        sent = order(1, quantity=0.4)
        if shape == "resting" or shape == "cancelled":
            price, reaching = resting_buy()
            r.venue.submit(sent, limit_price=price)
            emulator.set_bar(max(reaching - 2, START))  # it fills at a later poll
        else:
            faults = (PartialFill(0.25),)
            if shape == "answer lost":
                faults += (Timeout(after_accept=True),)
            emulator.faults.next(POST, *faults)
            r.venue.submit(sent)
            assert emulator.wait_idle()
        (intent,) = r.journal.intents
        journaled = _Rows()
        seen = journaled.take(r.journal, 0)
        for bar, restarts in enumerate(kills):
            emulator.advance()
            for n in range(restarts):
                r = rig(emulator)
                fills = [t for t in journaled.trades if t.fill.order_id == sent.id]
                r.venue.recover(
                    intent,
                    sent_at=r.clock() - 60,
                    venue_id=next((t.venue_order_id for t in fills), None),
                    counted=[(t.trade_id, t.fill.quantity) for t in fills],
                    journaled=journaled.last(sent.id),
                )
                r.venue.resolve_unknown()
                r.venue.poll()
                seen = journaled.take(r.journal, 0)
                if n > 0:  # restarted again at the same bar: nothing changed at the venue
                    assert seen == 0, journaled.states
            r.venue.resolve_unknown()
            r.venue.poll()
            if shape == "cancelled" and bar == 1:
                r.venue.cancel(sent.id)
            seen += journaled.take(r.journal, seen)
        (placed,) = emulator.exchange.orders()
        traded = {str(t.trade_id) for t in emulator.exchange.trades()}
    entered: dict[str, str] = {}
    for client_id, previous, state in journaled.states:
        assert entered.get(client_id, previous) == previous, journaled.states
        entered[client_id] = state
    assert len(journaled.states) == len(set(journaled.states)), journaled.states
    trade_ids = [t.trade_id for t in journaled.trades]
    assert sorted(trade_ids) == sorted(traded)
    assert sum(t.fill.quantity for t in journaled.trades) == pytest.approx(
        float(placed.executed_qty)
    )
    final = {"FILLED": "filled", "CANCELED": "cancelled"}.get(placed.status, "partially_filled")
    assert entered[sent.id] == final


# --- restarts: an order the journal has acknowledged is not "never placed" ---------------
# (the reviewer's tests of wt/restate, from wt/review 905f4d43)


def test_an_accepted_order_the_venue_reports_rejected_after_a_restart_is_cancelled(
    emulator: ExchangeEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The journal's last row of a resting limit order is ``accepted``: a restart tracks it
    # acknowledged, as the run did before the kill, so the venue's ``rejected`` status (a
    # stop whose trigger the venue refused, Bybit's deactivated conditional) reads as the
    # cancel it is for an acknowledged order: ``accepted -> cancelled``, as without the
    # kill. Before, the restart tracked it ``unknown`` (never acknowledged): REJECTED,
    # journaled ``accepted -> rejected``, a move the transition table forbids.
    first = rig(emulator)
    price, _ = resting_buy()
    sent = order(1, quantity=0.2)
    first.venue.submit(sent, limit_price=price)
    assert first.venue.order(sent.id).state == OrderState.ACCEPTED
    (intent,) = first.journal.intents
    venue_id = first.venue.order(sent.id).venue_id

    # without a kill: the acknowledged order's lifecycle reads "rejected" as a cancel
    life = OrderLifecycle(sent.id, 0.2)
    life.send()
    life.accept(venue_id)
    (uninterrupted,) = life.observe("rejected", 0.0, venue_id)
    assert (uninterrupted.previous, uninterrupted.state) == (
        OrderState.ACCEPTED,
        OrderState.CANCELLED,
    )

    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="accepted")
    found: dict[str, Any] = {
        "id": venue_id,
        "clientOrderId": sent.id,
        "status": "rejected",
        "filled": 0.0,
    }
    monkeypatch.setattr(second.venue, "_lookup", lambda tracked: found)
    second.venue.resolve_unknown()
    rows = [(previous, state) for previous, state, _ in second.journal.journaled(sent.id)]
    assert rows == [(OrderState.ACCEPTED, OrderState.CANCELLED)]
    assert all(state in TRANSITIONS[previous] for previous, state in rows)


def test_an_order_the_journal_has_accepted_is_not_journaled_never_placed_after_a_restart(
    emulator: ExchangeEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The journal says the venue acknowledged the order. A lookup by client id that finds
    # nothing (a venue that archives finished orders, one whose client-id lookup covers
    # open orders only; the restart has no venue id without a fill) leaves it as the
    # journal has it, working and polled. Before, it was rejected at once (the settle
    # window runs from the original send) as ORDER_NEVER_ARRIVED, "never placed",
    # journaled ``accepted -> rejected``: the run forgot an order the venue acknowledged.
    first = rig(emulator)
    price, _ = resting_buy()
    sent = order(1, quantity=0.2)
    first.venue.submit(sent, limit_price=price)
    (intent,) = first.journal.intents
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="accepted")
    monkeypatch.setattr(second.venue, "_lookup", lambda tracked: None)
    second.venue.resolve_unknown()
    rows = second.journal.journaled(sent.id)
    assert not any("ORDER_NEVER_ARRIVED" in reason for _, _, reason in rows), rows
    assert rows == []
    assert second.venue.order(sent.id).state == OrderState.ACCEPTED
    assert [o.id for o in second.venue.pending()] == [sent.id]


def test_a_cancelled_order_a_restart_looks_up_never_leaves_cancelled(
    emulator: ExchangeEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `track_pending` looks up an order the journal has ``cancelled`` (its venue may owe
    # it trades). With none counted the restart has no venue id; a lookup by client id
    # that finds nothing journals nothing: no row leaves a state that finished the order.
    # Before, ORDER_NEVER_ARRIVED, journaled ``cancelled -> rejected``, and the next
    # restart read it rejected (`state.rejections`), the owed trades never asked for.
    first = rig(emulator)
    price, _ = resting_buy()
    sent = order(1, quantity=0.2)
    first.venue.submit(sent, limit_price=price)
    first.venue.cancel(sent.id)
    assert first.venue.order(sent.id).state == OrderState.CANCELLED
    (intent,) = first.journal.intents
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="cancelled")
    monkeypatch.setattr(second.venue, "_lookup", lambda tracked: None)
    second.venue.resolve_unknown()
    rows = [(previous, state) for previous, state, _ in second.journal.journaled(sent.id)]
    assert rows == [], rows


def test_an_accepted_order_a_restart_lookup_missed_is_counted_once_when_found_filled(
    emulator: ExchangeEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The order rests, the run dies, the order fills while it is down. The restart's
    # lookup finds nothing at first (the venue's index lagging, an archive): the order
    # stays accepted, and a later poll that finds it counts its fill, once.
    first = rig(emulator)
    price, reaching = resting_buy()
    sent = order(1, quantity=0.2)
    first.venue.submit(sent, limit_price=price)
    (intent,) = first.journal.intents
    emulator.set_bar(reaching)
    emulator.advance()  # it fills while the run is down
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="accepted")
    with monkeypatch.context() as patch:
        patch.setattr(second.venue, "_lookup", lambda tracked: None)
        missed = second.venue.resolve_unknown()
    assert (missed.rejections, missed.fills) == ((), ())
    found = second.venue.poll()
    again = second.venue.poll()
    (placed,) = emulator.exchange.orders()
    assert placed.status == "FILLED"
    assert [f.trade_id for f in found.fills] == [
        str(t.trade_id) for t in emulator.exchange.trades()
    ]
    assert sum(f.fill.quantity for f in found.fills) == pytest.approx(0.2)
    assert again.fills == ()
    rows = [(previous, state) for previous, state, _ in second.journal.journaled(sent.id)]
    assert rows == [("accepted", "filled")]


def test_a_cancelled_order_owing_trades_is_looked_up_until_found_and_never_cancelled_again(
    emulator: ExchangeEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A partly filled order the venue cancelled, its trade not counted when the run died
    # (the read after the cancel failed): the journal has it ``cancelled``, none counted.
    # A restart whose lookup misses keeps it, sends no cancel of it, and counts the owed
    # trade once the venue finds it; no row leaves ``cancelled``.
    first = rig(emulator)
    sent = order(1, quantity=0.4)
    emulator.faults.next(POST, PartialFill(0.25))
    first.venue.submit(sent)
    assert emulator.wait_idle()
    first.venue.cancel(sent.id)
    assert first.venue.order(sent.id).state == OrderState.CANCELLED
    (intent,) = first.journal.intents
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="cancelled")
    cancels = len(emulator.requests("DELETE /api/v3/order"))
    with monkeypatch.context() as patch:
        patch.setattr(second.venue, "_lookup", lambda tracked: None)
        second.venue.resolve_unknown()
        second.venue.poll()
        second.venue.cancel(sent.id)
    assert len(emulator.requests("DELETE /api/v3/order")) == cancels
    assert [o.id for o in second.venue.pending()] == [sent.id]
    owed = second.venue.poll()
    (placed,) = emulator.exchange.orders()
    assert sum(f.fill.quantity for f in owed.fills) == pytest.approx(float(placed.executed_qty))
    assert second.venue.order(sent.id).state == OrderState.CANCELLED
    assert second.venue.poll().fills == ()
    rows = [e for e in second.journal.events if isinstance(e, Transition)]
    assert rows == [], rows


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    shape=st.sampled_from(("partly filled", "resting", "cancelled")),
    kills=st.lists(st.integers(0, 2), min_size=5, max_size=5),
    misses=st.lists(st.booleans(), min_size=10, max_size=10),
)
def test_an_acknowledged_order_whose_restart_lookups_miss_keeps_every_trade_and_its_chain(
    shape: str, kills: list[int], misses: list[bool]
) -> None:
    """As the property above, a restart's lookups by id finding nothing where ``misses``
    says (an exchange that archives finished orders, or finds only open ones by client
    id): the order the journal has acknowledged is never rejected, each row is a move the
    transition table allows in one chain, and every trade is counted once in the end.
    Before, a miss made it ``ORDER_NEVER_ARRIVED`` (``accepted -> rejected``, or
    ``cancelled -> rejected``) and its later trades went uncounted."""
    with ExchangeEmulator(
        {SYMBOL: BARS}, {"USDT": Decimal("100000"), "BTC": Decimal("2")}, start=START
    ) as emulator:
        r = rig(emulator, timeout=1500)
        sent = order(1, quantity=0.4)
        if shape == "partly filled":
            emulator.faults.next(POST, PartialFill(0.25))
            r.venue.submit(sent)
            assert emulator.wait_idle()
        else:
            price, reaching = resting_buy()
            r.venue.submit(sent, limit_price=price)
            emulator.set_bar(max(reaching - 2, START))
        (intent,) = r.journal.intents
        journaled = _Rows()
        journaled.take(r.journal, 0)
        drawn = iter(misses)
        for bar, restarts in enumerate(kills):
            emulator.advance()
            for _ in range(restarts):
                r = rig(emulator)
                fills = [t for t in journaled.trades if t.fill.order_id == sent.id]
                r.venue.recover(
                    intent,
                    sent_at=r.clock() - 60,
                    venue_id=next((t.venue_order_id for t in fills), None),
                    counted=[(t.trade_id, t.fill.quantity) for t in fills],
                    journaled=journaled.last(sent.id),
                )
                if next(drawn, False):
                    r.venue._lookup = lambda tracked: None  # type: ignore[method-assign]
                r.venue.resolve_unknown()
                r.venue.poll()
                r.venue.__dict__.pop("_lookup", None)
                journaled.take(r.journal, 0)
            seen = len(r.journal.events)
            r.venue.resolve_unknown()
            r.venue.poll()
            if shape == "cancelled" and bar == 1:
                r.venue.cancel(sent.id)
            journaled.take(r.journal, seen)
        for _ in range(3):  # the exchange answers again: whatever it owes is counted
            seen = len(r.journal.events)
            r.venue.resolve_unknown()
            r.venue.poll()
            journaled.take(r.journal, seen)
        (placed,) = emulator.exchange.orders()
        traded = {str(t.trade_id) for t in emulator.exchange.trades()}
    entered: dict[str, str] = {}
    for client_id, previous, state in journaled.states:
        assert entered.get(client_id, previous) == previous, journaled.states
        assert OrderState(state) in TRANSITIONS[OrderState(previous)], journaled.states
        entered[client_id] = state
    assert sorted(t.trade_id for t in journaled.trades) == sorted(traded)
    assert sum(t.fill.quantity for t in journaled.trades) == pytest.approx(
        float(placed.executed_qty)
    )
    final = {"FILLED": "filled", "CANCELED": "cancelled"}.get(placed.status)
    assert entered[sent.id] == (final or entered[sent.id]), journaled.states
    assert entered[sent.id] != "rejected", journaled.states


# --- restarts: what the journal ended or adopted, and lookups that keep missing ----------

LOOKUP = "GET /api/v3/order"
OPEN_ORDERS = "GET /api/v3/openOrders"
MISSING = Reject(-2013, "Order does not exist.")


def test_an_adopted_order_restarts_adopted_never_as_never_placed(
    emulator: ExchangeEmulator,
) -> None:
    # A restart adopted the order (found at the venue beyond its journal: ``adopted``) and
    # the run died again. The next restart tracks it as the venue had it, acknowledged: a
    # lookup by client id that finds nothing leaves it working. Before, it restarted
    # ``unknown`` and the miss rejected it ORDER_NEVER_ARRIVED, journaled
    # ``adopted -> rejected``: an order the venue had was dropped as never placed.
    first = rig(emulator)
    price, _ = resting_buy()
    sent = order(1, quantity=0.2)
    first.venue.submit(sent, limit_price=price)
    (intent,) = first.journal.intents
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="adopted")
    assert second.venue.order(sent.id).state == OrderState.ACCEPTED
    emulator.faults.next(LOOKUP, MISSING)
    missed = second.venue.resolve_unknown()
    assert missed.rejections == ()
    assert second.venue.order(sent.id).state == OrderState.ACCEPTED
    assert second.journal.journaled(sent.id) == []
    assert [o.id for o in second.venue.pending()] == [sent.id]
    second.venue.poll()  # found open: the acknowledgement it had is no news either
    assert second.journal.journaled(sent.id) == []


def test_an_order_the_journal_has_rejected_is_not_looked_up_again(
    emulator: ExchangeEmulator,
) -> None:
    # A limit order's market fallback the venue refused: the journal ends it ``rejected``.
    # A restart that tracks it (its limit order still pending for the engine) takes the
    # journal's word. Before, it was tracked ``unknown`` and looked up by client id (a
    # request at every bar until the venue's window passed), then rejected a second time
    # as ORDER_NEVER_ARRIVED, the venue's own refusal replaced by "never placed".
    first = rig(emulator)
    sent = order(1, quantity=0.2)
    emulator.faults.next(POST, Reject(-2010, INSUFFICIENT))
    first.venue.submit(sent)
    assert first.venue.order(sent.id).state == OrderState.REJECTED
    (intent,) = first.journal.intents
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="rejected")
    asked = len(emulator.requests(LOOKUP))
    report = second.venue.resolve_unknown()
    second.venue.poll()
    assert len(emulator.requests(LOOKUP)) == asked
    assert (report.rejections, report.unresolved) == ((), ())
    assert second.venue.order(sent.id).state == OrderState.REJECTED
    assert second.venue.unfinished() == [] and second.venue.settled
    assert second.journal.journaled(sent.id) == []


def test_an_intent_without_a_state_row_restarts_its_chain_from_pending(
    emulator: ExchangeEmulator,
) -> None:
    # The intent is committed before the send; the ``pending -> submitted`` row is
    # committed with the bar's rows, which a kill can lose. The restart journals the
    # order's chain from where every order's starts: ``pending -> submitted``, then
    # ``submitted -> unknown``. Before, its first row was ``submitted -> unknown``, a
    # row moving from a state no row of it had entered.
    first = rig(emulator)
    sent = order(1, quantity=0.2)
    first.venue.submit(sent)
    (intent,) = first.journal.intents
    assert first.journal.journaled(sent.id)[0][:2] == ("pending", "submitted")
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled=None)
    rows = [(previous, state) for previous, state, _ in second.journal.journaled(sent.id)]
    assert rows == [("pending", "submitted"), ("submitted", "unknown")]
    second.venue.resolve_unknown()  # found filled: the chain goes on from unknown
    rows = [(previous, state) for previous, state, _ in second.journal.journaled(sent.id)]
    assert rows[2:] == [("unknown", "accepted"), ("accepted", "filled")], rows


def test_a_cancelled_order_its_counted_trades_fill_logs_no_state_after_end(
    emulator: ExchangeEmulator,
) -> None:
    # The journal ended the order ``cancelled`` and counted trades that fill it (a cancel
    # answered with less filled than its trades, within the tolerance). The restart
    # restates that journal: it is no news from the venue, and no ``state_after_end``
    # warning (which tells an operator the venue moved an ended order) is logged.
    first = rig(emulator)
    sent = order(1, quantity=0.2)
    first.venue.submit(sent)
    (intent,) = first.journal.intents
    view = first.venue.order(sent.id)
    counted = [(trade_id, 0.2 / len(view.trade_ids)) for trade_id in sorted(view.trade_ids)]
    second = rig(emulator)
    with capture_logs() as logs:
        second.venue.recover(
            intent,
            sent_at=second.clock() - 60,
            venue_id=view.venue_id,
            counted=counted,
            journaled="cancelled",
        )
    assert [e for e in logs if e["event"] == "state_after_end"] == []
    assert second.journal.journaled(sent.id) == []


def _filled_while_down(emulator: ExchangeEmulator) -> tuple[Order, VenueOrder]:
    """A resting buy the venue acknowledged, filled while the run is down."""
    first = rig(emulator)
    price, reaching = resting_buy()
    sent = order(1, quantity=0.2)
    first.venue.submit(sent, limit_price=price)
    (intent,) = first.journal.intents
    emulator.set_bar(reaching)
    emulator.advance()
    assert emulator.exchange.orders()[0].status == "FILLED"
    return sent, intent


def _asked(emulator: ExchangeEmulator) -> int:
    return len(emulator.requests(LOOKUP)) + len(emulator.requests(OPEN_ORDERS))


@pytest.mark.parametrize("journaled", ["accepted", "cancelled"])
def test_an_order_no_lookup_finds_ends_order_lost_after_a_bounded_number_of_lookups(
    emulator: ExchangeEmulator, journaled: str
) -> None:
    # The journal has the order acknowledged (working, or cancelled with trades owed) and
    # no venue id (none of its trades counted); the exchange finds it by its client id
    # no more (it archives finished orders). Before, it was asked for at every bar for
    # good (an open-orders read and a lookup each), pending for good. Now the
    # `LOST_AFTER_LOOKUPS`-th miss ends it ORDER_LOST: journaled ``accepted ->
    # cancelled`` with that reason (a cancelled one: no row, the journal ended it), the
    # engine told once, nothing sent, and the venue is not asked about it again.
    sent, intent = _filled_while_down(emulator)
    emulator.faults.always(LOOKUP, MISSING)
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled=journaled)
    cancellations = []
    asked = []
    with capture_logs() as logs:
        for _ in range(6):  # a bar's asks: the lookup of unknown orders, then the poll
            before = _asked(emulator)
            cancellations += second.venue.resolve_unknown().cancellations
            cancellations += second.venue.poll().cancellations
            asked.append(_asked(emulator) - before)
    # the first bar's lookup of it, then each poll's open-orders read and lookup: the
    # fifth lookup ends it, and nothing is asked about it from there on
    assert asked == [3, 2, 2, 2, 0, 0]
    assert len(emulator.requests(LOOKUP)) == LOST_AFTER_LOOKUPS
    assert [(c.order_id, c.reason, c.remaining) for c in cancellations] == [
        (sent.id, "ORDER_LOST", 0.2)
    ]
    assert second.venue.order(sent.id).state == OrderState.CANCELLED
    assert second.venue.unfinished() == [] and second.venue.settled
    rows = second.journal.journaled(sent.id)
    if journaled == "accepted":
        assert [(p, s) for p, s, _ in rows] == [("accepted", "cancelled")]
        assert rows[0][2].startswith("ORDER_LOST: 5 lookups by its client order id"), rows
    else:
        assert rows == []
    assert [e["client_id"] for e in logs if e["event"] == "order_lost"] == [sent.id]
    assert len(emulator.requests(POST)) == 1


def test_an_order_found_nowhere_waits_for_its_owners_reconcile_when_it_defers(
    emulator: ExchangeEmulator,
) -> None:
    # With `defers_lost` (an `ExchangeVenue`'s), the fifth miss does not end the order: it
    # works on (the engine sends nothing more for the symbol) and is listed `lost_due`
    # until its market has read the account, which books what it filled to it
    # (`book_unaccounted`) or ends it with nothing booked (`end_lost`): once, one chain.
    sent, intent = _filled_while_down(emulator)
    emulator.faults.always(LOOKUP, MISSING)
    second = rig(emulator)
    second.venue.defers_lost = True
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="accepted")
    cancellations = []
    for _ in range(4):
        cancellations += second.venue.resolve_unknown().cancellations
        cancellations += second.venue.poll().cancellations
    assert cancellations == []
    assert second.venue.lost_due() == [sent.id]
    assert second.venue.order(sent.id).state == OrderState.ACCEPTED
    assert not second.venue.settled
    report = second.venue.end_lost(sent.id)
    assert [(c.order_id, c.reason, c.remaining) for c in report.cancellations] == [
        (sent.id, "ORDER_LOST", 0.2)
    ]
    assert second.venue.lost_due() == [] and second.venue.settled
    assert second.venue.end_lost(sent.id).cancellations == ()  # ended once
    rows = second.journal.journaled(sent.id)
    assert [(p, s) for p, s, _ in rows] == [("accepted", "cancelled")]
    assert len(emulator.requests(POST)) == 1


def test_a_reconcile_books_what_an_order_found_nowhere_filled_once_and_ends_it(
    emulator: ExchangeEmulator,
) -> None:
    # The order filled while the run was down, and the exchange finds it by its client id
    # no more: the restart's reconcile books the account's difference to it (its one
    # possible cause), at its limit price, as a trade of id ``reconciled-{client id}``
    # journaled as any, and ends it ORDER_LOST for the rest: nothing counts a trade of it
    # again, nothing is sent. Before, the restart refused on a position mismatch. The
    # difference is net of the fee the exchange kept in BTC (a Binance spot buy): the
    # trade is the one the exchange made, its whole quantity and that fee.
    sent, intent = _filled_while_down(emulator)
    (made,) = emulator.exchange.trades()
    emulator.faults.always(LOOKUP, MISSING)
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="accepted")
    second.venue.resolve_unknown()
    second.venue.poll()
    (view,) = second.venue.unaccounted()
    assert (view.client_id, view.state) == (sent.id, OrderState.ACCEPTED)
    received = float(made.qty - made.commission)
    assert second.venue.received(sent.id, 0.2) == pytest.approx(received, abs=1e-12)
    report = second.venue.book_unaccounted(sent.id, received, float(intent.price or 0.0))
    [trade] = report.fills
    assert (trade.trade_id, trade.fill.quantity, trade.fill.price) == (
        f"reconciled-{sent.id}",
        0.2,
        intent.price,
    )
    assert (trade.fee_cost, trade.fee_currency) == (pytest.approx(0.0002, abs=1e-12), "BTC")
    rows = [(p, s) for p, s, _ in second.journal.journaled(sent.id)]
    assert rows == [("accepted", "filled")]
    assert second.venue.settled
    asked = _asked(emulator)
    assert second.venue.poll().fills == () and _asked(emulator) == asked
    assert len(emulator.requests(POST)) == 1


def test_a_reconcile_books_a_part_of_an_order_found_nowhere_gross_of_its_base_fee(
    emulator: ExchangeEmulator,
) -> None:
    # The account moved by 0.0999 BTC: at the maker rate (0.1%, charged in BTC) the order
    # filled 0.1 of its 0.2, and the exchange kept 0.0001 of it; the rest ends ORDER_LOST.
    sent, intent = _filled_while_down(emulator)
    emulator.faults.always(LOOKUP, MISSING)
    second = rig(emulator)
    second.venue.recover(intent, sent_at=second.clock() - 60, journaled="accepted")
    second.venue.resolve_unknown()
    second.venue.poll()
    report = second.venue.book_unaccounted(sent.id, 0.0999, float(intent.price or 0.0))
    [trade] = report.fills
    assert trade.fill.quantity == pytest.approx(0.1, abs=1e-12)
    assert (trade.fee_cost, trade.fee_currency) == (pytest.approx(0.0001, abs=1e-12), "BTC")
    assert trade.fill.fee == pytest.approx(0.0001 * float(intent.price or 0.0), rel=1e-9)
    assert [(c.reason, c.remaining) for c in report.cancellations] == [
        ("ORDER_LOST", pytest.approx(0.1, abs=1e-12))
    ]


_SHAPES = ("resting", "cancelled", "adopted", "answer lost", "intent only")
_LOOKUPS = ("answers", "missing", "fails")
"""What the exchange makes of a lookup by client id: it answers, it finds nothing
("Order does not exist."), or it fails every attempt (503: `RetriesExhausted`)."""


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.sampled_from(_SHAPES),
    kills=st.lists(st.integers(0, 2), min_size=4, max_size=4),
    misses=st.lists(st.sampled_from(_LOOKUPS), min_size=24, max_size=24),
    carried=st.booleans(),
)
def test_any_restarts_and_lookups_missing_or_finding_never_send_twice_and_journal_one_chain(
    shape: str, kills: list[int], misses: list[str], carried: bool
) -> None:
    """An order restarted ``kills[i]`` times before the bar i's asks (`CcxtVenue.recover`
    from the journal's rows, then lookups and polls), each lookup by client id of an order
    the venue acknowledged finding nothing where ``misses`` says (the exchange answering
    "Order does not exist.", as one that archives finished orders does): no order is sent
    for the intent but its own one send; each journaled row moves from the state the row
    before it entered, by a move the transition table allows (``adopted`` reads as
    ``unknown``), from ``pending`` (``adopted``: the restart's row); every trade is counted
    once, all of them unless the order ended ``ORDER_LOST`` (after `lost_after` misses);
    nothing is journaled of it after a row that ended it.

    A lookup that fails every attempt is no miss: the order stays as it was (never
    ended by errors). ``carried``: a restart hands over what the engine's own state
    leaves pending (`track_pending`), not every order each time: an order the engine
    heard end is not tracked again, unless its venue owes it trades, or a process ended
    it ``ORDER_LOST`` with no trade counted (`lost_unbooked`): that one is tracked again
    at every restart, whichever, and its trades are counted once the exchange answers."""
    with ExchangeEmulator(
        {SYMBOL: BARS}, {"USDT": Decimal("100000"), "BTC": Decimal("2")}, start=START
    ) as emulator:
        r = rig(emulator, timeout=1500)
        sent = order(1, quantity=0.4)
        journaled = _Rows()
        if shape == "intent only":  # journaled, and the process died before the send
            intent = VenueOrder(sent, SYMBOL, "market", "buy", 0.4, None)
        else:
            if shape == "answer lost":
                emulator.faults.next(POST, PartialFill(0.25), Timeout(after_accept=True))
                r.venue.submit(sent)
                assert emulator.wait_idle()
            else:
                price, reaching = resting_buy()
                r.venue.submit(sent, limit_price=price)
                emulator.set_bar(max(reaching - 2, START))
            (intent,) = r.journal.intents
            if shape == "adopted":  # the intent lost with a cut journal, found by a restart
                journaled.states.append((sent.id, "unknown", "adopted"))
            else:
                journaled.take(r.journal, 0)
        acknowledged = shape in ("resting", "cancelled", "adopted")
        drawn = iter(misses)
        lost: set[str] = set()  # the orders a lookup ended ORDER_LOST
        heard: list[Cancellation] = []  # the ends reported (the engine's)
        missed = [0]  # the lookups found nothing in this process
        tracked = [True]  # whether this process's venue tracks the order
        lost_here: set[str] = set()  # ended ORDER_LOST by this process
        restarted_lost = [False]  # a restart came after a process ended it ORDER_LOST
        if shape in ("adopted", "intent only"):  # the process that sent it is gone
            r = rig(emulator)
            missed[0] = 0
            r.venue.lost_after = 3
            r.venue.recover(intent, sent_at=r.clock() - 60, journaled=journaled.last(sent.id))
            journaled.take(r.journal, 0)

        def asks(venue: CcxtVenue) -> None:
            for ask in (venue.resolve_unknown, venue.poll):
                emulator.faults.clear()
                lookup = next(drawn, "answers")
                if acknowledged and lookup == "missing":
                    emulator.faults.next(LOOKUP, MISSING)
                    missed[0] += 1
                elif lookup == "fails":
                    emulator.faults.next(LOOKUP, ServerError(503), times=4)
                try:
                    ended = ask().cancellations
                except RetriesExhausted:
                    continue  # what it counted is reported by the next call
                heard.extend(c for c in ended if c.order_id == sent.id)
                now = {c.order_id for c in ended if c.reason == "ORDER_LOST"}
                # errors are no misses: only lookups that found nothing end it
                assert not now or missed[0] >= r.venue.lost_after, (misses, missed)
                lost.update(now)
                lost_here.update(now)

        def handed_over() -> bool:
            """Whether a restart tracks the order again (`track_pending`'s rule)."""
            if not carried:
                return True
            if tracked[0]:
                view = r.venue.order(sent.id)
                owed = view.venue_filled - view.filled > 1e-9
                if not heard and (view.state not in TERMINAL or owed):
                    return True  # pending for the engine (or owed its trades)
            counted = [t for t in journaled.trades if t.fill.order_id == sent.id]
            journal = JournalState(
                events={0: list(heard)},
                sent={sent.id: intent},  # type: ignore[dict-item]  # only its key is read
                venue_fills={sent.id: counted} if counted else {},  # type: ignore[dict-item]
            )
            return lost_unbooked(journal, set()) == [sent.id]

        for bar, restarts in enumerate(kills):
            emulator.advance()
            for _ in range(restarts):
                hand = handed_over()
                restarted_lost[0] = restarted_lost[0] or sent.id in lost
                r = rig(emulator)
                r.venue.lost_after = 3
                missed[0] = 0
                lost_here.clear()
                tracked[0] = hand
                if not hand:  # the engine heard it end, and nothing is owed
                    continue
                fills = [t for t in journaled.trades if t.fill.order_id == sent.id]
                r.venue.recover(
                    intent,
                    sent_at=r.clock() - 60,
                    venue_id=next((t.venue_order_id for t in fills), None),
                    counted=[(t.trade_id, t.fill.quantity) for t in fills],
                    journaled=journaled.last(sent.id),
                )
                seen = 0
                asks(r.venue)
                journaled.take(r.journal, seen)
            seen = len(r.journal.events)
            asks(r.venue)
            if shape == "cancelled" and bar == 1 and tracked[0]:
                with contextlib.suppress(RetriesExhausted):
                    heard.extend(r.venue.cancel(sent.id).cancellations)
            journaled.take(r.journal, seen)
        emulator.faults.clear()
        for _ in range(2):  # the exchange answers again: whatever it owes is counted
            seen = len(r.journal.events)
            r.venue.resolve_unknown()
            r.venue.poll()
            journaled.take(r.journal, seen)
        placed = venue_orders(emulator)
        traded = [str(t.trade_id) for t in emulator.exchange.trades()]
        posts = [q.params.get("newClientOrderId") for q in emulator.requests(POST)]
    # one send for the intent, never a second order (an intent never sent: none)
    assert posts == ([] if shape == "intent only" else [sent.id]), posts
    assert list(placed) == ([] if shape == "intent only" else [sent.id])

    def state(value: str) -> OrderState:
        return OrderState.UNKNOWN if value == "adopted" else OrderState(value)

    entered: dict[str, str] = {}
    for client_id, previous, moved in journaled.states:
        assert entered.get(client_id, previous) == previous, journaled.states
        if moved != "adopted":
            assert state(moved) in TRANSITIONS[state(previous)], journaled.states
        entered[client_id] = moved
    first = journaled.states[0][1:] if journaled.states else None
    assert first in (("pending", "submitted"), ("unknown", "adopted")), journaled.states
    if acknowledged:  # the venue had it: never "never placed"
        assert entered[sent.id] != "rejected", journaled.states
    counted = [t.trade_id for t in journaled.trades]
    assert len(counted) == len(set(counted)), counted
    assert set(counted) <= set(traded)
    if sent.id in journaled.lost:  # journaled ended: nothing after that row
        assert journaled.states[-1][2] == "cancelled", journaled.states
        assert sent.id in lost
    if sent.id not in lost and shape != "intent only":  # its trades are all counted
        assert sorted(counted) == sorted(traded), (journaled.states, counted, traded)
    if carried and restarted_lost[0] and sent.id not in lost_here:
        # ended ORDER_LOST, tracked again by a later restart, the exchange answering:
        # what it filled is counted (never: a later restart refused on it for good)
        assert sorted(counted) == sorted(traded), (journaled.states, counted, traded)
