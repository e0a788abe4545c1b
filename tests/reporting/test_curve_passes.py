"""The tearsheet's and statistics' numpy passes give the numbers of the pandas groupby
and Python loops they replaced, exactly: a backtest's ``metrics.json`` is unchanged,
and a live run's refresh costs a pass over arrays, not a Python loop over its bars.

The references below are the replaced code, kept here verbatim as the definition; the
drawdowns' is the one definition the summary and the tearsheet share since the table
counts a drawdown's bars as the summary does (`tradeloom.reporting.drawdowns`): the runs
of bars under numpy's running maximum, the starting cash a peak at the first bar.
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting import tearsheet as tearsheet_module
from tradeloom.reporting.statistics import drawdown_duration, period_returns
from tradeloom.reporting.tearsheet import (
    _calendar_returns,
    _summary,
    _tail_figures,
    drawdowns,
    rolling_figures,
    run_rolling,
    simple_returns,
)


def _under_water(values: np.ndarray, initial_cash: float) -> list[tuple[int, int, int]]:
    """Each drawdown's bar at the peak, first bar under it and recovery (``len``: never),
    from numpy's running maximum with the starting cash as a peak at the first bar."""
    peak = np.maximum.accumulate(np.maximum(values, initial_cash))
    under = values < peak
    edges = np.diff(np.concatenate(([False], under, [False])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(max(s - 1, 0), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _reference_drawdowns(
    equity: pd.Series, initial_cash: float, top: int = 5
) -> list[dict[str, Any]]:
    values = equity.to_numpy(np.float64)
    if not len(values):
        return []
    peak = np.maximum.accumulate(np.maximum(values, initial_cash))
    times = equity.index
    found = []
    for at_peak, start, end in _under_water(values, initial_cash):
        trough = start + int(np.argmin(values[start:end]))
        depth = 1.0 - values[trough] / peak[trough]
        recovered = end < len(values)
        last = end if recovered else len(values) - 1
        found.append(
            {
                "start": times[start].isoformat(),
                "trough": times[trough].isoformat(),
                "recovery": times[end].isoformat() if recovered else None,
                "depth": float(depth),
                # from the bar at the peak to the recovery or the last bar
                "bars": int(last - at_peak),
                "days": (times[last] - times[at_peak]) / pd.Timedelta(days=1),
            }
        )
    found.sort(key=lambda d: -d["depth"])
    return found[:top]


def _reference_calendar(returns: pd.Series, freq: str) -> dict[str, float]:
    index = returns.index.tz_convert("UTC").tz_localize(None)
    grown = (1.0 + pd.Series(returns.to_numpy(), index=index)).groupby(index.to_period(freq))
    return {str(period): float(value - 1.0) for period, value in grown.prod().items()}


def _reference_periods(equity: pd.Series, initial_cash: float, period: str) -> dict[str, float]:
    if len(equity) == 0:
        return {}
    index = equity.index.tz_convert("UTC") if equity.index.tz is not None else equity.index
    labels = index.strftime("%Y-%m" if period == "M" else "%Y")
    last = pd.Series(equity.to_numpy(np.float64), index=labels).groupby(level=0, sort=False).last()
    previous = np.concatenate(([initial_cash], last.to_numpy()[:-1]))
    returns = last.to_numpy() / previous - 1.0
    return {str(k): float(r) for k, r in zip(last.index, returns, strict=True)}


@st.composite
def curves(draw: st.DrawFn) -> pd.Series:
    """An equity curve of hourly to weekly bars over days to years, with flat
    stretches, repeated lows, new peaks, the odd NaN and bars out of order."""
    n = draw(st.integers(0, 300))
    step = draw(st.sampled_from(["1h", "6h", "1D", "7D"]))
    start = draw(st.sampled_from(["2023-11-28", "2024-02-27", "1999-12-31 20:00"]))
    index = pd.date_range(start, periods=n, freq=step, tz="UTC")
    moves = draw(
        st.lists(st.sampled_from([-2.0, -1.0, 0.0, 0.0, 1.0, 3.5]), min_size=n, max_size=n)
    )
    values = 1000.0 + np.cumsum(np.array(moves, dtype=np.float64))
    if n and draw(st.integers(0, 9)) == 0:
        values[draw(st.integers(0, n - 1))] = np.nan
    equity = pd.Series(values, index=index)
    if n > 2 and draw(st.integers(0, 9)) == 0:
        equity = equity.iloc[::-1]  # not in time order: the pandas path
    return equity


def _reference_duration(equity: pd.Series, initial_cash: float) -> tuple[int, pd.Timedelta]:
    values = equity.to_numpy(np.float64)
    found = _under_water(values, initial_cash)
    if not found:
        return 0, pd.Timedelta(0)
    index = equity.index
    lasts = [min(end, len(values) - 1) for _, _, end in found]
    spans = [last - at_peak for (at_peak, _, _), last in zip(found, lasts, strict=True)]
    times = [
        index[last] - index[at_peak] for (at_peak, _, _), last in zip(found, lasts, strict=True)
    ]
    return int(max(spans)), pd.Timedelta(max(times))


def _reference_rolling(returns: pd.Series, window: int, periods_per_year: float) -> pd.DataFrame:
    rolling = pd.Series(returns.to_numpy(np.float64)).rolling(window)
    std = rolling.std(ddof=1).to_numpy()
    scale = math.sqrt(periods_per_year)
    sharpe = rolling.mean().to_numpy() / np.where(std > 0, std, np.nan) * scale
    return pd.DataFrame({"sharpe": sharpe, "volatility": std * scale}, index=returns.index)


def _reference_summary(series: pd.Series) -> dict[str, float | None]:
    known = series.dropna()
    if not len(known):
        return {"last": None, "min": None, "median": None, "max": None}
    return {
        "last": float(known.iat[-1]),
        "min": float(known.min()),
        "median": float(known.median()),
        "max": float(known.max()),
    }


def _reference_tail(returns: np.ndarray) -> dict[str, float | None]:
    known = pd.Series(returns[np.isfinite(returns)])
    out: dict[str, float | None] = dict.fromkeys(
        ("var_95", "cvar_95", "var_95_normal", "skew", "kurtosis")
    )
    if len(known) < 2:
        return out
    var = float(known.quantile(0.05))
    std, mean = float(known.std(ddof=1)), float(known.mean())
    out["var_95"] = var
    out["cvar_95"] = float(known[known <= var].mean())
    out["var_95_normal"] = NormalDist(mean, std).inv_cdf(0.05) if std > 0 else mean
    skew, kurt = float(known.skew()), float(known.kurt())
    out["skew"] = skew if math.isfinite(skew) else None
    out["kurtosis"] = kurt if math.isfinite(kurt) else None
    return out


_ODD = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, -1e-12, 5e-3, -5e-3, 0.25]


@st.composite
def bar_return_arrays(draw: st.DrawFn) -> np.ndarray:
    """Bar returns: none, one, flat stretches, NaN and infinities (an equity through
    zero), tiny and large moves, repeated values."""
    n = draw(st.integers(0, 120))
    pick = st.one_of(
        st.sampled_from(_ODD),
        st.floats(-0.5, 0.5, allow_nan=False),
        st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
    values = np.array(draw(st.lists(pick, min_size=n, max_size=n)), dtype=np.float64)
    if n and draw(st.booleans()):  # a flat stretch: no variance in its windows
        start = draw(st.integers(0, n - 1))
        values[start : start + draw(st.integers(1, n))] = draw(st.sampled_from(_ODD[3:]))
    return values


@settings(max_examples=examples(50), deadline=None)
@given(curves(), st.sampled_from([1000.0, 990.0, 1e9]))
def test_drawdown_duration_is_the_sorted_ends(equity: pd.Series, initial_cash: float) -> None:
    assert drawdown_duration(equity, initial_cash) == _reference_duration(equity, initial_cash)


@settings(max_examples=examples(50), deadline=None)
@given(bar_return_arrays(), st.integers(1, 40), st.sampled_from([252.0, 8760.0, 525_600.0]))
def test_rolling_figures_are_pandas_rolling_moments(
    values: np.ndarray, window: int, periods_per_year: float
) -> None:
    returns = pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="h"))
    with np.errstate(all="ignore"):
        expected = _reference_rolling(returns, window, periods_per_year)
    got = rolling_figures(returns, window, periods_per_year)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert np.array_equal(np.signbit(got.to_numpy()), np.signbit(expected.to_numpy()))
    for column in got:  # and the summaries of metrics.json, as JSON writes them
        assert _same(_summary(got[column].to_numpy()), _reference_summary(expected[column]))


@settings(max_examples=examples(25), deadline=None)
@given(bar_return_arrays(), st.integers(1, 40))
def test_a_pandas_other_than_the_kernels_gets_the_same_figures_from_its_public_rolling(
    values: np.ndarray, window: int
) -> None:
    """`tearsheet._rolling_frame` repeats pandas 3's rolling algorithms in a kernel; under
    another pandas the public ``Rolling`` answers, to the bit (under this one)."""
    returns = pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="h"))
    fast = rolling_figures(returns, window, 8760.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tearsheet_module, "_KERNEL_PANDAS", False)
        slow = rolling_figures(returns, window, 8760.0)
    pd.testing.assert_frame_equal(slow, fast, check_exact=True)
    assert np.array_equal(np.signbit(slow.to_numpy()), np.signbit(fast.to_numpy()))


@settings(max_examples=examples(50), deadline=None)
@given(bar_return_arrays())
def test_tail_figures_are_pandas_quantile_and_moments(values: np.ndarray) -> None:
    with np.errstate(all="ignore"):
        expected = _reference_tail(values)
    assert _same(_tail_figures(values), expected)


@settings(max_examples=examples(100), deadline=None)
@given(bar_return_arrays(), st.integers(1, 8))
def test_tail_figures_selecting_the_tail_are_pandas_quantile_and_moments(
    values: np.ndarray, stride: int
) -> None:
    """The tail selected by a sample's bound (a million returns' path) gives numpy's
    quantile and the tail's mean to the bit: ties, signed zeros, infinities, a sample
    that misses the tail (numpy's own partition then)."""
    with np.errstate(all="ignore"):
        expected = _reference_tail(values)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tearsheet_module, "_SELECT_FROM", 2)
        patch.setattr(tearsheet_module, "_SAMPLE_STRIDE", stride)
        assert _same(_tail_figures(values), expected)


@settings(max_examples=examples(100), deadline=None)
@given(bar_return_arrays(), st.integers(1, 8))
def test_summaries_selecting_the_middle_are_pandas_median(values: np.ndarray, stride: int) -> None:
    """The middle selected between a sample's bounds (a million rolling figures' path)
    gives pandas' median to the bit: ties, signed zeros, infinities, odd and even counts,
    a sample whose bounds miss the middle (the whole partition then)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tearsheet_module, "_SELECT_FROM", 2)
        patch.setattr(tearsheet_module, "_SAMPLE_STRIDE", stride)
        got = _summary(values.copy())
    assert _same(got, _reference_summary(pd.Series(values)))


@pytest.mark.parametrize("n", [1_000_000, 1_000_001])
@pytest.mark.parametrize("shape", ["normal", "ties", "skewed"])
def test_a_million_figures_median_is_pandas(n: int, shape: str) -> None:
    rng = np.random.default_rng(11)
    values = rng.standard_normal(n)
    if shape == "ties":  # a rolling figure flat for long stretches
        values = np.round(values, 1)
    elif shape == "skewed":  # most of the mass far from the sample's middle
        values = np.exp(3.0 * values)
    values[rng.random(n) < 0.01] = np.nan
    expected = float(pd.Series(values).median())
    assert json.dumps(_summary(values.copy())["median"]) == json.dumps(expected)


@pytest.mark.parametrize("zeros", ["none", "positive", "mixed", "negative"])
def test_a_million_returns_tail_figures_are_numpys(zeros: str) -> None:
    rng = np.random.default_rng(7)
    values = rng.standard_normal(1_000_003) * 1e-3
    if zeros != "none":  # a quantile at zero: most bars flat
        values[rng.random(len(values)) < 0.97] = 0.0
        negative = rng.random(len(values)) < {"positive": 0.0, "mixed": 0.5}.get(zeros, 1.0)
        values[(values == 0.0) & negative] = -0.0
    var = float(np.quantile(values, 0.05))
    got = _tail_figures(values)
    assert json.dumps([got["var_95"], got["cvar_95"]]) == json.dumps(
        [var, float(np.mean(values[values <= var]))]
    )


@settings(max_examples=examples(50), deadline=None)
@given(curves(), st.sampled_from([1000.0, 0.0, 1e-9]))
def test_returns_computed_once_are_those_each_figure_computed(
    equity: pd.Series, initial_cash: float
) -> None:
    values = equity.to_numpy(np.float64)
    previous = np.concatenate(([initial_cash], values[:-1]))
    with np.errstate(all="ignore"):
        expected = values / previous - 1.0
    got = simple_returns(values, initial_cash)
    assert got.tobytes() == expected.tobytes()
    # the rolling figures of a run, from its returns or from its equity, are the same
    given = run_rolling(equity, initial_cash, 8760.0, got)
    own = run_rolling(equity, initial_cash, 8760.0)
    pd.testing.assert_frame_equal(given.figures, own.figures, check_exact=True)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a) == json.dumps(b)


@settings(max_examples=examples(150), deadline=None)
@given(curves(), st.sampled_from([1000.0, 990.0, -math.inf]), st.integers(1, 8))
def test_drawdowns_are_the_loops(equity: pd.Series, initial_cash: float, top: int) -> None:
    expected = _reference_drawdowns(equity, initial_cash, top)
    assert _same(drawdowns(equity, initial_cash, top), expected)


@settings(max_examples=examples(150), deadline=None)
@given(curves(), st.sampled_from(["M", "Y"]))
def test_calendar_returns_are_the_groupbys(equity: pd.Series, freq: str) -> None:
    returns = equity.pct_change()
    found = _calendar_returns(returns.to_numpy(np.float64), returns.index)[freq]
    assert _same(found, _reference_calendar(returns, freq))


@settings(max_examples=examples(150), deadline=None)
@given(curves(), st.sampled_from(["M", "Y"]), st.booleans())
def test_period_returns_are_the_groupbys(equity: pd.Series, period: str, naive: bool) -> None:
    if naive:
        equity = equity.tz_localize(None)
    assert _same(period_returns(equity, 1000.0, period), _reference_periods(equity, 1000.0, period))
