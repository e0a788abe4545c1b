"""Feature ``future_return``: DELIBERATELY LEAKY. It shows what ``check-lookahead`` catches.

At bar t::

    future_return = ln(close[t + period] / close[t])

the return over the NEXT ``period`` bars, known only ``period`` bars later. A model
trained on it looks brilliant in a backtest and cannot be used live: at bar t's close
the value does not exist yet. It is NaN at the last ``period`` bars, where the data
ends first.

Never use it in a real strategy. ``examples/leaky_strategy.yaml`` uses it so that
``tradeloom check-lookahead examples/leaky_strategy.yaml`` has something to find::

    look-ahead: features.2 (kind future_return, plugin example) column future_return_1
    at bar ... changed from ... to nan when bars after ... were truncated
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field
from tradeloom.plugin import Bars, BuildContext, Params

__all__ = ["FutureReturn", "FutureReturnParams", "build"]


class FutureReturnParams(Params):
    """Keys of a ``features`` entry with ``kind: future_return``."""

    period: int = Field(default=1, ge=1, le=100_000, description="Bars ahead (LEAKY).")
    name: str | None = Field(
        default=None, min_length=1, description="Column name (default: future_return_{period})."
    )


class FutureReturn:
    """Compute the log return over the next ``period`` bars: the look-ahead on purpose.

    Args:
        params: The validated keys.
    """

    def __init__(self, params: FutureReturnParams) -> None:
        self.period = params.period
        self.column = params.name or f"future_return_{params.period}"

    def columns(self) -> list[str]:
        """Return the one column this feature adds."""
        return [self.column]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the column; row t reads bar t + period, which is the leak."""
        close = bars.frame["close"]
        value = np.log(close.shift(-self.period) / close)
        return pd.DataFrame({self.column: value.astype("float64")}, index=bars.frame.index)


def build(params: FutureReturnParams, ctx: BuildContext) -> FutureReturn:
    """Build the feature."""
    return FutureReturn(params)
