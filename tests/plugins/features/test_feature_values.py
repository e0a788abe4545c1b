"""Each feature against a plain-Python reference, on generated and hand-computed series."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.bollinger import BollingerWidthParams, build_bb_width
from tradeloom.plugins.features.lags import LagsParams, build_lags
from tradeloom.plugins.features.returns import LogReturnParams, build_log_return
from tradeloom.plugins.features.rsi import RsiParams, build_rsi, rsi
from tradeloom.plugins.features.volatility import VolatilityParams, build_volatility
from tradeloom.plugins.features.volume import VolumeZScoreParams, build_volume_zscore

CTX = BuildContext("s", Path("."), seed=0)
NAN = math.nan


def make_bars(close: list[float], volume: list[float] | None = None, seconds: int = 3600) -> Bars:
    n = len(close)
    index = pd.date_range("2024-01-01", periods=n, freq=f"{seconds}s", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {
            "open": close,
            "high": close,
            "low": close,
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


# --- properties -------------------------------------------------------------------------

SETTINGS = settings(max_examples=60, deadline=None)


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


@pytest.mark.parametrize(
    ("build", "params", "default", "renamed"),
    [
        (build_log_return, LogReturnParams, "log_return_1", {"period": 1}),
        (build_rsi, RsiParams, "rsi_14", {}),
        (build_bb_width, BollingerWidthParams, "bb_width_20", {}),
        (build_volatility, VolatilityParams, "volatility_24", {}),
        (build_volume_zscore, VolumeZScoreParams, "volume_zscore_24", {}),
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
