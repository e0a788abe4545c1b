"""Orders on a real exchange through a ccxt client, sent once and never lost.

`CcxtVenue` trades one symbol. Its promises, in the order an order meets them:

1. **Checked before sending.** The client order id must be valid at the venue
   (`check_client_id`) and new to this venue object. The quantity is rounded with
   ccxt's ``amount_to_precision`` and a limit price with ``price_to_precision``; an
   order below the market's minimum amount or notional, above its maximum amount,
   or with a limit price outside the market's range, is refused here: a
   `Rejection` is journaled and nothing is sent
   (`tradeloom.live.orders.order_checks`).
2. **Journaled before sending.** `OrderJournal.before_send` gets the rounded
   order and must return (durably) before the request leaves.
3. **Sent once.** ``create_order`` is called exactly once, with the client order
   id as ``clientOrderId`` (Binance's ``newClientOrderId``). ccxt's own retry is
   switched off (its ``maxRetriesOnFailure`` option set to 0 on the client and
   passed as 0 with the call, which overrides any per-endpoint setting), and a
   client whose HTTP session retries requests is refused at construction.
4. **Classified.** An answer makes the order ``ACCEPTED`` (and counts any fills
   it carries); a refusal makes it ``REJECTED`` with the venue's code and message;
   a lost answer makes it ``UNKNOWN`` (see `tradeloom.live.orders.ccxt_errors`
   for which exception is which).
5. **Resolved, not resent.** `CcxtVenue.resolve_unknown` looks every unknown order
   up by its client order id. Found, it takes the state the venue gives and its
   trades. Not found, it is ``REJECTED`` as never arrived, but only once
   ``settle_seconds`` have passed since its send came back without an answer: until
   then the request may still be in flight (Binance drops a request whose signed
   timestamp is older than ``recvWindow`` when it arrives, so the default is the
   client's ``recvWindow`` plus 5 s for clock skew). The window starts when the send
   came back, not when it began: ccxt signs the request after its rate limiter has
   waited, so a request may be signed, and reach the venue, later than the send began
   by any length of that wait; it cannot be signed after the send came back.
6. **Filled exactly once.** `CcxtVenue.poll` reads new trades (Binance: by trade
   id from the last one seen, page by page; other venues: since the last trade's
   time) and the status of every working order; a trade id counted before is
   ignored, an overfill is refused and reported, never applied. An order whose
   status shows more filled than its counted trades has its own trades fetched
   (``fetchOrderTrades``, or ``fetchMyTrades`` from the order's time at the venue).

What the venue holds of each order, and how an answer, a status or a trade moves it, is
the base's (`tradeloom.live.orders.ccxt_tracking.TrackedOrders`); this module sends,
polls, looks up and cancels.

Every ccxt call goes through `MarketCalls` (`CcxtVenue.calls`): what the exchange
can do for the market's type, asked of ``has`` and of what it is known to refuse, with
a fallback where it has not got a method (an order's trades read with
``fetchMyTrades`` from its time where ``fetchOrderTrades`` is missing, as for Binance
USD-M swaps; `tradeloom.live.orders.ccxt_capabilities`).

Reads (trades, orders, open orders, balance, ticker, markets) and cancels (which
are idempotent) are retried on network-side errors with capped exponential
backoff and jitter (`tradeloom.runtime.retrying`), and never before a rate limit's
``Retry-After`` has passed, however long it is; the sleep, the random draw and the
clock are injectable. A read that fails every attempt raises `RetriesExhausted`;
what the call counted before it (a poll's new trades, a lookup's order) stays
counted and is reported by the next poll, lookup or cancel.

Fills are stamped with ``bar_clock()``, the bar in progress when the venue
learned of them, and with the venue's trade time. A triggered stop (``kind:
stop``) is sent as a market order. The venue is not thread-safe: one caller.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace as dataclass_replace
from typing import Any

import ccxt
import pandas as pd

from tradeloom.domain import Cancellation, Order
from tradeloom.live.orders.ccxt_answers import (
    _ccxt_request,
    _joined,
    _liquidity,
    _number,
    _refuse_http_retries,
    _trade_order,
)
from tradeloom.live.orders.ccxt_capabilities import Capabilities, MarketCalls
from tradeloom.live.orders.ccxt_errors import VenueMessage, is_retryable_read
from tradeloom.live.orders.ccxt_tracking import _FINISHED, TrackedOrders, _Collector, _Tracked
from tradeloom.live.orders.order_batch import BatchJournal, OrderBatch
from tradeloom.live.orders.order_checks import prepare_order
from tradeloom.live.orders.order_checks import rejection as order_rejection
from tradeloom.plugins.protocols_orders.client_ids import check_client_id, derived_client_id
from tradeloom.plugins.protocols_orders.order_events import (
    OrderJournal,
    OrderView,
    VenueOrder,
    VenueReport,
)
from tradeloom.plugins.protocols_orders.order_state import (
    FILL_TOLERANCE,
    OrderLifecycle,
    OrderState,
)
from tradeloom.plugins.protocols_orders.order_terms import (
    STOP_TYPES,
    OrderTerms,
    unsupported_reason,
)
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.redaction import guard_client
from tradeloom.runtime.retrying import (
    RetriesExhausted,
    RetryPolicy,
    call_with_retries,
    retry_after_seconds,
)

__all__ = ["LOST_AFTER_LOOKUPS", "ORDER_LOST", "RECONCILED_TRADE", "CcxtVenue", "RetriesExhausted"]

_log = logger("tradeloom.execution")

_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)
_ACKNOWLEDGED = frozenset(
    {
        OrderState.ACCEPTED,
        OrderState.PARTIALLY_FILLED,
        OrderState.FILLED,
        OrderState.CANCELLED,
        "adopted",  # a restart found it at the venue beyond the journal
    }
)
"""Journaled states in which the venue had acknowledged the order: a restart tracks it
acknowledged, never as an order that may not have arrived (`CcxtVenue.recover`)."""
_TRADE_PAGE = 1000
LOST_AFTER_LOOKUPS = 5
"""Lookups by client id that find an order a restart tracks acknowledged, without a
venue id, nowhere before it is ended ``ORDER_LOST`` (two a bar: the lookup, the poll's):
an exchange that archives finished orders, or finds only open ones by client id, will
not find it later, and its trades cannot be told apart without the venue's id."""
ORDER_LOST = "ORDER_LOST"
"""The cancellation reason of an order ended after `LOST_AFTER_LOOKUPS` lookups found it
nowhere (declared in `tradeloom.core.codes.CANCEL_NAMES`): what it filled, if anything,
is the account's, which a reconcile books to it (`book_unaccounted`): a restart's, or the
run's own at once when the venue `defers_lost`."""
RECONCILED_TRADE = "reconciled-"
"""The trade id prefix of what a reconcile (a restart's, or mid-run) booked to an order
whose trades the venue cannot tell (`CcxtVenue.book_unaccounted`): the balance's word,
with the market's fee, not a venue trade."""
_SKEW_SECONDS = 5.0
_READ_RETRY = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=10.0)
_NOTHING = VenueReport()
"""What a call that found nothing reports (frozen: one for every such call; a tick's
venue is asked several times, most often for nothing)."""


def _restated(tracked: _Tracked) -> bool:
    """Whether a restart tracks the order as its journal has it, the venue not read since."""
    return tracked.restated and not tracked.life.terminal


def _cancellable(tracked: _Tracked) -> bool:
    """Whether a cancel is sent for the order: working, and not ended in the journal (a
    restart's order the journal has cancelled, its venue owing trades, is looked up)."""
    life = tracked.life
    return life.state in _WORKING and tracked.entered not in _FINISHED


class CcxtVenue(TrackedOrders):
    """Send, track, resolve and cancel one symbol's orders through a ccxt client.

    Args:
        client: A synchronous ccxt exchange with API keys. Its ``maxRetriesOnFailure``
            option is set to 0, and its ``verbose`` output goes to the redacted logs.
        symbol: The unified symbol traded (``BTC/USDT``).
        journal: Where intents and events are made durable.
        bar_clock: Returns the index of the bar in progress; stamped on fills and
            cancellations.
        retry: How reads are retried (default: 5 attempts, waits from 0.5 s to 10 s).
        sleep: Waits that many seconds (between read attempts).
        draw: Uniform numbers in [0, 1) for the retry jitter.
        clock: Seconds since the epoch; times unknown orders and stamps cancellations.
        settle_seconds: How long after a send came back unanswered a lookup that finds
            nothing means the order never arrived (default: the client's
            ``recvWindow`` + 5 s).
        tolerance: Relative slack on an order's quantity for float sums of fills.
        after_trade_id: The last trade id already journaled (a restart); `poll` reads
            the trades after it. None: the first poll reads the latest page.
        batch: The account's batch of orders, shared by the venues of one client
            (``execution.orders.batch``; `tradeloom.live.orders.order_batch`): an order
            submitted ``batched`` is journaled at once and sent with the others of its
            bar at `flush_batch`. None: every order is sent as it is submitted.
        lost_after: Lookups by client id that find a restart's acknowledged order
            without a venue id nowhere before it is ended ``ORDER_LOST``
            (`LOST_AFTER_LOOKUPS`).

    Raises:
        ValueError: The client's HTTP session retries requests, or ``symbol`` is empty.
    """

    def __init__(
        self,
        client: ccxt.Exchange,
        symbol: str,
        journal: OrderJournal,
        *,
        bar_clock: Callable[[], int],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        settle_seconds: float | None = None,
        tolerance: float = FILL_TOLERANCE,
        after_trade_id: str | None = None,
        batch: OrderBatch | None = None,
        lost_after: int = LOST_AFTER_LOOKUPS,
    ) -> None:
        if not symbol:
            raise ValueError("the venue needs a symbol, e.g. 'BTC/USDT'")
        _refuse_http_retries(client)
        client.options["maxRetriesOnFailure"] = 0
        self.client = guard_client(client)
        self.symbol = symbol
        self.journal = journal
        self.retry = retry or _READ_RETRY
        self._sleep = sleep
        self.sleep = sleep
        """Waits between attempts (and a restart's wait for a request's window)."""
        self._draw = draw
        self.settle_seconds = (
            settle_seconds
            if settle_seconds is not None
            else float(client.options.get("recvWindow", 10_000)) / 1000.0 + _SKEW_SECONDS
        )
        self._bar_clock = bar_clock
        self._clock = clock
        self.clock = clock
        """Seconds since the epoch: when orders are sent, and ``settle_seconds`` runs."""
        self._tolerance = tolerance
        self._orders: dict[str, _Tracked] = {}
        self._unsettled: dict[str, _Tracked] = {}
        self._rank: dict[str, int] = {}  # each order's place in `_orders`
        self._tracked = itertools.count()
        """The orders not known finished with every trade counted, in submission order:
        a tick asks about these, not about every order of the run (`_open`)."""
        self._by_venue_id: dict[str, str] = {}
        self._uses_trade_ids = str(getattr(client, "id", "")).startswith("binance")
        self._next_trade_id: int | None = None
        self._since_ms: int | None = None
        # What a poll, lookup or cancel counted before a read failed every attempt:
        # the next of them reports it (its trades are counted, they must be reported).
        self._held = _Collector()
        if after_trade_id is not None:
            self._next_trade_id = int(after_trade_id) + 1
        self._calls: MarketCalls | None = None
        self.batch = batch
        self.lost_after = lost_after
        """Lookups that find an acknowledged order without a venue id nowhere before it
        ends ``ORDER_LOST`` (`LOST_AFTER_LOOKUPS`)."""
        self.defers_lost = False
        """Whether an order due to end ``ORDER_LOST`` waits, working, for its owner to
        reconcile the account (`lost_due`, then `book_unaccounted` or `end_lost`);
        False: it ends at once, what it filled left to a restart's reconcile."""

    @property
    def calls(self) -> MarketCalls:
        """The market's ccxt calls, each through what it can do (loads the markets once).

        Raises:
            RetriesExhausted: The markets could not be loaded.
        """
        if self._calls is None:
            capabilities = Capabilities.of(self.client, self._market())
            self._calls = MarketCalls(self.client, self.symbol, capabilities, self._read)
        return self._calls

    # --- orders ---------------------------------------------------------------------

    def submit(
        self,
        order: Order,
        *,
        limit_price: float | None = None,
        terms: OrderTerms | None = None,
        batched: bool = False,
    ) -> VenueReport:
        """Check, journal and send one order, once.

        A stop (``terms.type`` ``stop_loss`` or ``take_profit``) the exchange cannot
        take (`unsupported_reason`) is refused here with ``STOP_UNSUPPORTED`` and not
        sent; one the exchange refuses is ``REJECTED`` as any order is. The caller
        falls back (`tradeloom.live.orders.exchange_stops`).

        Args:
            order: The engine's order; ``order.id`` is its client order id.
            limit_price: Send a GTC limit order at this price; None: a market order.
            terms: The order's type, prices and flags, in place of ``limit_price``.
            batched: With the account's batch (``batch``), journal the order now and
                send it with the others of the bar at `flush_batch` (a stop is sent at
                once); its answer is reported by the next call (`held`).

        Returns:
            What happened: accepted (with any immediate fills), rejected, or unknown
            (a batched order: ``SUBMITTED``, nothing sent yet).

        Raises:
            ValueError: An invalid or already used client order id, a side other than
                +1/-1, a quantity that is not positive, or both ``limit_price`` and
                ``terms``.
        """
        check_client_id(order.id)
        if order.id in self._orders:
            raise ValueError(
                f"order {order.id} was submitted before; an order is sent at most once"
            )
        if order.side not in (1, -1):
            raise ValueError(f"order {order.id}: side must be +1 or -1, was {order.side}")
        if not order.quantity > 0 or math.isinf(order.quantity):
            raise ValueError(f"order {order.id}: quantity must be > 0, was {order.quantity}")
        out = _Collector()
        market = self._market()
        request, refusal = prepare_order(
            self.client, market, order, limit_price, self.last_price, terms
        )
        if refusal is None and terms is not None:
            able = dict.fromkeys(self.calls.capabilities.operations, True)
            reason = unsupported_reason(able, str(self.client.id), market, terms)
            if reason is not None:
                refusal = order_rejection(order, "STOP_UNSUPPORTED", reason, {})
        quantity = request.amount if refusal is None else order.quantity
        tracked = _Tracked(request, OrderLifecycle(order.id, quantity, tolerance=self._tolerance))
        self._track(order.id, tracked)
        if refusal is not None:
            self._emit(out, [tracked.life.reject(refusal)])
            self._fall_back(request, refusal, out)
            return out.report()
        joins = batched and self.batch is not None and request.type not in STOP_TYPES
        try:
            if joins and isinstance(self.journal, BatchJournal):
                self.journal.intend(request)  # committed with the batch's, before it leaves
            else:
                self.journal.before_send(request)
        except BaseException:
            del self._orders[order.id], self._unsettled[order.id]
            raise
        self._emit(out, [tracked.life.send()])
        tracked.sent_at = self._clock()
        if joins and self.batch is not None:
            self.batch.queue(self, order.id)  # sent with its bar's others (`flush_batch`)
            return out.report()
        self.send_now(order.id, out)
        return out.report()

    def send_now(self, client_id: str, out: _Collector | None = None) -> None:
        """Send one journaled order (its intent committed, ``SUBMITTED``) by itself, once.

        Args:
            client_id: The order's client order id.
            out: Where what happened goes (None: held for the next call to report, as
                an order of a batch that falls back to single sends).
        """
        tracked = self._orders[client_id]
        request = tracked.request
        into = self._held if out is None else out
        try:
            kind, params = _ccxt_request(request)
            answer = self.calls.create_order(
                kind,
                request.side,
                request.amount,
                request.price,
                {**params, "clientOrderId": client_id, "maxRetriesOnFailure": 0},
            )
        except Exception as error:
            self.child_failed(client_id, error, into)
            return
        self.child_answered(client_id, answer, into)

    def commit_intents(self) -> None:
        """Commit the intents of the orders journaled for the batch (`BatchJournal`)."""
        if isinstance(self.journal, BatchJournal):
            self.journal.commit_intents()

    def batch_child(self, client_id: str) -> dict[str, Any]:
        """Return a journaled order as one child of ccxt's ``createOrders``."""
        request = self._orders[client_id].request
        kind, params = _ccxt_request(request)
        return {
            "symbol": self.symbol,
            "type": kind,
            "side": request.side,
            "amount": request.amount,
            "price": request.price,
            "params": {**params, "clientOrderId": client_id},
        }

    def flush_batch(self) -> VenueReport:
        """Send the orders the account's batch holds (`OrderBatch.flush`; none without).

        Returns:
            What this venue holds now (its children's answers among it), handed over;
            the other venues' children's answers are reported by their next call.
        """
        if self.batch is not None and self.batch.queued:
            self.batch.flush()
        if self._held.empty():
            return _NOTHING
        return self._hand_over()

    def fall_back_to_market(self, client_id: str, *, reason: str = "LIMIT_FALLBACK") -> VenueReport:
        """Cancel a working limit order and send what it left unfilled as a market order.

        In this order, so that one intent never has two live orders: the limit order
        is cancelled, and only once the venue confirms it finished (cancelled, or
        filled meanwhile) with its trades counted is the rest sent, under the derived
        client id ``{client_id}-f`` (`derived_client_id`). Until then nothing is sent
        and the call is to be made again (at the next bar); a call after the market
        order was sent (a restart that recovered it) sends nothing either.

        Args:
            client_id: The limit order's client order id.
            reason: The limit order's cancellation reason.

        Returns:
            What the cancel and the market order's send reported.

        Raises:
            KeyError: No order with this client id was submitted here.
            RetriesExhausted: The cancel could not reach the venue (nothing was sent).
            ccxt.ExchangeError: The venue refused the cancel for another reason.
        """
        fallback_id = derived_client_id(client_id, "f")
        tracked = self._orders[client_id]
        if fallback_id in self._orders:
            return self._hand_over()
        report = self.cancel(client_id, reason=reason)
        life = tracked.life
        if not life.terminal or life.awaiting_trades:
            _log.info("fallback_waits", client_id=client_id, state=str(life.state))
            return report
        if tracked.lost:
            # ended unknown: what it filled is not known, so no rest is sent (a second
            # order for one intent if it had filled)
            _log.warning("fallback_not_sent", client_id=client_id, reason=ORDER_LOST)
            return report
        remaining = life.quantity - life.filled
        # A rejected limit order never worked: there is nothing to fall back from.
        if life.state is OrderState.REJECTED or remaining <= life.quantity * self._tolerance:
            return report
        parent = tracked.request.order
        order = dataclass_replace(
            parent, id=fallback_id, quantity=remaining, kind="market", stop_price=math.nan
        )
        sent = self.submit(order)
        return _joined(report, sent)

    def recover(
        self,
        request: VenueOrder,
        *,
        sent_at: float,
        venue_id: str | None = None,
        counted: Iterable[tuple[str, float]] = (),
        journaled: str | None = None,
    ) -> VenueReport:
        """Track an order whose intent is in the journal but whose end is not (a restart).

        The process may have died before, during or after the send: without an answer
        in the journal the order is ``UNKNOWN`` until `resolve_unknown` looks it up (with
        trades the journal counted, accepted and filled by them); one with no row at all
        journals its chain from ``pending -> submitted`` (the row the kill lost). One the
        journal has acknowledged (``journaled`` accepted, partially filled, filled,
        cancelled, or ``adopted`` by a restart that found it beyond the journal) is
        ``ACCEPTED`` (and filled by its counted trades), as it was before the kill: it is
        polled as working (without a venue id, looked up by its client order id by
        `resolve_unknown` first, as an unknown order is), never rejected as never arrived
        when a lookup by client id finds nothing (a venue that archives finished orders,
        or finds open ones only), and a ``rejected`` status reads as the cancel it is for
        an acknowledged order. One the journal has cancelled (its venue may owe it
        trades) is looked up until the venue says so, never cancelled again. Without a
        venue id, `lost_after` lookups that find it nowhere end it ``ORDER_LOST``
        (`unaccounted`). One the journal has rejected is ``REJECTED``, never looked up.

        It is never sent again. Trades the journal already counted are counted again here
        without a report, so a lookup that finds them again ignores them. Its moves are
        journaled from the state the journal's last row of it entered (``journaled``) on,
        never up to it (`TrackedOrders._row`): a restart journals what it finds changed
        at the venue, nothing the journal holds (an order it has unknown is not journaled
        unknown again, nor one working accepted or partly filled again; one it adopted
        moves on from ``adopted``; nothing moves one out of a state that finished it).

        Args:
            request: The order as `OrderJournal.before_send` recorded it.
            sent_at: When it was (or would have been) sent, seconds since the epoch;
                it starts the ``settle_seconds`` wait.
            venue_id: The venue's id of the order, if the journal has it.
            counted: ``(trade id, quantity)`` of the trades the journal counted.
            journaled: The order's state in the journal's last ``order_state`` row of it
                (None: none).

        Raises:
            ValueError: The client order id is invalid or already tracked here.
        """
        check_client_id(request.client_id)
        if request.client_id in self._orders:
            raise ValueError(f"order {request.client_id} is already tracked here")
        quantity = request.amount if request.amount > 0 else request.order.quantity
        life = OrderLifecycle(request.client_id, quantity, tolerance=self._tolerance)
        tracked = _Tracked(request, life, sent_at, entered=journaled)
        self._track(request.client_id, tracked)
        out = _Collector()
        # an intent with no row after it: the journal lost its ``pending -> submitted``
        # row (committed with the bar's rows, after the intent): its chain starts there
        self._emit(out, [life.send()], restating=journaled is not None)
        known = list(counted)
        if journaled == OrderState.REJECTED and not known:
            # the venue refused it (a fallback's market order): ended, never looked up
            refused = order_rejection(request.order, "VENUE_REJECTED", "restart: journaled", {})
            self._emit(out, [life.reject(refused)], restating=True)
            return out.report()
        acknowledged = journaled in _ACKNOWLEDGED
        if acknowledged:
            reason = "restart: the journal has it acknowledged"
            self._emit(out, life.accept(venue_id, reason=reason), restating=True)
            # without a venue id (no trade counted) its trades are not told apart yet: it
            # is looked up by its client id first, as an unknown one is
            tracked.restated = venue_id is None
        else:
            self._emit(out, [life.lose("restart: the intent was journaled, its end was not")])
        if venue_id is not None and (known or acknowledged):
            self._by_venue_id[venue_id] = request.client_id
        if known:
            reason = "restart: its trades are journaled"
            self._emit(out, life.accept(venue_id, reason=reason), restating=True)
            for trade_id, amount in known:
                result = life.fill(trade_id, amount)
                if result.transition is not None:
                    self._emit(out, [result.transition], restating=True)
        return out.report()

    def find(self, client_id: str) -> dict[str, Any] | None:
        """Look an order up by its client order id (None: the venue has none).

        Raises:
            RetriesExhausted: The lookup failed every attempt.
        """
        check_client_id(client_id)
        try:
            return self.calls.fetch_order(None, client_id)
        except ccxt.OrderNotFound:
            return None

    def bind(self, order: Order) -> None:
        """Make the engine's ``order`` the one behind a tracked order of its client id.

        For an order a restart found at the venue beyond its journal and tracked
        (`recover`) before the engine decided it again: nothing is sent.

        Raises:
            KeyError: No order with this client id is tracked here.
        """
        tracked = self._orders[order.id]
        tracked.request = dataclass_replace(tracked.request, order=order)

    def resolve_unknown(self) -> VenueReport:
        """Look every unknown order up by its client order id; never send it again.

        A found order takes the venue's state and its trades are counted. An order
        the venue does not have is rejected as never arrived once ``settle_seconds``
        have passed since its send came back unanswered (a recovered order's: since
        it was sent); before that it stays unknown (listed in ``unresolved``). An order
        a restart tracks as its journal has it acknowledged, without a venue id, is
        looked up too, once: one the venue does not have (any more) stays as the journal
        has it, polled as working.

        Raises:
            RetriesExhausted: A lookup failed every attempt (the order stays unknown);
                what was found before it is reported by the next call.
        """
        out = self._held
        for tracked in self._open():
            if tracked.life.state == OrderState.UNKNOWN or _restated(tracked):
                self._resolve(tracked, out)
        return self._hand_over()

    def poll(self) -> VenueReport:
        """Count new trades and read the status of every working order.

        Raises:
            RetriesExhausted: A read failed every attempt; what was counted before it
                stays counted and is reported by the next call (`poll`,
                `resolve_unknown` or `cancel`), and the next poll goes on from there.
        """
        out = self._held
        self._poll_trades(out)
        working = [t for t in self._open() if t.life.state in _WORKING]
        if working:
            listed = self.calls.fetch_open_orders()
            by_venue_id = {str(o.get("id")): o for o in listed}
            by_client_id = {str(o.get("clientOrderId")): o for o in listed}
            for tracked in working:
                found = by_venue_id.get(str(tracked.life.venue_id)) or by_client_id.get(
                    tracked.request.client_id
                )
                if found is None:
                    found = self._lookup(tracked)
                if found is not None:
                    self._absorb(tracked, found, out, cancel_reason=None)
                else:
                    self._missed(tracked, out)
        for tracked in self._open():
            if tracked.life.awaiting_trades:
                self._fetch_order_trades(tracked, out)
        return self._hand_over()

    def ingest(self, trades: Iterable[Mapping[str, Any]]) -> VenueReport:
        """Count trades from another source (a websocket stream, a journal replay).

        Trades of orders not tracked here are ignored; the rest go through the same
        de-duplication and overfill checks as polled ones.
        """
        out = _Collector()
        for trade in trades:
            self._route_trade(trade, out)
        return out.report()

    def cancel(self, client_id: str, *, reason: str = "CANCELLED") -> VenueReport:
        """Ask the venue to stop working an order; report what it says.

        A finished order is left alone. An unknown order is looked up first; one the
        venue does not have (yet) cannot be cancelled and stays unknown. A cancel
        whose answer is lost is tried again (cancelling is idempotent); "unknown
        order" from the venue means it finished meanwhile, which a lookup settles.

        Args:
            client_id: The order's client order id.
            reason: The cancellation's reason code (``REPLACED``, ``EXIT_HALT``...).

        Raises:
            KeyError: No order with this client id was submitted here.
            RetriesExhausted: The venue could not be reached (what the cancel learned
                before is reported by the next call).
            ccxt.ExchangeError: The venue refused the cancel for another reason.
        """
        tracked = self._orders[client_id]
        out = self._held
        if tracked.life.state == OrderState.UNKNOWN or _restated(tracked):
            self._resolve(tracked, out)
        if not _cancellable(tracked):
            return self._hand_over()
        answer: dict[str, Any] | None
        try:
            answer = self.calls.cancel_order(tracked.life.venue_id, client_id)
        except ccxt.OrderNotFound:
            answer = self._lookup(tracked)
        if answer is not None:
            self._absorb(tracked, answer, out, cancel_reason=reason)
        else:
            self._missed(tracked, out)
        if tracked.life.awaiting_trades:
            self._fetch_order_trades(tracked, out)
        return self._hand_over()

    def cancel_many(self, client_ids: list[str], *, reason: str = "CANCELLED") -> VenueReport:
        """Cancel several orders in one request where the market can (``cancelOrders``).

        Each is what `cancel` makes of it: an unknown order is looked up first, a
        finished one left alone; a child the venue's list leaves out or refuses in its
        place is looked up by its id. A request that failed every retry, or a market
        that cannot batch cancels, cancels them one by one (cancelling is idempotent).

        Raises:
            KeyError: No order with one of these client ids was submitted here.
            RetriesExhausted: The venue could not be reached (one by one as well).
        """
        out = self._held
        working: list[_Tracked] = []
        for client_id in client_ids:
            tracked = self._orders[client_id]
            if tracked.life.state == OrderState.UNKNOWN or _restated(tracked):
                self._resolve(tracked, out)
            if _cancellable(tracked):
                working.append(tracked)
        answers: list[dict[str, Any]] | None = None
        if len(working) > 1 and self.calls.capabilities.can("cancelOrders"):
            with contextlib.suppress(RetriesExhausted, ccxt.ExchangeError):
                answers = self.calls.cancel_orders([t.request.client_id for t in working])
        if answers is None:
            for tracked in working:
                self._join_held(self.cancel(tracked.request.client_id, reason=reason))
            return self._hand_over()
        by_client = {str(a.get("clientOrderId")): a for a in answers if a.get("id") is not None}
        for tracked in working:
            answer = by_client.get(tracked.request.client_id) or self._lookup(tracked)
            if answer is not None:
                self._absorb(tracked, answer, out, cancel_reason=reason)
            if tracked.life.awaiting_trades:
                self._fetch_order_trades(tracked, out)
        return self._hand_over()

    # --- account --------------------------------------------------------------------

    def balance(self) -> dict[str, float]:
        """Return each asset's total balance (free + locked), read with retries.

        A swap's is its margin account's (the wallet and the positions' unrealized
        profit): ccxt is asked for the balance of the market's type.
        """
        balance = self.calls.balance()
        totals = balance.get("total") or {}
        return {str(asset): float(amount) for asset, amount in totals.items() if amount is not None}

    def set_swap_margin(self, leverage: int) -> None:
        """Set a swap's leverage and cross margin at the venue (idempotent: retried as a
        read); a margin mode already cross is no error."""
        self.calls.set_leverage(leverage)
        with contextlib.suppress(ccxt.MarginModeAlreadySet):
            self.calls.set_margin_mode("cross")

    def position(self) -> float:
        """Return a swap's position at the venue, read with retries: signed contracts
        times the contract size (ccxt's ``fetch_positions``), 0 when it lists none."""
        market = self._market()
        listed = self.calls.positions()
        total = 0.0
        for row in listed:
            if row.get("symbol") != self.symbol:
                continue
            contracts = float(row.get("contracts") or 0.0)
            size = float(row.get("contractSize") or market.get("contractSize") or 1.0)
            total += (-1.0 if row.get("side") == "short" else 1.0) * contracts * size
        return total

    def open_orders(self) -> list[dict[str, Any]]:
        """Return the symbol's working orders at the venue (ccxt's), read with retries."""
        return self.calls.fetch_open_orders()

    def last_price(self) -> float:
        """Return the symbol's last traded price, read with retries."""
        return float(self.calls.ticker()["last"])

    def load_markets(self) -> None:
        """Load the exchange's markets once, read with retries.

        Raises:
            RetriesExhausted: The exchange did not answer.
        """
        if not getattr(self.client, "markets", None):
            self._read("load_markets", self.client.load_markets)

    def _market(self) -> dict[str, Any]:
        self.load_markets()
        market: dict[str, Any] = self.client.market(self.symbol)
        return market

    # --- reading --------------------------------------------------------------------

    def _read(self, operation: str, call: Callable[..., Any], *args: Any) -> Any:
        return call_with_retries(
            lambda: call(*args),
            what=operation,
            policy=self.retry,
            is_retryable=is_retryable_read,
            retry_after=self._retry_after,
            describe=lambda error: str(VenueMessage.of(error)),
            sleep=self._sleep,
            draw=self._draw,
        )

    def _retry_after(self, error: BaseException) -> float:
        # Only a rate limit's headers are about this request (ccxt keeps the last
        # response's); RateLimitExceeded is not a subclass of DDoSProtection.
        if not isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            return 0.0
        return retry_after_seconds(getattr(self.client, "last_response_headers", None))

    def _lookup(self, tracked: _Tracked) -> dict[str, Any] | None:
        venue_id = tracked.life.venue_id
        if venue_id is None:
            return self.find(tracked.request.client_id)
        try:
            return self.calls.fetch_order(venue_id, None)
        except ccxt.OrderNotFound:
            return None

    def _resolve(self, tracked: _Tracked, out: _Collector) -> None:
        found = self._lookup(tracked)
        if found is not None:
            self._absorb(
                tracked, found, out, cancel_reason=None, found_by="found by client order id"
            )
            if tracked.life.awaiting_trades:
                self._fetch_order_trades(tracked, out)
            return
        client_id = tracked.request.client_id
        if tracked.life.state != OrderState.UNKNOWN:
            # acknowledged in the journal: the venue had it, whatever a lookup finds now
            # (archived when finished, or found by client id only while open); it stays
            # as the journal has it and is polled as working (`poll`)
            tracked.restated = False
            _log.info("restart_lookup_missed", client_id=client_id, state=str(tracked.life.state))
            self._missed(tracked, out)
            return
        # An unknown order was always sent (or recovered) with its time; one whose send
        # came back unanswered was signed before that moment at the latest.
        age = self._clock() - (tracked.sent_at or 0.0)
        since_lost = self._clock() - (tracked.lost_at or tracked.sent_at or 0.0)
        if since_lost < self.settle_seconds:
            out.unresolved.append(client_id)
            return
        rejection = order_rejection(
            tracked.request.order,
            "ORDER_NEVER_ARRIVED",
            f"the venue has no order {client_id} {age:.0f}s after it was sent; it was never placed",
            {"seconds_since_sent": age},
        )
        self._emit(out, [tracked.life.reject(rejection)])

    def _missed(self, tracked: _Tracked, out: _Collector) -> None:
        """Count a lookup that found an acknowledged order without a venue id nowhere;
        end it ``ORDER_LOST`` at the `lost_after`-th, once its window has passed (with
        `defers_lost`, it waits for its owner's reconcile instead: `lost_due`).

        Only a restart tracks such an order (an answer to a send carries the venue's
        id): its journal has it acknowledged and counted none of its trades. Asked for
        at every bar for good, it would be pending for good; a lookup that finds it
        before the last counts its trades as any lookup does.
        """
        life = tracked.life
        if life.venue_id is not None or life.terminal or life.state == OrderState.UNKNOWN:
            return
        tracked.misses += 1
        if self._due(tracked) and not self.defers_lost:
            self._end_lost(tracked, out)

    def _due(self, tracked: _Tracked) -> bool:
        """Whether `lost_after` lookups found the order nowhere, its window passed."""
        life = tracked.life
        if life.venue_id is not None or life.terminal or life.state == OrderState.UNKNOWN:
            return False
        age = self._clock() - (tracked.sent_at or 0.0)
        return tracked.misses >= self.lost_after and age >= self.settle_seconds

    def lost_due(self) -> list[str]:
        """Return the orders due to end ``ORDER_LOST`` that wait for a reconcile
        (`defers_lost`), in submission order: working still, for the engine too, so
        nothing more is sent for the symbol until the account says what they filled."""
        if not self.defers_lost or not self._unsettled:
            return []
        return [t.request.client_id for t in self._open() if self._due(t)]

    def end_lost(self, client_id: str) -> VenueReport:
        """End an order `lost_due` ``ORDER_LOST`` with nothing booked to it (the account's
        reconcile found it filled nothing); report its cancellation.

        Raises:
            KeyError: No order with this client id is tracked here.
        """
        tracked = self._orders[client_id]
        out = _Collector()
        if not tracked.life.terminal:
            self._end_lost(tracked, out)
        return out.report()

    def _end_lost(self, tracked: _Tracked, out: _Collector) -> None:
        life = tracked.life
        client_id = life.client_id
        age = self._clock() - (tracked.sent_at or 0.0)
        reason = (
            f"{ORDER_LOST}: {tracked.misses} lookups by its client order id found it nowhere "
            f"{age:.0f}s after it was sent, and no venue id is known to ask by: ended, never "
            "sent again; what it filled, if anything, is in the account's balance"
        )
        tracked.lost = True
        self._emit(out, life.cancel(reason))  # no row for one the journal has cancelled
        _log.warning(
            "order_lost",
            client_id=client_id,
            lookups=tracked.misses,
            journaled=tracked.entered,
            filled=life.filled,
            left=life.remaining,
        )
        out.cancellations.append(
            Cancellation(
                order_id=client_id,
                bar=self._bar_clock(),
                timestamp=pd.Timestamp(self._clock(), unit="s", tz="UTC"),
                remaining=life.remaining,
                reason=ORDER_LOST,
            )
        )

    def unaccounted(self) -> list[OrderView]:
        """Return the orders whose trades the venue cannot tell: acknowledged without a
        venue id, a lookup by client id having found them nowhere (working yet, or ended
        ``ORDER_LOST`` by this process), in submission order."""
        return [
            self.order(client_id)
            for client_id, tracked in self._orders.items()
            if tracked.life.venue_id is None and (tracked.misses or tracked.lost)
        ]

    def received(self, client_id: str, quantity: float) -> float:
        """Return what a fill of ``quantity`` of an order moves the account's position by:
        less a fee the market charges in the base asset (`book_unaccounted`'s rule).

        Raises:
            KeyError: No order with this client id is tracked here.
        """
        rate, in_base = self._charge(self._orders[client_id])
        return quantity * (1.0 - rate) if in_base else quantity

    def book_unaccounted(self, client_id: str, received: float, price: float) -> VenueReport:
        """Count the fill of an `unaccounted` order that moved the account's position by
        ``received`` at ``price``, with the fee the market charges it, and end the order.

        For a reconcile (a restart's, or the run's own when the order ends ``ORDER_LOST``):
        the account holds what the journal's position does not, and only this order (its
        trades not told apart) can have made it. The fill is a trade of id
        ``reconciled-{client_id}`` (`RECONCILED_TRADE`), journaled and booked as any: its
        fee converted to quote, a base-charged fee taken off the position
        (`ExchangeVenue.book`). The order ends ``ORDER_LOST`` for the rest: nothing later
        counts a trade of it again, and nothing is sent for it.

        The balance is the account's word for the position; the fee is the market's rule
        (ccxt's market: its ``maker`` rate for a GTC limit order, sent on the passive
        side to rest, its ``taker`` rate otherwise; charged in the currency its ``feeSide``
        names; the account's own tier or discount is not read):

        - a buy whose fee is charged in the base asset (Binance spot, ``feeSide: get``)
          received ``received`` net of it: it filled ``received / (1 - rate)``, and its
          whole rest when that is within half a lot step of it (then the fee is what the
          balance shows the exchange kept, whatever the rate);
        - any other fill (a sell, a quote-charged fee, a swap's) filled ``received``, and
          paid ``received x price x rate`` in quote.

        So the journal's cash is the account's when the order filled at ``price`` (its
        limit: a resting limit order fills there) at the market's fee rate: exactly for a
        base-charged buy that filled its rest, whatever the rate; otherwise off by the
        fill's notional times the difference between that rate and the one charged (a
        limit order that took liquidity at once, a VIP tier). A fee paid in a third asset
        (BNB) is booked in quote as if charged at that rate.

        Raises:
            KeyError: No order with this client id is tracked here.
        """
        tracked = self._orders[client_id]
        out = _Collector()
        life = tracked.life
        if life.terminal:
            return out.report()
        rate, in_base = self._charge(tracked)
        market = self.client.market(self.symbol)
        left = life.remaining
        if not in_base:
            amount, fee, currency = received, received * price * rate, market.get("quote")
        else:
            amount = min(received / (1.0 - rate), left)
            if left - amount <= self._lot_step(market) / 2:  # the fee rounded at the exchange
                amount = left
            fee, currency = max(amount - received, 0.0), market.get("base")
        trade = {
            "id": f"{RECONCILED_TRADE}{client_id}",
            "amount": amount,
            "price": price,
            "timestamp": int(self._clock() * 1000),
            "fee": {"cost": fee, "currency": currency},
        }
        self._take_trade(tracked, trade, out, None)  # an overfill is refused, as any
        if not tracked.life.terminal:
            self._end_lost(tracked, out)
        return out.report()

    def _lot_step(self, market: Mapping[str, Any]) -> float:
        """The market's amount step (0: not known; ccxt states a precision in decimal
        places, not as a step, for some exchanges)."""
        if getattr(self.client, "precisionMode", None) != ccxt.TICK_SIZE:
            return 0.0
        return float((market.get("precision") or {}).get("amount") or 0.0)

    def _charge(self, tracked: _Tracked) -> tuple[float, bool]:
        """The fee rate the market charges ``tracked``'s fill, and whether it is a buy's
        fee charged in the base asset (`book_unaccounted`)."""
        market = self.client.market(self.symbol)
        request = tracked.request
        # a GTC limit order is sent on the passive side (`OrdersParams.limit`): it rested
        resting = request.type == "limit" and request.time_in_force == "GTC"
        maker = resting or _liquidity(None, request) == "maker"
        rate = _number(market.get("maker" if maker else "taker")) or 0.0
        side = str(market.get("feeSide") or "quote")  # ccxt's default (calculate_fee)
        buys_pay_base = bool(market.get("spot")) and side in ("get", "base")
        in_base = buys_pay_base and request.order.side > 0 and 0.0 <= rate < 1.0
        return rate, in_base

    def _poll_trades(self, out: _Collector) -> None:
        while True:
            params: dict[str, Any] = {}
            since = None
            if self._uses_trade_ids and self._next_trade_id is not None:
                params["fromId"] = self._next_trade_id
            elif not self._uses_trade_ids:
                since = self._since_ms
            page = self.calls.my_trades(since, _TRADE_PAGE, params)
            for trade in sorted(page, key=_trade_order):
                self._route_trade(trade, out)
                self._advance_cursor(trade)
            if not (self._uses_trade_ids and len(page) >= _TRADE_PAGE):
                return

    def _advance_cursor(self, trade: Mapping[str, Any]) -> None:
        trade_id = trade.get("id")
        if self._uses_trade_ids and trade_id is not None and str(trade_id).isdigit():
            following = int(trade_id) + 1
            self._next_trade_id = max(self._next_trade_id or 0, following)
        stamp = trade.get("timestamp")
        if isinstance(stamp, int | float):
            self._since_ms = max(self._since_ms or 0, int(stamp))

    def _fetch_order_trades(self, tracked: _Tracked, out: _Collector) -> None:
        venue_id = tracked.life.venue_id
        if venue_id is None:
            return
        # fetchOrderTrades, or fetchMyTrades from the order's time (ccxt_capabilities)
        trades = self.calls.order_trades(venue_id, tracked.made_ms)
        for trade in sorted(trades, key=_trade_order):
            self._take_trade(tracked, trade, out, None)
