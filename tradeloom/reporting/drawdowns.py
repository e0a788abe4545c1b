"""An equity curve's drawdowns, found once for every figure that reads them.

A drawdown is a stretch of bars under the running peak of the equity, the starting cash
counted as a peak. Its length runs from the bar at its peak to the bar it recovers at
(the first bar back at or above that peak), or to the run's last bar when it never
recovers: ``recovery - peak`` bars, and the calendar time between those two bars' times
(weekends and nights included). The starting cash stands at the first bar: a run that
loses from its first bar is in a drawdown from that bar.

This is backtesting.py's "Max. Drawdown Duration" (from a bar at the peak to the next
one), which the summary's ``max_drawdown_duration_bars`` and ``_days`` report for the
longest drawdown, and the tearsheet's table for each of the worst ones. quantstats'
``drawdown_details`` counts the days under water instead, from the first day below the
peak to the last one: one bar fewer for a drawdown that recovered, the same for one that
did not.

A NaN equity holds the peak at NaN from its bar on (numpy's ``maximum.accumulate``):
no later bar is under it, so a drawdown holds no NaN and one in progress ends there.

`drawdown_curve` is each bar's depth under that peak (the equity table's drawdown
column; its deepest is the summary's ``max_drawdown``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import kernel, python_form, released_kernel

__all__ = [
    "Drawdowns",
    "deepest_drawdown",
    "drawdown_curve",
    "find_drawdowns",
    "longest_drawdown",
    "longest_drawdown_into",
    "stretch_room",
    "write_drawdowns",
]


@dataclass(frozen=True)
class Drawdowns:
    """The drawdowns of an equity curve, in the order they began.

    Attributes:
        peaks: The bar at each one's peak (0 for the starting cash).
        starts: Its first bar under the peak.
        troughs: Its first bar at its lowest equity.
        recoveries: The first bar back at the peak (``bars``: never recovered).
        highs: The peak's equity.
        bars: How many bars the curve has.
    """

    peaks: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    troughs: npt.NDArray[np.int64]
    recoveries: npt.NDArray[np.int64]
    highs: npt.NDArray[np.float64]
    bars: int

    @property
    def ends(self) -> npt.NDArray[np.int64]:
        """The bar each one's length runs to: its recovery, or the last bar."""
        return np.minimum(self.recoveries, self.bars - 1)

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """Each one's length in bars, from the bar at its peak to `ends`."""
        return self.ends - self.peaks


def find_drawdowns(equity: npt.NDArray[np.float64], initial_cash: float) -> Drawdowns:
    """Return the drawdowns of ``equity`` (each bar's equity at its close) in one pass.

    Args:
        equity: The account's equity at each bar.
        initial_cash: Its equity before the first bar: a peak at the first bar.
    """
    values = np.ascontiguousarray(equity, np.float64)
    peaks, starts, troughs, recoveries, highs = _stretches(values, float(initial_cash))
    return Drawdowns(peaks, starts, troughs, recoveries, highs, len(values))


@released_kernel
def longest_drawdown(
    equity: npt.NDArray[np.float64], initial_cash: float, times_ns: npt.NDArray[np.int64]
) -> tuple[int, int]:
    """Return the longest of `find_drawdowns`' drawdowns in bars (`Drawdowns.lengths`),
    and the longest in time (``times_ns`` at `Drawdowns.ends` less at the peaks, in ns);
    0 and 0 when there is none.

    Args:
        equity: Contiguous float64 equity at each bar.
        initial_cash: Its equity before the first bar.
        times_ns: Each bar's time (UTC, ns).
    """
    most = stretch_room(len(equity))
    return longest_drawdown_into(
        equity, initial_cash, times_ns, np.empty((4, most), np.int64), np.empty(most)
    )


@kernel
def stretch_room(bars: int) -> int:
    """Return how many drawdowns a curve of ``bars`` bars may hold (a bar at the peak
    parts two stretches): the rows `longest_drawdown_into`'s buffers need."""
    return bars // 2 + 1


@kernel
def longest_drawdown_into(
    equity: npt.NDArray[np.float64],
    initial_cash: float,
    times_ns: npt.NDArray[np.int64],
    bars_out: npt.NDArray[np.int64],
    highs: npt.NDArray[np.float64],
) -> tuple[int, int]:
    """`longest_drawdown`, its stretches found in buffers the caller keeps (a sweep's
    many curves): ``bars_out`` ``[4, stretch_room(len(equity))]`` int64 and ``highs``
    as many float64."""
    count = _write_stretches(
        equity, initial_cash, bars_out[0], bars_out[1], bars_out[2], bars_out[3], highs
    )
    peaks, recoveries = bars_out[0], bars_out[3]
    last = len(equity) - 1
    bars = 0
    longest = 0
    for k in range(count):
        end = min(recoveries[k], last)
        if k == 0 or end - peaks[k] > bars:
            bars = end - peaks[k]
        if k == 0 or times_ns[end] - times_ns[peaks[k]] > longest:
            longest = times_ns[end] - times_ns[peaks[k]]
    return bars, longest


@released_kernel
def _stretches(
    values: npt.NDArray[np.float64], initial_cash: float
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
]:
    most = stretch_room(len(values))
    peaks = np.empty(most, np.int64)
    starts = np.empty(most, np.int64)
    troughs = np.empty(most, np.int64)
    recoveries = np.empty(most, np.int64)
    highs = np.empty(most, np.float64)
    count = _write_stretches(values, initial_cash, peaks, starts, troughs, recoveries, highs)
    return (
        peaks[:count].copy(),
        starts[:count].copy(),
        troughs[:count].copy(),
        recoveries[:count].copy(),
        highs[:count].copy(),
    )


@kernel
def _write_stretches(
    values: npt.NDArray[np.float64],
    initial_cash: float,
    peaks: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    troughs: npt.NDArray[np.int64],
    recoveries: npt.NDArray[np.int64],
    highs: npt.NDArray[np.float64],
) -> int:
    """Write the drawdowns of ``values`` (`Drawdowns`' fields) from the first row of
    each buffer (`stretch_room` rows); return how many there are."""
    n = len(values)
    count = 0
    inside = False
    peak = initial_cash
    peak_bar = 0
    low = np.nan
    for i in range(n):
        value = values[i]
        if not (peak > value or np.isnan(peak)):  # which `np.maximum` keeps: NaN sticks
            peak = value
            peak_bar = i
        if value < peak:
            if not inside:
                inside = True
                peaks[count], starts[count], troughs[count] = peak_bar, i, i
                highs[count], low = peak, value
            elif value < low:
                troughs[count], low = i, value
        elif inside:
            inside = False
            recoveries[count] = i
            count += 1
    if inside:
        recoveries[count] = n
        count += 1
    return count


def drawdown_curve(
    equity: npt.NDArray[np.float64],
    initial_cash: float,
    out: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Return each bar's drawdown: one minus its equity over the peak so far, the starting
    cash counted as a peak (numpy's ``1.0 - equity / np.maximum.accumulate(np.maximum(
    equity, initial_cash))``, in one pass: a NaN holds the peak at NaN).

    Args:
        out: Where to write it (``len(equity)`` floats); None: a new array.
    """
    if out is None:
        out = np.empty(len(equity))
    write_drawdowns(np.ascontiguousarray(equity, np.float64), float(initial_cash), out)
    return out


@released_kernel
def write_drawdowns(
    equity: npt.NDArray[np.float64], initial_cash: float, out: npt.NDArray[np.float64]
) -> None:
    """Write `drawdown_curve` of ``equity`` (contiguous float64) into ``out``."""
    peak = initial_cash
    for i in range(len(equity)):
        value = equity[i]
        peak = _next_peak(peak, value, initial_cash, i == 0)
        out[i] = 1.0 - value / peak


@kernel
def _next_peak(peak: float, value: float, initial_cash: float, first: bool) -> float:
    """Return the running peak after ``value``: `np.maximum`'s choice, which keeps NaN
    and takes the second of equals, of the peak and the value floored at the cash."""
    high = value if value > initial_cash or np.isnan(value) else initial_cash
    if first or not (peak > high or np.isnan(peak)):
        return high
    return peak


@released_kernel
def deepest_drawdown(equity: npt.NDArray[np.float64], initial_cash: float) -> float:
    """Return ``np.max(drawdown_curve(equity, initial_cash))`` (``equity`` contiguous
    float64, at least one bar; NaN if any bar's drawdown is NaN), dividing once per peak.

    Under a positive, finite peak a bar's drawdown ``1 - value / peak`` falls as the
    value rises (a correctly rounded division and subtraction keep the order), so the
    deepest bar under one peak is its lowest: with finite values and a positive, finite
    starting cash the peak is the running maximum and only each peak's low is divided.
    Otherwise (a NaN, an infinity, no positive cash) every bar is.
    """
    if not 0.0 < initial_cash < np.inf:
        return _deepest_of_every_bar(equity, initial_cash)
    deepest = -np.inf
    peak = initial_cash
    low = np.inf  # the lowest value under the peak (none yet: the starting cash's)
    for i in range(len(equity)):
        value = equity[i]
        if not abs(value) < np.inf:
            return _deepest_of_every_bar(equity, initial_cash)
        if value > peak:  # a new peak: the last one's deepest is known
            if low < np.inf:
                deepest = max(deepest, 1.0 - low / peak)
            peak = value
            low = value
        elif value < low:
            low = value
    return max(deepest, 1.0 - low / peak)


@kernel
def _deepest_of_every_bar(equity: npt.NDArray[np.float64], initial_cash: float) -> float:
    deepest = -np.inf
    peak = initial_cash
    for i in range(len(equity)):
        value = equity[i]
        peak = _next_peak(peak, value, initial_cash, i == 0)
        drawdown = 1.0 - value / peak
        if drawdown != drawdown:
            return np.nan  # `np.max` propagates a NaN
        if drawdown > deepest:
            deepest = drawdown
    return deepest


@python_form(deepest_drawdown)
def _deepest_drawdown_as_python(equity: npt.NDArray[np.float64], initial_cash: float) -> float:
    """`deepest_drawdown` as Python (`tradeloom.kernels.jit.python_form`): numpy's maximum
    of the whole curve."""
    return float(np.max(drawdown_curve(equity, initial_cash)))


@python_form(write_drawdowns)
def _write_drawdowns_as_python(
    equity: npt.NDArray[np.float64], initial_cash: float, out: npt.NDArray[np.float64]
) -> None:
    """`write_drawdowns` as Python (`tradeloom.kernels.jit.python_form`): its peak is the
    running `np.maximum` of the equity floored at the initial cash (the kernel's choice
    at NaN and at equals is `np.maximum`'s), so numpy's whole-array passes give the same
    bits as its loop."""
    peak = np.maximum.accumulate(np.maximum(equity, initial_cash))
    np.subtract(1.0, equity / peak, out=out)
