"""Returns over ``period`` bars: ``log_return`` ln(close_t / close_{t-period}) and
``returns`` close_t / close_{t-period} - 1.

State of both step kernels: a ring (`tradeloom.core.kernels.window`) of the last
``period`` closes; once it is full, its oldest value is close_{t-period}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from tradeloom.core.kernels.window import new_ring, ring_full, ring_get, ring_push
from tradeloom.domain import Bars
from tradeloom.kernels.jit import kernel, python_form
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features._base import (
    OneColumn,
    SingleColumnParams,
    bars_key,
    new_columns,
    prices,
)
from tradeloom.plugins.protocols_steps import CloseStep, FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "LogReturn",
    "LogReturnParams",
    "Returns",
    "ReturnsParams",
    "build_log_return",
    "build_returns",
    "log_return",
    "log_return_step",
    "return_step",
    "simple_return",
]

_LOG = 0
_SIMPLE = 1


class LogReturnParams(SingleColumnParams):
    """Keys of ``log_return``; the column is ``log_return_{period}``."""

    period: int = bars_key(1, 1, "Bars to look back")


class ReturnsParams(SingleColumnParams):
    """Keys of ``returns``; the column is ``returns_{period}``."""

    period: int = bars_key(1, 1, "Bars to look back")


@kernel
def _return_step(ring: np.ndarray, close: float, how: int) -> float:
    out = math.nan
    if ring_full(ring):
        # np.divide: IEEE 754 division, never a ZeroDivisionError from the kernel.
        ratio = np.divide(close, ring_get(ring, 0))
        out = math.log(ratio) if how == _LOG else ratio - 1.0
    ring_push(ring, close)
    return out


@kernel
def log_return_step(ring: np.ndarray, close: float) -> float:
    """Take a close; return ln(close / close ``period`` bars ago), NaN before that.

    Args:
        ring: ``new_ring(period)``, updated in place.
        close: This bar's close.
    """
    return _return_step(ring, close, _LOG)


@kernel
def return_step(ring: np.ndarray, close: float) -> float:
    """Take a close; return close / close ``period`` bars ago - 1, NaN before that.

    Args:
        ring: ``new_ring(period)``, updated in place.
        close: This bar's close.
    """
    return _return_step(ring, close, _SIMPLE)


@kernel
def _returns(close: np.ndarray, period: int, how: int) -> np.ndarray:
    # The step in a loop: the state lives in memory, so this loop is never vectorised
    # (a vectorised log could round differently from the scalar one of the step).
    ring = new_ring(period)
    out = np.empty(close.size)
    for t in range(close.size):
        out[t] = _return_step(ring, close[t], how)
    return out


@python_form(_returns)
def _returns_as_python(close: np.ndarray, period: int, how: int) -> np.ndarray:
    """`_returns` as Python (`tradeloom.kernels.jit.python_form`): the ratios by one numpy
    division (IEEE's, as the step's ``np.divide``), each log by ``math.log`` as the step
    takes it, with the kernel's answers where ``math.log`` would raise (ln 0 = -inf, the
    log of a negative ratio NaN); no ring to walk bar by bar."""
    out = np.full(close.size, math.nan)
    if close.size <= period:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):  # IEEE's answers, as the kernel's
        ratio = close[period:] / close[: close.size - period]
    if how != _LOG:
        out[period:] = ratio - 1.0
        return out
    log, inf, nan = math.log, math.inf, math.nan
    out[period:] = [log(r) if r > 0.0 else (-inf if r == 0.0 else nan) for r in ratio.tolist()]
    return out


def log_return(close: np.ndarray, period: int) -> np.ndarray:
    """Return ln(close_t / close_{t-period}); NaN for the first ``period`` rows."""
    return _returns(np.ascontiguousarray(close, dtype=np.float64), period, _LOG)


def simple_return(close: np.ndarray, period: int) -> np.ndarray:
    """Return close_t / close_{t-period} - 1; NaN for the first ``period`` rows."""
    return _returns(np.ascontiguousarray(close, dtype=np.float64), period, _SIMPLE)


@dataclass(frozen=True)
class LogReturn(OneColumn):
    """Compute the log return over ``period`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    period: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the log returns; row t uses closes t and t - period."""
        return log_return(prices(bars, "close"), self.period)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return CloseStep(_return_step, new_ring(self.period), _LOG)


@dataclass(frozen=True)
class Returns(OneColumn):
    """Compute the simple return over ``period`` bars."""

    reads: ClassVar[tuple[str, ...]] = ("close",)

    period: int
    column: str

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the simple returns; row t uses closes t and t - period."""
        values = simple_return(prices(bars, "close"), self.period)
        return values

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver."""
        return CloseStep(_return_step, new_ring(self.period), _SIMPLE)


def build_log_return(params: LogReturnParams, ctx: BuildContext) -> LogReturn:
    """Return the feature; its column must not be defined already."""
    return new_columns(LogReturn(params.period, params.column(f"log_return_{params.period}")), ctx)


def build_returns(params: ReturnsParams, ctx: BuildContext) -> Returns:
    """Return the feature; its column must not be defined already."""
    return new_columns(Returns(params.period, params.column(f"returns_{params.period}")), ctx)
