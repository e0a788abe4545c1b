"""The curve's figures from one compiled call are numpy's passes' figures, bit for bit.

`values_performance` computed its moments with a dozen numpy passes; `curve_moments`
makes them in one call. The reference below is the numpy code it replaced, kept
verbatim as the definition: every figure of ``metrics.json`` (and of a sweep's rows) must
be the same float, on curves with NaN, infinities, flat stretches, zeros of either sign,
one bar, and at the lengths where numpy's pairwise sum changes its order.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting import curve_moments as moments_module
from tradeloom.reporting import trade_sums as trade_sums_module
from tradeloom.reporting.drawdowns import (
    deepest_drawdown,
    drawdown_curve,
    find_drawdowns,
    longest_drawdown,
)
from tradeloom.reporting.metrics import (
    daily_ratios,
    day_ends,
    profit_factor,
    values_performance,
)
from tradeloom.reporting.pairwise import (
    ITEMS,
    SQUARED_DEVIATIONS,
    SQUARED_LOSSES,
    pairwise_sum,
    pairwise_sum_of,
)
from tradeloom.reporting.tearsheet import simple_returns
from tradeloom.time.timeframes import SECONDS_PER_YEAR
from tradeloom.time.timeframes import periods_per_year as _periods

PAIRWISE_LENGTHS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 135, 136, 137, 255, 256, 257]
"""Lengths where numpy's pairwise sum changes its grouping (eight accumulators, blocks
of 128, halves at a multiple of eight)."""


def _reference_daily(
    values: np.ndarray, ends: np.ndarray | None, initial_cash: float, years: float
) -> tuple[float, float]:
    # the replaced `daily_ratios_at`, verbatim
    if ends is None or len(values) == 0 or not years > 0:
        return math.nan, math.nan
    closes = values[ends]
    daily = closes / np.r_[initial_cash, closes[:-1]] - 1.0
    per_year = len(closes) / years
    std = float(daily.std(ddof=1)) if len(daily) > 1 else 0.0
    mean = float(daily.mean())
    downside = float(np.sqrt(np.mean(np.minimum(daily, 0.0) ** 2)))
    sharpe = mean / std * math.sqrt(per_year) if std > 0 else 0.0
    sortino = mean / downside * math.sqrt(per_year) if downside > 0 else 0.0
    return sharpe, sortino


def _reference(
    values: np.ndarray,
    exposure: float,
    ends: np.ndarray | None,
    *,
    initial_cash: float,
    timeframe_seconds: int,
    pnl: np.ndarray,
    trade_returns: np.ndarray,
    fees: float,
    periods_per_year: float | None = None,
    returns: np.ndarray | None = None,
) -> dict[str, Any]:
    # the replaced `values_performance`, verbatim
    ppy = periods_per_year if periods_per_year is not None else _periods(timeframe_seconds)
    if returns is None:
        returns = simple_returns(values, initial_cash)
    final = float(values[-1])
    total = final / initial_cash - 1.0
    if periods_per_year is None:
        years = len(values) * timeframe_seconds / SECONDS_PER_YEAR
    else:
        years = len(values) / periods_per_year
    cagr = (final / initial_cash) ** (1.0 / years) - 1.0 if final > 0 else -1.0
    std = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    mean = float(returns.mean())
    losses = np.minimum(returns, 0.0)
    losses *= losses  # ** 2
    downside = float(np.sqrt(np.mean(losses)))
    count = len(pnl)
    wins = pnl[pnl > 0]
    daily_sharpe, daily_sortino = _reference_daily(values, ends, initial_cash, years)
    return {
        "total_return": total,
        "cagr": cagr,
        "sharpe": mean / std * math.sqrt(ppy) if std > 0 else 0.0,
        "sortino": mean / downside * math.sqrt(ppy) if downside > 0 else 0.0,
        "sharpe_daily": daily_sharpe,
        "sortino_daily": daily_sortino,
        "max_drawdown": min(1.0, float(np.max(drawdown_curve(values, initial_cash)))),
        "volatility": std * math.sqrt(ppy),
        "trades": count,
        "win_rate": float(len(wins) / count) if count else 0.0,
        "avg_trade_return": float(np.mean(trade_returns)) if count else 0.0,
        "profit_factor": profit_factor(pnl),
        "exposure": exposure,
        "fees": fees,
        "final_equity": final,
    }


def _bits(value: Any) -> Any:
    """A figure as its float's bytes (NaN as one value: no file tells its payloads apart)."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else struct.pack("<d", value)
    return value


def _same(ours: dict[str, Any] | str, theirs: dict[str, Any] | str) -> None:
    if isinstance(ours, str) or isinstance(theirs, str):
        assert ours == theirs
        return
    assert list(ours) == list(theirs)
    assert {k: _bits(v) for k, v in ours.items()} == {k: _bits(v) for k, v in theirs.items()}


def _outcome(measure: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | str:
    """The figures, or the error a curve raises (a CAGR of a few minute bars overflows
    Python's float: the same error before and after)."""
    try:
        return measure(*args, **kwargs)  # type: ignore[no-any-return]
    except (OverflowError, ZeroDivisionError) as error:
        return type(error).__name__


def _curve(seed: int, n: int, cash: float, specials: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kind = seed % 4
    if kind == 0:  # a random walk
        values = cash * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    elif kind == 1:  # flat stretches: a position held now and then
        steps = np.where(rng.random(n) < 0.7, 0.0, rng.normal(0.0, 0.02, n))
        values = cash * np.exp(np.cumsum(steps))
    elif kind == 2:  # values spanning magnitudes: the order of a sum matters most
        values = cash * np.exp(np.cumsum(rng.normal(0.0, 0.3, n)))
    else:  # flat at the starting cash, then anything
        values = np.full(n, cash)
        values[n // 2 :] *= np.exp(np.cumsum(rng.normal(0.0, 0.05, n - n // 2)))
    if n:
        pool = [np.nan, 0.0, -0.0, np.inf, -np.inf, -cash, cash, 1e-300]
        for at in rng.integers(0, n, specials):
            values[at] = pool[int(rng.integers(0, len(pool)))]
    return values


@settings(max_examples=examples(200), deadline=None)
@given(
    stamps=st.lists(st.integers(-(10**17), 10**17), min_size=0, max_size=60),
    step=st.sampled_from(
        [None, 1, 3_600_000_000_000, 86_400_000_000_000 - 1, 7 * 86_400_000_000_000]
    ),
    unit=st.sampled_from(["ns", "ms", "s"]),
    nat=st.booleans(),
)
def test_day_ends_are_each_days_last_bar_by_division(
    stamps: list[int], step: int | None, unit: str, nat: bool
) -> None:
    """`day_ends` of bars in order (a binary search of each day's start) are those of the
    days by division, for times out of order, repeated, before 1970, of any unit, NaT."""
    times = np.array(stamps, np.int64)
    if step is not None and len(times):  # in order: a bar every step from the first
        times = times[0] + step * np.arange(len(times), dtype=np.int64)
    index = pd.DatetimeIndex(times, tz="UTC").as_unit(unit)
    if nat and len(index):
        index = index.insert(0, pd.NaT)
    day = index.as_unit("ns").asi8 // 86_400_000_000_000
    expected = np.flatnonzero(np.r_[day[1:] != day[:-1], True])
    got = day_ends(index)
    assert got is not None
    assert got.dtype == expected.dtype
    assert got.tolist() == expected.tolist()


def _days(n: int, seed: int) -> np.ndarray:
    """Bar times whose days hold a random number of bars, and their `day_ends`."""
    rng = np.random.default_rng(seed + 1)
    per_day = int(rng.integers(1, 50))
    index = pd.date_range("2024-01-01", periods=n, freq=pd.Timedelta(days=1) / per_day, tz="UTC")
    ends = day_ends(index)
    assert ends is not None
    return ends


@settings(max_examples=examples(400), deadline=None)
@given(
    n=st.sampled_from(PAIRWISE_LENGTHS[1:]) | st.integers(1, 700),
    cash=st.sampled_from([1.0, 1000.0, 100_000.0, 5e-324]),
    specials=st.sampled_from([0, 0, 1, 3]),
    seed=st.integers(0, 2**32 - 1),
    timeframe=st.sampled_from([60, 3600, 86_400]),
    calendar=st.sampled_from([None, 252.0 * 6.5, 525_600.0]),
    timed=st.booleans(),
    given_returns=st.booleans(),
    trades=st.integers(0, 12) | st.sampled_from([9, 129, 300]),
)
def test_the_figures_are_the_numpy_passes_bit_for_bit(
    n: int,
    cash: float,
    specials: int,
    seed: int,
    timeframe: int,
    calendar: float | None,
    timed: bool,
    given_returns: bool,
    trades: int,
) -> None:
    values = _curve(seed, n, cash, specials)
    rng = np.random.default_rng(seed + 2)
    pnl = rng.normal(0.0, 10.0, trades)
    pnl[rng.random(trades) < 0.2] = 0.0
    kwargs: dict[str, Any] = {
        "initial_cash": cash,
        "timeframe_seconds": timeframe,
        "pnl": pnl,
        "trade_returns": rng.normal(0.0, 0.01, trades),
        "fees": 1.5,
        "periods_per_year": calendar,
    }
    ends = _days(n, seed) if timed else None
    with np.errstate(all="ignore"):
        returns = simple_returns(values, cash) if given_returns else None
        theirs = _outcome(_reference, values, 0.25, ends, returns=returns, **kwargs)
    ours = _outcome(values_performance, values, 0.25, ends, returns=returns, **kwargs)
    _same(ours, theirs)


@pytest.mark.parametrize("n", [8191, 8192, 8193, 20_000, 100_001])
def test_long_curves_sum_in_numpys_order(n: int) -> None:
    """Past numpy's buffer (8,192) and at a sweep's lengths: still one pairwise sum."""
    values = _curve(n, n, 100_000.0, 0)
    kwargs: dict[str, Any] = {
        "initial_cash": 100_000.0,
        "timeframe_seconds": 60,
        "pnl": np.array([3.0, -1.0]),
        "trade_returns": np.array([0.01, -0.002]),
        "fees": 2.0,
    }
    ends = _days(n, n)
    _same(values_performance(values, 0.5, ends, **kwargs), _reference(values, 0.5, ends, **kwargs))


SUMMANDS = st.lists(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 5e-324, math.nan, math.inf])
    | st.floats(allow_nan=False, allow_infinity=False),
    max_size=300,
) | st.sampled_from(PAIRWISE_LENGTHS).map(lambda n: [-0.0] * n)
"""What the pairwise sums are drawn over: every length up to 300 and numpy's block edges
of zeros, zeros of either sign, overflow to infinity, subnormals, NaN."""


@settings(max_examples=examples(300), deadline=None)
@given(
    values=SUMMANDS,
    start=st.integers(0, 3),
)
def test_the_pairwise_sum_is_numpys_sum(values: list[float], start: int) -> None:
    """Every length, zeros of either sign, overflow to infinity, NaN: ``np.sum``'s bits."""
    a = np.array(values, np.float64)
    start = min(start, len(a))
    with np.errstate(all="ignore"):
        expected = float(a[start:].sum())
    assert _bits(pairwise_sum(a, start, len(a) - start)) == _bits(expected)


@settings(max_examples=examples(300), deadline=None)
@given(
    values=SUMMANDS,
    start=st.integers(0, 3),
    center=st.sampled_from([0.0, -0.0, 0.5, math.nan, math.inf])
    | st.floats(allow_nan=False, allow_infinity=False),
)
def test_a_sum_of_terms_is_numpys_sum_of_their_array(
    values: list[float], start: int, center: float
) -> None:
    """The squared deviations and losses made as they are added: the bits of numpy's sum
    of the arrays `_var` and ``np.minimum(x, 0.0) ** 2`` write."""
    a = np.array(values, np.float64)
    start = min(start, len(a))
    x = a[start:]
    with np.errstate(all="ignore"):
        deviations = x - center
        arrays = {
            ITEMS: x,
            SQUARED_DEVIATIONS: deviations * deviations,
            SQUARED_LOSSES: np.minimum(x, 0.0) ** 2,
        }
        for terms, array in arrays.items():
            ours = pairwise_sum_of(a, start, len(x), terms, center)
            assert _bits(ours) == _bits(float(array.sum())), terms


@settings(max_examples=examples(200), deadline=None)
@given(
    n=st.sampled_from(PAIRWISE_LENGTHS[1:]) | st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
    specials=st.sampled_from([0, 2]),
    timed=st.booleans(),
)
def test_the_python_form_is_the_kernel_bit_for_bit(
    n: int, seed: int, specials: int, timed: bool
) -> None:
    """A small first run measures with the Python form (`tradeloom.kernels.first_run`)."""
    values = _curve(seed, n, 1000.0, specials)
    ends = _days(n, seed) if timed else moments_module.NO_DAYS
    compiled_returns, python_returns = np.full(n, 7.0), np.full(n, 8.0)
    compiled = moments_module.curve_moments(values, 1000.0, compiled_returns, True, ends)
    with np.errstate(all="ignore"):
        python = moments_module._curve_moments_as_python(values, 1000.0, python_returns, True, ends)
    assert [_bits(float(x)) for x in compiled] == [_bits(float(x)) for x in python]
    assert compiled_returns.tobytes() == python_returns.tobytes()


def test_an_empty_curve_is_refused_as_before() -> None:
    kwargs: dict[str, Any] = {
        "initial_cash": 1.0,
        "timeframe_seconds": 60,
        "pnl": np.zeros(0),
        "trade_returns": np.zeros(0),
        "fees": 0.0,
    }
    with pytest.raises(IndexError):
        _reference(np.zeros(0), 0.0, None, **kwargs)
    with pytest.raises(IndexError):
        values_performance(np.zeros(0), 0.0, None, **kwargs)


@settings(max_examples=examples(100), deadline=None)
@given(
    n=st.integers(0, 400), seed=st.integers(0, 2**32 - 1), years=st.sampled_from([0.0, 0.5, 3.0])
)
def test_daily_ratios_are_the_replaced_passes(n: int, seed: int, years: float) -> None:
    values = _curve(seed, n, 1000.0, 1)
    index = pd.date_range("2024-01-01", periods=n, freq="5h", tz="UTC")
    with np.errstate(all="ignore"):
        theirs = _reference_daily(values, day_ends(index), 1000.0, years)
    assert [_bits(x) for x in daily_ratios(values, index, 1000.0, years)] == [
        _bits(x) for x in theirs
    ]


@settings(max_examples=examples(400), deadline=None)
@given(
    values=st.lists(
        st.sampled_from([0.0, -0.0, 50.0, 100.0, 99.0, 101.0, math.nan, math.inf, -math.inf])
        | st.floats(-1e3, 1e3),
        min_size=1,
        max_size=80,
    ),
    cash=st.sampled_from([100.0, 1.0, 5e-324, 0.0, -50.0]),
)
def test_the_deepest_drawdown_is_the_curves_maximum(values: list[float], cash: float) -> None:
    """Dividing only at new lows gives `np.max` of the whole curve: NaN, infinities, zeros
    of either sign, a peak of zero or below (every bar divided there)."""
    equity = np.array(values, np.float64)
    with np.errstate(all="ignore"):
        expected = float(np.max(drawdown_curve(equity, cash)))
    assert _bits(deepest_drawdown(equity, cash)) == _bits(expected)


@settings(max_examples=examples(300), deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1), specials=st.sampled_from([0, 2]))
def test_the_longest_drawdown_is_the_drawdowns_longest(n: int, seed: int, specials: int) -> None:
    """In bars and in time, as the drawdowns' lengths and the times between their ends
    and peaks give them (the sweep's ``max_drawdown_duration_*``)."""
    values = _curve(seed, n, 1000.0, specials)
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.integers(1, 10**12, n)).astype(np.int64)  # uneven gaps
    found = find_drawdowns(values, 1000.0)
    expected = (0, 0)
    if len(found.peaks):
        longest = int((times[found.ends] - times[found.peaks]).max())
        expected = (int(found.lengths.max()), longest)
    assert longest_drawdown(values, 1000.0, times) == expected


@settings(max_examples=examples(200), deadline=None)
@given(
    pnl=st.lists(
        st.sampled_from([0.0, -0.0, 1e-320, -1e-320, 5.0, -5.0]) | st.floats(-1e6, 1e6),
        max_size=300,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_trade_sums_python_form_is_the_kernel(pnl: list[float], seed: int) -> None:
    """Both forms count and add the winners, the losers and the returns alike (and
    `profit_factor` reads them: a loss too small to divide by is still inf)."""
    values = np.array(pnl, np.float64)
    returns = np.random.default_rng(seed).normal(0.0, 0.01, len(values))
    compiled = trade_sums_module.trade_sums(values, returns)
    python = trade_sums_module._trade_sums_as_python(values, returns)
    assert [_bits(x) for x in compiled] == [_bits(x) for x in python]
    losses = values[values < 0]
    with np.errstate(all="ignore"):
        expected = float(values[values > 0].sum()) / float(-losses.sum()) if losses.size else None
    assert _bits(profit_factor(values)) == _bits(expected)


@given(st.integers(0, 2**63 - 1))
def test_a_durations_days_are_those_of_a_timedelta_of_its_nanoseconds(ns: int) -> None:
    """`drawdown_duration` makes its Timedelta from a timedelta64, not ``unit="ns"``."""
    made = pd.Timedelta(np.timedelta64(ns, "ns"))
    assert _bits(made.total_seconds() / 86_400.0) == _bits(
        pd.Timedelta(ns, unit="ns").total_seconds() / 86_400.0
    )
