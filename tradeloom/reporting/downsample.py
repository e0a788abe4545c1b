"""Thin a long series for display without changing its shape: min and max per bucket.

A chart of a million bars is drawn from a few thousand points: the series is cut into
equal buckets of consecutive bars, and each bucket keeps the bars of its lowest and
highest value (and the series keeps its first and last bar). Every peak, trough and
drawdown of the full series is therefore on the drawn line, at its own time and value;
only the bars between them are left out. Nothing is averaged, so every value drawn is
a value of the run. Trade markers are never thinned.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DISPLAY_POINTS", "minmax_indices"]

DISPLAY_POINTS = 4000
"""Points drawn per series at most (two per bucket)."""


def minmax_indices(values: np.ndarray, points: int = DISPLAY_POINTS) -> np.ndarray:
    """Return the sorted positions to draw: the lowest and highest of each bucket.

    Args:
        values: The series (NaN: no value; a bucket of NaN only keeps one NaN, so a line
            drawn from the result still breaks there).
        points: The most positions returned (plus the first and the last).

    Returns:
        Every position when the series has at most ``points`` values.
    """
    n = len(values)
    if n <= points:
        return np.arange(n)
    buckets = max(1, points // 2)
    size = -(-n // buckets)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    rows = padded.reshape(buckets, size)
    missing = np.isnan(rows)
    low = np.where(missing, np.inf, rows).argmin(axis=1)
    high = np.where(missing, -np.inf, rows).argmax(axis=1)
    base = np.arange(buckets) * size
    picked = np.concatenate(([0, n - 1], base + low, base + high))
    picked = np.unique(picked)
    return picked[picked < n]
