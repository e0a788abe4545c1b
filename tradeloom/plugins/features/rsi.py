"""The ``rsi`` feature: Wilder's relative strength index, as TA-Lib computes it.

Step kernel state (`new_rsi_state`, float64 array of 6):
``[1 once a close was seen else 0, previous close, gain average (2), loss average (2)]``;
the averages are Wilder smoothings (`tradeloom.plugins.features.smoothing`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from tradeloom.domain import Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features._base import (
    OneColumn,
    SingleColumnParams,
    bars_key,
    new_columns,
    prices,
)
from tradeloom.plugins.features.smoothing import wilder_constants, wilder_step
from tradeloom.plugins.protocols_steps import CloseStep, FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Rsi", "RsiParams", "build_rsi", "new_rsi_state", "rsi", "rsi_step"]


class RsiParams(SingleColumnParams):
    """Keys of ``rsi``; the column is ``rsi_{window}``."""

    window: int = bars_key(14, 2, "Smoothing window in bars")


@kernel
def _moves(change: float) -> tuple[float, float]:
    return (change if change > 0.0 else 0.0), (-change if change < 0.0 else 0.0)


@kernel
def _rsi_value(gain: float, loss: float) -> float:
    total = gain + loss
    # np.divide divides as IEEE 754 does (no ZeroDivisionError check): the loop vectorises.
    return 50.0 if total == 0.0 else 100.0 * np.divide(gain, total)


@kernel
def new_rsi_state() -> np.ndarray:
    """Return the state of an RSI that has seen no close."""
    return np.zeros(6)


@kernel
def rsi_step(state: np.ndarray, close: float, window: int) -> float:
    """Take a close; return the RSI, or NaN for the first ``window`` closes.

    Args:
        state: `new_rsi_state`, updated in place.
        close: This bar's close.
        window: Smoothing window (>= 2).
    """
    previous = state[1]
    state[1] = close
    if state[0] == 0.0:
        state[0] = 1.0
        return math.nan
    gain, loss = _moves(close - previous)
    average_gain = wilder_step(state[2:4], gain, window)
    average_loss = wilder_step(state[4:6], loss, window)
    if math.isnan(average_gain):
        return math.nan
    return _rsi_value(average_gain, average_loss)


@kernel
def _rsi(close: np.ndarray, window: int) -> np.ndarray:
    # rsi_step's arithmetic with the averages in registers: the recursion is the chain
    # that bounds the speed, so it must not go through memory.
    n = close.size
    out = np.empty(n)
    out[: min(n, window)] = math.nan
    if n <= window:
        return out
    gain = 0.0
    loss = 0.0
    for t in range(1, window + 1):
        g, lo = _moves(close[t] - close[t - 1])
        gain += g
        loss += lo
    gain = gain / window
    loss = loss / window
    out[window] = _rsi_value(gain, loss)
    a, b = wilder_constants(window)
    for t in range(window + 1, n):
        g, lo = _moves(close[t] - close[t - 1])
        gain = gain * a + g * b
        loss = loss * a + lo * b
        out[t] = _rsi_value(gain, loss)
    return out


def rsi(close: np.ndarray, window: int) -> np.ndarray:
    """Return Wilder's RSI in [0, 100]; NaN for the first ``window`` rows.

    With gains ``max(change, 0)`` and losses ``max(-change, 0)`` of the 1-bar changes,
    the average gain and loss start as the simple means of the first ``window`` of
    them, then follow Wilder's smoothing ``avg = avg * (window - 1) / window + x /
    window``, multiplying by the two precomputed constants (TA-Lib's ``RSI`` divides
    by ``window`` instead: the values agree to about 1e-13). RSI = 100 * gain /
    (gain + loss). Where the price did not move at all over the averages (gain and
    loss both 0), the RSI is 50, not TA-Lib's 0.
    """
    return _rsi(np.ascontiguousarray(close, dtype=np.float64), window)


@dataclass(frozen=True)
class Rsi(OneColumn):
    """Compute Wilder's RSI over ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    window: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the RSI; row t uses closes up to t."""
        return rsi(prices(bars, "close"), self.window)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return CloseStep(rsi_step, new_rsi_state(), self.window)


def build_rsi(params: RsiParams, ctx: BuildContext) -> Rsi:
    """Return the feature; its column must not be defined already."""
    return new_columns(Rsi(params.window, params.column(f"rsi_{params.window}")), ctx)
