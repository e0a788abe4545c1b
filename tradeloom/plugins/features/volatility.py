"""The ``volatility`` feature: rolling standard deviation of 1-bar log returns."""

from __future__ import annotations

import math
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
from tradeloom.plugins.features.returns import log_return
from tradeloom.timeframes import periods_per_year

__all__ = ["Volatility", "VolatilityParams", "build_volatility", "volatility"]


class VolatilityParams(SingleColumnParams):
    """Keys of ``volatility``; the column is ``volatility_{window}``."""

    window: int = Field(default=24, ge=2, strict=True, description="Returns per window.")
    annualize: bool = Field(
        default=True, description="Scale by sqrt(bars per year) of the bars' timeframe."
    )


def volatility(close: np.ndarray, window: int, scale: float = 1.0) -> np.ndarray:
    """Return ``scale`` times the sample std (ddof=1) of the last ``window`` log returns.

    Row t uses the returns of bars t - window + 1 .. t, so the first ``window`` rows
    are NaN (the first bar has no return).
    """
    returns = log_return(close, 1)
    out = np.full(len(close), np.nan)
    if len(close) > 1:
        out[1:] = rolling_mean_std(returns[1:], window, ddof=1)[1] * scale
    return out


@dataclass(frozen=True)
class Volatility:
    """Compute the rolling volatility of log returns over ``window`` bars."""

    window: int
    annualize: bool
    column: str

    def columns(self) -> list[str]:
        """Return the one column."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the volatility, annualized from the bars' timeframe if asked."""
        scale = math.sqrt(periods_per_year(bars.timeframe_seconds)) if self.annualize else 1.0
        values = volatility(prices(bars, "close"), self.window, scale)
        return column_frame(bars, {self.column: values})


def build_volatility(params: VolatilityParams, ctx: BuildContext) -> Volatility:
    """Return the feature; its column must not be defined already."""
    column = params.column(f"volatility_{params.window}")
    feature = Volatility(params.window, params.annualize, column)
    check_new_columns(feature.columns(), ctx, "name")
    return feature
