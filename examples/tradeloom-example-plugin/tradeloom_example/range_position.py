"""Feature ``range_position``: where the close sits in the high-low range of recent bars.

At bar t, over the last ``window`` bars (t - window + 1 .. t)::

    range_position = (close[t] - min(low)) / (max(high) - min(low))

0 at the lowest low of the window, 1 at the highest high. The window ends at t, so the
value at t uses bars <= t only. It is NaN while fewer than ``min_periods`` bars are
available, and where the range is empty (every high and low of the window equal).

Written in plain pandas: a third-party feature needs no numba kernel. It is computed
over the whole history at once; the same ``compute`` serves a live run, which passes
the bars it has.
"""

from __future__ import annotations

from typing import Self

import pandas as pd
from pydantic import Field, model_validator
from tradeloom.plugin import Bars, BuildContext, Params

__all__ = ["RangePosition", "RangePositionParams", "build"]


class RangePositionParams(Params):
    """Keys of a ``features`` entry with ``kind: range_position``."""

    window: int = Field(
        ge=2, le=100_000, description="Bars in the high-low range, this one included."
    )
    min_periods: int | None = Field(
        default=None,
        ge=1,
        description="Bars needed for a value (default: window); earlier rows are NaN.",
    )
    name: str | None = Field(
        default=None, min_length=1, description="Column name (default: range_position_{window})."
    )

    @model_validator(mode="after")
    def _min_periods_within_window(self) -> Self:
        if self.min_periods is not None and self.min_periods > self.window:
            raise ValueError(
                f"min_periods must be <= window ({self.window}), was {self.min_periods}"
            )
        return self


class RangePosition:
    """Compute the position of the close in the rolling high-low range.

    Args:
        params: The validated keys.
    """

    def __init__(self, params: RangePositionParams) -> None:
        self.window = params.window
        self.min_periods = params.min_periods or params.window
        self.column = params.name or f"range_position_{params.window}"

    def columns(self) -> list[str]:
        """Return the one column this feature adds."""
        return [self.column]

    def input_columns(self) -> tuple[str, ...]:
        """Return the columns of the bars it reads (`tradeloom.plugin.ReadsColumns`):
        ``tradeloom validate`` refuses data that lacks one."""
        return ("high", "low", "close")

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the column, indexed like ``bars.frame``; row t uses rows <= t only."""
        frame = bars.frame
        # Trailing windows: the row at t covers t - window + 1 .. t, never a later bar.
        low = frame["low"].rolling(self.window, min_periods=self.min_periods).min()
        high = frame["high"].rolling(self.window, min_periods=self.min_periods).max()
        span = high - low
        value = (frame["close"] - low) / span.where(span > 0)
        return pd.DataFrame({self.column: value.astype("float64")}, index=frame.index)


def build(params: RangePositionParams, ctx: BuildContext) -> RangePosition:
    """Build the feature."""
    return RangePosition(params)
