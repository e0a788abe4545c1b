"""An equity curve's moments in one compiled call, the bits numpy's passes gave.

`tradeloom.reporting.metrics.values_performance` reads of a curve its bar returns' mean,
standard deviation (``ddof=1``) and downside deviation, the deepest drawdown, and the
same three moments of its daily returns. As numpy calls (``returns.std``,
``np.minimum``, ``np.mean``, ``np.max`` of the drawdowns, ...) that was a dozen passes
and arrays per curve, which a sweep of thousands of curves paid for each one.
`curve_moments` makes them in one call that allocates nothing per bar, in numpy's
operations and order: each sum is numpy's pairwise sum (`tradeloom.reporting.pairwise`),
each mean that sum over the count, the deviations from the mean numpy's ``_var`` uses,
so every figure is equal to numpy's bit for bit (its Python form is the numpy passes
themselves; tests/reporting/test_curve_moments.py compares both, and both against the
numpy code they replaced, on random curves with NaN, flat, zero and one-bar edges).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import kernel, python_form, released_kernel
from tradeloom.reporting.drawdowns import deepest_drawdown, drawdown_curve
from tradeloom.reporting.pairwise import (
    SQUARED_DEVIATIONS,
    SQUARED_LOSSES,
    pairwise_sum,
    pairwise_sum_of,
)
from tradeloom.reporting.tearsheet import simple_returns

__all__ = ["NO_DAYS", "Moments", "curve_moments", "curve_moments_into"]

NO_DAYS = np.zeros(0, np.intp)
"""`curve_moments`'s ``ends`` where no daily figures are wanted."""

Moments = tuple[float, float, float, float, float, float, float]
"""`curve_moments`' figures: the bar returns' mean, standard deviation and downside
deviation, the deepest drawdown, the daily returns' mean, standard deviation and
downside deviation."""


@released_kernel
def curve_moments(
    values: npt.NDArray[np.float64],
    initial_cash: float,
    returns: npt.NDArray[np.float64],
    fill: bool,
    ends: npt.NDArray[np.intp],
) -> Moments:
    """Return the moments of the equity ``values`` (`Moments`).

    Args:
        values: Equity at each bar's close (at least one bar).
        initial_cash: Equity before the first bar.
        returns: Its `simple_returns` (``len(values)`` floats): read, or written first
            when ``fill``.
        fill: Write ``returns`` (`simple_returns` of ``values``) before reading them.
        ends: Each day's last bar (`tradeloom.reporting.metrics.day_ends`); `NO_DAYS`:
            no daily moments (they are 0).

    The figures are numpy's: ``returns.mean()``, ``returns.std(ddof=1)`` (0.0 for one
    bar), ``np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))``, ``np.max`` of
    `drawdown_curve` (NaN if any bar's is), and the same three of the daily returns
    (each day's last equity over the day before's, the first over ``initial_cash``).
    """
    return curve_moments_into(values, initial_cash, returns, fill, ends, np.empty(len(ends)))


@kernel
def curve_moments_into(
    values: npt.NDArray[np.float64],
    initial_cash: float,
    returns: npt.NDArray[np.float64],
    fill: bool,
    ends: npt.NDArray[np.intp],
    daily: npt.NDArray[np.float64],
) -> Moments:
    """`curve_moments` with the daily returns in a buffer the caller keeps (a sweep's
    many curves): ``daily``, at least ``len(ends)`` floats."""
    n = len(values)
    if fill:
        previous = initial_cash
        for i in range(n):
            value = values[i]
            returns[i] = value / previous - 1.0  # `simple_returns`: a division, then - 1
            previous = value
    deepest = deepest_drawdown(values, initial_cash)
    mean, std, downside = _moments(returns, n)
    days = len(ends)  # each day's return in ``daily``
    previous = initial_cash
    for k in range(days):
        close = values[ends[k]]
        daily[k] = close / previous - 1.0
        previous = close
    daily_mean, daily_std, daily_downside = (0.0, 0.0, 0.0)
    if days:
        daily_mean, daily_std, daily_downside = _moments(daily, days)
    return mean, std, downside, deepest, daily_mean, daily_std, daily_downside


@kernel
def _moments(x: npt.NDArray[np.float64], n: int) -> tuple[float, float, float]:
    """Return ``x[:n]``'s mean, standard deviation (``ddof=1``; 0.0 for one item) and
    downside deviation as numpy computes them (``_var``: the mean, the squared
    deviations from it, their sum over ``n - 1``)."""
    mean = pairwise_sum(x, 0, n) / n
    std = 0.0
    if n > 1:  # the squared deviations' sum, each made as it is added
        std = math.sqrt(pairwise_sum_of(x, 0, n, SQUARED_DEVIATIONS, mean) / (n - 1))
    downside = math.sqrt(pairwise_sum_of(x, 0, n, SQUARED_LOSSES, 0.0) / n)
    return mean, std, downside


@python_form(curve_moments)
def _curve_moments_as_python(
    values: npt.NDArray[np.float64],
    initial_cash: float,
    returns: npt.NDArray[np.float64],
    fill: bool,
    ends: npt.NDArray[np.intp],
) -> Moments:
    """`curve_moments` as Python (`tradeloom.kernels.jit.python_form`): numpy's passes."""
    if fill:
        returns[:] = simple_returns(values, initial_cash)
    mean, std, downside = _numpy_moments(returns)
    deepest = float(np.max(drawdown_curve(values, initial_cash)))  # `deepest_drawdown`
    daily_mean, daily_std, daily_downside = (0.0, 0.0, 0.0)
    if len(ends):
        closes = values[ends]
        daily = closes / np.r_[initial_cash, closes[:-1]] - 1.0
        daily_mean, daily_std, daily_downside = _numpy_moments(daily)
    return mean, std, downside, deepest, daily_mean, daily_std, daily_downside


def _numpy_moments(x: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    losses = np.minimum(x, 0.0)
    losses *= losses  # ** 2
    return float(x.mean()), std, float(np.sqrt(np.mean(losses)))
