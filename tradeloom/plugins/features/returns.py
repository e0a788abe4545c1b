"""The ``log_return`` feature: ln(close_t / close_{t-period})."""

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

__all__ = ["LogReturn", "LogReturnParams", "build_log_return", "log_return"]


class LogReturnParams(SingleColumnParams):
    """Keys of ``log_return``; the column is ``log_return_{period}``."""

    period: int = Field(default=1, ge=1, strict=True, description="Bars to look back.")


def log_return(close: np.ndarray, period: int) -> np.ndarray:
    """Return ln(close_t / close_{t-period}); NaN for the first ``period`` rows."""
    out = np.full(len(close), np.nan)
    if len(close) > period:
        out[period:] = np.log(close[period:] / close[:-period])
    return out


@dataclass(frozen=True)
class LogReturn:
    """Compute the log return over ``period`` bars."""

    period: int
    column: str

    def columns(self) -> list[str]:
        """Return the one column."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the log returns; row t uses closes t and t - period."""
        return column_frame(bars, {self.column: log_return(prices(bars, "close"), self.period)})


def build_log_return(params: LogReturnParams, ctx: BuildContext) -> LogReturn:
    """Return the feature; its column must not be defined already."""
    feature = LogReturn(params.period, params.column(f"log_return_{params.period}"))
    check_new_columns(feature.columns(), ctx, "name")
    return feature
