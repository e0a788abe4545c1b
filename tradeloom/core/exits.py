"""Exits the engine decides itself: stop-loss, take-profit, liquidation, the holding limit.

A stop-loss or take-profit is a stop order resting at the venue, and a margin
account's liquidation is the venue's own stop: each triggers during the bar from
the bar's open, high and low, never from anything later.

Liquidation (margin accounts only): the account's equity at a price P is
``C + q P`` (``C``: the cash, plus the other symbols' positions at their marks; ``q``:
this symbol's signed position). The venue liquidates when equity falls below the
maintenance requirement ``m |q| P``. That happens at

- a long (q > 0): ``P <= -C / (q (1 - m))`` (never while ``C >= 0``: nothing borrowed);
- a short (q < 0): ``P >= C / (|q| (1 + m))``.

The position is closed at that price, or at the open when the bar opens beyond it
(a gap), with the venue's slippage and fee plus ``liquidation_fee`` of the notional.

When several exits are reached in one bar, the path inside the bar is unknown; the
reading is the conservative one: a level the open is already through fills at the
open (a stop order first, then liquidation, then take-profit); otherwise the adverse
level nearest the open (the stop-loss or the liquidation, whichever the price meets
first on its way against the position) wins over the take-profit.
"""

from __future__ import annotations

import math

from tradeloom.core.codes import EXIT_LIQUIDATION, EXIT_STOP_LOSS, EXIT_TAKE_PROFIT
from tradeloom.jit import kernel

__all__ = [
    "close_exit",
    "holding_expired",
    "liquidation_price",
    "protective_exit",
    "stop_exit",
    "stop_levels",
]

NO_EXIT = 0


@kernel
def liquidation_price(other: float, quantity: float, maintenance: float) -> float:
    """Return the price at which a position of ``quantity`` is liquidated (NaN: never).

    Args:
        other: The account's equity without this position: cash plus the other
            symbols' positions at their marks.
        quantity: This symbol's signed position (0: NaN).
        maintenance: The maintenance margin fraction, in [0, 1).
    """
    if quantity > 0.0:
        if other >= 0.0:
            return math.nan
        return -other / (quantity * (1.0 - maintenance))
    if quantity < 0.0:
        return other / (-quantity * (1.0 + maintenance))
    return math.nan


@kernel
def stop_levels(
    direction: int, entry_price: float, stop_loss: float, take_profit: float
) -> tuple[float, float]:
    """Return a position's stop-loss and take-profit prices (NaN where there is none).

    The one rule for where the engine's own exits sit, in every mode: the backtest's
    stop orders, the bar-close exit, and the stop orders a live run rests at the
    exchange (`tradeloom.plugins.execution.exchange_stops`).

    Args:
        direction: +1 long, -1 short.
        entry_price: The position's average entry price.
        stop_loss: Fraction against the entry price; NaN for none.
        take_profit: Fraction in favour of the entry price; NaN for none.
    """
    if direction > 0:
        return entry_price * (1.0 - stop_loss), entry_price * (1.0 + take_profit)
    return entry_price * (1.0 + stop_loss), entry_price * (1.0 - take_profit)


@kernel
def protective_exit(
    direction: int,
    entry_price: float,
    open_: float,
    high: float,
    low: float,
    stop_loss: float,
    take_profit: float,
    liquidation: float,
) -> tuple[int, float]:
    """Return which protective exit a bar triggers, and at which price.

    Args:
        direction: +1 long, -1 short (0: nothing to protect).
        entry_price: The position's average entry price.
        open_, high, low: The bar's prices.
        stop_loss: Fraction against the entry price; NaN for none.
        take_profit: Fraction in favour of the entry price; NaN for none.
        liquidation: The liquidation price (`liquidation_price`); NaN for none.

    Returns:
        ``(reason, price)``: 0 (no exit), ``EXIT_STOP_LOSS``, ``EXIT_TAKE_PROFIT`` or
        ``EXIT_LIQUIDATION`` (`tradeloom.core.codes`), and the fill's trigger price.
    """
    if direction == 0:
        return NO_EXIT, math.nan
    has_stop = not math.isnan(stop_loss)
    has_target = not math.isnan(take_profit)
    has_liq = not math.isnan(liquidation)
    stop, target = stop_levels(direction, entry_price, stop_loss, take_profit)
    if direction > 0:
        if has_stop and open_ <= stop:
            return EXIT_STOP_LOSS, open_
        if has_liq and open_ <= liquidation:
            return EXIT_LIQUIDATION, open_
        if has_target and open_ >= target:
            return EXIT_TAKE_PROFIT, open_
        if has_stop and low <= stop and not (has_liq and liquidation > stop):
            return EXIT_STOP_LOSS, stop
        if has_liq and low <= liquidation:
            return EXIT_LIQUIDATION, liquidation
        if has_target and high >= target:
            return EXIT_TAKE_PROFIT, target
        return NO_EXIT, math.nan
    if has_stop and open_ >= stop:
        return EXIT_STOP_LOSS, open_
    if has_liq and open_ >= liquidation:
        return EXIT_LIQUIDATION, open_
    if has_target and open_ <= target:
        return EXIT_TAKE_PROFIT, open_
    if has_stop and high >= stop and not (has_liq and liquidation < stop):
        return EXIT_STOP_LOSS, stop
    if has_liq and high >= liquidation:
        return EXIT_LIQUIDATION, liquidation
    if has_target and low <= target:
        return EXIT_TAKE_PROFIT, target
    return NO_EXIT, math.nan


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
    """Return the stop-loss or take-profit a bar triggers (`protective_exit`, no margin)."""
    return protective_exit(  # type: ignore[no-any-return]
        direction, entry_price, open_, high, low, stop_loss, take_profit, math.nan
    )


@kernel
def close_exit(
    direction: int, entry_price: float, close: float, stop_loss: float, take_profit: float
) -> int:
    """Return the exit a bar's close calls for under ``stops: bar_close`` (0: none).

    Without stop orders at the venue the engine watches the levels itself: a close at
    or beyond the stop-loss (take-profit) level sends a market exit, ``EXIT_STOP_LOSS``
    (``EXIT_TAKE_PROFIT``), which fills as any market order does.

    Args:
        direction: +1 long, -1 short (0: nothing to protect).
        entry_price: The position's average entry price.
        close: The bar's close.
        stop_loss, take_profit: Fractions of the entry price; NaN for none.
    """
    if direction == 0:
        return NO_EXIT
    stop, target = stop_levels(direction, entry_price, stop_loss, take_profit)
    if not math.isnan(stop_loss) and (close <= stop if direction > 0 else close >= stop):
        return EXIT_STOP_LOSS
    if not math.isnan(take_profit) and (close >= target if direction > 0 else close <= target):
        return EXIT_TAKE_PROFIT
    return NO_EXIT


@kernel
def holding_expired(bar: int, entry_bar: int, max_holding: int) -> bool:
    """Return whether a position entered at ``entry_bar`` has been held ``max_holding`` bars.

    ``entry_bar < 0`` is flat; ``max_holding <= 0`` is no limit.
    """
    return max_holding > 0 and entry_bar >= 0 and bar - entry_bar >= max_holding
