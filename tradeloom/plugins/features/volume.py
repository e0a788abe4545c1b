"""The ``volume_zscore`` feature: how unusual this bar's volume is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features._base import (
    SingleColumnParams,
    check_new_columns,
    column_frame,
    prices,
)
from tradeloom.plugins.features._rolling import rolling_mean_std

__all__ = ["VolumeZScore", "VolumeZScoreParams", "build_volume_zscore", "volume_zscore"]


class VolumeZScoreParams(SingleColumnParams):
    """Keys of ``volume_zscore``; the column is ``volume_zscore_{window}``."""

    window: int = Field(default=24, ge=2, strict=True, description="Window in bars.")


def volume_zscore(volume: np.ndarray, window: int) -> np.ndarray:
    """Return (volume_t - mean) / std over the window of ``window`` bars ending at t.

    The std is the sample std (ddof=1). A window of equal volumes has std 0 and the
    bar is not unusual: the score is 0.0 there. NaN only for the first ``window - 1``
    rows.
    """
    mean, std = rolling_mean_std(volume, window, ddof=1)
    flat = std == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (volume - mean) / std
    score[flat] = 0.0
    return score


@dataclass(frozen=True)
class VolumeZScore:
    """Compute the z-score of volume within its rolling window."""

    window: int
    column: str

    def columns(self) -> list[str]:
        """Return the one column."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the z-scores; row t uses volumes t - window + 1 .. t."""
        score = volume_zscore(prices(bars, "volume"), self.window)
        return column_frame(bars, {self.column: score})


def build_volume_zscore(params: VolumeZScoreParams, ctx: BuildContext) -> VolumeZScore:
    """Return the feature; its column must not be defined already."""
    feature = VolumeZScore(params.window, params.column(f"volume_zscore_{params.window}"))
    check_new_columns(feature.columns(), ctx, "name")
    return feature
