"""The one-pass rolling Sharpe ratio and volatility are pandas' rolling mean and sample
variance to the bit: NaN, infinities, runs of one value, signed zeros, tiny and huge
magnitudes, every window from one bar to longer than the series."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.rolling_moments import rolling_sharpe_volatility

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.01, -0.01, 0.5, np.nan, np.inf, -np.inf, 1e-300, -1e300]


def _pandas(
    values: npt.NDArray[np.float64], window: int, periods: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The figures from pandas' public rolling mean and variance (the tearsheet's rules:
    a negative variance as 0, Sharpe NaN where the deviation is not above 0)."""
    rolling = pd.Series(values).rolling(window)
    mean = rolling.mean().to_numpy()
    var = rolling.var(ddof=1).to_numpy().copy()
    with np.errstate(all="ignore"):
        var[var < 0] = 0.0
        std = np.sqrt(var)
        scale = math.sqrt(periods)
        sharpe = np.divide(mean, np.where(std > 0, std, np.nan)) * scale
        return sharpe, std * scale


def _ours(
    values: npt.NDArray[np.float64], window: int, periods: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    sharpe, volatility = np.full(len(values), 7.0), np.full(len(values), 7.0)
    rolling_sharpe_volatility(values, window, math.sqrt(periods), sharpe, volatility)
    return sharpe, volatility


def _bits(values: npt.NDArray[np.float64]) -> list[int | None]:
    """Each value's bits (a NaN's sign and payload aside: none is written out)."""
    return [None if math.isnan(v) else int(np.float64(v).view(np.int64)) for v in values]


def _assert_pandas_bits(values: npt.NDArray[np.float64], window: int, periods: float) -> None:
    got, want = _ours(values, window, periods), _pandas(values, window, periods)
    assert _bits(got[0]) == _bits(want[0])
    assert _bits(got[1]) == _bits(want[1])


@st.composite
def _returns(draw: st.DrawFn) -> npt.NDArray[np.float64]:
    """Returns of one scale (pandas' ``1e-300`` to ``1e300``), with runs of one value
    and values from `SPECIAL` among them."""
    magnitude = draw(st.sampled_from([1e-300, 1e-12, 1e-4, 0.01, 1.0, 1e6, 1e150, 1e300]))
    values: list[float] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["random", "run", "special"]))
        if kind == "random":
            count = draw(st.integers(1, 40))
            values += draw(st.lists(st.floats(-1.0, 1.0), min_size=count, max_size=count))
            values[-count:] = [v * magnitude for v in values[-count:]]
        elif kind == "run":
            value = draw(st.floats(-1.0, 1.0)) * magnitude
            values += [value] * draw(st.integers(2, 40))
        else:
            values.append(draw(st.sampled_from(SPECIAL)))
    return np.array(values, dtype=np.float64)


@settings(max_examples=examples(300), deadline=None)
@given(values=_returns(), data=st.data())
def test_the_figures_are_pandas_rolling_mean_and_variance_to_the_bit(
    values: npt.NDArray[np.float64], data: st.DataObject
) -> None:
    window = data.draw(st.integers(1, len(values) + 2))
    periods = data.draw(st.sampled_from([252.0, 8760.0, 525_600.0, 8760.5]))
    _assert_pandas_bits(values, window, periods)


def test_long_runs_of_market_like_returns_are_pandas_to_the_bit() -> None:
    # a run's series: small returns, a flat stretch (no position), a return of -1 (the
    # equity at zero) and a NaN (a return over zero equity)
    rng = np.random.default_rng(11)
    values = rng.normal(0.0, 0.002, 50_000)
    values[1_000:5_000] = 0.0
    values[20_000] = -1.0
    values[30_000] = np.nan
    values[40_000:40_100] = 1e-9
    for window in (20, 720, 4_000, 8_760):
        _assert_pandas_bits(values, window, 8760.0)


def test_a_window_of_one_value_is_flat_not_a_rounding() -> None:
    # pandas gives a window of equal values that value for mean (not a sum's rounding)
    values = np.array([0.1, 0.3, 0.3, 0.3, 0.3, 0.2] + [1e-17] * 5, dtype=np.float64)
    sharpe, volatility = _ours(values, 3, 4.0)
    assert volatility[4] == 0.0 and math.isnan(sharpe[4])
    _assert_pandas_bits(values, 3, 4.0)
