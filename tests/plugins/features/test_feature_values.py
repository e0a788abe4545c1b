"""Each feature against a plain-Python reference, on generated and hand-computed series."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.atr import AtrParams, build_atr
from tradeloom.plugins.features.bollinger import BollingerWidthParams, build_bb_width
from tradeloom.plugins.features.ema import EmaParams, build_ema
from tradeloom.plugins.features.lags import LagsParams, build_lags, lag
from tradeloom.plugins.features.macd import MacdParams, build_macd
from tradeloom.plugins.features.returns import (
    LogReturnParams,
    ReturnsParams,
    build_log_return,
    build_returns,
)
from tradeloom.plugins.features.rsi import RsiParams, build_rsi, rsi
from tradeloom.plugins.features.stochastic import StochasticParams, build_stochastic
from tradeloom.plugins.features.volatility import VolatilityParams, build_volatility
from tradeloom.plugins.features.volume import VolumeZScoreParams, build_volume_zscore
from tradeloom.plugins.features.zscore import ZScoreParams, build_zscore

CTX = BuildContext("s", Path("."), seed=0)
NAN = math.nan


def make_bars(
    close: list[float],
    volume: list[float] | None = None,
    seconds: int = 3600,
    high: list[float] | None = None,
    low: list[float] | None = None,
) -> Bars:
    n = len(close)
    index = pd.date_range("2024-01-01", periods=n, freq=f"{seconds}s", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {
            "open": close,
            "high": high if high is not None else close,
            "low": low if low is not None else close,
            "close": close,
            "volume": volume if volume is not None else [1.0] * n,
        },
        index=index,
        dtype=np.float64,
    )
    return Bars(frame, "TEST", f"{seconds}s", seconds)


@st.composite
def series(draw: st.DrawFn, min_size: int = 1, max_size: int = 60) -> list[float]:
    """Positive values k * 10**e: tiny to huge, flat stretches, jumps of many decades."""
    n = draw(st.integers(min_size, max_size))
    small = draw(st.booleans())  # few distinct values: repeats and flat windows
    digits = st.integers(1, 4) if small else st.integers(1, 10**6)
    mixed = draw(st.booleans())
    exponent = draw(st.integers(-6, 3))
    values = []
    for _ in range(n):
        e = draw(st.integers(-6, 3)) if mixed else exponent
        values.append(draw(digits) * 10.0**e)
    return values


@st.composite
def ohlc(draw: st.DrawFn) -> tuple[list[float], list[float], list[float]]:
    """Closes from `series`, with highs and lows around them (some bars without a range)."""
    close = draw(series())
    spread = st.sampled_from([0.0, 0.0, 1e-9, 1e-3, 0.05, 2.0])
    high = [c * (1.0 + draw(spread)) for c in close]
    low = [c / (1.0 + draw(spread)) for c in close]
    return high, low, close


def assert_matches(actual: np.ndarray, expected: list[float], rtol: float = 1e-9) -> None:
    expected_array = np.asarray(expected, dtype=np.float64)
    assert actual.dtype == np.float64
    assert np.array_equal(np.isnan(actual), np.isnan(expected_array)), (actual, expected)
    finite = ~np.isnan(expected_array)
    np.testing.assert_allclose(actual[finite], expected_array[finite], rtol=rtol, atol=1e-12)


def run(feature: object, bars: Bars, features: pd.DataFrame | None = None) -> pd.DataFrame:
    before = pd.DataFrame(index=bars.frame.index) if features is None else features
    out = feature.compute(bars, before)  # type: ignore[attr-defined]
    assert list(out.columns) == feature.columns()  # type: ignore[attr-defined]
    assert out.index.equals(bars.frame.index)
    assert (out.dtypes == np.float64).all()
    return out


# --- references: plain loops, straight from the definitions --------------------------


def ref_log_return(close: list[float], period: int) -> list[float]:
    return [
        NAN if t < period else math.log(close[t] / close[t - period]) for t in range(len(close))
    ]


def ref_rsi(close: list[float], window: int) -> list[float]:
    # TA-Lib ta_RSI.c: seed with the plain average of the first `window` moves, then
    # prev = (prev * (window - 1) + x) / window.
    out = [NAN] * len(close)
    if len(close) <= window:
        return out
    gain = loss = 0.0
    for t in range(1, window + 1):
        move = close[t] - close[t - 1]
        gain += max(move, 0.0)
        loss += max(-move, 0.0)
    gain /= window
    loss /= window
    out[window] = 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss)
    for t in range(window + 1, len(close)):
        move = close[t] - close[t - 1]
        gain = (gain * (window - 1) + max(move, 0.0)) / window
        loss = (loss * (window - 1) + max(-move, 0.0)) / window
        out[t] = 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss)
    return out


def ref_std(values: list[float], ddof: int) -> float:
    mean = sum(values) / len(values)
    if all(v == values[0] for v in values):
        return 0.0
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - ddof))


def ref_bb_width(close: list[float], window: int, k: float) -> list[float]:
    out = []
    for t in range(len(close)):
        if t < window - 1:
            out.append(NAN)
            continue
        values = close[t - window + 1 : t + 1]
        middle = sum(values) / window
        sd = ref_std(values, 0)
        out.append(((middle + k * sd) - (middle - k * sd)) / middle)
    return out


def ref_volatility(close: list[float], window: int, scale: float) -> list[float]:
    out = []
    for t in range(len(close)):
        if t < window:
            out.append(NAN)
            continue
        returns = [math.log(close[i] / close[i - 1]) for i in range(t - window + 1, t + 1)]
        out.append(ref_std(returns, 1) * scale)
    return out


def ref_volume_zscore(volume: list[float], window: int) -> list[float]:
    out = []
    for t in range(len(volume)):
        if t < window - 1:
            out.append(NAN)
            continue
        values = volume[t - window + 1 : t + 1]
        sd = ref_std(values, 1)
        out.append(0.0 if sd == 0 else (volume[t] - sum(values) / window) / sd)
    return out


def ref_returns(close: list[float], period: int) -> list[float]:
    return [NAN if t < period else close[t] / close[t - period] - 1 for t in range(len(close))]


def ref_ema(values: list[float], period: int) -> list[float]:
    # TA-Lib ta_EMA.c: seed with the plain average of the first `period` values.
    out = [NAN] * len(values)
    if len(values) < period:
        return out
    k = 2 / (period + 1)
    average = sum(values[:period]) / period
    out[period - 1] = average
    for t in range(period, len(values)):
        average = (values[t] - average) * k + average
        out[t] = average
    return out


def ref_atr(high: list[float], low: list[float], close: list[float], window: int) -> list[float]:
    # TA-Lib ta_ATR.c: the SMA of the first `window` true ranges (bars 1..window), then Wilder.
    ranges = [
        max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        for t in range(1, len(close))
    ]
    out = [NAN] * len(close)
    if len(ranges) < window:
        return out
    average = sum(ranges[:window]) / window
    out[window] = average
    for t in range(window + 1, len(close)):
        average = (average * (window - 1) + ranges[t - 1]) / window
        out[t] = average
    return out


def ref_stochastic(
    high: list[float], low: list[float], close: list[float], k_window: int, d_window: int
) -> tuple[list[float], list[float]]:
    k = [NAN] * len(close)
    for t in range(k_window - 1, len(close)):
        highest = max(high[t - k_window + 1 : t + 1])
        lowest = min(low[t - k_window + 1 : t + 1])
        k[t] = 50.0 if highest == lowest else 100 * (close[t] - lowest) / (highest - lowest)
    first = k_window - 1 + d_window - 1
    d = [NAN if t < first else sum(k[t - d_window + 1 : t + 1]) / d_window for t in range(len(k))]
    return k, d


def ref_zscore(values: list[float], window: int) -> list[float]:
    out = []
    for t in range(len(values)):
        if t < window - 1:
            out.append(NAN)
            continue
        window_values = values[t - window + 1 : t + 1]
        if any(math.isnan(v) for v in window_values):
            out.append(NAN)
            continue
        sd = ref_std(window_values, 0)
        out.append(0.0 if sd == 0 else (values[t] - sum(window_values) / window) / sd)
    return out


# --- properties -------------------------------------------------------------------------

SETTINGS = settings(max_examples=examples(60), deadline=None)


@SETTINGS
@given(close=series(), period=st.integers(1, 10))
def test_log_return_matches_reference(close: list[float], period: int) -> None:
    feature = build_log_return(LogReturnParams(period=period), CTX)
    out = run(feature, make_bars(close))
    assert_matches(out[f"log_return_{period}"].to_numpy(), ref_log_return(close, period), 1e-12)


@SETTINGS
@given(close=series(), window=st.integers(2, 20))
def test_rsi_matches_reference_and_stays_in_range(close: list[float], window: int) -> None:
    out = run(build_rsi(RsiParams(window=window), CTX), make_bars(close))
    values = out[f"rsi_{window}"].to_numpy()
    assert_matches(values, ref_rsi(close, window))
    finite = values[~np.isnan(values)]
    assert ((finite >= 0) & (finite <= 100)).all()


@SETTINGS
@given(close=series(), window=st.integers(2, 20), k=st.floats(0.1, 4.0))
def test_bb_width_matches_reference(close: list[float], window: int, k: float) -> None:
    out = run(build_bb_width(BollingerWidthParams(window=window, std=k), CTX), make_bars(close))
    assert_matches(out[f"bb_width_{window}"].to_numpy(), ref_bb_width(close, window, k), 1e-7)


@SETTINGS
@given(
    close=series(),
    window=st.integers(2, 20),
    annualize=st.booleans(),
    seconds=st.sampled_from([60, 3600, 86400]),
)
def test_volatility_matches_reference(
    close: list[float], window: int, annualize: bool, seconds: int
) -> None:
    feature = build_volatility(VolatilityParams(window=window, annualize=annualize), CTX)
    out = run(feature, make_bars(close, seconds=seconds))
    scale = math.sqrt(365 * 86400 / seconds) if annualize else 1.0
    expected = ref_volatility(close, window, scale)
    assert_matches(out[f"volatility_{window}"].to_numpy(), expected, 1e-7)


@SETTINGS
@given(volume=series(), window=st.integers(2, 20))
def test_volume_zscore_matches_reference(volume: list[float], window: int) -> None:
    bars = make_bars([1.0] * len(volume), volume)
    out = run(build_volume_zscore(VolumeZScoreParams(window=window), CTX), bars)
    assert_matches(
        out[f"volume_zscore_{window}"].to_numpy(), ref_volume_zscore(volume, window), 1e-7
    )


@SETTINGS
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), max_size=40),
    lags=st.lists(st.integers(1, 45), min_size=1, max_size=4, unique=True),
)
def test_lags_shift_earlier_columns(values: list[float], lags: list[int]) -> None:
    bars = make_bars([1.0] * len(values))
    earlier = pd.DataFrame({"x": values}, index=bars.frame.index, dtype=np.float64)
    ctx = BuildContext("s", Path("."), seed=0, feature_columns=("x",))
    out = run(build_lags(LagsParams(of="x", lags=lags), ctx), bars, earlier)
    for k in lags:
        expected = [NAN if t < k else values[t - k] for t in range(len(values))]
        np.testing.assert_array_equal(out[f"x_lag_{k}"].to_numpy(), np.asarray(expected))


@SETTINGS
@given(close=series(), period=st.integers(1, 10))
def test_returns_match_reference(close: list[float], period: int) -> None:
    out = run(build_returns(ReturnsParams(period=period), CTX), make_bars(close))
    assert_matches(out[f"returns_{period}"].to_numpy(), ref_returns(close, period), 1e-12)


@SETTINGS
@given(close=series(), period=st.integers(2, 20))
def test_ema_matches_reference(close: list[float], period: int) -> None:
    out = run(build_ema(EmaParams(period=period), CTX), make_bars(close))
    assert_matches(out[f"ema_{period}"].to_numpy(), ref_ema(close, period), 1e-12)


@SETTINGS
@given(close=series(), fast=st.integers(2, 8), extra=st.integers(1, 8), signal=st.integers(2, 6))
def test_macd_is_the_difference_of_two_emas_and_its_ema(
    close: list[float], fast: int, extra: int, signal: int
) -> None:
    slow = fast + extra
    out = run(build_macd(MacdParams(fast=fast, slow=slow, signal=signal), CTX), make_bars(close))
    line = [f - s for f, s in zip(ref_ema(close, fast), ref_ema(close, slow), strict=True)]
    signal_line = ([NAN] * (slow - 1) + ref_ema(line[slow - 1 :], signal))[: len(close)]
    hist = [a - b for a, b in zip(line, signal_line, strict=True)]
    line_out, signal_out, hist_out = (out[c].to_numpy() for c in out.columns)
    # The line is a difference of nearly equal EMAs: compare it at the scale of the prices.
    scale = max(close)
    assert_matches(line_out / scale, [v / scale for v in line], 1e-9)
    assert_matches(signal_out / scale, [v / scale for v in signal_line], 1e-9)
    assert_matches(hist_out / scale, [v / scale for v in hist], 1e-9)


@SETTINGS
@given(bars=ohlc(), window=st.integers(1, 20))
def test_atr_matches_reference(bars: tuple, window: int) -> None:
    high, low, close = bars
    out = run(build_atr(AtrParams(window=window), CTX), make_bars(close, high=high, low=low))
    assert_matches(out[f"atr_{window}"].to_numpy(), ref_atr(high, low, close, window), 1e-9)


@SETTINGS
@given(bars=ohlc(), k_window=st.integers(1, 15), d_window=st.integers(1, 5))
def test_stochastic_matches_reference_and_stays_in_range(
    bars: tuple, k_window: int, d_window: int
) -> None:
    high, low, close = bars
    feature = build_stochastic(StochasticParams(k_window=k_window, d_window=d_window), CTX)
    out = run(feature, make_bars(close, high=high, low=low))
    k_ref, d_ref = ref_stochastic(high, low, close, k_window, d_window)
    k, d = (out[c].to_numpy() for c in out.columns)
    assert_matches(k, k_ref, 1e-9)
    assert_matches(d, d_ref, 1e-9)
    for values in (k, d):
        finite = values[~np.isnan(values)]
        assert ((finite >= 0) & (finite <= 100)).all()


@SETTINGS
@given(values=series(), window=st.integers(2, 20), warm_up=st.integers(0, 5))
def test_zscore_matches_reference(values: list[float], window: int, warm_up: int) -> None:
    column = [NAN] * min(warm_up, len(values)) + values[warm_up:]  # an earlier feature's NaNs
    bars = make_bars([1.0] * len(column))
    earlier = pd.DataFrame({"x": column}, index=bars.frame.index, dtype=np.float64)
    ctx = BuildContext("s", Path("."), seed=0, feature_columns=("x",))
    out = run(build_zscore(ZScoreParams(of="x", window=window), ctx), bars, earlier)
    assert_matches(out[f"x_zscore_{window}"].to_numpy(), ref_zscore(column, window), 1e-7)


# --- examples ---------------------------------------------------------------------------


def test_rsi_hand_computed_example() -> None:
    # window 2; moves +1, -0.5, +1, -0.5, +1
    # t=2: gain (1 + 0)/2 = 0.5, loss (0 + 0.5)/2 = 0.25  -> 100 * 0.5 / 0.75   = 200/3
    # t=3: gain (0.5 + 1)/2 = 0.75, loss 0.25/2 = 0.125   -> 100 * 0.75 / 0.875 = 600/7
    # t=4: gain 0.75/2 = 0.375, loss (0.125 + 0.5)/2      -> 100 * 0.375 / 0.6875 = 600/11
    # t=5: gain (0.375 + 1)/2 = 0.6875, loss 0.15625      -> 100 * 0.6875 / 0.84375 = 2200/27
    values = rsi(np.array([10.0, 11.0, 10.5, 11.5, 11.0, 12.0]), 2)
    assert np.isnan(values[:2]).all()
    np.testing.assert_allclose(values[2:], [200 / 3, 600 / 7, 600 / 11, 2200 / 27], rtol=1e-15)


def test_rsi_of_one_way_and_flat_markets() -> None:
    assert rsi(np.arange(1.0, 31.0), 14)[14:].tolist() == [100.0] * 16
    assert rsi(np.arange(30.0, 0.0, -1.0), 14)[14:].tolist() == [0.0] * 16
    assert rsi(np.full(20, 7.0), 14)[14:].tolist() == [50.0] * 6
    assert np.isnan(rsi(np.arange(1.0, 15.0), 14)).all()  # 14 closes: 13 moves, no value


def test_bb_width_example() -> None:
    # closes 1, 2, 3: middle 2, population std sqrt(2/3); width = 2 * 2 * std / middle
    out = run(build_bb_width(BollingerWidthParams(window=3), CTX), make_bars([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(out["bb_width_3"].to_numpy()[2], 2 * math.sqrt(2 / 3), rtol=1e-15)


def test_volume_zscore_of_flat_volume_is_zero_after_warm_up() -> None:
    bars = make_bars([1.0] * 6, [5.0, 5.0, 5.0, 5.0, 8.0, 8.0])
    out = run(build_volume_zscore(VolumeZScoreParams(window=3), CTX), bars)
    expected = [NAN, NAN, 0.0, 0.0, (8 - 6) / math.sqrt(3), (8 - 7) / math.sqrt(3)]
    assert_matches(out["volume_zscore_3"].to_numpy(), expected, 1e-15)


def test_volatility_annualizes_from_the_bars_timeframe() -> None:
    close = [100.0, 101.0, 99.0, 102.0, 103.0]
    raw = run(build_volatility(VolatilityParams(window=3, annualize=False), CTX), make_bars(close))
    yearly = run(build_volatility(VolatilityParams(window=3), CTX), make_bars(close))
    ratio = yearly["volatility_3"].to_numpy()[3:] / raw["volatility_3"].to_numpy()[3:]
    np.testing.assert_allclose(ratio, math.sqrt(8760), rtol=1e-12)
    assert np.isnan(raw["volatility_3"].to_numpy()[:3]).all()


def test_rolling_std_of_a_flat_window_after_a_spike_is_exactly_zero() -> None:
    # A running-sum implementation leaves a residue here once the spike leaves the window.
    close = [1e9] + [0.1] * 30
    out = run(build_bb_width(BollingerWidthParams(window=5), CTX), make_bars(close))
    assert out["bb_width_5"].to_numpy()[5:].tolist() == [0.0] * 26


def test_ema_hand_computed_example() -> None:
    # period 3, k = 0.5: seed (1 + 2 + 3) / 3 = 2, then (10 - 2) * 0.5 + 2 = 6, (0 - 6) * 0.5 + 6
    out = run(build_ema(EmaParams(period=3), CTX), make_bars([1.0, 2.0, 3.0, 10.0, 0.0]))
    assert_matches(out["ema_3"].to_numpy(), [NAN, NAN, 2.0, 6.0, 3.0], 0.0)


def test_atr_hand_computed_example() -> None:
    # true ranges from bar 1: max(12 - 9, |12 - 10|, |9 - 10|) = 3, then
    # max(11 - 10, |11 - 11|, |10 - 11|) = 1, then max(15 - 14, |15 - 10.5|, |14 - 10.5|) = 4.5
    close = [10.0, 11.0, 10.5, 14.5]
    bars = make_bars(close, high=[10.0, 12.0, 11.0, 15.0], low=[10.0, 9.0, 10.0, 14.0])
    out = run(build_atr(AtrParams(window=2), CTX), bars)
    # window 2: seed (3 + 1) / 2 = 2, then 2 * 0.5 + 4.5 * 0.5 = 3.25
    assert_matches(out["atr_2"].to_numpy(), [NAN, NAN, 2.0, 3.25], 0.0)


def test_stochastic_of_a_bar_range_and_of_no_range() -> None:
    # k_window 2: range of bars 0-1 is 8 .. 12 and the close 11 sits at 75%; bars 2-3 have
    # no range at all: %K is 50 there. %D averages the last 2 values of %K.
    close = [10.0, 11.0, 9.0, 9.0]
    bars = make_bars(close, high=[12.0, 11.0, 9.0, 9.0], low=[8.0, 10.0, 9.0, 9.0])
    out = run(build_stochastic(StochasticParams(k_window=2, d_window=2), CTX), bars)
    assert_matches(out["stoch_k_2"].to_numpy(), [NAN, 75.0, 0.0, 50.0], 0.0)
    assert_matches(out["stoch_d_2_2"].to_numpy(), [NAN, NAN, 37.5, 25.0], 0.0)


def test_zscore_of_a_flat_window_is_zero_and_a_window_with_nan_is_nan() -> None:
    values = [NAN, 2.0, 2.0, 2.0, 5.0, 2.0]
    bars = make_bars([1.0] * len(values))
    earlier = pd.DataFrame({"x": values}, index=bars.frame.index, dtype=np.float64)
    ctx = BuildContext("s", Path("."), seed=0, feature_columns=("x",))
    out = run(build_zscore(ZScoreParams(of="x", window=3), ctx), bars, earlier)
    # window 2, 5, 2 -> mean 3, population std sqrt(2): (2 - 3) / sqrt(2)
    expected = [NAN, NAN, NAN, 0.0, 2 / math.sqrt(2), -1 / math.sqrt(2)]
    assert_matches(out["x_zscore_3"].to_numpy(), expected, 1e-15)


def test_lag_shifts_one_series() -> None:
    assert_matches(lag(np.array([1.0, 2.0, 3.0]), 2), [NAN, NAN, 1.0], 0.0)
    assert_matches(lag(np.array([1.0, 2.0]), 3), [NAN, NAN], 0.0)


@pytest.mark.parametrize(
    ("build", "params", "default", "renamed"),
    [
        (build_log_return, LogReturnParams, "log_return_1", {"period": 1}),
        (build_returns, ReturnsParams, "returns_1", {}),
        (build_rsi, RsiParams, "rsi_14", {}),
        (build_bb_width, BollingerWidthParams, "bb_width_20", {}),
        (build_volatility, VolatilityParams, "volatility_24", {}),
        (build_volume_zscore, VolumeZScoreParams, "volume_zscore_24", {}),
        (build_ema, EmaParams, "ema_20", {}),
        (build_atr, AtrParams, "atr_14", {}),
    ],
)
def test_default_column_names_and_renaming(build, params, default: str, renamed: dict) -> None:
    assert build(params(**renamed), CTX).columns() == [default]
    feature = build(params(name="mine", **renamed), CTX)
    assert feature.columns() == ["mine"]
    assert list(run(feature, make_bars([float(i + 1) for i in range(30)])).columns) == ["mine"]


def test_lags_columns_are_column_by_column_then_lag_by_lag() -> None:
    ctx = BuildContext("s", Path("."), seed=0, feature_columns=("log_return_1", "rsi_14"))
    feature = build_lags(LagsParams(of=["log_return_1", "rsi_14"], lags=[1, 3]), ctx)
    assert feature.columns() == [
        "log_return_1_lag_1",
        "log_return_1_lag_3",
        "rsi_14_lag_1",
        "rsi_14_lag_3",
    ]
    assert build_lags(LagsParams(of="rsi_14", lags=3), ctx).columns() == [
        "rsi_14_lag_1",
        "rsi_14_lag_2",
        "rsi_14_lag_3",
    ]
