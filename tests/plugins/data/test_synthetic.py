"""The synthetic market: reproducible, plausible bars, varied regimes, weak structure."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.synthetic import (
    REGIMES,
    SyntheticMarket,
    SyntheticParams,
    SyntheticSource,
    build_synthetic,
    simulate,
)
from tradeloom.plugins.protocols import DataSource
from tradeloom.time.timeframes import parse_timeframe


@cache
def market(seed: int = 42, bars: int = 20000) -> SyntheticMarket:
    return simulate(SyntheticParams(bars=bars), seed)


def test_defaults_match_the_documented_keys() -> None:
    params = SyntheticParams()
    assert params.model_dump() == {
        "symbol": "BTC/USDT",
        "symbols": None,
        "correlation": 0.5,
        "timeframe": "1h",
        "bars": 20000,
        "start": "2023-01-01T00:00:00Z",
        "initial_price": 20000.0,
        "volatility": 0.6,
        "regime_bars": 500,
        "validation": "reject",
        "seed_offset": 0,
        "auxiliary": [],
        "order_book": None,
    }


@pytest.mark.parametrize(
    ("keys", "location", "text"),
    [
        ({"bars": 99}, ("bars",), "greater than or equal to 100"),
        ({"initial_price": 0}, ("initial_price",), "greater than 0"),
        ({"volatility": -0.1}, ("volatility",), "greater than 0"),
        ({"regime_bars": 5}, ("regime_bars",), "greater than or equal to 10"),
        ({"timeframe": "1hour"}, ("timeframe",), "timeframe must be a number and a unit"),
        ({"start": "yesterday"}, ("start",), "must be a UTC timestamp such as"),
        ({"validation": "fix"}, ("validation",), "'reject' or 'repair'"),
        ({"bars": True}, ("bars",), "valid integer"),
        ({"seeds": 1}, ("seeds",), "Extra inputs are not permitted"),
    ],
)
def test_bad_keys_are_refused(keys: dict, location: tuple, text: str) -> None:
    with pytest.raises(ValidationError) as info:
        SyntheticParams(**keys)
    error = info.value.errors()[0]
    assert error["loc"] == location
    assert text in error["msg"]


def test_same_seed_gives_identical_bytes() -> None:
    params = SyntheticParams(bars=3000)
    first, second = simulate(params, 7), simulate(params, 7)
    assert first.frame.to_numpy().tobytes() == second.frame.to_numpy().tobytes()
    assert first.frame.index.equals(second.frame.index)
    assert np.array_equal(first.regimes, second.regimes)
    ctx = BuildContext("s", Path("."), seed=7)
    loaded = build_synthetic(params, ctx).load().frame
    assert loaded.to_numpy().tobytes() == first.frame.to_numpy().tobytes()


def test_another_seed_or_offset_gives_another_market() -> None:
    base = simulate(SyntheticParams(bars=500), 7).frame
    other = simulate(SyntheticParams(bars=500), 8).frame
    offset = simulate(SyntheticParams(bars=500, seed_offset=1), 7).frame
    assert not np.allclose(base["close"], other["close"])
    # The source is seeded by seed + seed_offset.
    assert offset.to_numpy().tobytes() == other.to_numpy().tobytes()


def test_fewer_bars_give_a_prefix_of_the_same_market() -> None:
    long, short = simulate(SyntheticParams(bars=4000), 3), simulate(SyntheticParams(bars=1500), 3)
    assert long.frame.iloc[:1500].to_numpy().tobytes() == short.frame.to_numpy().tobytes()
    assert np.array_equal(long.regimes[:1500], short.regimes)


def test_source_returns_validated_bars() -> None:
    params = SyntheticParams(bars=500, symbol="ETH/USDT", timeframe="15m")
    source = build_synthetic(params, BuildContext("s", Path("."), seed=1))
    assert isinstance(source, DataSource)
    bars = source.load()
    assert (bars.symbol, bars.timeframe, bars.timeframe_seconds) == ("ETH/USDT", "15m", 900)
    assert list(bars.frame.columns) == ["open", "high", "low", "close", "volume"]
    assert bars.repaired == () and bars.gaps == ()
    assert bars.frame.index[0] == pd.Timestamp("2023-01-01T00:00:00Z")
    assert (bars.frame.index[1:] - bars.frame.index[:-1] == pd.Timedelta(minutes=15)).all()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(-(2**63), 2**63 - 1),
    bars=st.integers(100, 800),
    timeframe=st.sampled_from(["1s", "1m", "5m", "1h", "4h", "1d", "1w"]),
    volatility=st.floats(0.01, 5.0),
    initial_price=st.floats(1e-4, 1e7),
    regime_bars=st.integers(10, 2000),
    start=st.sampled_from(["2023-01-01T00:00:00Z", "2020-02-29 13:37", "2024-06-01T00:00+02:00"]),
)
def test_bars_are_plausible_for_any_seed_and_size(
    seed, bars, timeframe, volatility, initial_price, regime_bars, start
) -> None:
    params = SyntheticParams(
        bars=bars,
        timeframe=timeframe,
        volatility=volatility,
        initial_price=initial_price,
        regime_bars=regime_bars,
        start=start,
    )
    result = simulate(params, seed)
    frame = result.frame
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert len(frame) == bars and frame.dtypes.eq(np.float64).all()
    assert np.isfinite(frame.to_numpy()).all()
    assert (o > 0).all() and (lo > 0).all() and (v > 0).all()
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (h > lo).all()
    # Opens follow the previous close closely (a small gap, not a jump).
    gaps = np.abs(np.log(o[1:] / c[:-1]))
    moves = np.abs(np.diff(np.log(c)))
    assert np.median(gaps) < np.median(moves)
    first = pd.Timestamp(start)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    assert frame.index[0] == first
    step = pd.Timedelta(seconds=parse_timeframe(timeframe))
    assert (np.diff(frame.index.asi8) == step.value).all()
    assert set(np.unique(result.regimes)) <= set(range(len(REGIMES)))
    # It passes its own validation.
    SyntheticSource(params, seed).load()


def test_annualized_volatility_is_about_the_requested_one() -> None:
    for volatility in (0.3, 0.6):
        frame = simulate(SyntheticParams(bars=20000, volatility=volatility), 11).frame
        realized = np.diff(np.log(frame["close"].to_numpy())).std() * np.sqrt(24 * 365)
        assert volatility * 0.75 < realized < volatility * 1.3


def _by_regime(result: SyntheticMarket) -> pd.DataFrame:
    close = result.frame["close"].to_numpy()
    returns = np.diff(np.log(close))
    regime = result.regimes[1:]
    volume = np.log(result.frame["volume"].to_numpy()[1:])
    rows = {}
    for code, name in enumerate(REGIMES):
        r = returns[regime == code]
        same = (regime[1:] == code) & (regime[:-1] == code)
        rows[name] = {
            "share": len(r) / len(returns),
            "vol": r.std(),
            "mean": r.mean(),
            "autocorr": np.corrcoef(returns[1:][same], returns[:-1][same])[0, 1],
            "kurtosis": pd.Series(r).kurt(),
            "log_volume": volume[regime == code].mean(),
        }
    return pd.DataFrame(rows).T


@pytest.mark.parametrize("seed", [42, 5])
def test_regimes_differ_in_volatility_drift_and_autocorrelation(seed: int) -> None:
    stats = _by_regime(market(seed))
    assert (stats["share"] > 0.05).all()
    assert stats.loc["volatile", "vol"] > 1.6 * stats.loc["mean_revert", "vol"]
    assert stats.loc["volatile", "vol"] > 1.4 * stats.loc["trend_up", "vol"]
    assert stats.loc["volatile", "kurtosis"] > stats.loc["mean_revert", "kurtosis"]
    assert stats.loc["trend_up", "mean"] > 0 > stats.loc["trend_down", "mean"]
    assert stats.loc["mean_revert", "autocorr"] < stats.loc["trend_up", "autocorr"] - 0.03
    assert stats.loc["mean_revert", "autocorr"] < stats.loc["trend_down", "autocorr"] - 0.03
    assert stats.loc["volatile", "log_volume"] > stats.loc["mean_revert", "log_volume"]


def test_regimes_switch_often_and_last_about_regime_bars() -> None:
    regimes = market().regimes
    lengths = np.diff(np.flatnonzero(np.diff(regimes) != 0))
    assert 25 <= len(lengths) <= 80  # 20000 bars of regimes around 500 bars
    assert 250 < np.median(lengths) < 800
    assert lengths.min() >= 10


def test_volume_rises_with_the_size_of_the_move() -> None:
    frame = market().frame
    move = np.abs(np.diff(np.log(frame["close"].to_numpy())))
    volume = np.log(frame["volume"].to_numpy()[1:])
    assert np.corrcoef(move, volume)[0, 1] > 0.2


@pytest.mark.parametrize("seed", [42, 3])
def test_structure_is_learnable_but_weak(seed: int) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score

    from tradeloom.plugins.features.rsi import rsi

    close = market(seed).frame["close"].to_numpy()
    log_close = np.log(close)
    horizon = 4
    columns = [np.full(len(close), np.nan) for _ in range(5)]
    columns[0][1:] = np.diff(log_close)
    columns[1][2:] = columns[0][1:-1]
    columns[2][24:] = log_close[24:] - log_close[:-24]
    columns[3] = rsi(close, 14)
    columns[4][1:] = columns[3][:-1]
    features = np.column_stack(columns)
    up = np.zeros(len(close))
    up[:-horizon] = log_close[horizon:] > log_close[:-horizon]
    scores, labels = [], []
    # Walk forward: train on 4000 bars, purge the horizon, predict the next 2000.
    for start in range(4100, len(close) - 2000, 2000):
        train = np.arange(start - 4000, start - horizon)
        train = train[~np.isnan(features[train]).any(axis=1)]
        model = RandomForestClassifier(
            n_estimators=60, max_depth=5, min_samples_leaf=20, random_state=0, n_jobs=2
        ).fit(features[train], up[train])
        test = np.arange(start, start + 2000)
        scores.append(model.predict_proba(features[test])[:, 1])
        labels.append(up[test])
    auc = roc_auc_score(np.concatenate(labels), np.concatenate(scores))
    assert 0.51 < auc < 0.6


def test_an_explosive_walk_stays_within_the_prices_validation_accepts() -> None:
    # 400% a year on weekly bars from 10,000,000 leaves 1e12 without the mirror
    params = SyntheticParams(bars=800, timeframe="1w", volatility=5.0, initial_price=1e7)
    tops = []
    for seed in range(8):
        SyntheticSource(params, seed).load()  # validated: no price above MAX_PRICE
        tops.append(simulate(params, seed).frame["high"].max())
    assert max(tops) > 1e8  # the walks do run far up
