"""Performance metrics of a run, annualized from the data's timeframe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import Trade
from tradeloom.reporting.curve_moments import NO_DAYS, Moments, curve_moments
from tradeloom.reporting.trade_sums import TradeSums, trade_sums
from tradeloom.stats import auc
from tradeloom.time.timeframes import SECONDS_PER_YEAR
from tradeloom.time.timeframes import periods_per_year as _periods

__all__ = [
    "curve_performance",
    "daily_ends",
    "daily_ratios",
    "day_ends",
    "performance",
    "performance_figures",
    "prediction_auc",
    "profit_factor",
    "values_performance",
]


def performance(
    equity: pd.Series,
    position: pd.Series,
    *,
    initial_cash: float,
    timeframe_seconds: int,
    trades: Sequence[Trade],
    fees: float,
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """Return the performance figures of an equity curve.

    Args:
        equity: Equity at each bar's close.
        position: Position held at each bar's close.
        initial_cash: Equity before the first bar.
        timeframe_seconds: Bar length; Sharpe, Sortino and CAGR are annualized from it.
        trades: Closed round trips.
        fees: Fees paid.
        periods_per_year: Bars in a year of the data's trading calendar (default: the
            bars of the timeframe in 365 days, a market that never closes).

    Returns:
        total_return, cagr, sharpe, sortino, sharpe_daily, sortino_daily (`daily_ratios`),
        max_drawdown, volatility, trades, win_rate,
        avg_trade_return, profit_factor, exposure, fees, final_equity.
    """
    return curve_performance(
        equity,
        position,
        initial_cash=initial_cash,
        timeframe_seconds=timeframe_seconds,
        pnl=np.array([t.pnl for t in trades], dtype=np.float64),
        trade_returns=np.array([t.return_pct for t in trades], dtype=np.float64),
        fees=fees,
        periods_per_year=periods_per_year,
    )


def curve_performance(
    equity: pd.Series,
    position: pd.Series,
    *,
    initial_cash: float,
    timeframe_seconds: int,
    pnl: np.ndarray,
    trade_returns: np.ndarray,
    fees: float,
    periods_per_year: float | None = None,
    returns: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """Return `performance`'s figures from the trades' P&L and returns as arrays.

    A sweep measures thousands of variants: building a `Trade` per round trip costs
    more than the figures themselves. ``pnl`` and ``trade_returns`` are each closed
    trade's ``Trade.pnl`` and ``Trade.return_pct``, in order; ``returns`` the curve's
    `simple_returns`, where the caller has them (None: computed here).
    """
    return values_performance(
        equity.to_numpy(np.float64),
        float(np.mean(position.to_numpy() != 0.0)),
        day_ends(equity.index),
        initial_cash=initial_cash,
        timeframe_seconds=timeframe_seconds,
        pnl=pnl,
        trade_returns=trade_returns,
        fees=fees,
        periods_per_year=periods_per_year,
        returns=returns,
    )


def values_performance(
    values: npt.NDArray[np.float64],
    exposure: float,
    ends: npt.NDArray[np.intp] | None,
    *,
    initial_cash: float,
    timeframe_seconds: int,
    pnl: npt.NDArray[np.float64],
    trade_returns: npt.NDArray[np.float64],
    fees: float,
    periods_per_year: float | None = None,
    returns: npt.NDArray[np.float64] | None = None,
    returns_out: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """Return `curve_performance`'s figures of the equity's ``values`` (no index).

    A sweep measures many curves over the same bars: what depends on the bars alone
    is found once, by the caller. The moments of the curve come from one compiled call
    (`tradeloom.reporting.curve_moments`), equal to numpy's passes bit for bit.

    Args:
        values: Equity at each bar's close.
        exposure: The fraction of the bars with a position held at the close.
        ends: `day_ends` of the bars' times (None: no times, no daily ratios).
        initial_cash, timeframe_seconds, pnl, trade_returns, fees, periods_per_year,
            returns: As `curve_performance` takes them.
        returns_out: Where the curve's `simple_returns` are written when ``returns`` is
            None (``len(values)`` contiguous float64s: a sweep keeps them); None: a new
            array.
    """
    values = np.ascontiguousarray(values, np.float64)
    days = daily_ends(ends, len(values), timeframe_seconds, periods_per_year)
    fill = returns is None  # the kernel writes them
    if returns is None:
        returns = np.empty(len(values)) if returns_out is None else returns_out
    moments = curve_moments(
        values,
        float(initial_cash),
        np.ascontiguousarray(returns, np.float64),
        fill,
        NO_DAYS if days is None else days,
    )
    sums = trade_sums(
        np.ascontiguousarray(pnl, np.float64), np.ascontiguousarray(trade_returns, np.float64)
    )
    return performance_figures(
        float(values[-1]),
        len(values),
        moments,
        sums,
        len(pnl),
        len(trade_returns),
        exposure,
        fees,
        daily=days is not None,
        days=0 if days is None else len(days),
        initial_cash=initial_cash,
        timeframe_seconds=timeframe_seconds,
        periods_per_year=periods_per_year,
    )


def _years(bars: int, timeframe_seconds: int, periods_per_year: float | None) -> float:
    if periods_per_year is None:
        return bars * timeframe_seconds / SECONDS_PER_YEAR
    return bars / periods_per_year


def daily_ends(
    ends: npt.NDArray[np.intp] | None,
    bars: int,
    timeframe_seconds: int,
    periods_per_year: float | None,
) -> npt.NDArray[np.intp] | None:
    """Return the days' last bars `values_performance` measures the daily ratios by:
    ``ends``, or None (no daily ratios) where there are none or the bars span no time."""
    if ends is None or not _years(bars, timeframe_seconds, periods_per_year) > 0:
        return None
    return ends


def performance_figures(
    final: float,
    bars: int,
    moments: Moments,
    sums: TradeSums,
    count: int,
    returns_count: int,
    exposure: float,
    fees: float,
    *,
    daily: bool,
    days: int,
    initial_cash: float,
    timeframe_seconds: int,
    periods_per_year: float | None,
) -> dict[str, Any]:
    """Return `values_performance`'s figures from its compiled calls' answers.

    Args:
        final: The last bar's equity.
        bars: The curve's length.
        moments: `curve_moments` of the curve (its daily figures by `daily_ends`).
        sums: `trade_sums` of the trades.
        count, returns_count: How many trade P&Ls and trade returns there are.
        exposure, fees: As `values_performance` takes them.
        daily: Whether the daily ratios are measured (`daily_ends` is not None), over
            ``days`` days.
        initial_cash, timeframe_seconds, periods_per_year: As `values_performance` takes
            them.
    """
    ppy = periods_per_year if periods_per_year is not None else _periods(timeframe_seconds)
    total = final / initial_cash - 1.0
    years = _years(bars, timeframe_seconds, periods_per_year)
    cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if final > 0 else -1.0
    mean, std, downside, deepest = moments[:4]
    sharpe, sortino = _ratios(mean, std, downside, ppy)
    daily_sharpe, daily_sortino = (math.nan, math.nan)
    if daily:
        daily_sharpe, daily_sortino = _ratios(*moments[4:], days / years)
    wins, profit, losses, loss, returns_sum = sums
    return {
        "total_return": total,
        "cagr": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "sharpe_daily": daily_sharpe,
        "sortino_daily": daily_sortino,
        # 1.0 is everything lost: equity that a gap took below zero cannot lose more than all
        # of it (final_equity says how far below; trading stopped there with NO_EQUITY)
        "max_drawdown": min(1.0, deepest),
        "volatility": std * math.sqrt(ppy),
        "trades": count,
        "win_rate": float(wins / count) if count else 0.0,
        # `np.mean`: numpy's sum over the count
        "avg_trade_return": returns_sum / returns_count if count else 0.0,
        "profit_factor": _profit_factor(profit, losses, loss),
        "exposure": exposure,
        "fees": fees,
        "final_equity": final,
    }


def _ratios(mean: float, std: float, downside: float, per_year: float) -> tuple[float, float]:
    """Return the Sharpe and Sortino ratios of returns of these moments, annualised by
    ``per_year`` returns a year (0.0 where the deviation is not positive)."""
    sharpe = mean / std * math.sqrt(per_year) if std > 0 else 0.0
    sortino = mean / downside * math.sqrt(per_year) if downside > 0 else 0.0
    return sharpe, sortino


def day_ends(index: pd.Index) -> npt.NDArray[np.intp] | None:
    """Return the position of each UTC calendar day's last bar in ``index`` (None: the
    index holds no times)."""
    if not isinstance(index, pd.DatetimeIndex):
        return None
    times = (index if index.unit == "ns" else index.as_unit("ns")).asi8
    n = len(times)
    if n > 1 and not index.hasnans:
        first, last = int(times[0]) // _DAY, int(times[-1]) // _DAY
        # in order (most bars) over fewer days than bars: each day's first bar found by a
        # binary search of the times, the days without bars skipped (no division per bar)
        if last - first < n and bool((times[1:] >= times[:-1]).all()):
            starts = np.arange(first + 1, last + 1, dtype=np.int64) * _DAY
            before = np.concatenate(([0], np.searchsorted(times, starts), [n]))
            held = before[1:] > before[:-1]  # a day with bars: its last one's, then
            return before[1:][held] - 1
    day = times // _DAY
    return np.flatnonzero(np.r_[day[1:] != day[:-1], True])


_DAY = 86_400_000_000_000
"""A day in nanoseconds."""


def daily_ratios(
    values: npt.NDArray[np.float64], index: pd.Index, initial_cash: float, years: float
) -> tuple[float, float]:
    """Return the Sharpe and Sortino ratios of the equity's daily returns, annualised.

    A day is a UTC calendar day with bars; its return is its last equity over the day
    before's (the first against the starting cash), as freqtrade's daily loss functions
    and most fund reports measure. They are annualised by the days with bars per year
    of the data (365 for a market that never closes, about 252 for a stock exchange's).
    0 when the daily returns do not vary (fewer than two days). NaN when the index holds
    no times, or the curve no bars.
    """
    ends = day_ends(index)
    if ends is None or len(values) == 0 or not years > 0:
        return math.nan, math.nan
    values = np.ascontiguousarray(values, np.float64)
    moments = curve_moments(values, float(initial_cash), np.empty(len(values)), True, ends)
    return _ratios(*moments[4:], len(ends) / years)


def profit_factor(pnl: npt.NDArray[np.float64]) -> float | None:
    """Return the gross profit over the gross loss of the trades' ``pnl`` (None: no loss).

    A loss too small for the ratio to be a float (a loss of 1e-320 against a profit of
    10) gives inf, the figure's limit as the loss vanishes, and no overflow warning;
    ``metrics.json`` writes it as null, as every infinity.
    """
    _, profit, losses, loss, _ = trade_sums(np.ascontiguousarray(pnl, np.float64), _NO_TRADES)
    return _profit_factor(profit, losses, loss)


_NO_TRADES = np.zeros(0)


def _profit_factor(profit: float, losses: int, loss: float) -> float | None:
    """Return `profit_factor` of the trades' gross ``profit`` and ``losses`` losing trades
    that lost ``loss`` (a negative sum)."""
    if not losses:
        return None
    # Python's division: inf past the largest float, where numpy's warns
    return profit / -loss


def prediction_auc(probability: pd.Series, close: pd.Series, horizon: int) -> dict[str, Any]:
    """Return the AUC of all predictions whose outcome is known, and how many there were."""
    p = probability.to_numpy(np.float64)
    c = close.to_numpy(np.float64)
    n = len(p) - horizon
    if n <= 0:
        return {"auc": math.nan, "predictions": 0}
    up = c[horizon:] > c[:n]
    scores = p[:n]
    known = ~np.isnan(scores)
    if known.all():  # (no copy of a million of each)
        return {"auc": auc(scores, up), "predictions": n}
    return {"auc": auc(scores[known], up[known]), "predictions": int(known.sum())}
