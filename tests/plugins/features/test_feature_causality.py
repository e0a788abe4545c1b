"""No look-ahead: changing or dropping the bars after t never moves a feature at t."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.bollinger import BollingerWidthParams, build_bb_width
from tradeloom.plugins.features.lags import LagsParams, build_lags
from tradeloom.plugins.features.returns import LogReturnParams, build_log_return
from tradeloom.plugins.features.rsi import RsiParams, build_rsi
from tradeloom.plugins.features.volatility import VolatilityParams, build_volatility
from tradeloom.plugins.features.volume import VolumeZScoreParams, build_volume_zscore

# Every built-in feature, lags last so it lags the others; small windows so that
# short series get past the warm-up.
PIPELINE = [
    (build_log_return, LogReturnParams(period=1)),
    (build_log_return, LogReturnParams(period=3)),
    (build_rsi, RsiParams(window=3)),
    (build_bb_width, BollingerWidthParams(window=4)),
    (build_volatility, VolatilityParams(window=3)),
    (build_volume_zscore, VolumeZScoreParams(window=4)),
    (
        build_lags,
        LagsParams(
            of=["log_return_1", "rsi_3", "bb_width_4", "volatility_3", "volume_zscore_4"],
            lags=2,
        ),
    ),
]


def compute_all(close: np.ndarray, volume: np.ndarray) -> pd.DataFrame:
    """Build and compute every feature in order, as the engine does."""
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": volume},
        index=index,
    )
    bars = Bars(frame, "TEST", "1h", 3600)
    features = pd.DataFrame(index=index)
    for build, params in PIPELINE:
        ctx = BuildContext("s", Path("."), seed=0, feature_columns=tuple(features.columns))
        feature = build(params, ctx)
        features = pd.concat([features, feature.compute(bars, features)], axis=1)
    return features


positive = st.floats(1e-6, 1e9, allow_nan=False)


@st.composite
def market_and_future(
    draw: st.DrawFn,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 50))
    close = np.array(draw(st.lists(positive, min_size=n, max_size=n)))
    volume = np.array(draw(st.lists(positive, min_size=n, max_size=n)))
    t = draw(st.integers(0, n - 2))
    future = n - t - 1
    other_close = np.array(draw(st.lists(positive, min_size=future, max_size=future)))
    other_volume = np.array(draw(st.lists(positive, min_size=future, max_size=future)))
    return close, volume, t, other_close, other_volume


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a.shape == b.shape and bool(
        np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True)
        and (a.columns == b.columns).all()
    )


@settings(max_examples=150, deadline=None)
@given(case=market_and_future())
def test_the_future_never_moves_the_past(case) -> None:
    close, volume, t, other_close, other_volume = case
    full = compute_all(close, volume)
    truncated = compute_all(close[: t + 1], volume[: t + 1])
    changed = compute_all(
        np.concatenate([close[: t + 1], other_close]),
        np.concatenate([volume[: t + 1], other_volume]),
    )
    assert same(full.iloc[: t + 1], truncated)  # bit for bit
    assert same(full.iloc[: t + 1], changed.iloc[: t + 1])


def test_warm_up_rows_are_nan_and_nothing_else_is() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    volume = rng.lognormal(3, 0.5, 40)
    features = compute_all(close, volume)
    first_value = {column: int(np.flatnonzero(features[column].notna())[0]) for column in features}
    assert first_value == {
        "log_return_1": 1,
        "log_return_3": 3,
        "rsi_3": 3,
        "bb_width_4": 3,
        "volatility_3": 3,
        "volume_zscore_4": 3,
        "log_return_1_lag_1": 2,
        "log_return_1_lag_2": 3,
        "rsi_3_lag_1": 4,
        "rsi_3_lag_2": 5,
        "bb_width_4_lag_1": 4,
        "bb_width_4_lag_2": 5,
        "volatility_3_lag_1": 4,
        "volatility_3_lag_2": 5,
        "volume_zscore_4_lag_1": 4,
        "volume_zscore_4_lag_2": 5,
    }
    for column, first in first_value.items():
        assert features[column].iloc[first:].notna().all(), column
