"""Each bar's position, cash and equity, from the fills the core booked.

The compiled step writes no row per bar: cash and positions change only at fills,
and each fill's row carries them after the fill. `equity_curve` spreads them over
the bars and marks the equity as the core marks it, ``cash + position x close``,
so the curve is the one the step's decisions saw, bit for bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradeloom.core import layout as L

__all__ = ["equity_curve", "fill_marks"]


def fill_marks(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return ``(bar, position, cash)`` after each fill among ``rows``, in order."""
    fills = rows[rows[:, L.E_KIND] == L.EV_FILL]
    return fills[:, [L.E_BAR, 3 + 7, 3 + 8]]


def equity_curve(
    marks: npt.NDArray[np.float64], close: npt.NDArray[np.float64], initial_cash: float
) -> npt.NDArray[np.float64]:
    """Return each bar's position, cash and equity (bars x 3).

    Args:
        marks: `fill_marks` of the run, in order (the last fill of a bar holds the bar's
            end).
        close: Each bar's close.
        initial_cash: The cash before the first fill.
    """
    n = len(close)
    start = np.array([[-1.0, 0.0, initial_cash]])  # before the first fill
    done = np.concatenate([start, marks])
    last = np.searchsorted(done[:, 0], np.arange(n), side="right") - 1
    out = np.empty((n, 3))
    out[:, 0] = done[last, 1]
    out[:, 1] = done[last, 2]
    out[:, 2] = out[:, 1] + out[:, 0] * close
    return out
