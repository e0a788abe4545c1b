"""The ``adx`` feature: Wilder's average directional index, as TA-Lib's ``ADX`` computes it.

Step kernel state (`new_adx_state`, float64 array of 9): ``[bars seen, previous high,
previous low, previous close, +DM sum, -DM sum, TR sum, DX sum then ADX, spare]``.

TA-Lib's algorithm, operation for operation: over bars 1 .. w-1 the +DM, -DM and true
ranges are summed; from bar w on each sum decays, ``s = s - s / w + x``, and
``+DI = 100 * +DM / TR``, ``-DI = 100 * -DM / TR``, ``DX = 100 * |+DI - -DI| / (+DI + -DI)``;
the DX of bars w .. 2w-1 are averaged into the first ADX (bar 2w-1), then
``ADX = (ADX * (w - 1) + DX) / w``. A bar's +DM is its high's rise over the previous
high when that beats the low's fall and is positive (likewise -DM). Where TA-Lib
treats a sum under 1e-8 as zero (a scale that depends on the price's unit), here only
an exact zero is: a TR or DI sum of 0 skips the bar's DX, as TA-Lib's does.
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
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Adx", "AdxParams", "adx", "adx_step", "build_adx", "new_adx_state"]


class AdxParams(SingleColumnParams):
    """Keys of ``adx``; the column is ``adx_{window}``."""

    window: int = bars_key(14, 2, "Smoothing window in bars")


@kernel
def new_adx_state() -> np.ndarray:
    """Return the state of an ADX that has seen no bar."""
    return np.zeros(9)


@kernel
def _dx(plus: float, minus: float, tr: float) -> float:
    """Return the bar's DX (NaN: none, a zero TR or DI sum)."""
    if tr == 0.0:
        return math.nan
    minus_di = 100.0 * (minus / tr)
    plus_di = 100.0 * (plus / tr)
    total = minus_di + plus_di
    if total == 0.0:
        return math.nan
    return 100.0 * (abs(minus_di - plus_di) / total)


@kernel
def adx_step(state: np.ndarray, high: float, low: float, close: float, window: int) -> float:
    """Take a bar; return the ADX, or NaN for the first ``2 * window - 1`` bars.

    Args:
        state: `new_adx_state`, updated in place.
        high, low, close: The bar's prices.
        window: Smoothing window (>= 2).
    """
    seen = state[0]
    state[0] = seen + 1.0
    if seen == 0.0:
        state[1], state[2], state[3] = high, low, close
        return math.nan
    diff_p = high - state[1]
    diff_m = state[2] - low
    previous_close = state[3]
    state[1], state[2], state[3] = high, low, close
    if seen >= window:  # the sums decay from bar `window` on
        state[5] -= state[5] / window
        state[4] -= state[4] / window
    if diff_m > 0.0 and diff_p < diff_m:
        state[5] += diff_m
    elif diff_p > 0.0 and diff_p > diff_m:
        state[4] += diff_p
    tr = max(high - low, abs(high - previous_close), abs(low - previous_close))
    if seen < window:
        state[6] += tr
        return math.nan
    state[6] = state[6] - state[6] / window + tr
    dx = _dx(state[4], state[5], state[6])
    if seen < 2 * window - 1:  # bars window .. 2 window - 2: sum the DX
        if dx == dx:
            state[7] += dx
        return math.nan
    if seen == 2 * window - 1:
        if dx == dx:
            state[7] += dx
        state[7] = state[7] / window
        return state[7]  # type: ignore[no-any-return]
    if dx == dx:
        state[7] = (state[7] * (window - 1) + dx) / window
    return state[7]  # type: ignore[no-any-return]


@kernel
def _adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    state = new_adx_state()
    out = np.empty(close.size)
    for t in range(close.size):
        out[t] = adx_step(state, high[t], low[t], close[t], window)
    return out


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Return Wilder's ADX; NaN for the first ``2 * window - 1`` rows (the module's
    definition, TA-Lib's ``ADX``)."""
    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    return _adx(h, lo, c, window)


class _AdxStep:
    """Per-bar driver of `Adx`."""

    __slots__ = ("_state", "_window")

    def __init__(self, window: int) -> None:
        self._state = new_adx_state()
        self._window = window

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's ADX."""
        return (adx_step(self._state, bar.high, bar.low, bar.close, self._window),)


@dataclass(frozen=True)
class Adx(OneColumn):
    """Compute Wilder's average directional index over ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("high", "low", "close")

    window: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the ADX; row t uses bars up to t."""
        high, low, close = (prices(bars, k) for k in ("high", "low", "close"))
        return adx(high, low, close, self.window)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _AdxStep(self.window)


def build_adx(params: AdxParams, ctx: BuildContext) -> Adx:
    """Return the feature; its column must not be defined already."""
    return new_columns(Adx(params.window, params.column(f"adx_{params.window}")), ctx)
