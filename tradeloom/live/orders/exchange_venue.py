"""A `CcxtVenue` behind the engine's `Venue` protocol: live orders, per-bar fills.

The engine (`tradeloom.engine.driver.Engine`) asks a venue to ``submit`` an
order, to ``cancel`` one, for what is ``pending``, and at each bar's ``open``
phase for the fills and cancellations that happened since the last bar. Here:

- ``submit`` sends the order at once (journaled first, sent once: `CcxtVenue`);
  a refusal becomes a cancellation of the whole quantity, reported at the next
  bar with the refusal's code;
- at ``open`` (the close of the previous bar, when the live runner wakes) unknown
  orders are looked up by client order id and the venue is polled; every trade
  counted since the last bar is reported, stamped with this bar, as the
  backtest's ``next_open`` fills are: the order was sent at the previous close
  and filled during this bar;
- at ``intrabar`` (right after the engine's stop-loss or take-profit exit: bound
  to the stop resting at the exchange when that one traded, otherwise sent as a
  market order at the bar's close) what that order and the cancels before it
  reported is handed over at once, so the rest of the bar sees the position
  closed, as the backtest's stop fill at the stop price makes it; ``close`` does
  nothing;
- a read that fails every retry leaves everything as it was, is reported to
  ``on_trouble``, and is tried again at the next bar;
- a buy whose fee the exchange takes in the base asset (Binance spot) books the
  quantity received, net of that fee, and the fee in quote: the position is what
  the account holds, cash what it paid.

Limit orders (``execution.orders``, decided by the core as in a backtest) go to the
exchange as limit orders at the core's price, post-only and with the time in force
of ``execution.orders.limit``. The exchange works them; at each bar's ``open`` a
resting one whose time is up is handled here, as the core handles it for the
simulated venue: ``expire_after_bars`` cancels the rest (``LIMIT_EXPIRED``), and
``fallback_after_bars`` / ``fallback_after_seconds`` cancel it and, once the
exchange confirms the cancel, send the rest as one market order
(`CcxtVenue.fall_back_to_market`, client id ``{id}-f``). The engine sees one
order: the fallback's fills are reported as its limit order's, and the limit's
``LIMIT_FALLBACK`` cancellation is not reported (the rest is still being worked).

Exchange-side stops (``execution.orders.stops: exchange``, the default): after an
entry fills, `protect` rests the position's stop-loss at the exchange
(`tradeloom.live.orders.exchange_stops`). Its trades are held, not reported,
until the engine exits the position: the core's stop-loss exit at the bar that
reached it (``intrabar``) or any other exit is then bound to the resting stop and
reported with its trades, and nothing is sent for it. Any exit of the position
cancels the resting stops before it is sent, and the kill switch cancels them too; a
stop that traded while the kill holds is booked to the one exit the kill lets through
for it (`bind_stop`), at the next bar.
Scaling (``risk.scaling``): an add (``SCALE_IN``) cancels them before it buys, and a
partial take-profit (``TAKE_PROFIT_PARTIAL``) before it sells, as any exit does; once
it has filled it stands as the position's entry (the stops' anchor, ``entry_id``), so
the stops rest again for what is held, at the average entry price the core measures
from (the core's stop, with a trailing or break-even stop), under its derived ids
(`tradeloom.live.orders.exchange_stops`).

Positions smaller than one lot (``dust``: what is left when a sell rounds down
to the market's step) count as flat for decisions.

A perpetual swap (a ccxt market with ``swap`` true, ``BTC/USDT:USDT``) trades both
ways: a sell below zero opens a short, and its position is the exchange's
(``fetch_positions``), not a balance. Its contracts must be one base unit each (the
core sizes in base units). Its stop-loss and take-profit exits go as market orders at
the bar close: ccxt sends a swap's stop orders to Binance's algo-order service, which
the exchange-side stops do not track.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from tradeloom.core.costs import VenueCosts
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.errors import UserError
from tradeloom.live.orders.ccxt_venue import ORDER_LOST, CcxtVenue
from tradeloom.live.orders.exchange_stops import ExchangeStops
from tradeloom.plugins.protocols_orders.client_ids import derived_client_id
from tradeloom.plugins.protocols_orders.order_events import (
    RefusedFill,
    TradeFill,
    VenueOrder,
    VenueReport,
)
from tradeloom.plugins.protocols_orders.order_params import OrdersParams
from tradeloom.plugins.protocols_orders.order_state import TERMINAL, OrderState
from tradeloom.plugins.protocols_orders.order_terms import STOP_TYPES, OrderTerms
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.retrying import RetriesExhausted

__all__ = ["ExchangeVenue"]

_WORKING = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)

_log = logger("tradeloom.live")


LOST_BAR = "LOST_BAR"
"""The reason of an order decided again at a bar the journal lost, not sent: the run had
traded that bar before its crash, and the venue's orders were adopted."""


class ExchangeVenue:
    """Trade ``venue``'s symbol as the engine's venue.

    Args:
        venue: The ccxt order layer (journaling through the run's journal).
        initial_cash: The quote capital the strategy trades with.
        costs: The market's fee rates: its taker fee sizes buys (``quantity_for``).
        on_trouble: Told ``(operation, message)`` when a venue read failed every retry.
        orders: ``execution.orders``: the limit orders' flags, fallback and expiry
            (default: market orders only).
        clock: Seconds since the epoch (``fallback_after_seconds``).
        stops: The position's stops resting at the exchange (None: the engine's
            protective exits are market orders at the bar close).

    Attributes:
        allow_short: Whether the market is a perpetual swap (spot: no shorts).
        swap: Whether the market is a perpetual swap (module docstring).
        dust: The market's smallest tradable amount (its step or minimum, whichever
            is larger); a position below it is flat for decisions.
        min_notional: The market's minimum order cost (``limits.cost.min``; 0: none):
            the core refuses an order worth less (``BELOW_MINIMUM``) before it is
            journaled as sent, and a position worth less counts as flat.
        refused: Fills refused as impossible (overfills): a human must look; the live
            runner halts on the first.
    """

    def __init__(
        self,
        venue: CcxtVenue,
        *,
        initial_cash: float,
        costs: VenueCosts,
        on_trouble: Callable[[str, str], None],
        orders: OrdersParams | None = None,
        clock: Callable[[], float] = time.time,
        stops: ExchangeStops | None = None,
    ) -> None:
        self.venue = venue
        # an order lookups found nowhere waits, working, for `settle_lost` to read the
        # account before it ends ORDER_LOST (never a new entry on what it may have filled)
        venue.defers_lost = True
        self.stops = stops
        # the engine order whose fill last bought: the position's entry
        self.entry_id: str | None = None
        # orders this process asked the exchange to cancel (the others: a restart's)
        self._asked: set[str] = set()
        # a restart's stop exits whose resting stop was not bound yet: sent at the next open
        self._awaiting: list[Order] = []
        self.orders = orders or OrdersParams()
        self._clock = clock
        # fallback market order's client id -> its limit order's (the engine's) id
        self._fallbacks: dict[str, str] = {}
        self.initial_cash = initial_cash
        self.costs = costs
        self._on_trouble = on_trouble
        market = venue.client.market(venue.symbol)
        self.base = str(market.get("base"))
        self.swap = bool(market.get("swap"))
        self.allow_short = self.swap
        size = float(market.get("contractSize") or 1.0)
        if self.swap and size != 1.0:
            raise UserError(
                f"{venue.symbol}: a contract is {size:g} {self.base}; tradeloom sizes a "
                "perpetual in base units and trades contracts of one unit (USD-M linear swaps)"
            )
        limits = market.get("limits") or {}
        step = (market.get("precision") or {}).get("amount")
        least = (limits.get("amount") or {}).get("min")
        self.dust = max(float(step or 0.0), float(least or 0.0))
        self.min_notional = float((limits.get("cost") or {}).get("min") or 0.0)
        self.refused: list[RefusedFill] = []
        self._events: list[Fill | Cancellation] = []
        self._adopted: dict[str, Order] = {}
        # engine orders the engine has seen end (a restart's: their cancellation was
        # journaled, their last trades not yet reported): never ended a second time
        self._ended: set[str] = set()
        # of those, the ones the engine counts finished, tracked again only so that a
        # lookup or a restart's reconcile counts what they filled (`track_lost`)
        self._heard_lost: set[str] = set()
        self.lost_through: int | None = None
        """A restart whose journal lost bars it had traded (`tradeloom.live.recovery.sent_lookup`):
        an order decided again at a bar up to this one is not sent, the venue's orders of
        those bars were adopted (None: every order is sent)."""
        self.on_send: Callable[[str, float], None] | None = None
        """Told ``("send", seconds)`` for each order sent (the metrics' send stage)."""

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price`` with the taker fee."""
        return self.costs.quantity_for(notional, price)

    def submit(self, order: Order) -> None:
        """Check, journal and send ``order`` once (`CcxtVenue.submit`).

        A limit order (``order.kind == "limit"``) goes at its ``limit_price`` with
        ``execution.orders.limit``'s post-only flag and time in force.
        """
        started = time.perf_counter()
        if self.lost_through is not None and order.bar <= self.lost_through:
            _log.warning("order_not_sent", client_id=order.id, reason=LOST_BAR)
            self._adopted[order.id] = order  # pending until its cancellation is reported
            self._events.append(
                Cancellation(order.id, order.bar, order.timestamp, order.quantity, LOST_BAR)
            )
        elif not self._close_by_stop(order):
            self._rearm_for_add(order)
            # with ``execution.orders.batch``: journaled now, sent with the bar's others
            self._take(self.venue.submit(order, terms=self.terms(order), batched=True))
        if self.on_send is not None:
            self.on_send("send", time.perf_counter() - started)

    def adopt_found(self, request: VenueOrder, *, sent_at: float, venue_id: str | None) -> None:
        """Track an order of this run the venue has beyond the journal (a restart).

        A journal that lost its tail forgot orders the venue took
        (`tradeloom.live.recovery.sent_lookup`): each is looked up by its client id
        (`CcxtVenue.recover`), never sent again, and reported to the engine, which
        took it as its own (`Engine.adopt`), as any order: its trades are counted and
        booked once. Its rows go on from the ``adopted`` row the lookup journaled.

        Args:
            request: The order as the venue has it.
            sent_at: When it was sent (seconds since the epoch).
            venue_id: The venue's id of the order.
        """
        self.venue.recover(
            request, sent_at=sent_at, venue_id=venue_id, counted=[], journaled="adopted"
        )

    def _close_by_stop(self, order: Order) -> bool:
        """Cancel the resting stops before ``order`` sells; book a traded stop as it.

        Returns:
            Whether a resting stop traded and took ``order``'s place (its rest, if it
            traded in part, goes as a market order ``{order.id}-f``).
        """
        stops = self.stops
        if stops is None or order.side > 0 or not stops.legs:
            return False
        try:
            self._take(stops.cancel(order.reason))
        except RetriesExhausted as error:
            self._on_trouble("cancel", str(error))
        bound = stops.bind(order.id)
        if bound is None:
            return False
        leg, trades = bound
        for trade in trades:
            self._events.append(replace(self._booked(trade), order_id=order.id))
        view = self.venue.order(leg.client_id)
        rest = view.quantity - view.filled
        if view.state in TERMINAL and rest > self.dust:
            fallback = derived_client_id(order.id, "f")
            self._fallbacks[fallback] = order.id
            market = replace(order, id=fallback, quantity=rest, kind="market", stop_price=math.nan)
            self._take(self.venue.submit(market))
        return True

    def stop_traded(self) -> bool:
        """Return whether a resting stop traded with no exit of the engine booked to it."""
        return self.stops is not None and bool(self.stops.held_fills())

    def bind_stop(self, order: Order) -> None:
        """Book the exit ``order`` to the resting stop that traded, sending nothing (the
        kill switch holds the run: `tradeloom.engine.driver.Engine`).

        The stops still working are asked to cancel first, as before any exit. What the
        stop did not sell, once it ended, is reported cancelled (``KILL_SWITCH``): the
        kill sells no more. A stop still working goes on booking its trades to ``order``
        (cancelling ``order`` cancels it: `cancel`).
        """
        stops = self.stops
        if stops is not None and stops.working():
            try:
                self._take(stops.cancel("KILL_SWITCH"))
            except RetriesExhausted as error:
                self._on_trouble("cancel", str(error))
        bound = None if stops is None else stops.bind(order.id)
        rest = order.quantity
        if bound is not None:
            leg, trades = bound
            for trade in trades:
                self._events.append(replace(self._booked(trade), order_id=order.id))
            view = self.venue.order(leg.client_id)
            rest = order.quantity - view.filled
            if view.state not in TERMINAL or rest <= self.dust:
                return
        self._adopted[order.id] = order  # pending until its cancellation is reported
        self._events.append(Cancellation(order.id, order.bar, order.timestamp, rest, "KILL_SWITCH"))

    def _rearm_for_add(self, order: Order) -> None:
        """Cancel the resting stops before an add (``SCALE_IN``) buys more.

        They hold the position before the add, at levels from its entry price: once the
        add has filled it is the position's entry (`_take`), and `protect` rests the
        stops again for the whole position at the average entry price the core
        measures from (`tradeloom.core.scaling`).
        """
        stops = self.stops
        if stops is None or order.side < 0 or order.reason != "SCALE_IN" or not stops.working():
            return
        try:
            self._take(stops.cancel(order.reason))
        except RetriesExhausted as error:
            self._on_trouble("cancel", str(error))

    @property
    def protects(self) -> bool:
        """Whether stops rest at this exchange under the positions (`protect` has work)."""
        return self.stops is not None and self.stops.enabled

    def protect(
        self,
        position: float,
        entry_price: float | None,
        bar: Bar,
        *,
        trading: bool,
        resting: tuple[str, float] | None = None,
    ) -> None:
        """Rest the position's stops at the exchange once its entry has filled.

        Called after each bar. Flat with stops still working (closed another way):
        cancel them. Nothing is placed while trading is halted, while an order is
        working, or twice for one entry. With a trailing or break-even stop, the
        resting stop-loss follows ``resting``, the core's stop under the position
        (`ExchangeStops.follow`).
        """
        self.flush()
        stops = self.stops
        if stops is None or not self.protects:
            return
        try:
            if position <= self.dust:
                if stops.working():
                    self._take(stops.cancel("POSITION_CLOSED"))
                return
            entry = self.entry_id
            if not trading or entry is None or entry_price is None:
                return
            if self.pending():
                return
            if entry in stops.placed_for:
                if stops.follows and resting is not None:
                    self._take(stops.follow(bar.index, bar.timestamp, position, resting))
                return
            self._take(stops.place(entry, bar.index, bar.timestamp, position, entry_price, resting))
        except RetriesExhausted as error:
            self._on_trouble("stop", str(error))

    def await_stop_exit(self, order: Order) -> bool:
        """Take a restart's stop exit the journal has no send or binding of.

        The process died between the engine's exit and its binding to the stop resting
        at the exchange. The exit is pending until the next bar's open, when the
        restart has looked the resting stop up: it is then bound to the stop if that
        traded, and otherwise sent, as at the bar it was decided (`submit`).

        Returns:
            Whether it was taken (False: no stop rests for the position).
        """
        if self.stops is None or not self.stops.legs:
            return False
        self._awaiting.append(order)
        return True

    def cancel_stops(self, reason: str) -> None:
        """Cancel the resting stops (the kill switch, asked again after each bar while it
        holds: `tradeloom.live.tick.session.LiveSession.step`).

        A stop whose cancel the exchange did not confirm (no answer after every retry)
        rests on: it is named in the ``venue_unreachable`` row (operation ``cancel``, the
        message ``CANCEL_UNCONFIRMED {reason}: stop {client id}...``) and asked again at
        the next call. With nothing working, nothing is asked.
        """
        if self.stops is None:
            return
        failed: list[str] = []
        for leg in self.stops.working():
            try:
                self._take(self.venue.cancel(leg.client_id, reason=reason))
            except RetriesExhausted as error:
                failed.append(str(error))
        left = [leg.client_id for leg in self.stops.working()]
        if left:
            self._on_trouble(
                "cancel",
                f"CANCEL_UNCONFIRMED {reason}: stop {' '.join(left)} rests at the exchange, "
                f"asked again after each bar: {'; '.join(failed) or 'not confirmed'}",
            )

    def terms(self, order: Order) -> OrderTerms | None:
        """Return how ``order`` goes to the exchange (None: a market order)."""
        if order.kind != "limit":
            return None
        limit = self.orders.limit
        return OrderTerms(
            "limit",
            order.limit_price,
            post_only=limit.post_only,
            time_in_force=limit.time_in_force,
        )

    def recover_fallback(
        self,
        parent: Order,
        request: VenueOrder,
        *,
        sent_at: float,
        venue_id: str | None,
        counted: list[tuple[str, float]],
        journaled: str | None = None,
    ) -> None:
        """Track the fallback market order of ``parent`` found in the journal (a restart).

        It is looked up by its client id, never sent again (`CcxtVenue.recover`; ``journaled``:
        its state in the journal's last row of it).
        """
        self._fallbacks[request.client_id] = parent.id
        self.venue.recover(
            request, sent_at=sent_at, venue_id=venue_id, counted=counted, journaled=journaled
        )

    def pending(self) -> list[Order]:
        """Return the orders not finished for the engine.

        Working at the venue, unknown, or finished at the venue with a fill or a
        cancellation not yet reported to the engine (as a backtest's order is
        pending until the bar that fills it).
        """
        # most of a long run's orders are finished: only the unfinished ones and those
        # an event is owed for are looked at (not a view of every order at each bar)
        undelivered: set[str] = set()
        if self._events or self.venue.holds:
            undelivered = {event.order_id for event in self._events} | self._held_for()
        if undelivered:
            views = self.venue.views(self._client_ids(undelivered))
        else:
            views = self.venue.unfinished()
            if not views:  # a quiet bar's answer
                return list(self._awaiting)
        tracked: dict[str, Order] = {}
        for view in views:
            engine_id = self._engine_id(view.client_id)
            if engine_id is None:
                continue  # a resting stop no exit is booked to yet
            if engine_id in self._heard_lost and engine_id not in undelivered:
                continue  # the engine heard it ended (`track_lost`)
            if view.state not in TERMINAL or engine_id in undelivered:
                tracked.setdefault(engine_id, self._order_of(engine_id, view.request.order))
        adopted = [o for i, o in self._adopted.items() if i in undelivered]
        return list(tracked.values()) + adopted + self._awaiting

    def _client_ids(self, engine_ids: set[str]) -> set[str]:
        """The venue orders that may report to ``engine_ids`` (`_engine_id`): each
        order itself, its market fallback, the resting stops bound to it."""
        client_ids = engine_ids | {derived_client_id(i, "f") for i in engine_ids}
        if self.stops is not None:
            legs = self.stops.legs.items()
            client_ids.update(i for i, leg in legs if leg.bound_to in engine_ids)
        return client_ids

    def _held_for(self) -> set[str]:
        """The engine orders whose fills or end the venue holds (a read failed after a
        call counted them): pending until its next call reports them."""
        if not self.venue.holds:  # the common case: a tick asks several times
            return set()
        held = self.venue.held
        client_ids = [trade.fill.order_id for trade in held.fills]
        client_ids += [cancellation.order_id for cancellation in held.cancellations]
        client_ids += [move.client_id for move in held.transitions if move.rejection is not None]
        return {i for i in map(self._engine_id, client_ids) if i is not None}

    def adopt(self, order: Order) -> None:
        """Count ``order`` pending until its held events are reported (a restart).

        For an order the journal shows finished at the venue whose last fills the
        engine had not applied yet, or one never sent (its ``NOT_SENT`` cancellation
        held): the venue is not asked about it. The report that delivers its events
        ends it, as the journal's ``venue_reported`` row says for the replay.
        """
        self._adopted[order.id] = order

    def ended_before(self, order_id: str) -> None:
        """Count ``order_id`` ended for the engine already (a restart).

        Its cancellation was journaled while the venue still owed it trades (a cancel
        answered "canceled" with more filled than counted): those trades are reported,
        the venue's cancellation is not reported again.
        """
        self._ended.add(order_id)

    def track_lost(self, order_id: str) -> None:
        """Count ``order_id`` finished for the engine while the venue tracks it (a restart).

        An order a run ended ``ORDER_LOST`` (its trades never read, the engine told it
        cancelled) and that nothing booked since: looked up again, and counted among
        the venue's `CcxtVenue.unaccounted` orders by the restart's reconcile, as at the
        first restart after it was sent. The engine heard its end, and the replay that
        rebuilt the engine finished it: it is not pending for the engine (what the
        engine decides is what the replay decided), but a fill counted for it is
        reported, and its end is not reported again.
        """
        self._ended.add(order_id)
        self._heard_lost.add(order_id)

    def adopt_unaccounted(
        self, difference: float, tolerance: float
    ) -> list[tuple[str, float, float]]:
        """Book ``difference`` (the account's position less the journal's) to the orders
        whose trades the venue cannot tell (`CcxtVenue.unaccounted`), and end them.

        A reconcile (a restart's, or the run's own when such an order ends ``ORDER_LOST``),
        when only those orders can explain the difference: each of its side takes what
        its rest would move the account by (net of a base-charged fee), in submission
        order, at its limit price (a market order's: the price it was decided at), until
        the difference is booked (then, for what is left of it, up to its whole rest: an
        account charged less than the market's rate), with the fee the market charges it
        (`CcxtVenue.book_unaccounted`: the gross quantity of a buy whose fee is charged in
        the base asset); their fills reach the engine at the next open, as any trade's.

        Args:
            difference: The account's position less the journal's (signed, base units).
            tolerance: What may be left of it unbooked (the reconcile's tolerance).

        Returns:
            ``(client id, quantity, price)`` of each booking (``quantity``: what it moved
            the position by); empty when those orders cannot make the difference, or a
            price is not known (then nothing is booked).
        """
        rest = abs(difference)
        side = 1 if difference > 0 else -1
        plan: list[tuple[str, float, float]] = []
        whole: list[float] = []
        for view in self.venue.unaccounted():
            if rest <= 0.0 or view.state in TERMINAL or view.request.order.side != side:
                continue
            unfilled = max(view.quantity - view.filled, 0.0)
            quantity = min(self.venue.received(view.client_id, unfilled), rest)
            if quantity <= 0.0:
                continue
            order = view.request.order
            price = view.request.price if view.request.price is not None else order.reference_price
            if not (math.isfinite(price) and price > 0.0):
                return []
            plan.append((view.client_id, quantity, float(price)))
            whole.append(unfilled)
            rest -= quantity
        if rest > tolerance:
            # the account was charged less in the base asset than the market's rate (a
            # VIP tier, a fee paid in BNB): each order moved it by up to its whole rest
            for i, (client_id, quantity, price) in enumerate(plan):
                more = min(whole[i] - quantity, rest)
                if more > 0.0:
                    plan[i] = (client_id, quantity + more, price)
                    rest -= more
        if rest > tolerance or not plan:
            return []
        for client_id, quantity, price in plan:
            self._take(self.venue.book_unaccounted(client_id, quantity, price))
        return plan

    def hold(self, events: list[Fill | Cancellation]) -> None:
        """Queue events read back from the journal (a restart) for the next ``open``."""
        self._events.extend(events)

    def undelivered_position(self) -> float:
        """Return the signed quantity of the fills counted but not yet reported.

        Those queued for the next ``open``, and those the venue holds since a call
        that counted them failed on a later read (its next call reports them).
        """
        queued = [e for e in self._events if isinstance(e, Fill)]
        held = [self._booked(trade) for trade in self.venue.held.fills]
        if self.stops is not None:
            held += [self._booked(trade) for trade in self.stops.held_fills()]
        return sum(f.side * f.quantity for f in queued + held)

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Cancel ``order_id`` at the venue; return its cancellation if it took effect now.

        Fills the venue reports while cancelling are delivered by `cancel_fills`, right
        after the engine's cancels. An
        order a restart adopted (finished at the venue, its last fills not reported
        yet) has nothing to cancel.
        """
        if order_id in self._adopted:
            return None
        self.flush()  # an order of this bar's batch is sent before it is cancelled
        fallback = derived_client_id(order_id, "f")
        target = fallback if fallback in self._fallbacks else order_id
        if self.stops is not None:  # an exit booked to a resting stop: the stop works it
            bound = [leg.client_id for leg in self.stops.working() if leg.bound_to == order_id]
            target = bound[0] if bound else target
        self._asked.add(target)
        try:
            report = self.venue.cancel(target, reason=reason)
        except RetriesExhausted as error:
            self._on_trouble("cancel", str(error))
            return None
        self._take(report)
        for i, event in enumerate(self._events):
            if isinstance(event, Cancellation) and event.order_id == order_id:
                del self._events[i]
                return replace(event, bar=bar.index, timestamp=bar.timestamp)
        return None

    def cancel_fills(self, order_ids: list[str], bar: Bar) -> list[Fill | Cancellation]:
        """Return the fills of ``order_ids`` the venue reported since the bar's opening
        poll (those its cancel turned up), taken off the next bar's report
        (`tradeloom.plugins.protocols.CancelFills`)."""
        wanted = set(order_ids)
        taken: list[Fill | Cancellation] = []
        kept: list[Fill | Cancellation] = []
        for event in self._events:
            if isinstance(event, Fill) and event.order_id in wanted:
                taken.append(replace(event, bar=bar.index))
            else:
                kept.append(event)
        self._events[:] = kept
        return taken

    def cancel_together(self, order_ids: list[str], reason: str) -> None:
        """Cancel several orders at the venue in one request where it can
        (`CcxtVenue.cancel_many`), ahead of the engine's `cancel` of each.

        What the venue answered is kept: each order's `cancel` then finds it finished
        and returns its cancellation, so the engine asks about each order as without
        a batch (the journal a restart replays has one answer per order).
        """
        if self.venue.batch is None:
            return  # without ``execution.orders.batch``: one request per cancel
        self.flush()
        targets: list[str] = []
        for order_id in order_ids:
            if order_id in self._adopted:
                continue
            fallback = derived_client_id(order_id, "f")
            targets.append(fallback if fallback in self._fallbacks else order_id)
        if len(targets) < 2:
            return
        self._asked.update(targets)
        try:
            self._take(self.venue.cancel_many(targets, reason=reason))
        except RetriesExhausted as error:
            self._on_trouble("cancel", str(error))

    def flush(self) -> None:
        """Send the orders journaled for the account's batch (``execution.orders.batch``),
        before anything else asks the venue; their answers are reported at the next call
        (`tradeloom.live.orders.order_batch`): this market's are taken at once, so a
        protective exit's fills are seen within its bar as a single send's are."""
        self._take(self.venue.flush_batch())

    def quiet_at_open(self) -> bool:
        """Return whether `match` at ``open`` would report nothing and change nothing, and
        `pending` is empty (`tradeloom.plugins.protocols.QuietAtOpen`).

        So when no event is queued, no order awaits its send, the account's batch holds
        nothing to send, and every order is finished with its trades counted and reported
        (`CcxtVenue.settled`): `flush` then sends and takes nothing, `refresh` asks nothing,
        no limit order works to expire or fall back, and `pending` finds no order.
        """
        batch = self.venue.batch
        return (
            not self._events
            and not self._awaiting
            and (batch is None or not batch.queued)
            and self.venue.settled
        )

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """At ``open``: resolve unknown orders, poll, and report what happened since.

        At ``intrabar``: report what the orders sent since (a protective exit) did.
        """
        self.flush()
        if phase == "close":
            return []
        if phase == "open":
            polled = self.refresh()
            if self.venue.lost_due():
                self.settle_lost(polled=polled)
            self._age_limits(bar)
            awaiting, self._awaiting = self._awaiting, []
            for order in awaiting:
                self.submit(order)
        events = [replace(e, bar=bar.index) for e in self._events]
        self._events.clear()
        return events

    def refresh(self) -> bool:
        """Resolve unknown orders and poll the venue; keep what they report for `match`.

        With every order finished and its trades counted there is nothing to ask.

        Returns:
            Whether both were answered (False: a read failed every retry; told
            ``on_trouble``, tried again at the next bar).
        """
        if self.venue.settled:
            return True
        answered = True
        for operation, call in (
            ("resolve_unknown", self.venue.resolve_unknown),
            ("poll", self.venue.poll),
        ):
            try:
                self._take(call())
            except RetriesExhausted as error:
                answered = False
                self._on_trouble(operation, str(error))
        return answered

    def settle_lost(self, *, polled: bool) -> None:
        """End the orders lookups found nowhere (`CcxtVenue.lost_due`) ``ORDER_LOST``.

        Here with nothing booked to them: a venue that cannot read its account's position
        against the engine's. A market that can (a symbol's of an account, a router's
        venue) books what they filled from the account first
        (`tradeloom.live.accounts.exchange_market.ExchangeMarket`).

        Args:
            polled: Whether this open's lookups and poll were answered.
        """
        for client_id in self.venue.lost_due():
            self._take(self.venue.end_lost(client_id))

    def _age_limits(self, bar: Bar) -> None:
        """Expire or fall back the resting limit orders whose time is up at ``bar``'s open."""
        limit = self.orders.limit
        by_bars = limit.fallback_after_bars
        by_seconds = limit.fallback_after_seconds
        expiry = limit.expire_after_bars
        if by_bars is None and by_seconds is None and expiry is None:
            return
        for view in self.venue.orders():
            order = view.request.order
            if view.state not in _WORKING or view.request.type != "limit":
                continue
            # Sent at the decision bar's close: it has rested through the bars since.
            rested = bar.index - 1 - order.bar
            try:
                if expiry is not None and rested >= expiry:
                    self._asked.add(order.id)
                    self._take(self.venue.cancel(order.id, reason="LIMIT_EXPIRED"))
                    continue
                sent_at = self.venue.sent_at(order.id)
                due = (by_bars is not None and rested >= by_bars) or (
                    by_seconds is not None
                    and sent_at is not None
                    and self._clock() - sent_at >= by_seconds
                )
                if due:
                    self._asked.add(order.id)
                    self._fallbacks[derived_client_id(order.id, "f")] = order.id
                    self._take(self.venue.fall_back_to_market(order.id))
            except RetriesExhausted as error:
                self._on_trouble("cancel", str(error))

    def _engine_id(self, client_id: str) -> str | None:
        """Return the engine order a venue order reports to (None: none yet)."""
        leg = None if self.stops is None else self.stops.leg(client_id)
        if leg is not None:
            return leg.bound_to
        if self.venue.order(client_id).request.type in STOP_TYPES:
            return None  # a stop refused at placing: its fallback is journaled
        return self._fallbacks.get(client_id, client_id)

    def _partial(self, engine_id: str) -> bool:
        """Return whether the engine's order is a partial take-profit (`tradeloom.core.scaling`)."""
        try:
            return self.venue.order(engine_id).request.order.reason == "TAKE_PROFIT_PARTIAL"
        except KeyError:  # booked to a resting stop: an exit, never sent itself
            return False

    def _order_of(self, engine_id: str, fallback: Order) -> Order:
        try:
            return self.venue.order(engine_id).request.order
        except KeyError:  # an exit booked to a resting stop: never sent itself
            return replace(fallback, id=engine_id)

    def _take(self, report: VenueReport) -> None:
        for trade in report.fills:
            engine_id = self._engine_id(trade.fill.order_id)
            if self.stops is not None and self.stops.leg(trade.fill.order_id) is not None:
                engine_id = self.stops.take(trade)
            if engine_id is None:
                continue  # held until the engine's exit is booked to the stop
            fill = replace(self._booked(trade), order_id=engine_id)
            if fill.side > 0 or self._partial(engine_id):
                # the stops rest again for what is held after it (a partial take-profit
                # cancelled them before it sold: `_close_by_stop`)
                self.entry_id = engine_id
            self._deliver(fill)
        for cancellation in report.cancellations:
            if self._engine_id(cancellation.order_id) is None:
                continue  # a resting stop's cancel (OCO): not the engine's order
            event = self._engine_event(cancellation)
            if event.order_id in self._ended:
                # the engine heard of its end before a restart: nothing is resumed for it
                continue
            if self._resume_fallback(cancellation):
                continue
            if self._fell_back(cancellation.order_id):
                continue  # the rest goes on as the fallback market order
            self._deliver(event)
        for move in report.transitions:
            refusal = move.rejection
            if move.state is OrderState.REJECTED and refusal is not None:
                if self._engine_id(move.client_id) is None:
                    continue  # a stop refused at placing: journaled as its fallback
                order = self.venue.order(move.client_id)
                remaining = max(order.quantity - order.filled, 0.0)
                reason = f"REJECTED {refusal.code}"
                engine_id = self._fallbacks.get(move.client_id, move.client_id)
                self._deliver(
                    Cancellation(engine_id, refusal.bar, refusal.timestamp, remaining, reason)
                )
        for refused in report.refused:
            self.refused.append(refused)

    def _deliver(self, event: Fill | Cancellation) -> None:
        self._events.append(event)

    def _resume_fallback(self, cancellation: Cancellation) -> bool:
        """Send the market order of a fallback whose cancel a killed process had asked for.

        A limit order this process did not ask to cancel, found cancelled once its
        fallback was due (and not its expiry), was cancelled for its fallback before
        the process died, the market order not sent yet: send it now, once (the
        journal has no ``{id}-f``, and the exchange would refuse a second).
        """
        client_id = cancellation.order_id
        limit = self.orders.limit
        by_bars = limit.fallback_after_bars
        if by_bars is None or client_id in self._asked or client_id in self._fallbacks.values():
            return False
        if cancellation.reason == ORDER_LOST:
            return False  # ended unknown, not cancelled: what it filled is not known
        view = self.venue.order(client_id)
        order = view.request.order
        if view.request.type != "limit" or view.quantity - view.filled <= self.dust:
            return False
        rested = cancellation.bar - 1 - order.bar
        expiry = limit.expire_after_bars
        if rested < by_bars or (expiry is not None and rested >= expiry):
            return False
        _log.warning("fallback_resumed", client_id=client_id)
        self._asked.add(client_id)
        self._fallbacks[derived_client_id(client_id, "f")] = client_id
        self._take(self.venue.fall_back_to_market(client_id))
        return True

    def _fell_back(self, client_id: str) -> bool:
        fallback = derived_client_id(client_id, "f")
        return fallback in self._fallbacks and fallback in {
            view.client_id for view in self.venue.orders()
        }

    def _engine_event(self, cancellation: Cancellation) -> Cancellation:
        engine_id = self._engine_id(cancellation.order_id) or cancellation.order_id
        return replace(cancellation, order_id=engine_id)

    def book(self, trade: TradeFill) -> Fill:
        """Return the fill the portfolio books for ``trade`` (net of a base-asset fee)."""
        return self._booked(trade)

    def _booked(self, trade: TradeFill) -> Fill:
        fill = trade.fill
        if trade.fee_currency == self.base and fill.side > 0 and trade.fee_cost > 0.0:
            received = fill.quantity - trade.fee_cost
            if not (math.isfinite(received) and received > 0.0):
                raise RuntimeError(
                    f"order {fill.order_id}: trade {trade.trade_id} charged a fee of "
                    f"{trade.fee_cost} {self.base} on {fill.quantity} bought"
                )
            return replace(fill, quantity=received)
        return fill
