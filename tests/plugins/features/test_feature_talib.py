"""Accuracy against TA-Lib, an independent reference: equal within 1e-9 where the
definitions match, and the deliberate differences shown where they do not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from tradeloom.core.kernels.window import rolling_mean_std, rolling_std
from tradeloom.plugins.features.adx import adx
from tradeloom.plugins.features.atr import atr
from tradeloom.plugins.features.bollinger import bb_width
from tradeloom.plugins.features.bollinger_bands import bollinger_bands
from tradeloom.plugins.features.donchian import donchian
from tradeloom.plugins.features.ema import ema
from tradeloom.plugins.features.macd import macd
from tradeloom.plugins.features.obv import obv
from tradeloom.plugins.features.returns import log_return, simple_return
from tradeloom.plugins.features.rsi import rsi
from tradeloom.plugins.features.sma import sma
from tradeloom.plugins.features.stochastic import stochastic
from tradeloom.plugins.features.volatility import volatility
from tradeloom.plugins.features.volume import volume_zscore
from tradeloom.plugins.features.zscore import zscore

TOLERANCE = 1e-9


def random_walk(seed: int, n: int = 5000, level: float = 100.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = level * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.r_[close[0], close[:-1]]
    return {
        "open": opens,
        "high": np.maximum(opens, close) * (1 + np.abs(rng.normal(0, 0.004, n))),
        "low": np.minimum(opens, close) * (1 - np.abs(rng.normal(0, 0.004, n))),
        "close": close,
        "volume": rng.lognormal(5, 1, n),
    }


def assert_close(ours: np.ndarray, reference: np.ndarray) -> None:
    """Equal NaN warm-up, then within 1e-9, relative to the value where it exceeds 1."""
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    valid = ~np.isnan(reference)
    assert valid.sum() > 0
    np.testing.assert_allclose(ours[valid], reference[valid], rtol=TOLERANCE, atol=TOLERANCE)


SEEDS = [0, 1, 2]
LEVELS = [1e-4, 100.0, 3e7]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("window", [2, 14, 30])
def test_rsi(seed: int, window: int) -> None:
    close = random_walk(seed)["close"]
    assert_close(rsi(close, window), talib.RSI(close, window))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("period", [2, 12, 26, 50])
def test_ema(seed: int, level: float, period: int) -> None:
    close = random_walk(seed, level=level)["close"]
    assert_close(ema(close, period) / level, talib.EMA(close, period) / level)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (3, 10, 16), (5, 6, 2)])
def test_macd_line_signal_and_histogram(seed: int, fast: int, slow: int, signal: int) -> None:
    close = random_walk(seed)["close"]
    line, signal_line, hist = macd(close, fast, slow, signal)
    expected_line = talib.EMA(close, fast) - talib.EMA(close, slow)
    assert_close(line, expected_line)
    expected_signal = np.full(len(close), np.nan)
    expected_signal[slow - 1 :] = talib.EMA(expected_line[slow - 1 :], signal)
    assert_close(signal_line, expected_signal)
    assert_close(hist, expected_line - expected_signal)


def test_macd_differs_from_talibs_macd_only_in_its_first_values() -> None:
    # TA-Lib's MACD seeds the fast EMA on the closes that end with the slow EMA's seed;
    # here the fast EMA is the plain EMA. The difference fades as the seeds are forgotten.
    close = random_walk(3)["close"]
    line, signal_line, _ = macd(close, 12, 26, 9)
    talib_line, talib_signal, _ = talib.MACD(close, 12, 26, 9)
    first = np.flatnonzero(~np.isnan(talib_line))[0]
    assert first == 33  # TA-Lib starts at the first signal value; the line here at 25
    assert np.isnan(line[:25]).all() and not np.isnan(line[25:]).any()
    assert abs(line[first] - talib_line[first]) > 1e-4
    np.testing.assert_allclose(line[400:], talib_line[400:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(signal_line[400:], talib_signal[400:], rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("window", [1, 14, 30])
def test_atr(seed: int, level: float, window: int) -> None:
    bars = random_walk(seed, level=level)
    ours = atr(bars["high"], bars["low"], bars["close"], window)
    assert_close(ours / level, talib.ATR(bars["high"], bars["low"], bars["close"], window) / level)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("k_window", "d_window"), [(14, 3), (5, 1), (1, 4)])
def test_stochastic_matches_stochf_with_an_sma(seed: int, k_window: int, d_window: int) -> None:
    bars = random_walk(seed)
    k, d = stochastic(bars["high"], bars["low"], bars["close"], k_window, d_window)
    talib_k, talib_d = talib.STOCHF(
        bars["high"], bars["low"], bars["close"], k_window, d_window, fastd_matype=0
    )
    # TA-Lib starts both at the first %D; %K here starts d_window - 1 bars earlier.
    start = k_window + d_window - 2
    assert np.isnan(k[: k_window - 1]).all() and not np.isnan(k[k_window - 1 :]).any()
    assert_close(k[start:], talib_k[start:])
    assert_close(d, talib_d)


def test_stochastic_without_a_range_is_50_where_talib_gives_0() -> None:
    flat = np.full(10, 5.0)
    k, d = stochastic(flat, flat, flat, 3, 2)
    talib_k, talib_d = talib.STOCHF(flat, flat, flat, 3, 2, fastd_matype=0)
    assert k[2:].tolist() == [50.0] * 8 and d[3:].tolist() == [50.0] * 7
    assert talib_k[3:].tolist() == [0.0] * 7 and talib_d[3:].tolist() == [0.0] * 7


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("window", "k"), [(20, 2.0), (5, 1.0), (50, 3.5)])
def test_bb_width(seed: int, level: float, window: int, k: float) -> None:
    close = random_walk(seed, level=level)["close"]
    upper, middle, lower = talib.BBANDS(close, window, k, k, matype=0)
    assert_close(bb_width(close, window, k), (upper - lower) / middle)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("window", "k"), [(20, 2.0), (5, 1.0), (50, 3.5)])
def test_bollinger_bands(seed: int, level: float, window: int, k: float) -> None:
    close = random_walk(seed, level=level)["close"]
    upper, middle, lower = talib.BBANDS(close, window, k, k, matype=0)
    bands = bollinger_bands(close, window, k)
    for ours, theirs in zip(bands.T, (upper, middle, lower), strict=True):
        assert_close(ours / level, theirs / level)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("window", [2, 10, 24, 60])
def test_rolling_std_is_talibs_population_std(seed: int, level: float, window: int) -> None:
    close = random_walk(seed, level=level)["close"]
    assert_close(rolling_std(close, window, 0) / level, talib.STDDEV(close, window, 1) / level)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("window", [2, 24])
def test_volatility_is_the_sample_std_of_log_returns(seed: int, window: int) -> None:
    close = random_walk(seed)["close"]
    returns = np.log(talib.ROCR(close, 1))
    expected = np.full(len(close), np.nan)
    expected[1:] = talib.STDDEV(returns[1:], window, 1) * math.sqrt(window / (window - 1)) * 3.0
    assert_close(volatility(close, window, 3.0), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("window", [5, 24])
def test_zscores(seed: int, window: int) -> None:
    bars = random_walk(seed)
    values = rsi(bars["close"], 14)
    population = (values - talib.SMA(values, window)) / talib.STDDEV(values, window, 1)
    assert_close(zscore(values, window), population)
    volume = bars["volume"]
    sample = talib.STDDEV(volume, window, 1) * math.sqrt(window / (window - 1))
    assert_close(volume_zscore(volume, window), (volume - talib.SMA(volume, window)) / sample)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [1, 3, 24])
def test_log_returns_and_returns(seed: int, period: int) -> None:
    close = random_walk(seed)["close"]
    assert_close(log_return(close, period), np.log(talib.ROCR(close, period)))
    assert_close(simple_return(close, period), talib.ROC(close, period) / 100)


def test_rsi_of_a_flat_market_is_50_where_talib_gives_0() -> None:
    close = np.r_[np.full(20, 7.0), 8.0]
    ours = rsi(close, 14)
    reference = talib.RSI(close, 14)
    assert ours[14:20].tolist() == [50.0] * 6 and reference[14:20].tolist() == [0.0] * 6
    assert ours[20] == reference[20] == 100.0


def test_a_flat_window_after_a_spike_has_no_residue_unlike_running_sums() -> None:
    # TA-Lib keeps running sums: after the spike leaves the window, the subtraction
    # leaves a residue in the moving average (the middle band). Here each window is
    # summed from its own values: the mean of a flat window is its value, its std 0.
    values = np.r_[1.0, 2.5, 1e6, np.full(12, 1.1)]
    mean, std = rolling_mean_std(values, 3, 0)
    assert mean[5:].tolist() == [1.1] * 10 and std[5:].tolist() == [0.0] * 10
    assert bb_width(values, 3, 2.0)[5:].tolist() == [0.0] * 10
    _, middle, _ = talib.BBANDS(values, 3, 2.0, 2.0, matype=0)
    assert (np.abs(middle[5:] - 1.1) > 1e-12).all()
    assert (np.abs(talib.SMA(values, 3)[5:] - 1.1) > 1e-12).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("window", [1, 2, 20, 50])
def test_sma(seed: int, level: float, window: int) -> None:
    close = random_walk(seed, level=level)["close"]
    assert_close(sma(close, window) / level, talib.SMA(close, window) / level)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", [100.0, 3e7])
@pytest.mark.parametrize("window", [2, 14, 30])
def test_adx(seed: int, level: float, window: int) -> None:
    # at prices near 1e-4 TA-Lib counts a smoothed true range under 1e-8 as zero (its
    # epsilon is absolute); here only 0 is zero (tradeloom.plugins.features.adx)
    bars = random_walk(seed, level=level)
    ours = adx(bars["high"], bars["low"], bars["close"], window)
    assert_close(ours, talib.ADX(bars["high"], bars["low"], bars["close"], window))


@pytest.mark.parametrize("seed", SEEDS)
def test_obv(seed: int) -> None:
    bars = random_walk(seed)
    close = np.round(bars["close"], 1)  # some closes unchanged: their volume is not counted
    assert (np.diff(close) == 0).any()
    assert_close(obv(close, bars["volume"]), talib.OBV(close, bars["volume"]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("window", [2, 20, 55])
def test_donchian_is_max_midprice_min(seed: int, level: float, window: int) -> None:
    bars = random_walk(seed, level=level)
    upper, middle, lower = donchian(bars["high"], bars["low"], window).T
    assert_close(upper / level, talib.MAX(bars["high"], window) / level)
    assert_close(middle / level, talib.MIDPRICE(bars["high"], bars["low"], window) / level)
    assert_close(lower / level, talib.MIN(bars["low"], window) / level)
