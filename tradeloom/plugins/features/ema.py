"""The ``ema`` feature: the exponential moving average of the close, seeded as TA-Lib does.

Step kernel state: an SMA-seeded average (`tradeloom.plugins.features.smoothing`),
``[count, average]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from tradeloom.bounds import MAX_WINDOW
from tradeloom.domain import Bar, Bars
from tradeloom.jit import kernel
from tradeloom.lazy import pandas as pd
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features._base import (
    SingleColumnParams,
    check_new_columns,
    column_frame,
    prices,
)
from tradeloom.plugins.features.smoothing import ema_step, new_average
from tradeloom.plugins.features.steps import FeatureStep, StepContext

__all__ = ["Ema", "EmaParams", "build_ema", "ema"]


class EmaParams(SingleColumnParams):
    """Keys of ``ema``; the column is ``ema_{period}``."""

    period: int = Field(
        default=20, ge=2, le=MAX_WINDOW, strict=True, description="Period in bars (2 .. 1,000,000)."
    )


@kernel
def _ema(values: np.ndarray, period: int) -> np.ndarray:
    state = new_average()
    out = np.empty(values.size)
    for t in range(values.size):
        out[t] = ema_step(state, values[t], period)
    return out


def ema(values: np.ndarray, period: int) -> np.ndarray:
    """Return the EMA with ``k = 2 / (period + 1)``; NaN for the first ``period - 1`` rows.

    The first value is the simple average of the first ``period`` values, then
    ``ema = (x - ema) * k + ema``: TA-Lib's ``EMA``, operation for operation.
    """
    return _ema(np.ascontiguousarray(values, dtype=np.float64), period)


class _EmaStep:
    """Per-bar driver of `Ema`."""

    __slots__ = ("_period", "_state")

    def __init__(self, period: int) -> None:
        self._state = new_average()
        self._period = period

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's EMA."""
        return (ema_step(self._state, bar.close, self._period),)


@dataclass(frozen=True)
class Ema:
    """Compute the EMA of the close over ``period`` bars."""

    period: int
    column: str

    def columns(self) -> list[str]:
        """Return the one column."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the EMA; row t uses closes up to t."""
        return column_frame(bars, {self.column: ema(prices(bars, "close"), self.period)})

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _EmaStep(self.period)


def build_ema(params: EmaParams, ctx: BuildContext) -> Ema:
    """Return the feature; its column must not be defined already."""
    feature = Ema(params.period, params.column(f"ema_{params.period}"))
    check_new_columns(feature.columns(), ctx, "name")
    return feature
