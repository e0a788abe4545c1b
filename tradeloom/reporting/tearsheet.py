"""A tearsheet's figures of an equity curve: rolling Sharpe and volatility, the worst
drawdowns, returns by year and by month, and alpha, beta and correlation against
buying and holding the market.

Conventions (those of quantstats and empyrical, which the tests check them against):

- Returns are simple returns per bar of the equity at each bar's close, the first bar
  against the starting cash.
- Annualisation uses the run's periods per year: the bars of the timeframe in 365 days
  for a market that never closes, or the data calendar's bars in a year
  (``metrics.json``'s ``periods_per_year``). Sharpe is ``mean / std * sqrt(periods)``
  with the sample standard deviation (ddof 1) and no risk-free rate; volatility is
  ``std * sqrt(periods)``.
- The rolling window is 30 days of bars (at least 20 bars); a window's figure is at
  its last bar.
- A drawdown starts at the first bar below the previous peak, has its trough at its
  lowest equity, and recovers at the first bar back at or above that peak (None: not
  recovered at the end). Its depth is ``1 - trough / peak``; its length is counted in
  bars from its start to its recovery (or to the run's end), and its duration in
  calendar days from the timestamps, from the bar at the peak to its recovery (or to
  the run's last bar): the rule of ``max_drawdown_duration_days``
  (`tradeloom.reporting.statistics`), so that over a calendar with closures (a forex
  weekend, a stock's nights) the table and the summary agree.
- Beta is ``cov(strategy, market) / var(market)`` of the per-bar returns; alpha is
  annualised as empyrical does, ``(1 + mean(r - beta * m)) ** periods - 1``;
  correlation is Pearson's.
- Years and months are calendar ones in UTC: the compounded return of the bars in each.
- Tail risk is of one bar's return, at 95%, not annualised: ``var_95`` is the historical
  value at risk, the 5% quantile of the bar returns (pandas' linear interpolation);
  ``cvar_95`` the historical expected shortfall, the mean of the returns at or below
  it (quantstats' ``conditional_value_at_risk(method="historical")``);
  ``var_95_normal`` the variance-covariance VaR, the 5% quantile of a normal law of
  the returns' mean and sample standard deviation (quantstats' ``value_at_risk``).
  Each is a return: -0.012 is a loss of 1.2% of the equity in a bar. ``skew`` and
  ``kurtosis`` are pandas' sample skewness and excess kurtosis (bias-corrected;
  quantstats' ``skew`` and ``kurtosis``; a normal law has 0 and 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "DRAWDOWNS_LISTED",
    "Rolling",
    "drawdowns",
    "period_keys",
    "period_label",
    "period_spans",
    "rolling_figures",
    "rolling_window",
    "run_rolling",
    "tail_figures",
    "tearsheet",
]

_TAIL = 0.05
"""The tail of the value at risk: 95% confidence."""

DRAWDOWNS_LISTED = 5
_WINDOW_DAYS = 30
_SECONDS_PER_DAY = 86_400


def rolling_window(periods_per_year: float) -> int:
    """Return the rolling window in bars: 30 days of bars, at least 20."""
    return max(20, round(periods_per_year * _WINDOW_DAYS / 365))


def rolling_figures(returns: pd.Series, window: int, periods_per_year: float) -> pd.DataFrame:
    """Return the annualised rolling Sharpe ratio and volatility at each bar.

    Columns ``sharpe`` and ``volatility``; NaN before the window is full, and Sharpe NaN
    where the window's returns do not vary.
    """
    rolling = returns.rolling(window)
    std = rolling.std(ddof=1)
    scale = math.sqrt(periods_per_year)
    sharpe = (rolling.mean() / std.where(std > 0)) * scale
    return pd.DataFrame({"sharpe": sharpe, "volatility": std * scale}, index=returns.index)


@dataclass(frozen=True)
class Rolling:
    """A run's rolling figures (`rolling_figures`) and what they were computed over.

    A backtest computes them once (`run_rolling`) for its metrics (`tearsheet`) and
    hands them to its report, which draws them rather than computing them again.
    """

    window: int
    periods_per_year: float
    figures: pd.DataFrame


def run_rolling(equity: pd.Series, initial_cash: float, periods_per_year: float) -> Rolling:
    """Return the rolling figures of an equity curve, over `rolling_window` bars."""
    window = rolling_window(periods_per_year)
    returns = bar_returns(equity, initial_cash)
    return Rolling(window, periods_per_year, rolling_figures(returns, window, periods_per_year))


def drawdowns(equity: pd.Series, top: int = DRAWDOWNS_LISTED) -> list[dict[str, Any]]:
    """Return the ``top`` deepest drawdowns of an equity curve, deepest first.

    Each: ``start``, ``trough`` and ``recovery`` (ISO times; recovery None when still
    under water at the end), ``depth`` (a fraction of the peak), ``bars`` (its length)
    and ``days`` (its duration in calendar time, from the bar at the peak to the
    recovery or the last bar).
    """
    values = equity.to_numpy(np.float64)
    if not len(values):
        return []
    peak = np.maximum.accumulate(values)
    under = values < peak
    edges = np.diff(np.concatenate(([False], under, [False])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # the first bar back at the peak (n: never)
    troughs = _troughs(values, starts, ends, np.flatnonzero(under))
    depths = 1.0 - values[troughs] / peak[troughs]
    if np.isnan(depths).any():  # sorted as Python sorts NaN keys
        order = sorted(range(len(depths)), key=lambda i: -depths[i])[:top]
    else:
        order = np.argsort(-depths, kind="stable")[:top].tolist()
    times = equity.index
    return [
        {
            "start": times[starts[i]].isoformat(),
            "trough": times[troughs[i]].isoformat(),
            "recovery": times[ends[i]].isoformat() if ends[i] < len(values) else None,
            "depth": float(depths[i]),
            "bars": int(ends[i] - starts[i]),
            "days": (times[min(ends[i], len(values) - 1)] - times[starts[i] - 1]).total_seconds()
            / 86_400.0,
        }
        for i in order
    ]


def _troughs(
    values: npt.NDArray[np.float64],
    starts: npt.NDArray[np.intp],
    ends: npt.NDArray[np.intp],
    rows: npt.NDArray[np.intp],
) -> npt.NDArray[np.intp]:
    """Return each stretch ``starts[i]:ends[i]``'s first bar at its lowest value (the
    first NaN where there is one, as `np.argmin`), in one pass over the bars; ``rows``
    are the stretches' bars in order."""
    if not len(starts):
        return np.zeros(0, np.intp)
    bounds = np.empty(2 * len(starts), np.intp)
    bounds[0::2], bounds[1::2] = starts, ends
    lowest = np.minimum.reduceat(np.append(values, np.inf), bounds)[0::2]
    stretch = np.repeat(np.arange(len(starts)), ends - starts)
    low = lowest[stretch]
    hit = (values[rows] == low) | (np.isnan(values[rows]) & np.isnan(low))
    _, first = np.unique(stretch[hit], return_index=True)
    return rows[hit][first]


def _calendar_returns(returns: pd.Series, freq: str) -> dict[str, float]:
    index = returns.index.tz_convert("UTC").tz_localize(None)
    keys = period_keys(index.to_numpy(), freq)
    if keys is None:
        grown = (1.0 + pd.Series(returns.to_numpy(), index=index)).groupby(index.to_period(freq))
        return {str(period): float(value - 1.0) for period, value in grown.prod().items()}
    # the groupby's product: a period's bars multiplied in order, NaN skipped
    grown = 1.0 + returns.to_numpy(np.float64)
    grown[np.isnan(grown)] = 1.0
    found = {}
    for start, stop in period_spans(keys):
        product = np.multiply.accumulate(grown[start:stop])[-1]
        found[period_label(keys[start], freq)] = float(product - 1.0)
    return found


def period_keys(times: npt.NDArray[np.datetime64], freq: str) -> npt.NDArray[np.int64] | None:
    """Return each time's calendar month (``M``, months since 1970-01) or year (``Y``) as
    a number; None where they are not in order or not of years 1000 to 9999 (the
    callers group them with pandas then)."""
    months = _months(times)
    if len(months) and (
        np.any(np.diff(months) < 0) or months[0] < (1000 - 1970) * 12 or months[-1] >= 8030 * 12
    ):
        return None
    return months if freq == "M" else months // 12


def _months(times: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    """Each time's ``datetime64[M]`` as a number: the month of each run of one day, so
    that the calendar arithmetic (slow per element) is done once a day, not once a bar."""
    days = times.astype("datetime64[D]")
    if not len(days):
        return days.astype("datetime64[M]").astype(np.int64)
    starts = np.flatnonzero(days[1:] != days[:-1]) + 1  # NaT != NaT: each its own run
    firsts = np.concatenate(([0], starts))
    lengths = np.diff(np.append(firsts, len(days)))
    return np.repeat(days[firsts].astype("datetime64[M]").astype(np.int64), lengths)


def period_spans(keys: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """Return the first and after-last row of each run of equal ``keys``, in order."""
    if not len(keys):
        return []
    bounds = (np.flatnonzero(np.diff(keys)) + 1).tolist()
    return list(zip([0, *bounds], [*bounds, len(keys)], strict=True))


def period_label(key: int, freq: str) -> str:
    """Return a `period_keys` key's label: ``2024-03`` (``M``) or ``2024`` (``Y``)."""
    if freq == "M":
        return f"{1970 + key // 12:04d}-{key % 12 + 1:02d}"
    return f"{1970 + key:04d}"


def _versus(returns: pd.Series, market: pd.Series, periods_per_year: float) -> dict[str, Any]:
    if returns.index.equals(market.index):  # aligned: the rows where both are known
        r, m = returns.to_numpy(np.float64), market.to_numpy(np.float64)
        known = ~(np.isnan(r) | np.isnan(m))
        r, m = r[known], m[known]
    else:
        both = pd.DataFrame({"r": returns, "m": market}).dropna()
        r, m = both["r"].to_numpy(np.float64), both["m"].to_numpy(np.float64)
    if len(r) < 2 or float(np.var(m)) == 0.0:
        return {"alpha": None, "beta": None, "correlation": None}
    beta = float(np.mean((r - r.mean()) * (m - m.mean())) / np.var(m))
    alpha = float((1.0 + np.mean(r - beta * m)) ** periods_per_year - 1.0)
    spread = float(np.std(r))
    correlation = float(np.corrcoef(r, m)[0, 1]) if spread > 0 else None
    return {"alpha": alpha, "beta": beta, "correlation": correlation}


def bar_returns(equity: pd.Series, initial_cash: float) -> pd.Series:
    """Return the simple return of each bar, the first against the starting cash."""
    values = equity.to_numpy(np.float64)
    previous = np.concatenate(([initial_cash], values[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(values / previous - 1.0, index=equity.index)


def tearsheet(
    equity: pd.Series,
    market: pd.Series,
    *,
    initial_cash: float,
    periods_per_year: float,
    benchmark: str,
    rolling: Rolling | None = None,
) -> dict[str, Any]:
    """Return the tearsheet's figures for ``metrics.json``.

    Args:
        equity: The account's equity at each bar's close (a UTC time index).
        market: The benchmark's value at each bar's close (the close for buy and hold, the
            equal-weight index of a universe); its first bar is its starting value.
        initial_cash: Equity before the first bar.
        periods_per_year: Bars in a year (the annualisation of every figure).
        benchmark: What ``market`` is, in words (``buy and hold``, ``equal weight``).
        rolling: `run_rolling` of the same equity, initial cash and periods, where the
            caller keeps it (for its report); None: computed here.
    """
    returns = bar_returns(equity, initial_cash)
    market_returns = market.pct_change().fillna(0.0)
    if rolling is None:
        rolling = run_rolling(equity, initial_cash, periods_per_year)
    return {
        "periods_per_year": periods_per_year,
        "rolling_window_bars": rolling.window,
        "rolling_sharpe": _summary(rolling.figures["sharpe"]),
        "rolling_volatility": _summary(rolling.figures["volatility"]),
        "drawdowns": drawdowns(pd.concat([_start(equity, initial_cash), equity])),
        "yearly_returns": _calendar_returns(returns, "Y"),
        "monthly_returns": _calendar_returns(returns, "M"),
        "benchmark": benchmark,
        **_versus(returns, market_returns, periods_per_year),
        **tail_figures(returns),
    }


def tail_figures(returns: pd.Series) -> dict[str, float | None]:
    """Return the bar returns' tail risk and shape (the module's conventions): ``var_95``,
    ``cvar_95``, ``var_95_normal``, ``skew``, ``kurtosis`` (None: too few returns)."""
    known = returns[np.isfinite(returns.to_numpy(np.float64))]
    out: dict[str, float | None] = dict.fromkeys(
        ("var_95", "cvar_95", "var_95_normal", "skew", "kurtosis")
    )
    if len(known) < 2:
        return out
    var = float(known.quantile(_TAIL))
    std = float(known.std(ddof=1))
    mean = float(known.mean())
    out["var_95"] = var
    out["cvar_95"] = float(known[known <= var].mean())
    out["var_95_normal"] = NormalDist(mean, std).inv_cdf(_TAIL) if std > 0 else mean
    out["skew"] = _finite(known.skew())
    out["kurtosis"] = _finite(known.kurt())
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _start(equity: pd.Series, initial_cash: float) -> pd.Series:
    """The starting cash as a peak before the first bar (at that bar's time), so that a
    run losing from its first bar is in a drawdown from it."""
    return pd.Series([initial_cash], index=equity.index[:1])


def _summary(series: pd.Series) -> dict[str, float | None]:
    known = series.dropna()
    if not len(known):
        return {"last": None, "min": None, "median": None, "max": None}
    return {
        "last": float(known.iloc[-1]),
        "min": float(known.min()),
        "median": float(known.median()),
        "max": float(known.max()),
    }
