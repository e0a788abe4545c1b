"""Quiet bars: the bars where nothing happens but the mark, run without the ladder.

Most bars of a backtest change nothing but the marks: no order works, no signal
comes, no exit or halt is due, nothing is journaled. `quiet_bars` runs such bars
one after the other with the account in locals, and stops at the first bar that
is not quiet, untouched, for `tradeloom.core.bar.run_bars` to run in full. A
quiet bar leaves exactly the state the full bar would leave: the marks, the
equity and the peak, the bar's intent and signal cleared. (The tests run the same
bars with ``prm[P_QUIET]`` off and compare every row and every state array.)

A bar is quiet when, for every symbol, the full bar would:

- fill nothing and send nothing: no order works (so none fills at the open or the
  close), no signal comes from the threshold rule, and so nothing is decided;
- exit nothing: a position under a stop-loss or take-profit alone (set at its entry,
  checked at the exchange) has a bar whose range reaches neither level
  (`tradeloom.core.exits.protective_exit_at`, as the full bar's protect stage asks it);
  no position under a partial take-profit, trailing, break-even or liquidation level (a
  following stop's level moves with the bar too), no halt to unwind, no position held
  for ``max_holding_bars`` or under a time-of-day exit;
- journal nothing: no training starts at the bar, the regime label is unchanged
  (when journaled), no halt latches (zero equity, a drawdown limit);
- stop for nothing: no Python layer (venue, signal, rules, monitors), no per-bar
  stop, no daily-loss clock (which journals at each UTC day's first bar);
- follow nothing: no ATR trailing stop, whose average takes every bar, flat or not.

The loop also fetches ahead (`tradeloom.core.prefetch`) what the full bar that ends
the run will read and write; in bench_core that halves the time of the signals' bars,
which otherwise wait for memory.

Run as Python (a small run's kernels, `tradeloom.kernels.first_run`), the loop is
`_quiet_bars_as_python`: the same stretch found by whole-array numpy steps over windows
of bars, the same numbers.
"""

from __future__ import annotations

import inspect
import math

from tradeloom.core.context import Bars, State
from tradeloom.core.exits import active_stop, holding_expired, protective_exit_at, stop_levels
from tradeloom.core.kernels.threshold import NO_SIGNAL, threshold_step
from tradeloom.core.layout import (
    A_CASH,
    A_EQUITY,
    A_EXIT_HALT,
    A_HALT,
    A_PEAK,
    C_BASE,
    C_COUNT,
    P_BREAK_EVEN,
    P_DAILY_LOSS,
    P_EXIT_TIME,
    P_EXT_RULES,
    P_EXT_SIGNAL,
    P_EXT_VENUE,
    P_JOURNAL_REGIME,
    P_MARGIN,
    P_MAX_HOLDING,
    P_MIN_INTERVAL,
    P_MONITORS,
    P_QUIET,
    P_STOP_LOSS,
    P_STOPS_AT_CLOSE,
    P_TAKE_PROFIT,
    P_THRESHOLD,
    P_TP_LEVELS,
    P_TRAIL_ATR,
    P_TRAILING,
    P_YIELD_BARS,
    S_ENTRY_BAR,
    S_ENTRY_PRICE,
    S_I_REASON,
    S_MARK,
    S_PA_SEQ,
    S_QTY,
    S_REGIME,
    S_SIG_LAST,
    S_W_ACTIVE,
    S_X_DIR,
)
from tradeloom.core.prefetch import prefetch
from tradeloom.core.risk import halt_unwinds, kill_holds
from tradeloom.kernels.jit import core_kernel, core_loop, python_form
from tradeloom.runtime.lazy import numpy as np

__all__ = ["quiet_bars"]

_BARS_AHEAD = 64
"""How far ahead of the quiet bars to fetch the full bar's columns (memory takes about
100 ns; a quiet bar a few)."""

_ROWS_AHEAD = 6
"""Event rows to fetch for the bar that ends the run (a signal's bar writes about 4)."""

_WINDOW = 64
"""The bars the Python form looks at first (a backtest's signals come tens of bars
apart); each further window of a stretch is twice the one before."""


@core_kernel
def _may_be_quiet(acct: np.ndarray, sym: np.ndarray, prm: np.ndarray) -> bool:
    """Return whether the strategy and the state let a bar be quiet at all."""
    if (
        sym.shape[0] != 1
        or prm[P_QUIET] == 0.0
        or prm[P_EXT_VENUE] != 0.0
        or prm[P_EXT_SIGNAL] != 0.0
        or prm[P_EXT_RULES] != 0.0
        or prm[P_MONITORS] != 0.0
        or prm[P_YIELD_BARS] != 0.0
        or not math.isnan(prm[P_DAILY_LOSS])
        or prm[P_TRAIL_ATR] > 0.0  # an ATR stop's average takes every bar's range
        or acct[A_EXIT_HALT] != 0.0
        or sym[0, S_W_ACTIVE] != 0.0
        or sym[0, S_PA_SEQ] != 0.0
    ):
        return False
    if sym[0, S_QTY] == 0.0:
        return True
    # a stop-loss and a take-profit at the exchange are checked bar by bar (`quiet_bars`)
    protect = (
        (
            prm[P_STOPS_AT_CLOSE] != 0.0
            and not (math.isnan(prm[P_STOP_LOSS]) and math.isnan(prm[P_TAKE_PROFIT]))
        )
        or prm[P_MARGIN] != 0.0
        or not math.isnan(prm[P_TRAILING])
        or not math.isnan(prm[P_BREAK_EVEN])
        or not math.isnan(prm[P_EXIT_TIME])
        or prm[P_TP_LEVELS] != 0.0  # partial take-profits (`tradeloom.core.scaling`)
    )
    return not (protect or halt_unwinds(acct))


@core_loop
def quiet_bars(t: int, t_end: int, bars: Bars, st: State) -> int:
    """Run the quiet bars from bar ``t`` (at its start) on; return the first bar not run.

    Args:
        t, t_end: The bar to start at, and the bar to stop before.
        bars: The bars (`tradeloom.core.bar.run_bars`); row 0 is bar ``cur[C_BASE]``.
        st: The state and parameters; the mark, the equity and the peak move with
            every quiet bar. The event rows and the cursor are read only (where the next
            rows go).

    Returns:
        The bar the full step runs next (``t_end``: every bar was quiet); its state is
        as the quiet bars before it left it.
    """
    acct, sym, prm, limits, ev, cur = st.acct, st.sym, st.prm, st.limits, st.ev, st.cur
    px, flags, score, time_ns, trainings = bars
    base: int = cur[C_BASE]
    first = t - base
    if first < 0 or t >= t_end or not _may_be_quiet(acct, sym, prm):
        return t
    threshold = prm[P_THRESHOLD]
    min_interval = int(prm[P_MIN_INTERVAL])
    journal_regime = prm[P_JOURNAL_REGIME] != 0.0
    max_holding = int(prm[P_MAX_HOLDING])
    halted = kill_holds(acct)
    # zero equity or a drawdown limit may latch a halt (not once one is latched or killed)
    may_halt = acct[A_HALT] == 0.0 and not halted
    n_limits = limits.shape[0]
    cash = acct[A_CASH]
    peak = acct[A_PEAK]
    equity = acct[A_EQUITY]
    quantity = sym[0, S_QTY]
    mark = sym[0, S_MARK]
    last_signal = sym[0, S_SIG_LAST]
    regime = sym[0, S_REGIME]
    entry_bar = int(sym[0, S_ENTRY_BAR])
    # dust too: the full bar journals the holding limit it meets (`tradeloom.core.dust`)
    holding = not halted and quantity != 0.0
    # the stop-loss and take-profit levels the protect stage checks (dust too: it journals
    # the exit it meets); none while the kill switch holds the run
    direction = 1 if quantity > 0.0 else -1
    stop_loss, take_profit = prm[P_STOP_LOSS], prm[P_TAKE_PROFIT]
    protected = holding and not (math.isnan(stop_loss) and math.isnan(take_profit))
    entry = sym[0, S_ENTRY_PRICE]
    why, stop = active_stop(direction, entry, math.nan, math.nan, stop_loss, math.nan)
    _, target = stop_levels(direction, entry, stop_loss, take_profit)
    opens, highs, lows = px[0, :, 0], px[1, :, 0], px[2, :, 0]
    closes = px[3, :, 0]
    probabilities = px[5, :, 0]
    regimes = flags[1, :, 0]
    i = first
    last = t_end - base
    # The bar that ends the run runs in full: it writes event rows and reads columns
    # the quiet bars never touch (volume, flags, scores, times). Left alone it would
    # wait for memory at each of them (a backtest's signals come tens of bars apart):
    # fetch them ahead instead, a cache line (8 bars) at a time, while the bars run.
    rows_end = ev.shape[0] - 1
    for k in range(_ROWS_AHEAD):
        prefetch(ev, (min(cur[C_COUNT] + k, rows_end), 0))
    bars_end = min(px.shape[1], flags.shape[1], score.shape[0], time_ns.shape[0]) - 1
    while i < last:
        if (i & 7) == 0:
            ahead = min(i + _BARS_AHEAD, bars_end)
            prefetch(px, (4, ahead, 0))
            prefetch(flags, (0, ahead, 0))
            prefetch(flags, (1, ahead, 0))
            prefetch(score, (ahead, 0))
            prefetch(time_ns, ahead)
        if trainings[i] != 0:
            break
        bar = base + i
        close = closes[i]
        marked = mark
        if close == close:  # the symbol has a bar: marked at its close, and a signal?
            marked = close
            wanted, _, _ = threshold_step(
                last_signal, bar, probabilities[i], threshold, min_interval
            )
            if wanted != 0:
                break
            if protected:
                reason, _ = protective_exit_at(
                    direction, opens[i], highs[i], lows[i], why, stop, target, math.nan
                )
                if reason != 0:
                    break
        # the equity and the peak as `tradeloom.core.accounting.mark_equity` makes them
        value = cash + quantity * marked if quantity != 0.0 else cash
        raised = value if value > peak else peak
        if may_halt:
            if value <= 0.0:
                break
            if n_limits:
                drawdown = 0.0 if raised <= 0.0 else 1.0 - value / raised
                halts = False
                for k in range(n_limits):
                    if not drawdown < limits[k]:
                        halts = True
                if halts:
                    break
        if holding and holding_expired(bar, entry_bar, max_holding):
            break
        if journal_regime and regimes[i] != regime:
            break
        mark = marked
        equity = value
        peak = raised
        i += 1
    if i > first:
        sym[0, S_MARK] = mark
        acct[A_PEAK] = peak
        acct[A_EQUITY] = equity
        sym[0, S_I_REASON] = 0.0
        sym[0, S_X_DIR] = 0.0
    return base + i


_quiet_loop = inspect.unwrap(quiet_bars)
"""`quiet_bars`'s loop as written, run as Python where its numpy form does not apply."""


@python_form(quiet_bars)
def _quiet_bars_as_python(t: int, t_end: int, bars: Bars, st: State) -> int:
    """`quiet_bars` as Python (`tradeloom.kernels.jit.python_form`): the bar that ends the
    stretch found over a window of bars at once, each test by whole-array numpy steps (a
    signal's candidates then checked one by one), and the state its last quiet bar left.

    The same numbers as the loop: the equity is its ``cash + quantity * close``
    element by element, the peak its running maximum (``value > peak`` picks as
    `np.maximum` does, a positive peak meeting no NaN), the drawdown its
    ``1 - value / peak``. Where that does not hold (a NaN, a peak not above zero), and for
    a position whose stop-loss or take-profit is checked bar by bar, the loop runs.
    """
    acct, sym, prm, limits, cur = st.acct, st.sym, st.prm, st.limits, st.cur
    base = int(cur[C_BASE])
    first = t - base
    if first < 0 or t >= t_end or not _may_be_quiet(acct, sym, prm):
        return t
    halted = kill_holds(acct)
    quantity = sym[0, S_QTY]
    holding = not halted and quantity != 0.0
    cash, peak, mark, equity = acct[A_CASH], acct[A_PEAK], sym[0, S_MARK], acct[A_EQUITY]
    protected = holding and not (math.isnan(prm[P_STOP_LOSS]) and math.isnan(prm[P_TAKE_PROFIT]))
    if protected or not peak > 0.0 or math.isnan(cash) or (quantity != 0.0 and math.isnan(mark)):
        return int(_quiet_loop(t, t_end, bars, st))
    px, flags, _, _, trainings = bars
    closes, probabilities, regimes = px[3, :, 0], px[5, :, 0], flags[1, :, 0]
    threshold = prm[P_THRESHOLD]
    min_interval = int(prm[P_MIN_INTERVAL])
    last_signal = sym[0, S_SIG_LAST]
    journal_regime = prm[P_JOURNAL_REGIME] != 0.0
    regime = sym[0, S_REGIME]
    max_holding = int(prm[P_MAX_HOLDING])
    entry_bar = int(sym[0, S_ENTRY_BAR])
    expires = holding and max_holding > 0 and entry_bar >= 0  # `holding_expired`
    may_halt = acct[A_HALT] == 0.0 and not halted
    flat_halts = False  # a flat account's equity is its cash at every bar
    if quantity == 0.0 and may_halt:
        raised = cash if cash > peak else peak
        drawdown = 0.0 if raised <= 0.0 else 1.0 - cash / raised
        flat_halts = cash <= 0.0 or any(not drawdown < limit for limit in limits)
    last = t_end - base
    lo, width = first, _WINDOW
    while lo < last and not flat_halts:
        hi = min(lo + width, last)
        width *= 2
        end = hi - lo  # the first bar of the window that is not quiet, as an offset
        training = np.flatnonzero(trainings[lo:hi])
        if training.size:
            end = int(training[0])
        if expires:
            end = min(end, max(entry_bar + max_holding - base - lo, 0))
        if journal_regime:
            changed = np.flatnonzero(regimes[lo : lo + end] != regime)
            if changed.size:
                end = int(changed[0])
        close = closes[lo:hi]
        values = None
        if quantity != 0.0:
            has = close == close
            marked = close
            if not has.all():  # the mark carried over the bars the symbol has not
                seen = np.maximum.accumulate(np.where(has, np.arange(hi - lo), -1))
                marked = np.where(seen >= 0, close[seen], mark)
            values = cash + quantity * marked
            if np.isnan(values).any():
                if lo > first:  # the loop goes on from the state the bars before left
                    _leave(acct, sym, mark, peak, equity)
                return int(_quiet_loop(lo + base, t_end, bars, st))
            if may_halt:
                below = np.flatnonzero(values[:end] <= 0.0)
                if below.size:
                    end = int(below[0])
                if limits.shape[0] and end:
                    raised_w = np.maximum(np.maximum.accumulate(values[:end]), peak)
                    drawdown_w = np.where(raised_w <= 0.0, 0.0, 1.0 - values[:end] / raised_w)
                    halts = np.flatnonzero(~(drawdown_w[:, None] < limits[None, :]).all(axis=1))
                    if halts.size:
                        end = int(halts[0])
        # a signal of the threshold rule (`threshold_step`) at a bar the symbol has
        p = probabilities[lo : lo + end]
        for k in np.flatnonzero(~(np.abs(p - 0.5) * 2.0 < threshold)).tolist():
            if not (close[k] == close[k] and p[k] == p[k]):
                continue
            if last_signal == NO_SIGNAL or not base + lo + k - last_signal < min_interval:
                end = k
                break
        if end:
            if values is None:
                equity = cash
                if cash > peak:
                    peak = cash
            else:
                equity = values[end - 1]
                top = values[:end].max()
                if top > peak:
                    peak = top
            marks = np.flatnonzero(close[:end] == close[:end])
            if marks.size:
                mark = close[marks[-1]]
        lo += end
        if lo < hi:
            break
    if lo > first:
        _leave(acct, sym, mark, peak, equity)
    return lo + base


def _leave(acct: np.ndarray, sym: np.ndarray, mark: float, peak: float, equity: float) -> None:
    """Leave the state as `quiet_bars` leaves it after its last quiet bar."""
    sym[0, S_MARK] = mark
    acct[A_PEAK] = peak
    acct[A_EQUITY] = equity
    sym[0, S_I_REASON] = 0.0
    sym[0, S_X_DIR] = 0.0
