"""The ``volatility`` feature: rolling standard deviation of 1-bar log returns.

Step kernel state (`new_volatility_state`): a ring of 1 close (the previous one)
followed by a ring of the last ``window`` log returns
(`tradeloom.core.kernels.window`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from tradeloom.core.kernels.window import (
    new_ring,
    read_only,
    ring_full,
    ring_mean_std,
    ring_push,
    rolling_std,
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
from tradeloom.plugins.features.returns import log_return, log_return_step
from tradeloom.plugins.protocols_steps import CloseStep, FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.timeframes import periods_per_year

__all__ = [
    "Volatility",
    "VolatilityParams",
    "build_volatility",
    "new_volatility_state",
    "volatility",
    "volatility_step",
]


class VolatilityParams(SingleColumnParams):
    """Keys of ``volatility``; the column is ``volatility_{window}``."""

    window: int = bars_key(24, 2, "Returns per window")
    annualize: bool = Field(
        default=True, description="Scale by sqrt(bars per year) of the bars' timeframe."
    )


@kernel
def new_volatility_state(window: int) -> np.ndarray:
    """Return the state of a volatility that has seen no close."""
    return np.concatenate((new_ring(1), new_ring(window)))


@kernel
def volatility_step(state: np.ndarray, close: float, scale: float) -> float:
    """Take a close; return ``scale`` times the std of the last ``window`` log returns.

    Args:
        state: ``new_volatility_state(window)``, updated in place.
        close: This bar's close.
        scale: Factor applied to the std (1.0, or the square root of bars per year).

    Returns:
        The volatility, or NaN for the first ``window`` closes.
    """
    previous = state[:3]
    if not ring_full(previous):
        ring_push(previous, close)
        return math.nan
    returns = state[3:]
    ring_push(returns, log_return_step(previous, close))
    if not ring_full(returns):
        return math.nan
    return ring_mean_std(returns, 1)[1] * scale


def volatility(close: np.ndarray, window: int, scale: float = 1.0) -> np.ndarray:
    """Return ``scale`` times the sample std (ddof=1) of the last ``window`` log returns.

    Row t uses the returns of bars t - window + 1 .. t, so the first ``window`` rows
    are NaN (the first bar has no return). The std is that of
    `tradeloom.core.kernels.window`.
    """
    returns = log_return(close, 1)
    out = np.full(len(returns), np.nan)
    if len(returns) > 1:
        out[1:] = rolling_std(read_only(returns[1:]), window, 1) * scale
    return out


@dataclass(frozen=True)
class Volatility(OneColumn):
    """Compute the rolling volatility of log returns over ``window`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    window: int
    annualize: bool
    column: str

    def scale(self, timeframe_seconds: int) -> float:
        """Return the factor applied to the std for bars of this length."""
        return math.sqrt(periods_per_year(timeframe_seconds)) if self.annualize else 1.0

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the volatility, annualized from the bars' timeframe if asked."""
        scale = self.scale(bars.timeframe_seconds)
        values = volatility(prices(bars, "close"), self.window, scale)
        return values

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver, annualizing from the context's timeframe if asked."""
        scale = self.scale(context.timeframe_seconds)
        return CloseStep(volatility_step, new_volatility_state(self.window), scale)


def build_volatility(params: VolatilityParams, ctx: BuildContext) -> Volatility:
    """Return the feature; its column must not be defined already."""
    column = params.column(f"volatility_{params.window}")
    return new_columns(Volatility(params.window, params.annualize, column), ctx)
