"""The life of one order at a venue, as an explicit state machine.

A live order can be lost in ways a backtest never sees: the request times out
after the venue took it, the same trade is reported twice, a stale answer arrives
after a newer one. `OrderLifecycle` holds the states an order moves through and
refuses every move the table does not allow, so that such a surprise is an error
at the place it happens instead of a wrong position later.

States (`OrderState`):

- ``PENDING``: journaled, not sent yet.
- ``SUBMITTED``: sent, no answer yet.
- ``ACCEPTED``: the venue has it; nothing filled.
- ``PARTIALLY_FILLED``: some of it filled, the rest works on.
- ``FILLED``, ``CANCELLED``, ``REJECTED``: terminal; nothing moves an order out
  of them (`TERMINAL`).
- ``UNKNOWN``: sent, and the answer was lost (a timeout, a dropped connection):
  the venue may or may not have it. Only a lookup by client order id settles it;
  the order is never sent again.

Fills are counted by trade id: a trade id seen before is ignored and reported as
a duplicate (venues repeat trades across pages, reconnects and restarts). A fill
that would take the filled quantity beyond the order's quantity (beyond a
relative tolerance for float sums) is refused with `OverfillError` and not
applied. A cancelled order may still receive fills it made before the cancel,
reported late, up to the filled quantity the venue gave when it cancelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from tradeloom.domain import Rejection

__all__ = [
    "FILL_TOLERANCE",
    "TERMINAL",
    "TRANSITIONS",
    "FillResult",
    "IllegalTransition",
    "OrderLifecycle",
    "OrderState",
    "OrderStateError",
    "OverfillError",
    "Transition",
    "VenueStatus",
]

FILL_TOLERANCE = 1e-9
"""Relative slack on the order quantity: float sums of fills may overshoot it by this."""


class OrderState(StrEnum):
    """Where an order is in its life at the venue."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


TERMINAL: frozenset[OrderState] = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED}
)
"""States an order never leaves."""

_S = OrderState

TRANSITIONS: Mapping[OrderState, frozenset[OrderState]] = {
    # Refused before sending (below the market's minimums) or sent.
    _S.PENDING: frozenset({_S.SUBMITTED, _S.REJECTED}),
    # The answer to the one send: an ack (possibly with immediate fills), a refusal,
    # or nothing (UNKNOWN).
    _S.SUBMITTED: frozenset(
        {_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED, _S.UNKNOWN}
    ),
    _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED}),
    _S.PARTIALLY_FILLED: frozenset({_S.FILLED, _S.CANCELLED}),
    # A lookup finds the order in whatever state it reached, or finds nothing.
    _S.UNKNOWN: frozenset({_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
}
"""Every state an order may move to from each state (a fill within a state is no move)."""

_FILLABLE = frozenset(
    {_S.SUBMITTED, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.UNKNOWN, _S.FILLED, _S.CANCELLED}
)
"""States in which a trade may be counted: the venue has (or had) the order."""

VenueStatus = Literal["open", "closed", "canceled", "expired", "rejected"]
"""An order's status as ccxt reports it (``closed``: completely filled)."""


class OrderStateError(Exception):
    """An event the order's state does not allow; the order did not change."""


class IllegalTransition(OrderStateError):
    """A move the transition table refuses (out of a terminal state, for one)."""


class OverfillError(OrderStateError):
    """A fill (or a venue status) that would take the order beyond what it may fill.

    Attributes:
        client_id: The order.
        trade_id: The refused trade; None when a status report claimed the overfill.
        quantity: The quantity that would be added.
        filled: The quantity filled before it.
        limit: The most the order may fill (its quantity, or what the venue said was
            filled when it cancelled the order).
    """

    def __init__(
        self, client_id: str, trade_id: str | None, quantity: float, filled: float, limit: float
    ) -> None:
        source = "a venue status" if trade_id is None else f"trade {trade_id}"
        super().__init__(
            f"OVERFILL: order {client_id}: {source} would fill {filled + quantity:g} "
            f"of at most {limit:g}; refused"
        )
        self.client_id = client_id
        self.trade_id = trade_id
        self.quantity = quantity
        self.filled = filled
        self.limit = limit


@dataclass(frozen=True)
class Transition:
    """An order moved from one state to another.

    Attributes:
        client_id: The order's client order id.
        previous: The state it left.
        state: The state it entered.
        reason: Why, for the journal (``sent``, ``acknowledged``, ``RequestTimeout: ...``).
        filled: Quantity filled when it moved.
        rejection: For a move to ``REJECTED``, the venue's (or the pre-send check's)
            reason code and message.
        journaled_from: The state the order's last journal row entered, where it is not
            ``previous``: a restart's lifecycle catching up with what its journal holds
            (``adopted``, or a state further on); its row's ``previous`` (None: ``previous``).
    """

    client_id: str
    previous: OrderState
    state: OrderState
    reason: str
    filled: float
    rejection: Rejection | None = None
    journaled_from: str | None = None


@dataclass(frozen=True)
class FillResult:
    """What became of one reported trade.

    Attributes:
        applied: True when it was counted; False for a trade id seen before.
        transition: The move the fill caused, if any (to partially filled or filled).
    """

    applied: bool
    transition: Transition | None = None

    @property
    def duplicate(self) -> bool:
        """Whether the trade id had been counted already (and was ignored)."""
        return not self.applied


class OrderLifecycle:
    """One order's state, its fills by trade id, and every move it made.

    Each method is one event; it returns the transition(s) it caused and raises
    `OrderStateError` (leaving everything as it was) for an event the state does
    not allow.

    Args:
        client_id: The client order id.
        quantity: The quantity ordered (after rounding to the market's precision).
        tolerance: Relative slack on ``quantity`` for float sums of fills.
    """

    def __init__(
        self, client_id: str, quantity: float, *, tolerance: float = FILL_TOLERANCE
    ) -> None:
        if not quantity > 0 or math.isinf(quantity):
            raise ValueError(f"order {client_id}: quantity must be > 0, was {quantity}")
        self.client_id = client_id
        self.quantity = quantity
        self.state = OrderState.PENDING
        self.venue_id: str | None = None
        self.history: list[Transition] = []
        self._trades: dict[str, float] = {}
        self._slack = quantity * tolerance
        self._final: float | None = None
        self._venue_filled = 0.0

    # --- what it holds ------------------------------------------------------------

    @property
    def filled(self) -> float:
        """Quantity filled: the sum of the counted trades."""
        return math.fsum(self._trades.values())

    @property
    def remaining(self) -> float:
        """Quantity not filled (0 once filled; what was left when cancelled)."""
        return max(0.0, self.quantity - self.filled)

    @property
    def trade_ids(self) -> frozenset[str]:
        """The trades counted."""
        return frozenset(self._trades)

    @property
    def terminal(self) -> bool:
        """Whether the order can no longer change state."""
        return self.state in TERMINAL

    @property
    def venue_filled(self) -> float:
        """The largest filled quantity the venue has reported in an order status."""
        return self._venue_filled

    @property
    def awaiting_trades(self) -> bool:
        """Whether the venue reported more filled than the trades counted so far."""
        return self._venue_filled - self.filled > self._slack

    @property
    def fill_limit(self) -> float:
        """The most this order may fill: its quantity, or its filled quantity at cancel."""
        return self.quantity if self._final is None else self._final

    # --- events --------------------------------------------------------------------

    def send(self) -> Transition:
        """Mark the order sent (its intent is in the journal)."""
        return self._move(OrderState.SUBMITTED, "sent")

    def lose(self, reason: str) -> Transition:
        """Mark the answer to the send lost: the venue may or may not have the order."""
        return self._move(OrderState.UNKNOWN, reason)

    def reject(self, rejection: Rejection) -> Transition:
        """Mark the order refused: before sending, by the venue, or never arrived."""
        if self._trades:
            raise IllegalTransition(
                f"order {self.client_id}: cannot reject an order with fills "
                f"({self.filled:g} filled)"
            )
        return self._move(OrderState.REJECTED, str(rejection), rejection)

    def accept(self, venue_id: str | None = None, reason: str = "acknowledged") -> list[Transition]:
        """Record that the venue has the order.

        Acceptance is implied by any later state, so it is a no-op there; from
        ``PENDING`` or ``REJECTED`` it is illegal.
        """
        self._set_venue_id(venue_id)
        if self.state in (OrderState.SUBMITTED, OrderState.UNKNOWN):
            return [self._move(OrderState.ACCEPTED, reason)]
        if self.state in (OrderState.PENDING, OrderState.REJECTED):
            raise IllegalTransition(
                f"order {self.client_id}: cannot be accepted while {self.state.value}"
            )
        return []

    def cancel(self, reason: str, venue_filled: float | None = None) -> list[Transition]:
        """Record that the venue stopped working the order.

        Args:
            reason: Why (``cancelled``, ``expired``...).
            venue_filled: The filled quantity the venue reported with the cancel;
                trades up to it may still be counted afterwards. When it reaches the
                order's quantity the order is filled, not cancelled: its trades will
                complete it.
        """
        if self.state not in TRANSITIONS or OrderState.CANCELLED not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"order {self.client_id}: cannot move from {self.state.value} to cancelled"
            )
        final = self.filled if venue_filled is None else max(venue_filled, self.filled)
        if final > self.quantity + self._slack:
            raise OverfillError(
                self.client_id, None, final - self.filled, self.filled, self.quantity
            )
        self._venue_filled = max(self._venue_filled, final)
        if final >= self.quantity - self._slack:
            return self.accept(reason=reason)
        moved = self._move(OrderState.CANCELLED, reason)
        self._final = final
        return [moved]

    def fill(self, trade_id: str, quantity: float) -> FillResult:
        """Count one trade of the order, once.

        Raises:
            OverfillError: The trade would fill more than `fill_limit` (not counted).
            IllegalTransition: The venue cannot have the order (pending, rejected).
        """
        if not quantity > 0 or math.isinf(quantity):
            raise ValueError(f"order {self.client_id} trade {trade_id}: quantity must be > 0")
        if trade_id in self._trades:
            return FillResult(applied=False)
        if self.state not in _FILLABLE:
            raise IllegalTransition(
                f"order {self.client_id}: a fill (trade {trade_id}) for an order that is "
                f"{self.state.value}"
            )
        filled = self.filled
        limit = self.fill_limit
        if filled + quantity > limit + self._slack:
            raise OverfillError(self.client_id, trade_id, quantity, filled, limit)
        self._trades[trade_id] = quantity
        total = self.filled
        if self.state in TERMINAL:
            return FillResult(applied=True)
        target = (
            OrderState.FILLED
            if total >= self.quantity - self._slack
            else OrderState.PARTIALLY_FILLED
        )
        if target == self.state:
            return FillResult(applied=True)
        return FillResult(applied=True, transition=self._move(target, f"trade {trade_id}"))

    def observe(
        self,
        status: VenueStatus,
        venue_filled: float | None,
        venue_id: str | None = None,
        rejection: Rejection | None = None,
    ) -> list[Transition]:
        """Apply an order status read from the venue (a lookup, a poll, a cancel answer).

        The status says what the venue knows; the fills themselves come as trades,
        so a ``closed`` order is filled once its trades are counted (`awaiting_trades`
        until then). A status read for a terminal order is stale and changes nothing.

        Args:
            status: The venue's status.
            venue_filled: The filled quantity the venue reports (None: not given).
            venue_id: The venue's order id.
            rejection: Why, for a ``rejected`` status of an order never acknowledged
                (required then: it becomes the order's rejection).
        """
        if self.terminal:
            return []
        if self.state == OrderState.PENDING:
            raise IllegalTransition(f"order {self.client_id}: a venue status for an unsent order")
        if venue_filled is not None:
            if venue_filled > self.quantity + self._slack:
                raise OverfillError(
                    self.client_id, None, venue_filled - self.filled, self.filled, self.quantity
                )
            self._venue_filled = max(self._venue_filled, venue_filled)
        never_acknowledged = self.state in (OrderState.SUBMITTED, OrderState.UNKNOWN)
        if status == "rejected" and never_acknowledged and not self._venue_filled:
            if rejection is None:
                raise ValueError(f"order {self.client_id}: a rejected status needs its rejection")
            self._set_venue_id(venue_id)
            return [self.reject(rejection)]
        moves = self.accept(venue_id, reason=f"venue status {status}")
        if status in ("canceled", "expired", "rejected"):
            reason = "expired" if status == "expired" else f"venue status {status}"
            moves += self.cancel(reason, venue_filled)
        return moves

    # --- internals -------------------------------------------------------------------

    def _set_venue_id(self, venue_id: str | None) -> None:
        if venue_id is not None and self.venue_id is None:
            self.venue_id = venue_id

    def _move(
        self, state: OrderState, reason: str, rejection: Rejection | None = None
    ) -> Transition:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"order {self.client_id}: cannot move from {self.state.value} to {state.value}"
            )
        transition = Transition(self.client_id, self.state, state, reason, self.filled, rejection)
        self.state = state
        self.history.append(transition)
        return transition
