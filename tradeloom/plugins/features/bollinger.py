"""The ``bb_width`` feature: the width of the Bollinger bands relative to their middle.

Step kernel state: a ring (`tradeloom.core.kernels.window`) of the last ``window``
closes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from tradeloom.core.kernels.window import (
    BLOCK,
    block_mean_std,
    new_ring,
    ring_full,
    ring_mean_std,
    ring_push,
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

__all__ = [
    "BollingerWidth",
    "BollingerWidthParams",
    "bb_width",
    "bb_width_step",
    "build_bb_width",
]


class BollingerWidthParams(SingleColumnParams):
    """Keys of ``bb_width``; the column is ``bb_width_{window}``."""

    window: int = bars_key(20, 2, "Window in bars")
    std: float = Field(default=2.0, gt=0, description="Band distance in standard deviations.")


@kernel
def _width(middle: float, spread: float, k: float) -> float:
    # np.divide divides as IEEE 754 does (no ZeroDivisionError check): the loop vectorises.
    return float(np.divide((middle + k * spread) - (middle - k * spread), middle))


@kernel
def bb_width_step(ring: np.ndarray, close: float, k: float) -> float:
    """Take a close; return the band width, or NaN before ``window`` closes.

    Args:
        ring: ``new_ring(window)``, updated in place.
        close: This bar's close.
        k: Band distance in standard deviations.
    """
    ring_push(ring, close)
    if not ring_full(ring):
        return math.nan
    middle, spread = ring_mean_std(ring, 0)
    return _width(middle, spread, k)


@kernel
def _bb_width(close: np.ndarray, window: int, k: float, ddof: int) -> np.ndarray:
    # ddof (0) comes in as an argument: the literal 0 would make numba compile
    # block_mean_std once more, for a literal (2 s of CPU at a first run)
    n = close.size
    out = np.empty(n)
    out[: min(n, window - 1)] = math.nan
    middle = np.empty(BLOCK)
    spread = np.empty(BLOCK)
    for end in range(window - 1, n, BLOCK):
        m = min(BLOCK, n - end)
        block_mean_std(close, end, window, ddof, middle[:m], spread[:m])
        for j in range(m):
            out[end + j] = _width(middle[j], spread[j], k)
    return out


def bb_width(close: np.ndarray, window: int, std: float) -> np.ndarray:
    """Return (upper - lower) / middle; NaN for the first ``window - 1`` rows.

    The middle band is the simple moving average; the bands are ``std`` population
    standard deviations (ddof=0, as TA-Lib ``BBANDS``) away from it. Mean and std are
    those of `tradeloom.core.kernels.window`: a flat window has width 0.
    """
    return _bb_width(np.ascontiguousarray(close, dtype=np.float64), window, float(std), 0)


@dataclass(frozen=True)
class BollingerWidth(OneColumn):
    """Compute the relative Bollinger band width over ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    window: int
    std: float
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the width; row t uses closes t - window + 1 .. t."""
        width = bb_width(prices(bars, "close"), self.window, self.std)
        return width

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return CloseStep(bb_width_step, new_ring(self.window), float(self.std))


def build_bb_width(params: BollingerWidthParams, ctx: BuildContext) -> BollingerWidth:
    """Return the feature; its column must not be defined already."""
    column = params.column(f"bb_width_{params.window}")
    return new_columns(BollingerWidth(params.window, params.std, column), ctx)
