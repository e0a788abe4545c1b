"""Pre-trade checks: what the live runner asks before every order is sent.

`PreTradeChecks.check` returns None (send it) or a `Rejection` whose code says
why not. Checks run in this order, the first failure wins:

1. ``DAILY_LOSS``: equity is ``daily_loss_limit`` or more below the UTC day's
   starting equity. The breach moves the state to REDUCING (not HALTED, so a
   losing position can still be closed) until the next UTC day; the order that
   finds the breach is rejected with this code unless it reduces the position.
2. ``TRADING_HALTED``: the state is HALTED; no order passes (cancels are not
   checked here and are always allowed).
3. ``TRADING_REDUCING``: the state is REDUCING and the order would increase
   ``|position|`` or flip its sign.
4. ``ORDER_RATE``: ``max_orders_per_minute`` orders were already sent in the
   60 s before now (the window is ``(now - 60 s, now]``).
5. ``MAX_ORDER_NOTIONAL``: ``quantity * price`` above ``max_order_notional``.
6. ``MAX_POSITION``: the position after the order, in base units, above
   ``max_position_quantity`` in absolute value.
7. ``PRICE_COLLAR``: the order's reference price more than ``price_collar``
   (a fraction) away from the last price.

A value exactly at a limit passes checks 4 to 7 (the limit is the largest value
allowed) and breaches check 1 (a loss that reaches the limit trips it, as the
drawdown halt does).

Exposure-reducing orders (`is_reducing`: toward flat, never through it) skip
checks 5 to 7, so that no limit can trap a position: a position bigger than one
order's notional, a position above a lowered limit, or a last price gapped
beyond the collar can always be closed. They are still subject to the state
(HALTED refuses them) and to the rate limit, which protects the venue's own
rate limit and stops a runaway loop, and delays a reduction by at most 60 s.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from tradeloom.domain import Order, Rejection
from tradeloom.runner.trading_state import (
    StateChange,
    TradingState,
    TradingStateMachine,
    is_reducing,
)
from tradeloom.schemas.limits import PreTradeLimits

__all__ = ["RATE_WINDOW", "PreTradeChecks", "PreTradeContext"]

RATE_WINDOW = pd.Timedelta(seconds=60)
"""The sliding window of ``max_orders_per_minute``."""


@dataclass(frozen=True)
class PreTradeContext:
    """What the checks see besides the order.

    Attributes:
        now: The clock's time (UTC; the simulated clock in tests). It must not go
            backwards between calls.
        position: The signed position in base units (+ long, - short).
        last_price: The market's last price.
        equity: The portfolio's equity marked at ``last_price``, in quote currency.
    """

    now: pd.Timestamp
    position: float
    last_price: float
    equity: float


class PreTradeChecks:
    """Check each order against the trading state and the `PreTradeLimits`.

    Call `check` before sending an order and `record_sent` once it is sent; a
    check does not count toward the rate limit by itself.

    Args:
        limits: The limits.
        state: The trading state, shared with whatever else moves it (the kill
            switch); a new ACTIVE one when None.
        day_start: The UTC day and its starting equity, for a restarted run; when
            None, the first equity observed in a day starts it.
    """

    def __init__(
        self,
        limits: PreTradeLimits,
        state: TradingStateMachine | None = None,
        *,
        day_start: tuple[dt.date, float] | None = None,
    ) -> None:
        self.limits = limits
        self.state = TradingStateMachine() if state is None else state
        self._day: dt.date | None = None if day_start is None else day_start[0]
        self._day_start_equity = math.nan if day_start is None else day_start[1]
        self._sent: list[pd.Timestamp] = []

    @property
    def day_start(self) -> tuple[dt.date, float] | None:
        """Return the current UTC day and its starting equity (None before any)."""
        return None if self._day is None else (self._day, self._day_start_equity)

    def observe(self, now: pd.Timestamp, equity: float) -> StateChange | None:
        """Track the UTC day and the daily loss; call at each mark, `check` calls it too.

        On the first observation of a UTC day, ``equity`` becomes the day's
        starting equity and a REDUCING state entered for ``DAILY_LOSS`` returns to
        ACTIVE. A loss reaching ``daily_loss_limit`` moves ACTIVE to REDUCING.

        Returns:
            The state change to journal, or None.
        """
        day = _utc(now).date()
        change = None
        if day != self._day:
            self._day, self._day_start_equity = day, equity
            last = self.state.last_change
            if (
                self.state.state is TradingState.REDUCING
                and last is not None
                and last.code == "DAILY_LOSS"
            ):
                change = self.state.move_to(
                    TradingState.ACTIVE, "DAY_ROLLOVER", f"new UTC day {day}", now
                )
        loss = self._daily_loss(equity)
        if loss is not None and self.state.state is TradingState.ACTIVE:
            change = self.state.move_to(
                TradingState.REDUCING, "DAILY_LOSS", self._loss_message(loss), now
            )
        return change

    def check(self, order: Order, context: PreTradeContext) -> Rejection | None:
        """Return why ``order`` must not be sent now, or None to send it.

        Raises:
            ValueError: The order's side is not +1 or -1, or its quantity is not a
                positive finite number.
        """
        position, side, quantity = context.position, order.side, order.quantity
        reducing = is_reducing(position, side, quantity)
        tripped = self.observe(context.now, context.equity)
        loss = self._daily_loss(context.equity)
        if (
            tripped is not None
            and tripped.code == "DAILY_LOSS"
            and loss is not None
            and not reducing
        ):
            return self._reject(
                order, context, "DAILY_LOSS", self._loss_message(loss), self._loss_values(loss)
            )
        state = self.state.state
        change = self.state.last_change
        why = "" if change is None else f" ({change.code}: {change.message})"
        if state is TradingState.HALTED:
            return self._reject(
                order,
                context,
                "TRADING_HALTED",
                f"trading is HALTED{why}; only cancels are allowed",
                {"position": position, "side": side, "quantity": quantity},
            )
        after = position + side * quantity
        if state is TradingState.REDUCING and not reducing:
            what = "flip" if position * after < 0 else "increase"
            return self._reject(
                order,
                context,
                "TRADING_REDUCING",
                f"trading is REDUCING{why}; the order would {what} the position: "
                f"position={_n(position)}, after={_n(after)}",
                {"position": position, "after": after},
            )
        rate = self.limits.max_orders_per_minute
        if rate is not None:
            sent = self.orders_in_window(context.now)
            if sent >= rate:
                return self._reject(
                    order,
                    context,
                    "ORDER_RATE",
                    f"orders_sent_last_60s={sent}, limit={rate}",
                    {"orders": float(sent), "limit": float(rate)},
                )
        if reducing:
            return None
        price = order.reference_price
        if not (math.isfinite(price) and price > 0):
            price = context.last_price
        max_notional = self.limits.max_order_notional
        notional = quantity * price
        if max_notional is not None and notional > max_notional:
            return self._reject(
                order,
                context,
                "MAX_ORDER_NOTIONAL",
                f"notional={_n(notional)}, limit={_n(max_notional)}",
                {"notional": notional, "limit": max_notional},
            )
        max_position = self.limits.max_position_quantity
        if max_position is not None and abs(after) > max_position:
            return self._reject(
                order,
                context,
                "MAX_POSITION",
                f"position_after={_n(after)}, limit={_n(max_position)}",
                {"position": position, "after": after, "limit": max_position},
            )
        collar = self.limits.price_collar
        if collar is not None:
            last = context.last_price
            low, high = last * (1 - collar), last * (1 + collar)
            if not low <= price <= high:
                return self._reject(
                    order,
                    context,
                    "PRICE_COLLAR",
                    f"price={_n(price)}, last={_n(last)}, collar={_n(collar)}, "
                    f"allowed=[{_n(low)}, {_n(high)}]",
                    {"price": price, "last": last, "collar": collar, "low": low, "high": high},
                )
        return None

    def record_sent(self, order: Order, at: pd.Timestamp | None = None) -> None:
        """Count an order that was sent, at ``at`` (default: the order's timestamp)."""
        bisect.insort(self._sent, _utc(order.timestamp if at is None else at))

    def orders_in_window(self, now: pd.Timestamp) -> int:
        """Return how many orders were sent in ``(now - 60 s, now]``."""
        now = _utc(now)
        cut = bisect.bisect_right(self._sent, now - RATE_WINDOW)
        # `now` never goes backwards, so sends at or before the window's start are
        # gone for good.
        del self._sent[:cut]
        return bisect.bisect_right(self._sent, now)

    def _daily_loss(self, equity: float) -> float | None:
        limit, start = self.limits.daily_loss_limit, self._day_start_equity
        if limit is None or not start > 0:
            return None
        loss = (start - equity) / start
        return loss if loss >= limit else None

    def _loss_message(self, loss: float) -> str:
        return (
            f"loss={loss:.4f}, limit={_n(self.limits.daily_loss_limit or 0.0)}, "
            f"day_start_equity={_n(self._day_start_equity)}"
        )

    def _loss_values(self, loss: float) -> dict[str, float]:
        return {
            "loss": loss,
            "limit": self.limits.daily_loss_limit or 0.0,
            "day_start_equity": self._day_start_equity,
        }

    @staticmethod
    def _reject(
        order: Order, context: PreTradeContext, code: str, message: str, values: dict[str, float]
    ) -> Rejection:
        return Rejection(order.bar, context.now, code, message, values)


def _utc(timestamp: pd.Timestamp) -> pd.Timestamp:
    # Naive timestamps are UTC by the domain's convention.
    ts = pd.Timestamp(timestamp)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _n(value: float) -> str:
    return f"{value:.10g}"
