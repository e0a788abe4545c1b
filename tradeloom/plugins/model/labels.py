"""Training labels: the direction of the forward return over a horizon."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["direction_labels"]


def direction_labels(close: npt.ArrayLike, horizon: int) -> npt.NDArray[np.float64]:
    """Return ``y_i = 1`` if ``close[i + horizon] > close[i]`` else ``0``, per row.

    The label of row ``i`` is known only at bar ``i + horizon``; rows whose horizon runs
    past the data, or whose closes are not finite, have no label (NaN).

    Args:
        close: Close prices, one per bar.
        horizon: Bars ahead (>= 1).

    Raises:
        ValueError: ``horizon`` is below 1.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, was {horizon}")
    prices = np.asarray(close, dtype=np.float64)
    labels = np.full(len(prices), np.nan)
    if len(prices) > horizon:
        now, later = prices[:-horizon], prices[horizon:]
        known = np.isfinite(now) & np.isfinite(later)
        labels[:-horizon] = np.where(known, (later > now).astype(np.float64), np.nan)
    return labels
