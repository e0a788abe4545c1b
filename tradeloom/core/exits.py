"""Exits the engine decides itself: stops, take-profit, liquidation, the holding limit, time.

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

The stop that rests under a position is the tightest of three (`active_stop`):

- the **stop-loss**, ``stop_loss`` against the average entry price (``EXIT_STOP_LOSS``);
- the **break-even** stop, the entry price itself, once the best price since the entry
  has gained ``break_even`` on it (``EXIT_BREAK_EVEN``);
- the **trailing stop** (``EXIT_TRAILING_STOP``): ``trailing_stop`` below the best
  price since the entry for a long (above, for a short), or ``multiple`` times the
  average true range (Wilder's, of ``atr`` bars, as the ``atr`` feature computes it)
  away from it. The level only ever moves in the position's favour (an ATR that
  widens does not lower a long's stop).

The best price since the entry starts at the entry price and takes each bar's high
(a short: its low) *after* that bar's stop check: the path inside a bar is unknown,
so a bar's own high never raises the stop that bar is checked against (the
conservative reading, as for the stop-loss). A trailing level that moved at a bar is
in force from the next bar; a bar that opens through it fills at the open. The ATR
of the level moved at bar t includes bar t. At the trade's first bar the level in force
is the entry's at the ATR up to the bar before; it is the floor (a short's ceiling) of
the level the bar moves, so an ATR that the entry bar widens never lowers it. Levels
that tie are named in the order above (a stop-loss before a break-even before a
trailing stop).

Under ``execution.orders.stops: bar_close`` the engine watches the same level at each
bar's close (`close_exit_at`), the bar's own high already taken into the best price.

Two rules act at the bar's close instead of during it: the holding limit
(`holding_expired`) and the time-of-day exit (`time_exit_due`): a position held at
the close of the bar whose span contains ``exit_time`` is closed there
(``EXIT_TIME``), by a market order as any bar-close exit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tradeloom.core.codes import (
    EXIT_BREAK_EVEN,
    EXIT_LIQUIDATION,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    EXIT_TRAILING_STOP,
)
from tradeloom.kernels.jit import kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "DAY_NS",
    "OpenTrade",
    "StopSettings",
    "active_stop",
    "atr_update",
    "close_exit",
    "close_exit_at",
    "cooling_down",
    "holding_expired",
    "liquidation_price",
    "protective_exit",
    "protective_exit_at",
    "ratchet",
    "resting_stop",
    "stop_exit",
    "stop_levels",
    "time_exit_due",
    "trail_level",
]

NO_EXIT = 0

DAY_NS = 86_400_000_000_000
"""One day, in nanoseconds (the time-of-day exit's period)."""


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
    exchange (`tradeloom.live.orders.exchange_stops`).

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

    The stop-loss and take-profit of `stop_levels` (`protective_exit_at` with them).

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
    stop, target = stop_levels(direction, entry_price, stop_loss, take_profit)
    return protective_exit_at(
        direction, open_, high, low, EXIT_STOP_LOSS, stop, target, liquidation
    )


@kernel
def protective_exit_at(
    direction: int,
    open_: float,
    high: float,
    low: float,
    stop_reason: int,
    stop: float,
    target: float,
    liquidation: float,
) -> tuple[int, float]:
    """Return which protective exit a bar triggers at given levels, and at which price.

    Args:
        direction: +1 long, -1 short (0: nothing to protect).
        open_, high, low: The bar's prices.
        stop_reason: The stop's exit reason (`active_stop`).
        stop: The stop's price; NaN for none.
        target: The take-profit's price; NaN for none.
        liquidation: The liquidation price (`liquidation_price`); NaN for none.

    Returns:
        ``(reason, price)``: 0 (no exit), ``stop_reason``, ``EXIT_TAKE_PROFIT`` or
        ``EXIT_LIQUIDATION``, and the fill's trigger price.
    """
    if direction == 0:
        return NO_EXIT, math.nan
    has_stop = not math.isnan(stop)
    has_target = not math.isnan(target)
    has_liq = not math.isnan(liquidation)
    if direction > 0:
        if has_stop and open_ <= stop:
            return stop_reason, open_
        if has_liq and open_ <= liquidation:
            return EXIT_LIQUIDATION, open_
        if has_target and open_ >= target:
            return EXIT_TAKE_PROFIT, open_
        if has_stop and low <= stop and not (has_liq and liquidation > stop):
            return stop_reason, stop
        if has_liq and low <= liquidation:
            return EXIT_LIQUIDATION, liquidation
        if has_target and high >= target:
            return EXIT_TAKE_PROFIT, target
        return NO_EXIT, math.nan
    if has_stop and open_ >= stop:
        return stop_reason, open_
    if has_liq and open_ >= liquidation:
        return EXIT_LIQUIDATION, open_
    if has_target and open_ <= target:
        return EXIT_TAKE_PROFIT, open_
    if has_stop and high >= stop and not (has_liq and liquidation < stop):
        return stop_reason, stop
    if has_liq and high >= liquidation:
        return EXIT_LIQUIDATION, liquidation
    if has_target and low <= target:
        return EXIT_TAKE_PROFIT, target
    return NO_EXIT, math.nan


@kernel
def trail_level(direction: int, best: float, atr: float, trailing: float, multiple: float) -> float:
    """Return the trailing stop's level for a best price (NaN: no trailing stop yet).

    Args:
        direction: +1 long, -1 short.
        best: The best price since the entry (a long's highest, a short's lowest).
        atr: The average true range (NaN: not enough bars yet).
        trailing: The distance as a fraction of ``best``; NaN: the ATR distance.
        multiple: The ATR distance's multiple (0: no trailing stop).
    """
    if not math.isnan(trailing):
        return best * (1.0 - trailing) if direction > 0 else best * (1.0 + trailing)
    if multiple > 0.0:
        return best - multiple * atr if direction > 0 else best + multiple * atr
    return math.nan


@kernel
def ratchet(direction: int, level: float, moved: float) -> float:
    """Return the trailing level after ``moved``: only ever in the position's favour."""
    if math.isnan(level):
        return moved
    if math.isnan(moved):
        return level
    return max(level, moved) if direction > 0 else min(level, moved)


@kernel
def active_stop(
    direction: int,
    entry_price: float,
    best: float,
    trail: float,
    stop_loss: float,
    break_even: float,
) -> tuple[int, float]:
    """Return the stop resting under a position: its reason and its price (NaN: none).

    The tightest of the stop-loss, the break-even stop and the trailing stop (module
    docstring); ties go to the first of them.

    Args:
        direction: +1 long, -1 short.
        entry_price: The position's average entry price.
        best: The best price since the entry, up to the previous bar (NaN: the entry).
        trail: The trailing stop's level in force (NaN: none).
        stop_loss: Fraction against the entry price; NaN for none.
        break_even: The gain that moves the stop to the entry price; NaN for none.
    """
    reason = NO_EXIT
    level = math.nan
    if not math.isnan(stop_loss):
        reason = EXIT_STOP_LOSS
        level = (
            entry_price * (1.0 - stop_loss) if direction > 0 else entry_price * (1.0 + stop_loss)
        )
    if not math.isnan(break_even) and not math.isnan(best):
        armed = (
            best >= entry_price * (1.0 + break_even)
            if direction > 0
            else best <= entry_price * (1.0 - break_even)
        )
        if armed and (math.isnan(level) or _tighter(direction, entry_price, level)):
            reason = EXIT_BREAK_EVEN
            level = entry_price
    if not math.isnan(trail) and (math.isnan(level) or _tighter(direction, trail, level)):
        reason = EXIT_TRAILING_STOP
        level = trail
    return reason, level


class OpenTrade(NamedTuple):
    """The state of an open trade that its resting stop follows (`resting_stop`)."""

    direction: int  # +1 long, -1 short
    entry_price: float  # the position's average entry price
    best: float  # the best price since the entry, up to the last bar (NaN: the entry)
    trail: float  # the trailing level in force (NaN: the trade's first bar: from the entry)
    atr: float  # the ATR up to the last bar (NaN: none yet)


class StopSettings(NamedTuple):
    """The settings of a position's stops (``risk.*``; NaN, and a multiple of 0: none)."""

    stop_loss: float  # fraction against the entry price (`active_stop`)
    break_even: float  # the gain that moves the stop to the entry price (`active_stop`)
    trailing: float  # the trailing distance as a fraction (`trail_level`)
    multiple: float  # the ATR distance's multiple (`trail_level`)


@kernel
def resting_stop(trade: OpenTrade, stops: StopSettings) -> tuple[int, float]:
    """Return the stop resting under a position from its trade's state (`active_stop`).

    The one rule the bar's check and a live run's resting stop order both read. At the
    trade's first bar (``trade.trail`` NaN) the trailing level starts from the entry
    price at ``trade.atr``.
    """
    direction, entry_price = trade.direction, trade.entry_price
    trail, best = trade.trail, trade.best
    if math.isnan(trail):
        trail = trail_level(direction, entry_price, trade.atr, stops.trailing, stops.multiple)
    if math.isnan(best):
        best = entry_price
    return active_stop(direction, entry_price, best, trail, stops.stop_loss, stops.break_even)


@kernel
def _tighter(direction: int, level: float, than: float) -> bool:
    return level > than if direction > 0 else level < than


@kernel
def atr_update(state: np.ndarray, high: float, low: float, close: float, window: int) -> float:
    """Take a bar into an average true range; return it (NaN for the first ``window`` bars).

    Wilder's ATR as the ``atr`` feature computes it (TA-Lib's seeding: the simple
    average of the first ``window`` true ranges, from the second bar on), so that the
    stop's ATR equals the feature column's, bit for bit.

    Args:
        state: 4 floats: 1 once a close was seen, the previous close, the count of true
            ranges (saturating at ``window``), the running sum then the average.
        high, low, close: The bar's prices.
        window: The ATR's window (>= 1).
    """
    previous = state[1]
    state[1] = close
    if state[0] == 0.0:
        state[0] = 1.0
        return math.nan
    true_range = max(high - low, abs(high - previous), abs(low - previous))
    if state[2] < window:
        state[3] += true_range
        state[2] += 1.0
        if state[2] < window:
            return math.nan
        state[3] = state[3] / window
        return state[3]  # type: ignore[no-any-return]
    a = (window - 1) / window
    b = 1.0 / window
    state[3] = state[3] * a + true_range * b
    return state[3]  # type: ignore[no-any-return]


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
    return protective_exit(
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
    return close_exit_at(
        direction,
        close,
        EXIT_STOP_LOSS,
        math.nan if math.isnan(stop_loss) else stop,
        math.nan if math.isnan(take_profit) else target,
    )


@kernel
def close_exit_at(
    direction: int, close: float, stop_reason: int, stop: float, target: float
) -> int:
    """Return the exit a bar's close calls for at given levels (0: none; NaN: no level).

    A close at or beyond the stop (`active_stop`) is ``stop_reason``; at or beyond
    the target, ``EXIT_TAKE_PROFIT``.
    """
    if direction == 0:
        return NO_EXIT
    if not math.isnan(stop) and (close <= stop if direction > 0 else close >= stop):
        return stop_reason
    if not math.isnan(target) and (close >= target if direction > 0 else close <= target):
        return EXIT_TAKE_PROFIT
    return NO_EXIT


@kernel
def holding_expired(bar: int, entry_bar: int, max_holding: int) -> bool:
    """Return whether a position entered at ``entry_bar`` has been held ``max_holding`` bars.

    ``entry_bar < 0`` is flat; ``max_holding <= 0`` is no limit.
    """
    return max_holding > 0 and entry_bar >= 0 and bar - entry_bar >= max_holding


@kernel
def time_exit_due(open_ns: int, timeframe_ns: int, exit_ns: int) -> bool:
    """Return whether a bar's span contains the time of day ``exit_ns`` (-1: no such exit).

    The bar opening at ``open_ns`` spans ``(open_ns, open_ns + timeframe_ns]``: the
    bar whose close is at or first after the time of day (a 1h bar closing at 22:00
    for ``21:45``; the bar closing at 21:45 itself for 15m bars), once a day.

    Args:
        open_ns: The bar's open time (UTC, ns since the epoch).
        timeframe_ns: A bar's length (ns).
        exit_ns: The time of day (ns since midnight UTC); negative: none.
    """
    if exit_ns < 0 or timeframe_ns <= 0:
        return False
    ahead = (exit_ns - open_ns) % DAY_NS  # from the open to the next such time of day
    return 0 < ahead <= timeframe_ns


@kernel
def cooling_down(bar: int, exit_bar: float, cooldown: int) -> bool:
    """Return whether an entry decided at ``bar`` falls in the cooldown after an exit.

    ``exit_bar``: the bar of the fill that last closed a position (NaN: none yet);
    ``cooldown <= 0``: none. The ``cooldown`` bars from the exit's own bar on take no
    new entry (``cooldown_bars: 2`` after an exit filled at bar 10: bars 10 and 11
    refuse, the first entry is decided at bar 12; ``1``: no re-entry in the bar that
    closed the position, as vectorbt's ``from_signals`` never does).
    """
    return cooldown > 0 and exit_bar == exit_bar and bar - exit_bar < cooldown
