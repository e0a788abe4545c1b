"""Recursive averages seeded by a simple average, as TA-Lib seeds them.

State: a float64 array of 2, ``[count, average]``. ``count`` is the number of values
seen, saturating at ``period``; until then ``average`` holds the running sum of the
values (added in order, from 0.0), and at the ``period``-th value it becomes their
simple average ``sum / period``, the first output. From then on:

- EMA (TA-Lib's ``EMA``): ``avg = (x - avg) * k + avg`` with ``k = 2 / (period + 1)``;
- Wilder's smoothing (TA-Lib's ``RSI`` and ``ATR``): ``avg = avg * a + x * b`` with
  ``a = (period - 1) / period`` and ``b = 1 / period``. TA-Lib divides,
  ``(avg * (period - 1) + x) / period``; multiplying by the two constants keeps the
  division out of the chain of dependent operations (about 3x shorter) and differs
  from TA-Lib by a few units in the last place.
"""

from __future__ import annotations

import math

from tradeloom.kernels.jit import kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = ["ema_step", "new_average", "seed_step", "wilder_constants", "wilder_step"]


@kernel
def new_average() -> np.ndarray:
    """Return the state of an average that has seen no value."""
    return np.zeros(2)


@kernel
def seed_step(state: np.ndarray, value: float, period: int) -> float:
    """Add a value of the seeding period; return the seed at the last one, else NaN."""
    state[1] += value
    state[0] += 1.0
    if state[0] < period:
        return math.nan
    state[1] = state[1] / period
    return float(state[1])


@kernel
def ema_step(state: np.ndarray, value: float, period: int) -> float:
    """Feed ``value`` to an EMA; return the EMA, or NaN before ``period`` values."""
    if state[0] < period:
        return seed_step(state, value, period)
    k = 2.0 / (period + 1)
    state[1] = (value - state[1]) * k + state[1]
    return float(state[1])


@kernel
def wilder_constants(period: int) -> tuple[float, float]:
    """Return ``(a, b)``: Wilder's smoothing is ``avg * a + x * b``."""
    return (period - 1) / period, 1.0 / period


@kernel
def wilder_step(state: np.ndarray, value: float, period: int) -> float:
    """Feed ``value`` to Wilder's smoothing; return the average, or NaN before ``period``."""
    if state[0] < period:
        return seed_step(state, value, period)
    a, b = wilder_constants(period)
    state[1] = state[1] * a + value * b
    return float(state[1])
