"""Live order types through the real ccxt client against the loopback emulator.

Limit orders (post-only, time in force), the fallback of a resting limit order to a
market order, exchange-side stop-loss and take-profit orders, the journaled fallback
when the exchange cannot take a stop, and a stop that fills while the runner is down,
reconciled from the journal at restart.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.core.costs import VenueCosts
from tradeloom.domain import Bar, Order
from tradeloom.journal import RunIdentity, StopFellBack, open_journal, read_events
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.live.orders.order_journal import JournalOrders
from tradeloom.live.recovery.handover import track_pending
from tradeloom.live.recovery.journal_state import read_state
from tradeloom.live.recovery.reconcile import sent_request
from tradeloom.live.recovery.replay_venue import ReplayVenue
from tradeloom.plugins.protocols_orders.client_ids import client_order_id, derived_client_id
from tradeloom.plugins.protocols_orders.order_events import (
    StopFallback,
    Transition,
    VenueEvent,
    VenueOrder,
)
from tradeloom.plugins.protocols_orders.order_params import LimitOrderParams, OrdersParams
from tradeloom.plugins.protocols_orders.order_state import OrderState
from tradeloom.plugins.protocols_orders.order_terms import OrderTerms, ccxt_arguments
from tradeloom.runtime.retrying import RetriesExhausted, RetryPolicy
from tradeloom.testing import ExchangeEmulator, Reject, ServerError

S = OrderState
SYMBOL = "BTC/USDT"
POST = "POST /api/v3/order"
CANCEL = "DELETE /api/v3/order"

# open, high, low, close: bar 2 trades down to 95, bar 3 gaps down to 90, bar 5 up to 104.
ROWS = [
    (100, 101, 99, 100),
    (100, 102, 98, 99),
    (99, 100, 95, 96),
    (90, 92, 89, 91),
    (91, 93, 90, 92.8),
    (93, 104, 92, 103),
    (103, 104, 102, 103),
]


def _bars() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["open", "high", "low", "close"], dtype=float)
    frame["volume"] = 50.0
    frame.index = pd.date_range("2024-01-01", periods=len(ROWS), freq="1h", tz="UTC")
    return frame


BARS = _bars()


class Recorder:
    """An `OrderJournal` that keeps intents and events in memory."""

    def __init__(self) -> None:
        self.intents: list[VenueOrder] = []
        self.events: list[VenueEvent] = []

    def before_send(self, order: VenueOrder) -> None:
        self.intents.append(order)

    def record(self, event: VenueEvent) -> None:
        self.events.append(event)


@pytest.fixture
def emulator() -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator({SYMBOL: BARS}, {"USDT": 10_000, "BTC": 5}, start=1) as emu:
        yield emu
        assert emu.wait_idle()
        assert emu.errors == []


def venue(emulator: ExchangeEmulator, journal: Recorder | JournalOrders | None = None) -> CcxtVenue:
    return CcxtVenue(
        emulator.client(timeout=5000),
        SYMBOL,
        journal if journal is not None else Recorder(),
        bar_clock=lambda: emulator.exchange.position,
        retry=RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=0.1),
        sleep=lambda _: None,
        settle_seconds=0.0,
    )


def order(n: int, side: int = -1, quantity: float = 1.0) -> Order:
    bar = 1
    return Order(
        client_order_id("btc_rf", "run1", n),
        bar,
        BARS.index[bar],
        side,
        quantity,
        "ENTRY" if side > 0 else "STOP_LOSS",
        float(BARS["close"].iloc[bar - 1]),
    )


def posted(emulator: ExchangeEmulator, client_id: str) -> list[dict[str, str]]:
    return [
        dict(r.params)
        for r in emulator.requests(POST)
        if r.params.get("newClientOrderId") == client_id
    ]


# --- terms and ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (OrderTerms(), ("market", {})),
        (OrderTerms("limit", 99.5), ("limit", {"timeInForce": "GTC"})),
        (OrderTerms("limit", 99.5, time_in_force="IOC"), ("limit", {"timeInForce": "IOC"})),
        (OrderTerms("limit", 99.5, post_only=True), ("limit", {"postOnly": True})),
        (OrderTerms("stop_loss", trigger_price=97.0), ("market", {"stopLossPrice": 97.0})),
        (OrderTerms("take_profit", trigger_price=104.0), ("market", {"takeProfitPrice": 104.0})),
    ],
)
def test_terms_become_ccxt_unified_arguments(
    terms: OrderTerms, expected: tuple[str, dict[str, object]]
) -> None:
    assert ccxt_arguments(terms) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "limit"}, r"^a limit order needs limit_price > 0, was None$"),
        (
            {"type": "limit", "limit_price": -1.0},
            r"^a limit order needs limit_price > 0, was -1.0$",
        ),
        ({"type": "stop_loss"}, r"^a stop_loss order needs trigger_price > 0, was None$"),
        ({"limit_price": 5.0}, r"^a market order has no limit_price, was 5.0$"),
        (
            {"type": "stop_loss", "trigger_price": 9.0, "limit_price": 5.0},
            r"^a stop_loss order has no limit_price, was 5.0$",
        ),
        ({"post_only": True}, r"^post_only is a limit order's, not a market order's$"),
        (
            {"type": "limit", "limit_price": 5.0, "post_only": True, "time_in_force": "IOC"},
            r"^post_only needs time_in_force GTC, was IOC$",
        ),
        ({"time_in_force": "FOK"}, r"^time_in_force is a limit order's, not a market order's$"),
    ],
)
def test_impossible_terms_are_refused_with_what_was_wrong(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        OrderTerms(**kwargs)  # type: ignore[arg-type]


def test_derived_ids_are_deterministic_valid_and_keep_the_unique_tail() -> None:
    parent = client_order_id("btc_rf", "run1", 7)
    assert derived_client_id(parent, "c2") == "btc_rf-run1-000007-c2"
    assert derived_client_id(parent, "c2") == derived_client_id(parent, "c2")
    long_parent = client_order_id("a_very_long_strategy_name_indeed", "0123456789ab", 42)
    assert len(long_parent) == 36
    child = derived_client_id(long_parent, "c10")
    assert len(child) == 36 and child.endswith("-0123456789ab-000042-c10")
    assert len({derived_client_id(long_parent, f"c{n}") for n in range(1, 50)}) == 49
    with pytest.raises(
        ValueError, match=r"^client id suffix 'c-1' must be 1 to 8 of \[a-zA-Z0-9\]$"
    ):
        derived_client_id(parent, "c-1")


# --- limit orders ----------------------------------------------------------------------


def test_a_post_only_limit_goes_as_limit_maker_and_rests_journaled_as_post_only(
    emulator: ExchangeEmulator,
) -> None:
    journal = Recorder()
    v = venue(emulator, journal)
    sent = order(1, side=1, quantity=0.5)
    v.submit(sent, terms=OrderTerms("limit", 96.004, post_only=True))
    [params] = posted(emulator, sent.id)
    assert (params["type"], params["price"], "timeInForce" in params) == (
        "LIMIT_MAKER",
        "96",
        False,
    )
    [intent] = journal.intents
    assert (intent.type, intent.price, intent.post_only) == ("limit", 96.0, True)
    assert v.order(sent.id).state is S.ACCEPTED
    emulator.advance()  # bar 1: low 98, resting
    assert v.poll().fills == ()
    emulator.advance()  # bar 2 trades down to 95: the resting buy fills as maker at 96
    [trade] = v.poll().fills
    assert trade.fill.liquidity == "maker"  # the exchange's takerOrMaker, as it said it
    view = v.order(sent.id)
    assert (view.state, view.filled) == (S.FILLED, 0.5)


def test_a_post_only_limit_that_would_take_is_rejected_and_never_falls_back(
    emulator: ExchangeEmulator,
) -> None:
    v = venue(emulator)
    sent = order(1, side=1, quantity=0.5)
    report = v.submit(sent, terms=OrderTerms("limit", 150.0, post_only=True))
    [rejection] = report.rejections
    assert rejection.code == "VENUE_REJECTED"
    assert rejection.message.endswith("Order would immediately match and take.")
    assert report.stop_fallbacks == ()
    assert v.fall_back_to_market(sent.id).transitions == ()
    assert posted(emulator, derived_client_id(sent.id, "f")) == []


def test_an_unfilled_limit_falls_back_to_one_market_order_for_the_rest(
    emulator: ExchangeEmulator,
) -> None:
    v = venue(emulator)
    sent = order(1, side=1, quantity=0.5)
    v.submit(sent, terms=OrderTerms("limit", 90.5))
    report = v.fall_back_to_market(sent.id)
    [cancellation] = report.cancellations
    assert (cancellation.order_id, cancellation.reason, cancellation.remaining) == (
        sent.id,
        "LIMIT_FALLBACK",
        0.5,
    )
    fallback_id = derived_client_id(sent.id, "f")
    [params] = posted(emulator, fallback_id)
    assert (params["type"], params["quantity"]) == ("MARKET", "0.5")
    assert (v.order(sent.id).state, v.order(fallback_id).state) == (S.CANCELLED, S.FILLED)
    assert [t.fill.liquidity for t in report.fills] == ["taker"]  # the market order took
    # The cancel was confirmed before the market order went: never two live orders.
    kinds = [r.route for r in emulator.requests() if r.route in (POST, CANCEL)]
    assert kinds == [POST, CANCEL, POST]
    again = v.fall_back_to_market(sent.id)
    assert again.transitions == () and len(posted(emulator, fallback_id)) == 1


def test_a_fallback_whose_cancel_is_not_confirmed_sends_nothing(
    emulator: ExchangeEmulator,
) -> None:
    v = venue(emulator)
    sent = order(1, side=1, quantity=0.5)
    v.submit(sent, terms=OrderTerms("limit", 90.5))
    emulator.faults.next(CANCEL, ServerError(503), times=2)
    with pytest.raises(RetriesExhausted):
        v.fall_back_to_market(sent.id)
    assert v.order(sent.id).state is S.ACCEPTED
    assert posted(emulator, derived_client_id(sent.id, "f")) == []
    v.fall_back_to_market(sent.id)  # the next bar: confirmed, then sent
    assert len(posted(emulator, derived_client_id(sent.id, "f"))) == 1


def test_a_limit_the_journal_has_accepted_falls_back_after_a_restart_whose_lookup_missed(
    emulator: ExchangeEmulator, tmp_path: Path
) -> None:
    # The journal has a resting limit order accepted when the runner dies. The restart's
    # lookup by client id finds nothing (an exchange that archives, or lags: here "Order
    # does not exist." once): the order stays accepted, as the journal has it, and its
    # fallback cancels it and sends the rest as one market order. Before, the miss
    # rejected it ORDER_NEVER_ARRIVED ("never placed", journaled accepted -> rejected)
    # and the fallback returned early: the rest of the intent was never sent.
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run1", "live"), flush_every=1)
    before = venue(emulator, JournalOrders(journal, lambda: 1, symbol=SYMBOL))
    sent = order(1, side=1, quantity=0.5)
    before.submit(sent, terms=OrderTerms("limit", 90.5))
    journal.close()
    del before  # the runner is down from here

    state = read_state(path)
    assert state.order_states[sent.id] == "accepted"
    recorded = Recorder()
    after = venue(emulator, recorded)
    after.recover(
        sent_request(state.sent[sent.id]),
        sent_at=state.sent[sent.id].sent_at,
        journaled=state.order_states[sent.id],
    )
    emulator.faults.next("GET /api/v3/order", Reject(-2013, "Order does not exist."))
    missed = after.resolve_unknown()
    assert (missed.rejections, after.order(sent.id).state) == ((), S.ACCEPTED)
    report = after.fall_back_to_market(sent.id)
    assert [(c.order_id, c.remaining) for c in report.cancellations] == [(sent.id, 0.5)]
    fallback_id = derived_client_id(sent.id, "f")
    [params] = posted(emulator, fallback_id)
    assert (params["type"], params["quantity"]) == ("MARKET", "0.5")
    moves = [
        (e.journaled_from or e.previous.value, e.state.value)
        for e in recorded.events
        if isinstance(e, Transition) and e.client_id == sent.id
    ]
    assert moves == [("accepted", "cancelled")]


# --- exchange-side stops -----------------------------------------------------------------


def test_a_stop_loss_rests_at_the_exchange_and_fills_at_its_trigger(
    emulator: ExchangeEmulator,
) -> None:
    journal = Recorder()
    v = venue(emulator, journal)
    stop = order(1)
    report = v.submit(stop, terms=OrderTerms("stop_loss", trigger_price=97.004))
    [params] = posted(emulator, stop.id)
    assert (params["type"], params["stopPrice"], params["quantity"]) == ("STOP_LOSS", "97", "1")
    assert report.stop_fallbacks == () and v.order(stop.id).state is S.ACCEPTED
    assert (journal.intents[0].type, journal.intents[0].trigger_price) == ("stop_loss", 97.0)
    emulator.advance()  # bar 1: low 98, not reached
    assert v.poll().fills == ()
    emulator.advance()  # bar 2: low 95, triggered at 97
    [trade] = v.poll().fills
    assert (trade.fill.price, trade.fill.quantity, trade.fill.side) == (97.0, 1.0, -1)
    assert v.order(stop.id).state is S.FILLED


def test_a_take_profit_rests_until_the_price_rises_to_it(
    emulator: ExchangeEmulator,
) -> None:
    v = venue(emulator)
    target = order(1)
    v.submit(target, terms=OrderTerms("take_profit", trigger_price=102.5))
    [params] = posted(emulator, target.id)
    assert (params["type"], params["stopPrice"]) == ("TAKE_PROFIT", "102.5")
    emulator.advance(4)  # bars 1 to 4 stay below 94
    assert v.poll().fills == ()
    emulator.advance()  # bar 5 trades up to 104
    [trade] = v.poll().fills
    assert trade.fill.price == 102.5


def test_a_stop_the_exchange_lacks_falls_back_journaled_and_is_never_sent(
    emulator: ExchangeEmulator,
) -> None:
    journal = Recorder()
    v = venue(emulator, journal)
    v.client.has = {**v.client.has, "createStopLossOrder": False}
    stop = order(1)
    report = v.submit(stop, terms=OrderTerms("stop_loss", trigger_price=97.0))
    assert posted(emulator, stop.id) == [] and journal.intents == []
    expected = StopFallback(
        stop.id, "stop_loss", 97.0, "STOP_UNSUPPORTED", "ccxt's binance has no createStopLossOrder"
    )
    assert report.stop_fallbacks == (expected,)
    assert expected in journal.events
    assert v.order(stop.id).state is S.REJECTED


def test_a_market_without_the_stop_type_falls_back_naming_the_types_it_takes(
    emulator: ExchangeEmulator,
) -> None:
    v = venue(emulator)
    v.client.load_markets()
    info = v.client.markets[SYMBOL]["info"]
    info["orderTypes"] = ["LIMIT", "LIMIT_MAKER", "MARKET"]
    [fallback] = v.submit(
        order(1), terms=OrderTerms("take_profit", trigger_price=104.0)
    ).stop_fallbacks
    assert (fallback.code, fallback.reason) == (
        "STOP_UNSUPPORTED",
        "binance BTC/USDT takes order types [LIMIT, LIMIT_MAKER, MARKET], not TAKE_PROFIT",
    )
    assert emulator.requests(POST) == []


def test_a_stop_the_exchange_rejects_falls_back_with_its_message(
    emulator: ExchangeEmulator,
) -> None:
    v = venue(emulator)
    emulator.faults.next(POST, Reject(-2010, "Stop price would trigger immediately."))
    [fallback] = v.submit(
        order(1), terms=OrderTerms("stop_loss", trigger_price=97.0)
    ).stop_fallbacks
    assert fallback.code == "VENUE_REJECTED"
    assert fallback.reason.endswith("Stop price would trigger immediately.")


def test_a_stop_filled_while_the_runner_was_down_is_reconciled_at_restart(
    emulator: ExchangeEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run1", "live"), flush_every=1)
    before = venue(emulator, JournalOrders(journal, lambda: 1, symbol=SYMBOL))
    stop = order(1)
    before.submit(stop, terms=OrderTerms("stop_loss", trigger_price=97.0))
    journal.close()
    del before  # the runner is down from here

    emulator.advance(2)  # bar 2 trades through 97: the stop fills at the exchange
    assert emulator.exchange.orders()[0].status == "FILLED"

    sent = [e for e in read_events(path) if e.KIND == "order_sent"]
    [request] = [sent_request(e) for e in sent]  # type: ignore[arg-type]
    assert (request.type, request.trigger_price) == ("stop_loss", 97.0)
    after_journal = Recorder()
    after = venue(emulator, after_journal)
    after.recover(request, sent_at=0.0)
    report = after.resolve_unknown()
    [trade] = report.fills
    assert (trade.fill.order_id, trade.fill.price, trade.fill.quantity) == (stop.id, 97.0, 1.0)
    assert after.order(stop.id).state is S.FILLED
    assert posted(emulator, stop.id) != [] and len(posted(emulator, stop.id)) == 1
    assert after.poll().fills == ()  # counted once
    moves = [e for e in after_journal.events if isinstance(e, Transition)]
    assert moves[-1].state is S.FILLED


def test_the_journal_keeps_a_stop_fallback_row(emulator: ExchangeEmulator, tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run1", "live"), flush_every=1)
    v = venue(emulator, JournalOrders(journal, lambda: 3, symbol=SYMBOL))
    v.client.has = {**v.client.has, "createTakeProfitOrder": False}
    v.submit(order(1), terms=OrderTerms("take_profit", trigger_price=104.0))
    journal.close()
    [row] = [e for e in read_events(path) if isinstance(e, StopFellBack)]
    assert (row.bar, row.symbol, row.order_type, row.trigger_price, row.code) == (
        3,
        SYMBOL,
        "take_profit",
        104.0,
        "STOP_UNSUPPORTED",
    )
    assert row.reason == "ccxt's binance has no createTakeProfitOrder"
    assert not math.isnan(row.trigger_price)


# --- the engine's venue: the core's limit orders, their fallback and expiry -------------------


def bar(index: int) -> Bar:
    o, h, low, c = ROWS[index]
    return Bar(index, BARS.index[index], o, h, low, c, 50.0, SYMBOL)


def limit_order(n: int, price: float, quantity: float = 0.5) -> Order:
    """A buy the core decided at bar 0's close, as a limit order."""
    return Order(
        client_order_id("btc_rf", "run1", n),
        0,
        BARS.index[0],
        1,
        quantity,
        "ENTRY",
        100.0,
        kind="limit",
        limit_price=price,
    )


def exchange_venue(emulator: ExchangeEmulator, **limit: object) -> ExchangeVenue:
    orders = OrdersParams(type="limit", limit=LimitOrderParams(**limit))  # type: ignore[arg-type]
    v = venue(emulator)
    v.client.load_markets()
    return ExchangeVenue(
        v,
        initial_cash=10_000.0,
        costs=VenueCosts.of(0.001),
        on_trouble=lambda *_: None,
        orders=orders,
    )


def test_the_engine_venue_sends_the_cores_limit_with_the_files_post_only(
    emulator: ExchangeEmulator,
) -> None:
    ex = exchange_venue(emulator, post_only=True)
    sent = limit_order(1, 96.0)
    ex.submit(sent)
    [params] = posted(emulator, sent.id)
    assert (params["type"], params["price"]) == ("LIMIT_MAKER", "96")
    assert [o.id for o in ex.pending()] == [sent.id]
    emulator.advance(2)  # bar 2 trades down to 95
    [fill] = ex.match(bar(3), "open")
    assert (fill.order_id, fill.price, fill.bar) == (sent.id, 96.0, 3)
    assert ex.pending() == []


def test_the_engine_sees_one_order_when_its_limit_falls_back_to_market(
    emulator: ExchangeEmulator,
) -> None:
    ex = exchange_venue(emulator, fallback_after_bars=1)
    sent = limit_order(1, 90.5)
    ex.submit(sent)
    assert ex.match(bar(1), "open") == []  # rested through no bar yet
    emulator.advance()  # bar 1: low 98, unfilled
    # bar 2's open: the limit is cancelled, then the rest goes at market and fills there
    [fill] = ex.match(bar(2), "open")
    fallback_id = derived_client_id(sent.id, "f")
    assert [p["type"] for p in posted(emulator, fallback_id)] == ["MARKET"]
    assert (fill.order_id, fill.price, fill.bar) == (sent.id, 99.0, 2)
    assert fill.quantity == pytest.approx(0.5 * 0.999)  # net of the fee Binance takes in BTC
    assert ex.pending() == []
    assert emulator.exchange.orders()[0].status == "CANCELED"
    emulator.advance()
    assert ex.match(bar(3), "open") == []
    ex.match(bar(4), "open")
    assert len(posted(emulator, fallback_id)) == 1


def test_a_resting_limit_expires_after_its_bars(emulator: ExchangeEmulator) -> None:
    ex = exchange_venue(emulator, expire_after_bars=1)
    sent = limit_order(1, 90.5)
    ex.submit(sent)
    emulator.advance()
    [cancellation] = ex.match(bar(2), "open")
    assert (cancellation.order_id, cancellation.reason, cancellation.remaining) == (
        sent.id,
        "LIMIT_EXPIRED",
        0.5,
    )
    assert ex.pending() == [] and emulator.exchange.orders()[0].status == "CANCELED"


def test_the_venue_is_quiet_at_an_open_only_while_it_works_and_owes_nothing(
    emulator: ExchangeEmulator,
) -> None:
    ex = exchange_venue(emulator, post_only=True)
    assert ex.quiet_at_open() and ex.pending() == []
    sent = limit_order(1, 96.0)
    ex.submit(sent)
    assert not ex.quiet_at_open()  # the limit works at the exchange
    assert ex.match(bar(1), "open") == [] and not ex.quiet_at_open()
    emulator.advance(2)  # bar 2 trades down to 95: it fills
    assert not ex.quiet_at_open()  # its fill is owed to the engine
    [fill] = ex.match(bar(3), "open")
    assert fill.order_id == sent.id
    # finished and reported: asking again finds nothing, as the engine then assumes
    assert ex.quiet_at_open()
    assert ex.match(bar(4), "open") == [] and ex.pending() == []
    assert ex.quiet_at_open()


# --- time in force -------------------------------------------------------------------------


@pytest.fixture
def half_fills() -> Iterator[ExchangeEmulator]:
    """An emulator that fills at most half an order's quantity per bar."""
    with ExchangeEmulator(
        {SYMBOL: BARS}, {"USDT": 10_000, "BTC": 5}, start=1, fill_fraction=Decimal("0.5")
    ) as emu:
        yield emu
        assert emu.wait_idle()
        assert emu.errors == []


def test_an_ioc_limit_fills_what_it_can_at_once_and_the_exchange_expires_the_rest(
    half_fills: ExchangeEmulator,
) -> None:
    v = venue(half_fills)
    sent = order(1, side=1, quantity=1.0)
    report = v.submit(sent, terms=OrderTerms("limit", 101.0, time_in_force="IOC"))
    [params] = posted(half_fills, sent.id)
    assert (params["type"], params["timeInForce"]) == ("LIMIT", "IOC")
    [trade] = report.fills
    assert (trade.fill.quantity, trade.fill.price) == (0.5, 100.0)  # marketable at the open
    [cancellation] = report.cancellations
    assert (cancellation.reason, cancellation.remaining) == ("EXPIRED", 0.5)
    assert v.order(sent.id).state is S.CANCELLED
    assert half_fills.exchange.open_orders() == []  # nothing rests, nothing stays locked
    assert float(half_fills.exchange.balance("USDT").locked) == 0.0


def test_an_ioc_limit_that_is_not_marketable_expires_whole(emulator: ExchangeEmulator) -> None:
    v = venue(emulator)
    sent = order(1, side=1, quantity=1.0)
    report = v.submit(sent, terms=OrderTerms("limit", 95.0, time_in_force="IOC"))
    assert report.fills == ()
    [cancellation] = report.cancellations
    assert (cancellation.reason, cancellation.remaining) == ("EXPIRED", 1.0)


def test_a_fok_limit_fills_whole_at_once_or_expires_whole(
    emulator: ExchangeEmulator, half_fills: ExchangeEmulator
) -> None:
    whole = venue(emulator)
    sent = order(1, side=1, quantity=1.0)
    report = whole.submit(sent, terms=OrderTerms("limit", 101.0, time_in_force="FOK"))
    [params] = posted(emulator, sent.id)
    assert params["timeInForce"] == "FOK"
    assert [t.fill.quantity for t in report.fills] == [1.0]
    assert whole.order(sent.id).state is S.FILLED
    # half the quantity is all the exchange can fill now: nothing fills, all expires
    part = venue(half_fills)
    refused = order(2, side=1, quantity=1.0)
    report = part.submit(refused, terms=OrderTerms("limit", 101.0, time_in_force="FOK"))
    assert report.fills == ()
    [cancellation] = report.cancellations
    assert (cancellation.reason, cancellation.remaining) == ("EXPIRED", 1.0)
    assert half_fills.exchange.trades() == []


# --- restarts: what the journal ended stays ended ------------------------------------------


def test_a_limit_the_engine_ended_before_a_restart_gets_no_fallback_resumed(
    emulator: ExchangeEmulator,
) -> None:
    # The engine cancelled its resting limit order (a replacement) and heard the end before
    # the kill; the journal has it ``cancelled``, its venue owing trades, so the restart looks
    # it up. Found cancelled after its fallback was due, it is no fallback a killed process
    # had begun: nothing is sent. Before, the fallback's resume ran ahead of the check that
    # the engine had ended it, and sent the rest as a market order the engine never asked for.
    first = exchange_venue(emulator, fallback_after_bars=1)
    sent = limit_order(1, 90.5)
    first.submit(sent)
    emulator.advance()
    assert first.cancel(sent.id, bar(1), "REPLACED") is not None
    (intent,) = first.venue.journal.intents  # type: ignore[attr-defined]
    sent_at = first.venue.sent_at(sent.id)
    assert sent_at is not None

    second = exchange_venue(emulator, fallback_after_bars=1)
    second.venue.recover(intent, sent_at=sent_at, journaled="cancelled")
    second.ended_before(sent.id)
    emulator.advance(2)
    assert second.match(bar(3), "open") == []
    assert posted(emulator, derived_client_id(sent.id, "f")) == []
    assert len(posted(emulator, sent.id)) == 1


def test_a_fallback_the_journal_has_rejected_is_told_to_the_engine_and_never_looked_up(
    emulator: ExchangeEmulator, tmp_path: Path
) -> None:
    # The limit order fell back; the venue refused its market order for the rest, and the
    # run died before the engine heard. The restart tells the engine what the journal says
    # the venue said (``REJECTED`` with its code, for what the fallback left), and does not
    # ask the venue about an order it refused. Before, the fallback was tracked ``unknown``:
    # looked up by its client id, then rejected again as ORDER_NEVER_ARRIVED ("never placed").
    path = tmp_path / "journal.sqlite"
    journal = open_journal(path, RunIdentity("s", "run1", "live"), flush_every=1)
    journaled = venue(emulator, JournalOrders(journal, lambda: 1, symbol=SYMBOL))
    journaled.client.load_markets()
    first = ExchangeVenue(
        journaled,
        initial_cash=10_000.0,
        costs=VenueCosts.of(0.001),
        on_trouble=lambda *_: None,
        orders=OrdersParams(type="limit", limit=LimitOrderParams(fallback_after_bars=1)),
    )
    sent = limit_order(1, 90.5)
    first.submit(sent)
    emulator.advance()
    emulator.faults.next(POST, Reject(-2010, "Account has insufficient balance."))
    [told] = first.match(bar(2), "open")  # what the engine would have heard
    journal.close()
    del first, journaled  # the runner is down from here

    fallback_id = derived_client_id(sent.id, "f")
    state = read_state(path)
    assert (state.order_states[sent.id], state.order_states[fallback_id]) == (
        "cancelled",
        "rejected",
    )
    second = exchange_venue(emulator, fallback_after_bars=1)
    replayed = ReplayVenue(state, initial_cash=10_000.0, costs=VenueCosts.of(0.001), dust=0.0)
    replayed.submit(sent)  # the engine had not heard: its order is pending after the replay
    track_pending(state, replayed, lambda _: second)
    emulator.advance()
    [cancellation] = second.match(bar(3), "open")
    assert (cancellation.order_id, cancellation.reason, cancellation.remaining) == (
        told.order_id,
        told.reason,
        told.remaining,
    )
    assert told.reason.startswith("REJECTED")
    asked = [
        r
        for r in emulator.requests("GET /api/v3/order")
        if r.params.get("origClientOrderId") == fallback_id
    ]
    assert asked == []
    assert len(posted(emulator, fallback_id)) == 1
    assert second.pending() == [] and second.match(bar(4), "open") == []
