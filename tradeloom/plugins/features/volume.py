"""The ``volume_zscore`` feature: how unusual this bar's volume is.

Step kernel state: a ring (`tradeloom.core.kernels.window`) of the last ``window``
volumes; the kernels are ``zscore``'s with the sample std.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from tradeloom.core.kernels.window import new_ring
from tradeloom.domain import Bar, Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features._base import (
    OneColumn,
    SingleColumnParams,
    bars_key,
    new_columns,
    prices,
)
from tradeloom.plugins.features.zscore import rolling_zscore, zscore_step
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["VolumeZScore", "VolumeZScoreParams", "build_volume_zscore", "volume_zscore"]


class VolumeZScoreParams(SingleColumnParams):
    """Keys of ``volume_zscore``; the column is ``volume_zscore_{window}``."""

    window: int = bars_key(24, 2, "Window in bars")


def volume_zscore(volume: np.ndarray, window: int) -> np.ndarray:
    """Return (volume_t - mean) / std over the window of ``window`` bars ending at t.

    The std is the sample std (ddof=1); mean and std are those of
    `tradeloom.core.kernels.window`. A window of equal volumes has std 0 and the
    bar is not unusual: the score is 0.0 there. NaN only for the first ``window - 1``
    rows.
    """
    return rolling_zscore(np.ascontiguousarray(volume, dtype=np.float64), window, 1)


class _VolumeZScoreStep:
    """Per-bar driver of `VolumeZScore`."""

    __slots__ = ("_ring",)

    def __init__(self, window: int) -> None:
        self._ring = new_ring(window)

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's volume z-score."""
        return (zscore_step(self._ring, bar.volume, 1),)


@dataclass(frozen=True)
class VolumeZScore(OneColumn):
    """Compute the z-score of volume within its rolling window."""

    reads: ClassVar[tuple[str, ...]] = ("volume",)

    window: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the z-scores; row t uses volumes t - window + 1 .. t."""
        score = volume_zscore(prices(bars, "volume"), self.window)
        return score

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return _VolumeZScoreStep(self.window)


def build_volume_zscore(params: VolumeZScoreParams, ctx: BuildContext) -> VolumeZScore:
    """Return the feature; its column must not be defined already."""
    column = params.column(f"volume_zscore_{params.window}")
    return new_columns(VolumeZScore(params.window, column), ctx)
