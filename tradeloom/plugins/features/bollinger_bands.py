"""The ``bollinger`` feature: the Bollinger bands themselves (upper, middle, lower), in the
price's units, for the report's price panel and for rules that read them.

Step kernel state: a ring (`tradeloom.core.kernels.window`) of the last ``window``
closes, as ``bb_width``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from tradeloom.domain import Bar, Bars
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.features._base import ReadsBars, bars_key, column_frame, new_columns, prices
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "BollingerBands",
    "BollingerBandsParams",
    "bollinger_bands",
    "bollinger_step",
    "build_bollinger",
]


class BollingerBandsParams(Params):
    """Keys of ``bollinger``; the columns are ``bb_upper_{window}``, ``bb_middle_{window}``
    and ``bb_lower_{window}``."""

    window: int = bars_key(20, 2, "Window in bars")
    std: float = Field(default=2.0, gt=0, description="Band distance in standard deviations.")


@kernel
def bollinger_step(ring: np.ndarray, close: float, k: float, out: np.ndarray) -> None:
    """Take a close; write the upper, middle and lower bands into ``out`` (NaN before
    ``window`` closes).

    Args:
        ring: ``new_ring(window)``, updated in place.
        close: This bar's close.
        k: Band distance in standard deviations.
        out: Three values, written.
    """
    ring_push(ring, close)
    if not ring_full(ring):
        out[0] = out[1] = out[2] = math.nan
        return
    middle, spread = ring_mean_std(ring, 0)
    out[0] = middle + k * spread
    out[1] = middle
    out[2] = middle - k * spread


@kernel
def _bands(close: np.ndarray, window: int, k: float, ddof: int) -> np.ndarray:
    # ddof (0) comes in as an argument: the literal 0 would make numba compile
    # block_mean_std once more, for a literal (2 s of CPU at a first run)
    n = close.size
    out = np.empty((n, 3))
    out[: min(n, window - 1)] = math.nan
    middle = np.empty(BLOCK)
    spread = np.empty(BLOCK)
    for end in range(window - 1, n, BLOCK):
        m = min(BLOCK, n - end)
        block_mean_std(close, end, window, ddof, middle[:m], spread[:m])
        for j in range(m):
            out[end + j, 0] = middle[j] + k * spread[j]
            out[end + j, 1] = middle[j]
            out[end + j, 2] = middle[j] - k * spread[j]
    return out


def bollinger_bands(close: np.ndarray, window: int, std: float) -> np.ndarray:
    """Return ``[bars, 3]``: upper, middle and lower band; NaN for the first ``window - 1``.

    The middle band is the simple moving average; the bands are ``std`` population
    standard deviations (ddof=0, as TA-Lib ``BBANDS``) away from it.
    """
    return _bands(np.ascontiguousarray(close, dtype=np.float64), window, float(std), 0)


class _BandsStep:
    """Per-bar driver of `BollingerBands`."""

    __slots__ = ("_k", "_out", "_ring")

    def __init__(self, window: int, k: float) -> None:
        self._ring = new_ring(window)
        self._k = float(k)
        self._out = np.empty(3)

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's upper, middle and lower band."""
        bollinger_step(self._ring, bar.close, self._k, self._out)
        return (float(self._out[0]), float(self._out[1]), float(self._out[2]))


@dataclass(frozen=True)
class BollingerBands(ReadsBars):
    """Compute the Bollinger bands over ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    window: int
    std: float

    def columns(self) -> list[str]:
        """Return the upper, middle and lower band's columns."""
        return [f"bb_{band}_{self.window}" for band in ("upper", "middle", "lower")]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the bands; row t uses closes t - window + 1 .. t."""
        bands = bollinger_bands(prices(bars, "close"), self.window, self.std)
        return column_frame(bars, dict(zip(self.columns(), bands.T, strict=True)))

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _BandsStep(self.window, self.std)


def build_bollinger(params: BollingerBandsParams, ctx: BuildContext) -> BollingerBands:
    """Return the feature; its columns must not be defined already."""
    return new_columns(BollingerBands(params.window, params.std), ctx, "window")
