"""Rolling window statistics, computed per window in two passes (no running sums).

A running sum drifts: after a spike leaves the window, the subtraction leaves a
residue and the standard deviation of a flat window is not 0. Here every window is
computed from its own values, so a value depends only on its window, bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["rolling_mean_std"]

_BLOCK_VALUES = 1 << 20  # values copied per block: bounds memory for long windows


def rolling_mean_std(values: np.ndarray, window: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and standard deviation of each window ending at t.

    Args:
        values: The series (float64, no NaN inside a window expected; NaN propagates).
        window: Window length, >= 2.
        ddof: Delta degrees of freedom: 0 population, 1 sample.

    Returns:
        ``(mean, std)``, NaN for the first ``window - 1`` rows; ``std`` is exactly 0
        for a window of equal values.
    """
    n = len(values)
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    if n < window:
        return mean, std
    windows = sliding_window_view(np.asarray(values, dtype=np.float64), window)
    step = max(1, _BLOCK_VALUES // window)
    for first in range(0, len(windows), step):
        block = np.ascontiguousarray(windows[first : first + step])
        centre = block.mean(axis=1)
        spread = np.sqrt(((block - centre[:, None]) ** 2).sum(axis=1) / (window - ddof))
        spread[block.max(axis=1) == block.min(axis=1)] = 0.0
        rows = slice(window - 1 + first, window - 1 + first + len(block))
        mean[rows] = centre
        std[rows] = spread
    return mean, std
