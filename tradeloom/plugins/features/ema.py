"""The ``ema`` feature: the exponential moving average of the close, seeded as TA-Lib does.

Step kernel state: an SMA-seeded average (`tradeloom.plugins.features.smoothing`),
``[count, average]``.
"""

from __future__ import annotations

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
from tradeloom.plugins.features.smoothing import ema_step, new_average
from tradeloom.plugins.protocols_steps import CloseStep, FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Ema", "EmaParams", "build_ema", "ema"]


class EmaParams(SingleColumnParams):
    """Keys of ``ema``; the column is ``ema_{period}``."""

    period: int = bars_key(20, 2, "Period in bars")


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


@dataclass(frozen=True)
class Ema(OneColumn):
    """Compute the EMA of the close over ``period`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    period: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the EMA; row t uses closes up to t."""
        return ema(prices(bars, "close"), self.period)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return CloseStep(ema_step, new_average(), self.period)


def build_ema(params: EmaParams, ctx: BuildContext) -> Ema:
    """Return the feature; its column must not be defined already."""
    return new_columns(Ema(params.period, params.column(f"ema_{params.period}")), ctx)
