"""The ``sma`` feature: the simple moving average of the close, TA-Lib's ``SMA``.

Step kernel state: a ring of the last ``window`` closes (`tradeloom.core.kernels.window`),
whose mean is computed from the window alone (no running sum: no residue after a spike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from tradeloom.core.kernels.window import (
    new_ring,
    ring_full,
    ring_mean,
    ring_push,
    rolling_mean_std,
)
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
from tradeloom.plugins.protocols_steps import CloseStep, FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["Sma", "SmaParams", "build_sma", "sma", "sma_step"]


class SmaParams(SingleColumnParams):
    """Keys of ``sma``; the column is ``sma_{window}``."""

    window: int = bars_key(20, 1, "Closes averaged")


@kernel
def sma_step(ring: np.ndarray, close: float) -> float:
    """Take a close; return the mean of the last ``window`` closes (NaN while warming up)."""
    ring_push(ring, close)
    if not ring_full(ring):
        return math.nan
    return ring_mean(ring)


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Return the mean of the last ``window`` values; NaN for the first ``window - 1`` rows.

    Each mean is computed from its own window (`tradeloom.core.kernels.window`):
    TA-Lib's ``SMA`` to about 1e-15 relative, without the residue its running sum
    leaves after a spike.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if window == 1:
        return values.copy()
    # the block kernel's mean is `ring_mean`'s, operation for operation (window.py)
    return rolling_mean_std(values, window, 0)[0]


@dataclass(frozen=True)
class Sma(OneColumn):
    """Compute the simple moving average of the close over ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    window: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the SMA; row t uses closes up to t."""
        return sma(prices(bars, "close"), self.window)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return CloseStep(sma_step, new_ring(self.window))


def build_sma(params: SmaParams, ctx: BuildContext) -> Sma:
    """Return the feature; its column must not be defined already."""
    return new_columns(Sma(params.window, params.column(f"sma_{params.window}")), ctx)
