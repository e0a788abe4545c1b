"""What a ccxt venue knows of its orders, and how the exchange's word moves them.

`TrackedOrders` is the base of `tradeloom.live.orders.ccxt_venue.CcxtVenue`, which sets up
what it declares and sends, polls and cancels: here each order submitted (or recovered)
is held with its lifecycle (`OrderLifecycle`) and read back (`OrderView`); the venue's
answer to a send (its own, or its place in a batch's), an order structure, a status and
a trade are applied to it, each move journaled (`OrderJournal.record`) and collected for
the caller's `VenueReport`; a trade is counted once by its id, an overfill is refused and
reported, never applied.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Any

import pandas as pd

from tradeloom.domain import Cancellation, Fill, Order, Rejection
from tradeloom.live.orders.ccxt_answers import _fee, _liquidity, _number, _text
from tradeloom.live.orders.ccxt_errors import VenueMessage, submission_outcome
from tradeloom.live.orders.order_checks import rejection as order_rejection
from tradeloom.plugins.protocols_orders.order_events import (
    OrderJournal,
    OrderView,
    RefusedFill,
    StopFallback,
    TradeFill,
    VenueEvent,
    VenueOrder,
    VenueReport,
)
from tradeloom.plugins.protocols_orders.order_state import (
    OrderLifecycle,
    OrderState,
    OrderStateError,
    OverfillError,
    Transition,
    VenueStatus,
)
from tradeloom.plugins.protocols_orders.order_terms import STOP_TYPES
from tradeloom.runtime.lazy import logger

__all__ = ["TrackedOrders"]

_log = logger("tradeloom.execution")

_STATUSES: Mapping[str, VenueStatus] = {
    "open": "open",
    "canceling": "open",
    "closed": "closed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
}
"""ccxt's order statuses, as the state machine reads them (``canceling``: still working)."""

_PROGRESS: Mapping[str, int] = {
    OrderState.PENDING: 0,
    OrderState.SUBMITTED: 1,
    OrderState.UNKNOWN: 2,
    "adopted": 3,  # a restart's row: found at the venue beyond the journal (acknowledged)
    OrderState.ACCEPTED: 3,
    OrderState.PARTIALLY_FILLED: 4,
    OrderState.FILLED: 5,
    OrderState.CANCELLED: 5,
    OrderState.REJECTED: 5,
}
"""How far along its life each state an order's rows enter puts it: a restart's
lifecycle, catching up with its journal, passes the states before the one journaled."""

_FINISHED = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})
"""States whose row ends an order's chain: nothing is journaled after one (`_row`)."""

_DUPLICATE_CHILD = re.compile(r"duplicate", re.IGNORECASE)
"""A batch child refused as a duplicate of an order the venue has (sent before): it is
looked up, as `submission_outcome` has a single order's duplicate."""


@dataclass
class _Tracked:
    request: VenueOrder
    life: OrderLifecycle
    sent_at: float | None = None
    lost_at: float | None = None
    """When the send came back without an answer (the settle window starts there)."""
    made_ms: int | None = None
    """When the venue made the order (ms, its clock), once an answer said."""
    entered: str | None = None
    """The state the order's last journal row entered (None: no row yet); a restart's
    lifecycle may be short of it until the venue is asked (`TrackedOrders._row`)."""
    restated: bool = False
    """Tracked again by a restart as its journal has it acknowledged, without a venue id
    and the venue not read since: `CcxtVenue.resolve_unknown` looks it up by its client
    id once (a miss leaves it as it is, polled as working)."""
    misses: int = 0
    """Lookups by its client id that found an order acknowledged without a venue id
    nowhere (`CcxtVenue.lost_after` of them end it ``ORDER_LOST``)."""
    lost: bool = False
    """Ended ``ORDER_LOST``: what it filled is not known (nothing is sent for its rest)."""


@dataclass
class _Collector:
    transitions: list[Transition] = field(default_factory=list)
    fills: list[TradeFill] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refused: list[RefusedFill] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    stop_fallbacks: list[StopFallback] = field(default_factory=list)

    def report(self) -> VenueReport:
        return VenueReport(
            tuple(self.transitions),
            tuple(self.fills),
            tuple(self.cancellations),
            tuple(self.rejections),
            tuple(self.duplicates),
            tuple(self.refused),
            tuple(self.unresolved),
            tuple(self.stop_fallbacks),
        )

    def empty(self) -> bool:
        return not (
            self.transitions
            or self.fills
            or self.cancellations
            or self.rejections
            or self.refused
            or self.stop_fallbacks
        )


class TrackedOrders:
    """The orders of one symbol a venue tracks, and what the exchange says of them applied.

    The base of `CcxtVenue`, whose constructor sets up what is declared here.
    """

    client: Any
    symbol: str
    journal: OrderJournal
    _bar_clock: Callable[[], int]
    _clock: Callable[[], float]
    _orders: dict[str, _Tracked]
    _unsettled: dict[str, _Tracked]
    _rank: dict[str, int]
    _tracked: itertools.count[int]
    _held: _Collector
    _by_venue_id: dict[str, str]

    # --- what it holds --------------------------------------------------------------

    def order(self, client_id: str) -> OrderView:
        """Return one order as tracked now.

        Raises:
            KeyError: No order with this client id was submitted here.
        """
        tracked = self._orders[client_id]
        life = tracked.life
        return OrderView(
            tracked.request,
            life.state,
            life.venue_id,
            life.quantity,
            life.filled,
            life.trade_ids,
            life.venue_filled,
        )

    def orders(self) -> list[OrderView]:
        """Return every order submitted here, in submission order."""
        return [self.order(client_id) for client_id in self._orders]

    def views(self, client_ids: set[str]) -> list[OrderView]:
        """Return `unfinished` and the orders of ``client_ids`` submitted here, in
        submission order: a few finished orders without a view of every order."""
        wanted = {t.request.client_id for t in self._open() if not t.life.terminal}
        wanted.update(client_id for client_id in client_ids if client_id in self._orders)
        return [self.order(client_id) for client_id in sorted(wanted, key=self._rank.__getitem__)]

    def unfinished(self) -> list[OrderView]:
        """Return the orders that are not finished (working, or unknown), in submission
        order: `orders` without the terminal ones, at the cost of the open orders only."""
        if not self._unsettled:
            return []
        return [self.order(t.request.client_id) for t in self._open() if not t.life.terminal]

    @property
    def settled(self) -> bool:
        """Whether every order is finished with all its trades counted and reported."""
        # no order tracked unsettled: none to find finished (`_open`'s list), a quiet
        # tick's every look
        return self._held.empty() and (not self._unsettled or not self._open())

    @property
    def holds(self) -> bool:
        """Whether a call counted something not reported yet (`held` is not empty)."""
        return not self._held.empty()

    @property
    def held(self) -> VenueReport:
        """What a call counted before a read failed every attempt, not reported yet.

        Its trades are counted and journaled (the account holds them); the next
        `poll`, `resolve_unknown` or `cancel` reports them.
        """
        return self._held.report()

    def sent_at(self, client_id: str) -> float | None:
        """Return when an order was sent (seconds since the epoch; None: never sent).

        Raises:
            KeyError: No order with this client id was submitted here.
        """
        return self._orders[client_id].sent_at

    def pending(self) -> list[Order]:
        """Return the orders that are not finished (working, or unknown)."""
        return [t.request.order for t in self._open() if not t.life.terminal]

    def _track(self, client_id: str, tracked: _Tracked) -> None:
        self._orders[client_id] = self._unsettled[client_id] = tracked
        self._rank[client_id] = next(self._tracked)

    def _open(self) -> list[_Tracked]:
        """The orders not finished with every trade counted, in submission order.

        Finished with its trades counted is for good: nothing moves an order out of a
        terminal state, and a terminal order's venue-reported fill never grows (a
        status read of it changes nothing), so its counted trades can only catch up.
        Such orders are dropped from `_unsettled` here, once.
        """
        done = [
            client_id
            for client_id, t in self._unsettled.items()
            if t.life.terminal and not t.life.awaiting_trades
        ]
        for client_id in done:
            del self._unsettled[client_id]
        return list(self._unsettled.values())

    # --- answers --------------------------------------------------------------------

    def child_answered(
        self, client_id: str, answer: Mapping[str, Any], out: _Collector | None = None
    ) -> None:
        """Take the venue's answer to a sent order (its own, or its place in a batch's).

        A batch child the venue refused in its place (ccxt's order of status
        ``rejected`` carrying the venue's code and message) is ``REJECTED`` with them, as
        a refused single order is; one it refused as a duplicate is looked up, never
        sent again (`CcxtVenue.resolve_unknown`).
        """
        tracked = self._orders[client_id]
        into = self._held if out is None else out
        info = answer.get("info")
        refusal = info if isinstance(info, Mapping) else {}
        code = refusal.get("code")
        if answer.get("id") is None and code is not None:
            message = f"{self.client.id} {json.dumps(refusal)}"
            if _DUPLICATE_CHILD.search(str(refusal.get("msg"))):
                self._lost(tracked, message, into)
                return
            rejection = order_rejection(
                tracked.request.order, "VENUE_REJECTED", message, {"venue_code": float(code)}
            )
            self._emit(into, [tracked.life.reject(rejection)])
            return
        self._absorb(tracked, answer, into, cancel_reason=None, found_by="acknowledged")
        if tracked.life.state is OrderState.REJECTED and into.rejections:
            self._fall_back(tracked.request, into.rejections[-1], into)

    def child_failed(
        self, client_id: str, error: BaseException, out: _Collector | None = None
    ) -> None:
        """Classify what a send raised for one order (its own send, or its batch's).

        A refusal makes it ``REJECTED``; anything else leaves it ``UNKNOWN``: the venue
        may have it (a batch cut after some of its children), and `resolve_unknown`
        looks it up by its client order id.
        """
        tracked = self._orders[client_id]
        into = self._held if out is None else out
        order = tracked.request.order
        message = VenueMessage.of(error, getattr(self.client, "last_http_response", None))
        if submission_outcome(error) == "rejected":
            rejection = order_rejection(
                order,
                "VENUE_REJECTED",
                str(message),
                {} if message.code is None else {"venue_code": float(message.code)},
            )
            self._emit(into, [tracked.life.reject(rejection)])
            self._fall_back(tracked.request, rejection, into)
            return
        self._lost(tracked, str(message), into)

    def _lost(self, tracked: _Tracked, message: str, out: _Collector) -> None:
        _log.warning("order_unknown", client_id=tracked.request.client_id, error=message)
        tracked.lost_at = self._clock()
        self._emit(out, [tracked.life.lose(message)])

    def _hand_over(self) -> VenueReport:
        report = self._held.report()
        self._held = _Collector()
        return report

    def _join_held(self, report: VenueReport) -> None:
        """Hold ``report`` again (one of several calls whose reports are handed over once)."""
        held = self._held
        held.transitions.extend(report.transitions)
        held.fills.extend(report.fills)
        held.cancellations.extend(report.cancellations)
        held.rejections.extend(report.rejections)
        held.duplicates.extend(report.duplicates)
        held.refused.extend(report.refused)
        held.unresolved.extend(report.unresolved)
        held.stop_fallbacks.extend(report.stop_fallbacks)

    # --- applying what the venue says -------------------------------------------------

    def _absorb(
        self,
        tracked: _Tracked,
        answer: Mapping[str, Any],
        out: _Collector,
        *,
        cancel_reason: str | None,
        found_by: str = "venue status",
    ) -> None:
        """Apply an order structure: acknowledgement, the trades it carries, its status.

        Trades the status shows but the structure does not carry are left to the
        caller (`_fetch_order_trades`): a submit must not fail on a read after its send.
        """
        life = tracked.life
        tracked.restated = False
        venue_id = _text(answer.get("id"))
        if venue_id is not None:
            self._by_venue_id.setdefault(venue_id, life.client_id)
        made = answer.get("timestamp")
        if isinstance(made, int) and tracked.made_ms is None:
            tracked.made_ms = made
        status = _STATUSES.get(str(answer.get("status")))
        filled = _number(answer.get("filled"))
        if status == "rejected" and life.state in (OrderState.SUBMITTED, OrderState.UNKNOWN):
            rejection = order_rejection(
                tracked.request.order,
                "VENUE_REJECTED",
                f"the venue reports order {life.client_id} rejected",
                {},
            )
            self._apply(tracked, out, status, filled, venue_id, rejection, cancel_reason)
            return
        if not life.terminal:
            self._emit(out, life.accept(venue_id, reason=found_by))
        for trade in answer.get("trades") or ():
            self._take_trade(tracked, trade, out, answer)
        if status is not None:
            self._apply(tracked, out, status, filled, venue_id, None, cancel_reason)

    def _apply(
        self,
        tracked: _Tracked,
        out: _Collector,
        status: VenueStatus,
        filled: float | None,
        venue_id: str | None,
        rejection: Rejection | None,
        cancel_reason: str | None,
    ) -> None:
        life = tracked.life
        try:
            moves = life.observe(status, filled, venue_id, rejection)
        except OverfillError as error:
            self._refuse(out, RefusedFill(life.client_id, None, error.quantity, str(error)))
            return
        self._emit(out, moves)
        for move in moves:
            if move.state != OrderState.CANCELLED:
                continue
            if cancel_reason is not None:
                reason = cancel_reason
            else:
                reason = "EXPIRED" if status == "expired" else "VENUE_CANCELLED"
            cancellation = Cancellation(
                order_id=life.client_id,
                bar=self._bar_clock(),
                timestamp=pd.Timestamp(self._clock(), unit="s", tz="UTC"),
                remaining=max(0.0, life.quantity - life.fill_limit),
                reason=reason,
            )
            out.cancellations.append(cancellation)

    def _route_trade(self, trade: Mapping[str, Any], out: _Collector) -> None:
        client_id = self._by_venue_id.get(str(trade.get("order")))
        if client_id is None:
            return
        self._take_trade(self._orders[client_id], trade, out, None)

    def _take_trade(
        self,
        tracked: _Tracked,
        trade: Mapping[str, Any],
        out: _Collector,
        order_answer: Mapping[str, Any] | None,
    ) -> None:
        life = tracked.life
        trade_id = _text(trade.get("id"))
        amount = _number(trade.get("amount"))
        price = _number(trade.get("price"))
        if trade_id is None or amount is None or price is None or amount <= 0:
            self._refuse(
                out,
                RefusedFill(
                    life.client_id,
                    trade_id,
                    amount or 0.0,
                    f"order {life.client_id}: a trade without an id, amount or price "
                    "cannot be counted exactly once; ignored",
                ),
            )
            return
        try:
            result = life.fill(trade_id, amount)
        except OrderStateError as error:
            self._refuse(out, RefusedFill(life.client_id, trade_id, amount, str(error)))
            return
        if not result.applied:
            _log.debug("duplicate_trade", client_id=life.client_id, trade_id=trade_id)
            out.duplicates.append(trade_id)
            return
        stamp = trade.get("timestamp")
        if stamp is None and order_answer is not None:
            stamp = order_answer.get("timestamp")
        fee_cost, fee_currency = _fee(trade.get("fee"))
        fill = Fill(
            order_id=life.client_id,
            bar=self._bar_clock(),
            timestamp=(
                pd.Timestamp(int(stamp), unit="ms", tz="UTC")
                if isinstance(stamp, int | float)
                else pd.Timestamp(self._clock(), unit="s", tz="UTC")
            ),
            side=tracked.request.order.side,
            quantity=amount,
            price=price,
            fee=self._fee_in_quote(fee_cost, fee_currency, price),
            slippage=0.0,
            liquidity=_liquidity(trade.get("takerOrMaker"), tracked.request),
        )
        venue_order = _text(trade.get("order")) or life.venue_id
        trade_fill = TradeFill(trade_id, venue_order, fill, fee_cost, fee_currency)
        self.journal.record(trade_fill)
        out.fills.append(trade_fill)
        if result.transition is not None:
            self._emit(out, [result.transition])

    def _fee_in_quote(self, cost: float, currency: str | None, price: float) -> float:
        if cost == 0.0 or currency is None:
            return 0.0
        market = self.client.market(self.symbol)
        if currency == market.get("quote"):
            return cost
        if currency == market.get("base"):
            return cost * price
        return 0.0

    def _emit(self, out: _Collector, moves: list[Transition], *, restating: bool = False) -> None:
        for move in moves:
            row = self._row(move, restating=restating)
            if row is not None:
                self._journal(row)
            out.transitions.append(move)
            if move.rejection is not None:
                out.rejections.append(move.rejection)

    def _row(self, move: Transition, *, restating: bool = False) -> Transition | None:
        """Return the journal row of ``move``; None when the journal holds it already.

        An order tracked again by a restart (`CcxtVenue.recover`) starts its lifecycle
        over, short of the state its journal's last row entered; its moves up to that
        state restate the journal and are not journaled again (the venue may still be
        asked, its trades are counted by id). The first move beyond it is journaled
        from that state (`Transition.journaled_from`): each order's rows are one chain.
        Nothing is journaled after a row that finished the order (filled, cancelled,
        rejected): the table lets nothing leave those states. A move the venue makes of
        an order so ended is logged (``state_after_end``); one ``restating`` the journal
        (a restart counting the trades it holds) is not news from the venue, and is not.
        """
        tracked = self._orders.get(move.client_id)
        if tracked is None:
            return move
        entered, state = tracked.entered, move.state.value
        if entered in _FINISHED:
            # the journal ended the order (a restart's, whose venue owes it trades):
            # no row moves it out of that state, whatever the venue says now
            if state != entered and state in _FINISHED and not restating:
                client_id = move.client_id
                _log.warning("state_after_end", client_id=client_id, ended=entered, state=state)
            return None
        if entered is None or entered == move.previous.value:
            tracked.entered = state
            return move
        step, held = _PROGRESS[state], _PROGRESS.get(entered, -1)
        if state == entered or step < held or step == held == _PROGRESS["adopted"]:
            return None
        tracked.entered = state
        return dataclass_replace(move, journaled_from=entered)

    def _refuse(self, out: _Collector, refused: RefusedFill) -> None:
        _log.error("fill_refused", client_id=refused.client_id, message=refused.message)
        self._journal(refused)
        out.refused.append(refused)

    def _fall_back(self, request: VenueOrder, refusal: Rejection, out: _Collector) -> None:
        if request.trigger_price is None or request.type not in STOP_TYPES:
            return
        fallback = StopFallback(
            request.client_id, request.type, request.trigger_price, refusal.code, refusal.message
        )
        _log.warning(
            "stop_fallback",
            client_id=request.client_id,
            code=refusal.code,
            reason=refusal.message,
        )
        self._journal(fallback)
        out.stop_fallbacks.append(fallback)

    def _journal(self, event: VenueEvent) -> None:
        self.journal.record(event)
