"""The ``stochastic`` feature: where the close sits in the recent high-low range.

Step kernel state (`new_stochastic_state`): a ring of the last ``k_window`` highs, a
ring of the last ``k_window`` lows and a ring of the last ``d_window`` values of %K
(`tradeloom.core.kernels.window`), one after the other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from tradeloom.core.kernels.window import (
    new_ring,
    ring_full,
    ring_max,
    ring_mean,
    ring_min,
    ring_push,
)
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
    "FLAT",
    "Stochastic",
    "StochasticParams",
    "build_stochastic",
    "new_stochastic_state",
    "stochastic",
    "stochastic_step",
]

FLAT = 50.0
"""%K where the highest high equals the lowest low: no range, the middle of it."""


class StochasticParams(Params):
    """Keys of ``stochastic``.

    The columns are ``stoch_k_{k_window}`` and ``stoch_d_{k_window}_{d_window}``, or
    ``{name}_k`` and ``{name}_d``.
    """

    k_window: int = bars_key(14, 1, "Bars of the range of %K")
    d_window: int = bars_key(3, 1, "Values of %K averaged in %D")
    name: ColumnName = Field(
        default=None, description="Names the columns {name}_k and {name}_d (e.g. stoch_fast)."
    )

    def columns(self) -> list[str]:
        """Return the %K and %D columns."""
        if self.name:
            return [f"{self.name}_k", f"{self.name}_d"]
        return [f"stoch_k_{self.k_window}", f"stoch_d_{self.k_window}_{self.d_window}"]


@kernel
def new_stochastic_state(k_window: int, d_window: int) -> np.ndarray:
    """Return the state of a stochastic that has seen no bar."""
    return np.concatenate((new_ring(k_window), new_ring(k_window), new_ring(d_window)))


@kernel
def stochastic_step(
    state: np.ndarray, high: float, low: float, close: float, k_window: int
) -> tuple[float, float]:
    """Take a bar; return ``(%K, %D)``, NaN while warming up.

    Args:
        state: ``new_stochastic_state(k_window, d_window)``, updated in place.
        high: This bar's high.
        low: This bar's low.
        close: This bar's close.
        k_window: Bars of the range of %K.
    """
    highs = state[: k_window + 2]
    lows = state[k_window + 2 : 2 * k_window + 4]
    ks = state[2 * k_window + 4 :]
    ring_push(highs, high)
    ring_push(lows, low)
    if not ring_full(highs):
        return math.nan, math.nan
    highest = ring_max(highs)
    lowest = ring_min(lows)
    k = FLAT if highest == lowest else 100.0 * np.divide(close - lowest, highest - lowest)
    ring_push(ks, k)
    if not ring_full(ks):
        return k, math.nan
    return k, ring_mean(ks)


@kernel
def _stochastic(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, k_window: int, d_window: int
) -> np.ndarray:
    state = new_stochastic_state(k_window, d_window)
    out = np.empty((close.size, 2))
    for t in range(close.size):
        out[t, 0], out[t, 1] = stochastic_step(state, high[t], low[t], close[t], k_window)
    return out


def stochastic(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, k_window: int, d_window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the fast stochastic %K and %D, as TA-Lib's ``STOCHF`` with an SMA for %D.

    %K = 100 * (close - lowest low) / (highest high - lowest low) over the last
    ``k_window`` bars, NaN for the first ``k_window - 1`` rows; where the highest high
    equals the lowest low (no range at all) %K is `FLAT` (50), where TA-Lib gives 0.
    %D is the mean of the last ``d_window`` values of %K, as defined in
    `tradeloom.core.kernels.window`, NaN for the first
    ``k_window + d_window - 2`` rows.
    """
    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    out = _stochastic(h, lo, c, k_window, d_window)
    return out[:, 0], out[:, 1]


class _StochasticStep:
    """Per-bar driver of `Stochastic`."""

    __slots__ = ("_k_window", "_state")

    def __init__(self, k_window: int, d_window: int) -> None:
        self._state = new_stochastic_state(k_window, d_window)
        self._k_window = k_window

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's %K and %D."""
        return stochastic_step(self._state, bar.high, bar.low, bar.close, self._k_window)


@dataclass(frozen=True)
class Stochastic(ReadsBars):
    """Compute the fast stochastic %K and %D."""

    reads: ClassVar[tuple[str, ...]] = ("high", "low", "close")

    k_window: int
    d_window: int
    names: tuple[str, str]

    def columns(self) -> list[str]:
        """Return the %K and %D columns."""
        return list(self.names)

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return %K and %D; row t uses bars up to t."""
        high, low, close = (prices(bars, k) for k in ("high", "low", "close"))
        values = stochastic(high, low, close, self.k_window, self.d_window)
        return column_frame(bars, dict(zip(self.names, values, strict=True)))

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _StochasticStep(self.k_window, self.d_window)


def build_stochastic(params: StochasticParams, ctx: BuildContext) -> Stochastic:
    """Return the feature; its columns must not be defined already."""
    k, d = params.columns()
    return new_columns(Stochastic(params.k_window, params.d_window, (k, d)), ctx)
