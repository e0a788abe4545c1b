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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import released_kernel

__all__ = ["Drawdowns", "find_drawdowns"]


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
def _stretches(
    values: npt.NDArray[np.float64], initial_cash: float
) -> tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
]:
    n = len(values)
    most = n // 2 + 1  # a bar at the peak parts two stretches
    peaks = np.empty(most, np.int64)
    starts = np.empty(most, np.int64)
    troughs = np.empty(most, np.int64)
    recoveries = np.empty(most, np.int64)
    highs = np.empty(most, np.float64)
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
    return (
        peaks[:count].copy(),
        starts[:count].copy(),
        troughs[:count].copy(),
        recoveries[:count].copy(),
        highs[:count].copy(),
    )
