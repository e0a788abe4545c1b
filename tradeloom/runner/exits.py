"""Exits the engine itself decides: stop-loss, take-profit and the holding limit.

Kernels shared by the per-bar and the batch driver. A stop-loss or take-profit is
a stop order resting at the venue: it triggers during the bar from the bar's
open, high and low, never from anything later.
"""

from __future__ import annotations

import math

from tradeloom.jit import kernel

__all__ = ["EXIT_REASONS", "NO_EXIT", "STOP_LOSS", "TAKE_PROFIT", "holding_expired", "stop_exit"]

NO_EXIT, STOP_LOSS, TAKE_PROFIT = 0, 1, 2
EXIT_REASONS = {STOP_LOSS: "EXIT_STOP_LOSS", TAKE_PROFIT: "EXIT_TAKE_PROFIT"}
"""Reason of the exit order for each code `stop_exit` returns."""


@kernel
def stop_exit(
    direction: int,
    entry_price: float,
    open_: float,
    high: float,
    low: float,
    stop_loss: float,
    take_profit: float,
) -> tuple[int, float]:
    """Return whether a protective level triggers during a bar, and at which price.

    The stop-loss level is ``entry * (1 - stop_loss)`` for a long and
    ``entry * (1 + stop_loss)`` for a short; take-profit is the mirror. A bar that
    opens through a level triggers at the open; otherwise a bar whose range reaches
    it triggers at the level. When the bar reaches both, the stop-loss wins (the
    path inside a bar is unknown; the conservative reading).

    Args:
        direction: +1 long, -1 short (0: nothing to protect).
        entry_price: The position's average entry price.
        open_, high, low: The bar's prices.
        stop_loss: Fraction against the entry price; NaN for none.
        take_profit: Fraction in favour of the entry price; NaN for none.

    Returns:
        ``(code, price)``: `NO_EXIT`, `STOP_LOSS` or `TAKE_PROFIT`, and the trigger price.
    """
    if direction == 0:
        return NO_EXIT, math.nan
    has_stop = not math.isnan(stop_loss)
    has_target = not math.isnan(take_profit)
    if direction > 0:
        stop = entry_price * (1.0 - stop_loss)
        target = entry_price * (1.0 + take_profit)
        if has_stop and open_ <= stop:
            return STOP_LOSS, open_
        if has_target and open_ >= target:
            return TAKE_PROFIT, open_
        if has_stop and low <= stop:
            return STOP_LOSS, stop
        if has_target and high >= target:
            return TAKE_PROFIT, target
        return NO_EXIT, math.nan
    stop = entry_price * (1.0 + stop_loss)
    target = entry_price * (1.0 - take_profit)
    if has_stop and open_ >= stop:
        return STOP_LOSS, open_
    if has_target and open_ <= target:
        return TAKE_PROFIT, open_
    if has_stop and high >= stop:
        return STOP_LOSS, stop
    if has_target and low <= target:
        return TAKE_PROFIT, target
    return NO_EXIT, math.nan


@kernel
def holding_expired(bar: int, entry_bar: int, max_holding: int) -> bool:
    """Return whether a position entered at ``entry_bar`` has been held ``max_holding`` bars.

    ``entry_bar < 0`` is flat; ``max_holding <= 0`` is no limit.
    """
    return max_holding > 0 and entry_bar >= 0 and bar - entry_bar >= max_holding
