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
- A drawdown starts at the first bar below the previous peak (the starting cash is a
  peak at the first bar), has its trough at its lowest equity, and recovers at the
  first bar back at or above that peak (None: not recovered at the end). Its depth is
  ``1 - trough / peak``; its length runs from the bar at the peak to its recovery (or
  to the run's last bar), in bars and in calendar days from the timestamps: the rule of
  ``max_drawdown_duration_bars`` and ``_days`` (one function,
  `tradeloom.reporting.drawdowns`), so that the table's longest drawdown is the
  summary's, over a calendar with closures (a forex weekend, a stock's nights) too.
  quantstats counts a drawdown's days under water, one fewer for one that recovered.
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
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.kernels.jit import python_form, released_kernel
from tradeloom.reporting.drawdowns import find_drawdowns
from tradeloom.reporting.rolling_moments import pandas_rolling, rolling_sharpe_volatility

__all__ = [
    "DRAWDOWNS_LISTED",
    "Period",
    "Rolling",
    "calendar_periods",
    "drawdowns",
    "period_label",
    "rolling_figures",
    "rolling_window",
    "run_rolling",
    "simple_returns",
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
    return _rolling_frame(returns.to_numpy(np.float64), returns.index, window, periods_per_year)


def _rolling_frame(
    values: npt.NDArray[np.float64], index: pd.Index, window: int, periods_per_year: float
) -> pd.DataFrame:
    """Return `rolling_figures` of the returns ``values`` at the bars of ``index``.

    pandas' ``Series(values).rolling(window)`` ``mean()`` and ``std(ddof=1)``, to the
    bit: in one compiled pass (`tradeloom.reporting.rolling_moments`, which repeats the
    algorithms of pandas 3); under another pandas, from its public ``Rolling`` (slower,
    never other figures than that pandas gives).
    """
    block = np.empty((2, len(values)))  # both columns: the frame's one block, each bar written
    if len(values):
        sharpe, volatility = block
        scale = math.sqrt(periods_per_year)
        if _KERNEL_PANDAS:
            values = np.ascontiguousarray(values)
            rolling_sharpe_volatility(values, window, scale, sharpe, volatility)
        else:
            pandas_rolling(values, window, scale, sharpe, volatility)
    return pd.DataFrame(block.T, index=index, columns=["sharpe", "volatility"], copy=False)


_KERNEL_PANDAS = pd.__version__.split(".")[0] == "3"
"""Whether this pandas computes rolling moments as `rolling_sharpe_volatility` does (the
property tests hold the kernel to pandas 3's)."""


@dataclass(frozen=True)
class Rolling:
    """A run's rolling figures (`rolling_figures`) and what they were computed over.

    A backtest computes them once (`run_rolling`) for its metrics (`tearsheet`) and
    hands them to its report, which draws them rather than computing them again.
    """

    window: int
    periods_per_year: float
    figures: pd.DataFrame


def run_rolling(
    equity: pd.Series,
    initial_cash: float,
    periods_per_year: float,
    returns: npt.NDArray[np.float64] | None = None,
) -> Rolling:
    """Return the rolling figures of an equity curve, over `rolling_window` bars.

    Args:
        returns: `simple_returns` of the curve, where the caller has them; None:
            computed here.
    """
    window = rolling_window(periods_per_year)
    if returns is None:
        returns = simple_returns(equity.to_numpy(np.float64), initial_cash)
    figures = _rolling_frame(returns, equity.index, window, periods_per_year)
    return Rolling(window, periods_per_year, figures)


def drawdowns(
    equity: pd.Series, initial_cash: float, top: int = DRAWDOWNS_LISTED
) -> list[dict[str, Any]]:
    """Return the ``top`` deepest drawdowns of an equity curve, deepest first.

    Each: ``start`` (its first bar under the peak), ``trough`` and ``recovery`` (ISO
    times; recovery None when still under water at the end), ``depth`` (a fraction of
    the peak), ``bars`` and ``days``: its length from the bar at the peak to the
    recovery or the last bar, in bars and in calendar time (`tradeloom.reporting.drawdowns`,
    the rule of the summary's drawdown duration).

    Args:
        equity: Equity at each bar's close, indexed by the bars' times.
        initial_cash: Equity before the first bar (a peak at the first bar).
        top: How many to list.
    """
    found = find_drawdowns(equity.to_numpy(np.float64), initial_cash)
    if not len(found.peaks):
        return []
    values = equity.to_numpy(np.float64)
    depths = 1.0 - values[found.troughs] / found.highs
    if np.isnan(depths).any():  # sorted as Python sorts NaN keys
        order = sorted(range(len(depths)), key=lambda i: -depths[i])[:top]
    else:
        order = np.argsort(-depths, kind="stable")[:top].tolist()
    index = equity.index
    ends, lengths = found.ends, found.lengths
    last = len(values) - 1
    return [
        {
            "start": index[found.starts[i]].isoformat(),
            "trough": index[found.troughs[i]].isoformat(),
            "recovery": index[found.recoveries[i]].isoformat()
            if found.recoveries[i] <= last
            else None,
            "depth": float(depths[i]),
            "bars": int(lengths[i]),
            "days": (index[ends[i]] - index[found.peaks[i]]).total_seconds() / 86_400.0,
        }
        for i in order
    ]


def _calendar_returns(
    returns: npt.NDArray[np.float64], index: pd.DatetimeIndex
) -> dict[str, dict[str, float]]:
    """Return the compounded return of each calendar year (``Y``) and month (``M``) in
    UTC, keyed by `period_label`: a period's bars multiplied in order, NaN skipped (a
    pandas groupby's product)."""
    naive = index.tz_convert("UTC").tz_localize(None)
    periods = calendar_periods(naive.to_numpy())
    if periods is None:
        found = {}
        for freq in ("Y", "M"):
            grouped = (1.0 + pd.Series(returns, index=naive)).groupby(naive.to_period(freq))
            found[freq] = {str(key): float(value - 1.0) for key, value in grouped.prod().items()}
        return found
    months = periods["M"]
    bounds = np.array([(start, stop) for _, start, stop in months], np.int64).reshape(-1, 2)
    # each month's year: its place among the years that hold bars
    years = [key for key, _, _ in periods["Y"]]
    year_of = np.searchsorted(years, [key // 12 for key, _, _ in months]).astype(np.int64)
    by_month, by_year = _compounded(returns, bounds, year_of)
    return {
        freq: {
            period_label(key, freq): float(value)
            for (key, _, _), value in zip(periods[freq], part, strict=True)
        }
        for freq, part in (("Y", by_year), ("M", by_month))
    }


@released_kernel
def _compounded(
    returns: npt.NDArray[np.float64], bounds: npt.NDArray[np.int64], outer: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return each period's compounded return, a period being a row of ``bounds`` (its
    first bar and the bar after its last), and each outer period's, ``outer`` numbering
    the outer period of each period (a month's year: from 0, each outer period's periods
    one after another, its bars theirs): its bars' ``1 + r`` multiplied in order, a NaN
    skipped, minus one (a pandas groupby's product, ``np.multiply.accumulate``'s order).
    Both in one pass over the bars: an outer period's product goes on where its last
    period's stopped, the same multiplications in the same order as over its own bars."""
    out = np.empty(len(bounds))
    wide = np.ones(outer[-1] + 1 if len(outer) else 0)
    for k in range(len(bounds)):
        product = 1.0
        across = wide[outer[k]]
        for i in range(bounds[k, 0], bounds[k, 1]):
            grown = 1.0 + returns[i]
            if not np.isnan(grown):
                product *= grown
                across *= grown
        out[k] = product - 1.0
        wide[outer[k]] = across
    return out, wide - 1.0


@python_form(_compounded)
def _compounded_as_python(
    returns: npt.NDArray[np.float64], bounds: npt.NDArray[np.int64], outer: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """`_compounded` as Python (`tradeloom.kernels.jit.python_form`): the same products in
    the same order over Python floats (IEEE doubles, as the kernel's), not numpy scalars."""
    grown = (1.0 + returns).tolist()  # numpy's 1 + r is the kernel's, element by element
    out = np.empty(len(bounds))
    wide = [1.0] * (int(outer[-1]) + 1 if len(outer) else 0)
    for k, ((start, stop), at) in enumerate(zip(bounds.tolist(), outer.tolist(), strict=True)):
        product, across = 1.0, wide[at]
        for value in grown[start:stop]:
            if value == value:  # not NaN
                product *= value
                across *= value
        out[k] = product - 1.0
        wide[at] = across
    return out, np.array(wide) - 1.0


Period = tuple[int, int, int]
"""A calendar period of a run: its key (`period_label`), its first bar and the bar after
its last."""


def calendar_periods(times: npt.NDArray[np.datetime64]) -> dict[str, list[Period]] | None:
    """Return the calendar months (``M``, keyed by months since 1970-01) and years (``Y``,
    by years since 1970) that hold bars, in order, each with its bars; None where the
    times are not in order or not of years 1000 to 9999 (the callers group them with
    pandas then).

    Each month's first bar is found by a binary search of the times: no calendar
    arithmetic per bar.
    """
    n = len(times)
    if not n:
        return {"M": [], "Y": []}
    # NaT is in no order: a comparison with it is False
    if np.isnat(times[0]) or (n > 1 and not (times[1:] >= times[:-1]).all()):
        return None
    first, last = (int(t.astype("datetime64[M]").astype(np.int64)) for t in (times[0], times[-1]))
    if first < (1000 - 1970) * 12 or last >= 8030 * 12:
        return None
    starts = np.arange(first + 1, last + 1).astype("datetime64[M]").astype(times.dtype)
    bounds = [0, *np.searchsorted(times, starts).tolist(), n]
    months = [
        (key, start, stop)
        for key, start, stop in zip(range(first, last + 1), bounds[:-1], bounds[1:], strict=True)
        if stop > start
    ]
    years: list[Period] = []
    for key, start, stop in months:
        if years and years[-1][0] == key // 12:
            years[-1] = (key // 12, years[-1][1], stop)
        else:
            years.append((key // 12, start, stop))
    return {"M": months, "Y": years}


def period_label(key: int, freq: str) -> str:
    """Return a `calendar_periods` key's label: ``2024-03`` (``M``) or ``2024`` (``Y``)."""
    if freq == "M":
        return f"{1970 + key // 12:04d}-{key % 12 + 1:02d}"
    return f"{1970 + key:04d}"


def _versus(
    returns: npt.NDArray[np.float64],
    index: pd.DatetimeIndex,
    market: pd.Series,
    periods_per_year: float,
) -> dict[str, Any]:
    if index.equals(market.index):  # aligned: the rows where both are known
        r, m = returns, _change(market.to_numpy(np.float64))  # (m: no NaN, `_change`'s)
        missing = np.isnan(r)
        if missing.any():
            known = ~missing
            r, m = r[known], m[known]
    else:
        changes = market.pct_change().fillna(0.0)
        both = pd.DataFrame({"r": pd.Series(returns, index=index), "m": changes}).dropna()
        r, m = both["r"].to_numpy(np.float64), both["m"].to_numpy(np.float64)
    n = len(r)
    if n < 2:
        return {"alpha": None, "beta": None, "correlation": None}
    # numpy's var(m) and std(r) > 0 from the deviations that the covariance and the
    # correlation use too, each taken once: the same operations in the same order as
    # np.var's, and as np.corrcoef's rows
    deviations = np.empty((2, n))
    r_apart, m_apart = deviations
    np.subtract(m, m.mean(), out=m_apart)
    scratch = np.multiply(m_apart, m_apart)
    spread = np.add.reduce(scratch) / n
    if float(spread) == 0.0:
        return {"alpha": None, "beta": None, "correlation": None}
    np.subtract(r, r.mean(), out=r_apart)
    varies = float(np.add.reduce(np.multiply(r_apart, r_apart, out=scratch)) / n) > 0
    moved = np.multiply(r_apart, m_apart, out=scratch)
    beta = float(np.mean(moved) / spread)
    apart = np.multiply(m, beta, out=moved)  # r - beta * m, in place
    np.subtract(r, apart, out=apart)
    alpha = float((1.0 + np.mean(apart)) ** periods_per_year - 1.0)
    correlation = _correlation(deviations) if varies else None
    return {"alpha": alpha, "beta": beta, "correlation": correlation}


def _correlation(deviations: npt.NDArray[np.float64]) -> float:
    """Return ``np.corrcoef(r, m)[0, 1]`` to the bit, from the rows ``r - r.mean()`` and
    ``m - m.mean()`` (what np.cov computes first, from a copy of both): their products'
    dot, scaled by ``1 / (n - 1)``, over both deviations, clipped to [-1, 1]."""
    c = np.dot(deviations, deviations.T.conj())  # as np.cov multiplies them
    c *= np.true_divide(1, deviations.shape[1] - 1)
    spread = np.sqrt(np.diag(c))
    c /= spread[:, None]
    c /= spread[None, :]
    return float(np.clip(c[0, 1], -1.0, 1.0))


def _change(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return pandas' ``pct_change().fillna(0.0)`` of ``values``: each over the one
    before, minus one; 0 where that is NaN (the first bar, a missing value)."""
    out = np.empty_like(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(values[1:], values[:-1], out=out[1:])
        np.subtract(out[1:], 1.0, out=out[1:])
    out[:1] = 0.0
    out[np.isnan(out)] = 0.0
    return out


def bar_returns(equity: pd.Series, initial_cash: float) -> pd.Series:
    """Return the simple return of each bar, the first against the starting cash."""
    return pd.Series(simple_returns(equity.to_numpy(np.float64), initial_cash), index=equity.index)


def simple_returns(values: npt.NDArray[np.float64], initial_cash: float) -> npt.NDArray[np.float64]:
    """Return `bar_returns` of the equity ``values`` as an array: each over the one
    before, the first over ``initial_cash``, minus one."""
    out = np.empty_like(values)  # the previous equity, then the return, in place
    out[:1] = initial_cash
    out[1:] = values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(values, out, out=out)
    out -= 1.0
    return out


def tearsheet(
    equity: pd.Series,
    market: pd.Series,
    *,
    initial_cash: float,
    periods_per_year: float,
    benchmark: str,
    rolling: Rolling | None = None,
    returns: npt.NDArray[np.float64] | None = None,
    tails: Callable[[], dict[str, float | None]] | None = None,
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
        returns: `simple_returns` of the equity, where the caller has them; None:
            computed here.
        tails: What gives `tail_figures` of those returns, where the caller computes
            them (in another thread); None: computed here.
    """
    values = equity.to_numpy(np.float64)
    if returns is None:
        returns = simple_returns(values, initial_cash)
    if rolling is None:
        rolling = run_rolling(equity, initial_cash, periods_per_year, returns)
    index = equity.index
    calendar = _calendar_returns(returns, index)
    return {
        "periods_per_year": periods_per_year,
        "rolling_window_bars": rolling.window,
        "rolling_sharpe": _summary(rolling.figures["sharpe"].to_numpy(np.float64)),
        "rolling_volatility": _summary(rolling.figures["volatility"].to_numpy(np.float64)),
        "drawdowns": drawdowns(equity, initial_cash),
        "yearly_returns": calendar["Y"],
        "monthly_returns": calendar["M"],
        "benchmark": benchmark,
        **_versus(returns, index, market, periods_per_year),
        **(_tail_figures(returns) if tails is None else tails()),
    }


def tail_figures(returns: pd.Series | npt.NDArray[np.float64]) -> dict[str, float | None]:
    """Return the bar returns' tail risk and shape (the module's conventions): ``var_95``,
    ``cvar_95``, ``var_95_normal``, ``skew``, ``kurtosis`` (None: too few returns)."""
    return _tail_figures(np.asarray(returns, np.float64))


def _tail_figures(returns: npt.NDArray[np.float64]) -> dict[str, float | None]:
    finite = np.isfinite(returns)
    values = returns if finite.all() else returns[finite]
    # pandas' moments, over the values alone (no index to carry)
    known = pd.Series(values, copy=False)  # read, never written: no copy
    out: dict[str, float | None] = dict.fromkeys(
        ("var_95", "cvar_95", "var_95_normal", "skew", "kurtosis")
    )
    if len(known) < 2:
        return out
    # pandas' quantile and mean are numpy's (linear interpolation; a pairwise sum over
    # the count), without a Series' block and mask
    var, tail = _tail_quantile(values, _TAIL)
    std = float(known.std(ddof=1))
    mean = float(known.mean())
    out["var_95"] = var
    out["cvar_95"] = float(np.mean(tail[tail <= var]))
    out["var_95_normal"] = NormalDist(mean, std).inv_cdf(_TAIL) if std > 0 else mean
    out["skew"] = _finite(known.skew())
    out["kurtosis"] = _finite(known.kurt())
    return out


def _tail_quantile(
    values: npt.NDArray[np.float64], q: float
) -> tuple[float, npt.NDArray[np.float64]]:
    """Return ``np.quantile(values, q)`` of the finite ``values`` (``q`` below one half),
    to the bit, and the values at or below a bound not below it, in their order: every
    value at or below the quantile, in order, is one of those.

    numpy partitions a copy of all the values to find the two it interpolates between,
    the ``k``-th and ``k + 1``-th smallest (``k = floor((n - 1) q)``). Every value at or
    below a bound that at least ``k + 2`` values are at or below holds those two at the
    same ranks, and a fraction of them: a bound from a strided sample of the values
    (twice the quantile's rank in it) selects them by one comparison, and numpy
    interpolates between the two as it would have, by its own quantile of the pair at
    the fraction ``(n - 1) q - k`` (its index into the pair, exact). A bound that
    selects too few (values that the sample misrepresents), or a zero at a rank where
    -0.0 is among the zeros, leaves it to numpy.
    """
    n = len(values)
    if n >= _SELECT_FROM:
        sample = values[::_SAMPLE_STRIDE]
        rank = min(len(sample) - 1, int(2 * q * len(sample)) + 1)
        bound = np.partition(sample, rank)[rank]
        tail = values[values <= bound]
        position = (n - 1) * q  # numpy's virtual index, its floor and fraction
        k = math.floor(position)
        if len(tail) >= k + 2:
            pair = np.partition(tail, (k, k + 1))[k : k + 2]
            # equal values are the same bits but zeros: which of 0.0 and -0.0 is at a
            # rank is numpy's partition's choice, taken over all the values then
            if not (pair == 0.0).any() or not np.signbit(tail[tail == 0.0]).any():
                quantile = float(np.quantile(pair, position - k))
                # (below the bound but where an overflow made it inf or NaN)
                return quantile, tail if quantile <= bound else values
    return float(np.quantile(values, q)), values


_SELECT_FROM = 65_536
"""Values from which `_tail_quantile` selects the tail before partitioning (fewer: numpy
partitions them all, as fast)."""

_SAMPLE_STRIDE = 64
"""The stride of `_tail_quantile`'s sample of the values (1M values: 15,625 of them)."""


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _summary(values: npt.NDArray[np.float64]) -> dict[str, float | None]:
    """Return the last, least, median and greatest of the known ``values`` (pandas'
    ``dropna()`` figures; its median, which keeps a -0.0 that ``np.median`` does not)."""
    missing = np.isnan(values)
    # the first known value (a rolling figure's window is before it); every one known
    # from there on (most figures): those values as they are, not a copy of them
    start = int(missing.argmin()) if len(values) else 0
    known = values[start:] if not missing[start:].any() else values[~missing]
    if not len(known):
        return {"last": None, "min": None, "median": None, "max": None}
    last, least, most = float(known[-1]), float(known.min()), float(known.max())
    median = _median(known)
    if median == 0.0:  # which zero is pandas', its own selection decides
        median = float(pd.Series(values[~np.isnan(values)], copy=False).median())
    return {"last": last, "min": least, "median": median, "max": most}


def _median(known: npt.NDArray[np.float64]) -> float:
    """Return pandas' median of ``known`` (no NaN) unless it is a zero, leaving them as
    they are.

    The middle value, or half the sum of the two middle ones, found by one partition
    of a copy (a million values: of those between two bounds, `_selected_median`):
    pandas (bottleneck's ``nanmedian``) adds the same two values and halves their sum,
    so the bits are its, but for the sign of a zero, which depends on where its
    selection leaves equal zeros: the caller asks pandas then.
    """
    n = len(known)
    k = n // 2
    if n >= _SELECT_FROM:
        found = _selected_median(known, k, even=not n % 2)
        if found is not None:
            return found
    ordered = np.partition(known, k)  # (a copy: ``known`` may be the caller's figures)
    if n % 2:
        return float(ordered[k])
    return float(0.5 * (ordered[:k].max() + ordered[k]))


def _selected_median(known: npt.NDArray[np.float64], k: int, *, even: bool) -> float | None:
    """Return `_median` of ``known`` (``k`` its middle rank) from the values between two
    bounds around it, or None where the bounds miss it.

    A strided sample's values a few standard errors of rank either side of its middle
    bound the middle: the values below the lower bound are counted, those between the
    bounds selected by one comparison each, and the ``k``-th smallest of all (and for an
    even count the ``k - 1``-th) is the one at its rank less that count among them. The
    same values as a partition of them all finds, so the same sum and half: a partition
    of a million values costs about four times the comparisons. Bounds whose selection
    does not hold both ranks (a sample that misrepresents the values) leave it to the
    whole partition.
    """
    sample = np.sort(known[::_SAMPLE_STRIDE])
    m = len(sample)
    middle = m * k / len(known)
    spread = 2.0 * math.sqrt(m)  # four standard errors of the middle rank: sqrt(m) / 2
    low, high = sample[max(0, int(middle - spread))], sample[min(m - 1, int(middle + spread))]
    below = int(np.count_nonzero(known < low))
    between = known[(known >= low) & (known <= high)]
    rank = k - below
    if rank < (1 if even else 0) or rank >= len(between):
        return None
    between.partition(rank)
    if not even:
        return float(between[rank])
    return float(0.5 * (between[:rank].max() + between[rank]))
