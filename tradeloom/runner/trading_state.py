"""The trading state of a live or paper run: ACTIVE, REDUCING or HALTED.

- ``ACTIVE``: every order may be sent (the pre-trade limits still apply).
- ``REDUCING``: only orders that bring ``|position|`` closer to zero without
  flipping its sign; entered on a daily loss breach or by an operator.
- ``HALTED``: no order at all; cancels are always allowed, in every state, and
  are not orders in this sense. Entered by the kill switch; left only by an
  explicit `TradingStateMachine.resume` (``tradeloom resume``), never by
  `TradingStateMachine.move_to`.

The machine is pure: it returns a `StateChange` for the journal and does no I/O.
A run that restarts rebuilds it from the last journaled change, which is how a
halt stays latched across restarts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

__all__ = [
    "ALLOWED_TRANSITIONS",
    "StateChange",
    "TradingState",
    "TradingStateMachine",
    "TransitionError",
    "is_reducing",
    "order_allowed",
]


class TradingState(StrEnum):
    """What a run may send to the venue."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


ALLOWED_TRANSITIONS: Mapping[TradingState, frozenset[TradingState]] = {
    TradingState.ACTIVE: frozenset({TradingState.REDUCING, TradingState.HALTED}),
    TradingState.REDUCING: frozenset({TradingState.ACTIVE, TradingState.HALTED}),
    # Only `TradingStateMachine.resume` leaves HALTED.
    TradingState.HALTED: frozenset(),
}
"""The states `TradingStateMachine.move_to` may go to from each state."""


@dataclass(frozen=True)
class StateChange:
    """A transition of the trading state, as the journal records it.

    Attributes:
        previous: The state before the change.
        state: The state after it.
        code: Why, as a reason code (``DAILY_LOSS``, ``KILL_SWITCH``, ``RESUME``, ...).
        message: The reason in words, with the numbers behind it.
        timestamp: When it happened (UTC).
    """

    previous: TradingState
    state: TradingState
    code: str
    message: str
    timestamp: pd.Timestamp


class TransitionError(Exception):
    """Raised for a transition the state machine does not allow."""


class TradingStateMachine:
    """Hold the trading state and move it only along `ALLOWED_TRANSITIONS`.

    Args:
        restored: The last journaled change of a restarted run; None starts ACTIVE.
    """

    def __init__(self, restored: StateChange | None = None) -> None:
        self._last_change = restored

    @property
    def state(self) -> TradingState:
        """Return the current state."""
        return TradingState.ACTIVE if self._last_change is None else self._last_change.state

    @property
    def last_change(self) -> StateChange | None:
        """Return the change that led to the current state (None: ACTIVE since start)."""
        return self._last_change

    def move_to(
        self, target: TradingState, code: str, message: str, timestamp: pd.Timestamp
    ) -> StateChange | None:
        """Move to ``target`` for the reason given.

        Moving to the current state changes nothing (and keeps the earlier reason).

        Returns:
            The change to journal, or None when already in ``target``.

        Raises:
            TransitionError: The transition is not allowed; from HALTED, only
                `resume` leaves.
        """
        current = self.state
        if target == current:
            return None
        if target not in ALLOWED_TRANSITIONS[current]:
            remedy = "; only resume leaves HALTED" if current is TradingState.HALTED else ""
            raise TransitionError(f"cannot move from {current} to {target}{remedy}")
        return self._record(target, code, message, timestamp)

    def halt(self, code: str, message: str, timestamp: pd.Timestamp) -> StateChange | None:
        """Move to HALTED (the kill switch); None when already halted."""
        return self.move_to(TradingState.HALTED, code, message, timestamp)

    def resume(self, message: str, timestamp: pd.Timestamp) -> StateChange:
        """Leave HALTED for ACTIVE: the explicit, operator-only way out of a halt.

        Raises:
            TransitionError: The state is not HALTED.
        """
        if self.state is not TradingState.HALTED:
            raise TransitionError(f"cannot resume from {self.state}: only HALTED is resumed")
        return self._record(TradingState.ACTIVE, "RESUME", message, timestamp)

    def _record(
        self, target: TradingState, code: str, message: str, timestamp: pd.Timestamp
    ) -> StateChange:
        change = StateChange(self.state, target, code, message, timestamp)
        self._last_change = change
        return change


def is_reducing(position: float, side: int, quantity: float) -> bool:
    """Return whether an order brings ``|position|`` toward zero without flipping it.

    An order that closes the position exactly reduces it; one larger than the
    position flips it and does not. No order reduces a flat position.

    Args:
        position: The signed position in base units (+ long, - short).
        side: +1 buy, -1 sell.
        quantity: The order's quantity in base units, > 0.

    Raises:
        ValueError: ``side`` is not +1 or -1, ``quantity`` is not a positive finite
            number, or ``position`` is not finite.
    """
    _validate(position, side, quantity)
    # Exact comparison is safe: for 0 <= q <= |p| the float p + side*q is rounded
    # monotonically, so it can neither change sign nor exceed |p|.
    return position != 0 and side * position < 0 and quantity <= abs(position)


def order_allowed(state: TradingState, position: float, side: int, quantity: float) -> bool:
    """Return whether the trading state lets an order be sent.

    ACTIVE allows every order, REDUCING only those that `is_reducing`, HALTED none.

    Raises:
        ValueError: As `is_reducing`.
    """
    _validate(position, side, quantity)
    if state is TradingState.ACTIVE:
        return True
    if state is TradingState.REDUCING:
        return is_reducing(position, side, quantity)
    return False


def _validate(position: float, side: int, quantity: float) -> None:
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, was {side}")
    if not (math.isfinite(quantity) and quantity > 0):
        raise ValueError(f"quantity must be a positive finite number, was {quantity}")
    if not math.isfinite(position):
        raise ValueError(f"position must be finite, was {position}")
