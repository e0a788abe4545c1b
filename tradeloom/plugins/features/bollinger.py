"""The ``bb_width`` feature: the width of the Bollinger bands relative to their middle."""

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

__all__ = ["BollingerWidth", "BollingerWidthParams", "bb_width", "build_bb_width"]


class BollingerWidthParams(SingleColumnParams):
    """Keys of ``bb_width``; the column is ``bb_width_{window}``."""

    window: int = Field(default=20, ge=2, strict=True, description="Window in bars.")
    std: float = Field(default=2.0, gt=0, description="Band distance in standard deviations.")


def bb_width(close: np.ndarray, window: int, std: float) -> np.ndarray:
    """Return (upper - lower) / middle; NaN for the first ``window - 1`` rows.

    The middle band is the simple moving average; the bands are ``std`` population
    standard deviations (ddof=0, as TA-Lib ``BBANDS``) away from it.
    """
    middle, spread = rolling_mean_std(close, window, ddof=0)
    upper = middle + std * spread
    lower = middle - std * spread
    return (upper - lower) / middle


@dataclass(frozen=True)
class BollingerWidth:
    """Compute the relative Bollinger band width over ``window`` bars."""

    window: int
    std: float
    column: str

    def columns(self) -> list[str]:
        """Return the one column."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the width; row t uses closes t - window + 1 .. t."""
        width = bb_width(prices(bars, "close"), self.window, self.std)
        return column_frame(bars, {self.column: width})


def build_bb_width(params: BollingerWidthParams, ctx: BuildContext) -> BollingerWidth:
    """Return the feature; its column must not be defined already."""
    feature = BollingerWidth(params.window, params.std, params.column(f"bb_width_{params.window}"))
    check_new_columns(feature.columns(), ctx, "name")
    return feature
