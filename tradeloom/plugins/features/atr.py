"""The ``atr`` feature: Wilder's average true range, as TA-Lib computes it.

Step kernel state (`new_atr_state`, float64 array of 4): ``[1 once a close was seen
else 0, previous close, Wilder average (2)]`` (`tradeloom.plugins.features.smoothing`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from tradeloom.domain import Bar, Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features._base import (
    OneColumn,
    SingleColumnParams,
    bars_key,
    new_columns,
    prices,
)
from tradeloom.plugins.features.smoothing import wilder_step
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Atr", "AtrParams", "atr", "atr_step", "build_atr", "new_atr_state"]


class AtrParams(SingleColumnParams):
    """Keys of ``atr``; the column is ``atr_{window}``."""

    window: int = bars_key(14, 1, "Smoothing window in bars")


@kernel
def _true_range(high: float, low: float, previous_close: float) -> float:
    return max(high - low, abs(high - previous_close), abs(low - previous_close))


@kernel
def new_atr_state() -> np.ndarray:
    """Return the state of an ATR that has seen no bar."""
    return np.zeros(4)


@kernel
def atr_step(state: np.ndarray, high: float, low: float, close: float, window: int) -> float:
    """Take a bar; return the ATR, or NaN for the first ``window`` bars.

    Args:
        state: `new_atr_state`, updated in place.
        high: This bar's high.
        low: This bar's low.
        close: This bar's close.
        window: Smoothing window (>= 1).
    """
    previous = state[1]
    state[1] = close
    if state[0] == 0.0:
        state[0] = 1.0
        return math.nan
    return wilder_step(state[2:4], _true_range(high, low, previous), window)


@kernel
def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    state = new_atr_state()
    out = np.empty(close.size)
    for t in range(close.size):
        out[t] = atr_step(state, high[t], low[t], close[t], window)
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Return Wilder's average true range; NaN for the first ``window`` rows.

    The true range of bar t >= 1 is max(high - low, |high - close_{t-1}|,
    |low - close_{t-1}|). The ATR starts as the simple average of the first ``window``
    true ranges (bars 1 .. window), then follows Wilder's smoothing
    ``atr = atr * (window - 1) / window + tr / window``, multiplying by the two
    precomputed constants (TA-Lib's ``ATR`` divides by ``window`` instead: the values
    agree to about 1e-13).
    """
    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    return _atr(h, lo, c, window)


class _AtrStep:
    """Per-bar driver of `Atr`."""

    __slots__ = ("_state", "_window")

    def __init__(self, window: int) -> None:
        self._state = new_atr_state()
        self._window = window

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's ATR."""
        return (atr_step(self._state, bar.high, bar.low, bar.close, self._window),)


@dataclass(frozen=True)
class Atr(OneColumn):
    """Compute Wilder's average true range over ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("high", "low", "close")

    window: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the ATR; row t uses bars up to t."""
        high, low, close = (prices(bars, k) for k in ("high", "low", "close"))
        return atr(high, low, close, self.window)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _AtrStep(self.window)


def build_atr(params: AtrParams, ctx: BuildContext) -> Atr:
    """Return the feature; its column must not be defined already."""
    return new_columns(Atr(params.window, params.column(f"atr_{params.window}")), ctx)
