"""The ``donchian`` feature: the highest high and lowest low of the last ``window`` bars.

Step kernel state (`new_donchian_state`): a ring of the last ``window`` highs, then a
ring of the last ``window`` lows (`tradeloom.core.kernels.window`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from tradeloom.core.kernels.window import new_ring, ring_full, ring_max, ring_min, ring_push
from tradeloom.domain import Bar, Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.features._base import (
    ColumnName,
    ReadsBars,
    bars_key,
    column_frame,
    new_columns,
    prices,
)
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "Donchian",
    "DonchianParams",
    "build_donchian",
    "donchian",
    "donchian_step",
    "new_donchian_state",
]


class DonchianParams(Params):
    """Keys of ``donchian``.

    The columns are ``donchian_upper_{window}``, ``donchian_middle_{window}`` and
    ``donchian_lower_{window}``, or ``{name}_upper``, ``{name}_middle``, ``{name}_lower``.
    """

    window: int = bars_key(20, 1, "Bars of the channel")
    name: ColumnName = Field(
        default=None, description="Names the columns {name}_upper, {name}_middle, {name}_lower."
    )

    def columns(self) -> list[str]:
        """Return the upper, middle and lower columns."""
        if self.name:
            return [f"{self.name}_{part}" for part in ("upper", "middle", "lower")]
        return [f"donchian_{part}_{self.window}" for part in ("upper", "middle", "lower")]


@kernel
def new_donchian_state(window: int) -> np.ndarray:
    """Return the state of a channel that has seen no bar."""
    return np.concatenate((new_ring(window), new_ring(window)))


@kernel
def donchian_step(state: np.ndarray, high: float, low: float) -> tuple[float, float, float]:
    """Take a bar; return ``(upper, middle, lower)``, NaN while warming up.

    Args:
        state: ``new_donchian_state(window)``, updated in place.
        high: This bar's high.
        low: This bar's low.
    """
    half = state.size // 2
    highs = state[:half]
    lows = state[half:]
    ring_push(highs, high)
    ring_push(lows, low)
    if not ring_full(highs):
        return math.nan, math.nan, math.nan
    upper = ring_max(highs)
    lower = ring_min(lows)
    return upper, (upper + lower) / 2.0, lower


@kernel
def _rolling_extreme(values: np.ndarray, window: int, sign: float, out: np.ndarray) -> None:
    # the largest of each window of sign * values, by a monotonic queue of indices: O(n),
    # and the same value as the step's scan (an extreme is one of the values, exactly)
    queue = np.empty(values.size, np.int64)
    head = 0
    tail = 0
    for t in range(values.size):
        x = sign * values[t]
        while tail > head and sign * values[queue[tail - 1]] <= x:
            tail -= 1
        queue[tail] = t
        tail += 1
        if queue[head] <= t - window:
            head += 1
        out[t] = values[queue[head]] if t >= window - 1 else math.nan


@kernel
def _donchian_batch(high: np.ndarray, low: np.ndarray, window: int) -> np.ndarray:
    out = np.empty((high.size, 3))
    upper = np.empty(high.size)
    lower = np.empty(high.size)
    _rolling_extreme(high, window, 1.0, upper)
    _rolling_extreme(low, window, -1.0, lower)
    for t in range(high.size):
        out[t, 0] = upper[t]
        out[t, 1] = (upper[t] + lower[t]) / 2.0
        out[t, 2] = lower[t]
    return out


def donchian(high: np.ndarray, low: np.ndarray, window: int) -> np.ndarray:
    """Return the channel as columns upper, middle, lower; NaN for ``window - 1`` rows.

    Upper: the highest high of the last ``window`` bars (TA-Lib's ``MAX`` of the highs);
    lower: the lowest low (``MIN`` of the lows); middle: their mean (``MIDPRICE``).
    """
    h, lo = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low))
    return _donchian_batch(h, lo, window)


class _DonchianStep:
    """Per-bar driver of `Donchian`."""

    __slots__ = ("_state",)

    def __init__(self, window: int) -> None:
        self._state = new_donchian_state(window)

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's upper, middle and lower."""
        return donchian_step(self._state, bar.high, bar.low)


@dataclass(frozen=True)
class Donchian(ReadsBars):
    """Compute the Donchian channel of ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("high", "low")

    window: int
    names: tuple[str, str, str]

    def columns(self) -> list[str]:
        """Return the upper, middle and lower columns."""
        return list(self.names)

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the channel; row t uses bars up to t."""
        out = donchian(prices(bars, "high"), prices(bars, "low"), self.window)
        return column_frame(bars, {name: out[:, k] for k, name in enumerate(self.names)})

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _DonchianStep(self.window)


def build_donchian(params: DonchianParams, ctx: BuildContext) -> Donchian:
    """Return the feature; its columns must not be defined already."""
    upper, middle, lower = params.columns()
    return new_columns(Donchian(params.window, (upper, middle, lower)), ctx)
