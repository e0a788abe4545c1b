"""The ``macd`` feature: the difference of a fast and a slow EMA, its signal line and histogram.

Step kernel state (`new_macd_state`, float64 array of 6): the fast, the slow and the
signal EMA states (`tradeloom.plugins.features.smoothing`), two values each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator

from tradeloom.bounds import MAX_WINDOW
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
from tradeloom.plugins.features.smoothing import ema_step
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Macd", "MacdParams", "build_macd", "macd", "macd_step", "new_macd_state"]


class MacdParams(Params):
    """Keys of ``macd``.

    The columns are ``macd_{fast}_{slow}`` (the MACD line),
    ``macd_signal_{fast}_{slow}_{signal}`` and ``macd_hist_{fast}_{slow}_{signal}``,
    or ``{name}``, ``{name}_signal`` and ``{name}_hist``.
    """

    fast: int = bars_key(12, 2, "Period of the fast EMA")
    slow: int = Field(
        default=26,
        ge=2,
        le=MAX_WINDOW,
        strict=True,
        validate_default=True,
        description="Period of the slow EMA (> fast; at most 1,000,000).",
    )
    signal: int = bars_key(9, 2, "Period of the EMA of the MACD line")
    name: ColumnName = Field(
        default=None,
        description="Names the columns {name}, {name}_signal and {name}_hist (e.g. macd_fast).",
    )

    @field_validator("slow")
    @classmethod
    def _slower_than_fast(cls, value: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast")
        if fast is not None and value <= fast:
            raise ValueError(f"must be > fast ({fast}), was {value}")
        return value

    def columns(self) -> list[str]:
        """Return the line, signal and histogram columns."""
        if self.name:
            return [self.name, f"{self.name}_signal", f"{self.name}_hist"]
        line = f"{self.fast}_{self.slow}"
        full = f"{line}_{self.signal}"
        return [f"macd_{line}", f"macd_signal_{full}", f"macd_hist_{full}"]


@kernel
def new_macd_state() -> np.ndarray:
    """Return the state of a MACD that has seen no close."""
    return np.zeros(6)


@kernel
def macd_step(
    state: np.ndarray, close: float, fast: int, slow: int, signal: int
) -> tuple[float, float, float]:
    """Take a close; return ``(line, signal, histogram)``, NaN while warming up.

    Args:
        state: `new_macd_state`, updated in place.
        close: This bar's close.
        fast: Period of the fast EMA (< ``slow``).
        slow: Period of the slow EMA.
        signal: Period of the signal EMA.
    """
    fast_ema = ema_step(state[0:2], close, fast)
    slow_ema = ema_step(state[2:4], close, slow)
    if math.isnan(slow_ema):
        return math.nan, math.nan, math.nan
    line = fast_ema - slow_ema
    signal_ema = ema_step(state[4:6], line, signal)
    return line, signal_ema, line - signal_ema


@kernel
def _macd(close: np.ndarray, fast: int, slow: int, signal: int) -> np.ndarray:
    state = new_macd_state()
    out = np.empty((close.size, 3))
    for t in range(close.size):
        out[t, 0], out[t, 1], out[t, 2] = macd_step(state, close[t], fast, slow, signal)
    return out


def macd(
    close: np.ndarray, fast: int, slow: int, signal: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the MACD line, its signal line and the histogram (line - signal).

    The line is EMA(fast) - EMA(slow), each EMA seeded by the simple average of its
    first ``period`` closes as TA-Lib's ``EMA`` (so it equals
    ``talib.EMA(close, fast) - talib.EMA(close, slow)``), NaN for the first
    ``slow - 1`` rows. The signal is the EMA of the line seeded by the simple average
    of its first ``signal`` values, NaN for the first ``slow + signal - 2`` rows.

    TA-Lib's ``MACD`` differs in its first values: it starts the fast EMA late, with
    the simple average of the ``fast`` closes that end where the slow EMA's seed ends,
    so that both EMAs start on the same bar. Here both are plain EMAs, equal to the
    ``ema`` feature of the same period. The two definitions converge as the seeds are
    forgotten (within 1e-9 after a few hundred bars for 12/26/9).
    """
    out = _macd(np.ascontiguousarray(close, dtype=np.float64), fast, slow, signal)
    return out[:, 0], out[:, 1], out[:, 2]


class _MacdStep:
    """Per-bar driver of `Macd`."""

    __slots__ = ("_periods", "_state")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        self._state = new_macd_state()
        self._periods = (fast, slow, signal)

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's line, signal and histogram."""
        return macd_step(self._state, bar.close, *self._periods)


@dataclass(frozen=True)
class Macd(ReadsBars):
    """Compute the MACD line, signal and histogram."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    fast: int
    slow: int
    signal: int
    names: tuple[str, str, str]

    def columns(self) -> list[str]:
        """Return the line, signal and histogram columns."""
        return list(self.names)

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the three columns; row t uses closes up to t."""
        values = macd(prices(bars, "close"), self.fast, self.slow, self.signal)
        return column_frame(bars, dict(zip(self.names, values, strict=True)))

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _MacdStep(self.fast, self.slow, self.signal)


def build_macd(params: MacdParams, ctx: BuildContext) -> Macd:
    """Return the feature; its columns must not be defined already."""
    line, signal, hist = params.columns()
    return new_columns(Macd(params.fast, params.slow, params.signal, (line, signal, hist)), ctx)
