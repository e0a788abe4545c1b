"""The ``rsi`` feature: Wilder's relative strength index, as TA-Lib computes it."""

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

__all__ = ["Rsi", "RsiParams", "build_rsi", "rsi"]


class RsiParams(SingleColumnParams):
    """Keys of ``rsi``; the column is ``rsi_{window}``."""

    window: int = Field(default=14, ge=2, strict=True, description="Smoothing window in bars.")


def rsi(close: np.ndarray, window: int) -> np.ndarray:
    """Return Wilder's RSI in [0, 100]; NaN for the first ``window`` rows.

    The average gain and loss start as the simple means of the first ``window``
    changes, then follow Wilder's smoothing ``avg = (avg * (window - 1) + x) / window``
    (TA-Lib's ``RSI`` with its default unstable period of 0). Where the price did not
    move at all over the averages (gain and loss both 0), the RSI is 50, not TA-Lib's 0.
    """
    n = len(close)
    out = np.full(n, np.nan)
    if n <= window:
        return out
    change = np.diff(close)
    gains = np.where(change > 0, change, 0.0).tolist()
    losses = np.where(change < 0, -change, 0.0).tolist()
    gain = sum(gains[:window]) / window
    loss = sum(losses[:window]) / window
    values = [_ratio(gain, loss)]
    for g, lo in zip(gains[window:], losses[window:], strict=True):
        gain = (gain * (window - 1) + g) / window
        loss = (loss * (window - 1) + lo) / window
        values.append(_ratio(gain, loss))
    out[window:] = values
    return out


def _ratio(gain: float, loss: float) -> float:
    total = gain + loss
    return 50.0 if total == 0.0 else 100.0 * (gain / total)


@dataclass(frozen=True)
class Rsi:
    """Compute Wilder's RSI over ``window`` bars."""

    window: int
    column: str

    def columns(self) -> list[str]:
        """Return the one column."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the RSI; row t uses closes up to t."""
        return column_frame(bars, {self.column: rsi(prices(bars, "close"), self.window)})


def build_rsi(params: RsiParams, ctx: BuildContext) -> Rsi:
    """Return the feature; its column must not be defined already."""
    feature = Rsi(params.window, params.column(f"rsi_{params.window}"))
    check_new_columns(feature.columns(), ctx, "name")
    return feature
