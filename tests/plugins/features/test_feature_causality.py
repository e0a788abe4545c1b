"""No look-ahead: changing or dropping the bars after t never moves a feature at t."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeloom.plugins.features as features_plugin
from tests.hunting import examples
from tests.plugins.features.llm_stand_in import text_llm_keys
from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.adx import AdxParams, build_adx
from tradeloom.plugins.features.atr import AtrParams, build_atr
from tradeloom.plugins.features.bollinger import BollingerWidthParams, build_bb_width
from tradeloom.plugins.features.bollinger_bands import BollingerBandsParams, build_bollinger
from tradeloom.plugins.features.book import (
    BookDepthParams,
    BookImbalanceParams,
    SpreadBpsParams,
    build_book_depth,
    build_book_imbalance,
    build_spread_bps,
)
from tradeloom.plugins.features.cross import CROSS_KINDS
from tradeloom.plugins.features.donchian import DonchianParams, build_donchian
from tradeloom.plugins.features.ema import EmaParams, build_ema
from tradeloom.plugins.features.lags import LagsParams, build_lags
from tradeloom.plugins.features.lexicon import LexiconParams, build_lexicon
from tradeloom.plugins.features.macd import MacdParams, build_macd
from tradeloom.plugins.features.obv import ObvParams, build_obv
from tradeloom.plugins.features.returns import (
    LogReturnParams,
    ReturnsParams,
    build_log_return,
    build_returns,
)
from tradeloom.plugins.features.rsi import RsiParams, build_rsi
from tradeloom.plugins.features.series import SeriesParams, build_series
from tradeloom.plugins.features.sessions import (
    TimeFeaturesParams,
    VwapParams,
    build_time_features,
    build_vwap,
)
from tradeloom.plugins.features.sma import SmaParams, build_sma
from tradeloom.plugins.features.stochastic import StochasticParams, build_stochastic
from tradeloom.plugins.features.text_embedding import EmbeddingParams, build_text_embedding
from tradeloom.plugins.features.text_llm import TextLlmParams, build_text_llm
from tradeloom.plugins.features.volatility import VolatilityParams, build_volatility
from tradeloom.plugins.features.volume import VolumeZScoreParams, build_volume_zscore
from tradeloom.plugins.features.zscore import ZScoreParams, build_zscore
from tradeloom.text.documents import Documents

WORDS = Path(__file__).resolve().parents[2] / "fixtures" / "text" / "words.csv"

# Every built-in feature, lags last so it lags the others; small windows so that
# short series get past the warm-up.
PIPELINE = [
    (build_log_return, LogReturnParams(period=1)),
    (build_log_return, LogReturnParams(period=3)),
    (build_returns, ReturnsParams(period=2)),
    (build_rsi, RsiParams(window=3)),
    (build_bb_width, BollingerWidthParams(window=4)),
    (build_bollinger, BollingerBandsParams(window=3)),
    (build_volatility, VolatilityParams(window=3)),
    (build_volume_zscore, VolumeZScoreParams(window=4)),
    (build_ema, EmaParams(period=3)),
    (build_macd, MacdParams(fast=2, slow=3, signal=2)),
    (build_atr, AtrParams(window=2)),
    (build_stochastic, StochasticParams(k_window=3, d_window=2)),
    (build_sma, SmaParams(window=3)),
    (build_adx, AdxParams(window=2)),
    (build_obv, ObvParams()),
    (build_donchian, DonchianParams(window=3)),
    (build_vwap, VwapParams()),
    (build_time_features, TimeFeaturesParams()),
    (build_zscore, ZScoreParams(of="rsi_3", window=3)),
    (build_series, SeriesParams(of="aux", transform="diff")),  # the bars' extra column
    (build_series, SeriesParams(of="aux", transform="zscore", window=3)),
    (build_spread_bps, SpreadBpsParams()),  # the book's columns, joined like "aux"
    (build_book_imbalance, BookImbalanceParams(levels=2)),
    (build_book_depth, BookDepthParams(within_bps=30, side="bid")),
    # the documents beside the bars (a text source), published within each bar
    (build_lexicon, LexiconParams(of="news", lexicon=str(WORDS), window="3h")),
    (
        build_text_embedding,
        EmbeddingParams(
            of="news", knowledge_cutoff="2020-01", dimensions=64, components=None, window="3h"
        ),
    ),
    # an LLM's answers, from a stand-in server answering each text by its words
    (build_text_llm, TextLlmParams.model_validate(text_llm_keys(window="3h"))),
    (
        build_lags,
        LagsParams(
            of=["log_return_1", "rsi_3", "bb_width_4", "volatility_3", "volume_zscore_4"],
            lags=2,
        ),
    ),
]

KINDS = {
    build_log_return: "log_return",
    build_returns: "returns",
    build_rsi: "rsi",
    build_bb_width: "bb_width",
    build_bollinger: "bollinger",
    build_volatility: "volatility",
    build_volume_zscore: "volume_zscore",
    build_ema: "ema",
    build_macd: "macd",
    build_atr: "atr",
    build_stochastic: "stochastic",
    build_sma: "sma",
    build_adx: "adx",
    build_obv: "obv",
    build_donchian: "donchian",
    build_vwap: "vwap",
    build_time_features: "time_features",
    build_zscore: "zscore",
    build_series: "series",
    build_spread_bps: "spread_bps",
    build_book_imbalance: "book_imbalance",
    build_book_depth: "book_depth",
    build_lexicon: "lexicon",
    build_text_embedding: "text_embedding",
    build_text_llm: "text_llm",
    build_lags: "lags",
}


def compute_all(close: np.ndarray, volume: np.ndarray, spread: np.ndarray) -> pd.DataFrame:
    """Build and compute every feature in order, as the engine does."""
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {
            "open": close,
            "high": close * (1 + spread),
            "low": close / (1 + spread),
            "close": close,
            "volume": volume,
            "aux": spread,  # as an auxiliary series joined to the bars
            # a two-level book joined the same way, leaning with the volume
            **{
                f"book_{side}_{field}_{level}": values
                for level in range(2)
                for side, sign in (("bid", -1), ("ask", 1))
                for field, values in (
                    ("price", close * (1 + sign * (spread + 1e-4) * (level + 1) / 4)),
                    ("size", volume ** (0.5 if side == "bid" else 0.25) * (level + 1)),
                )
            },
        },
        index=index,
    )
    bars = Bars(frame, "TEST", "1h", 3600, documents={"news": news(index)})
    features = pd.DataFrame(index=index)
    for build, params in PIPELINE:
        ctx = BuildContext("s", Path("."), seed=0, feature_columns=tuple(features.columns))
        feature = build(params, ctx)
        features = pd.concat([features, feature.compute(bars, features)], axis=1)
    return features


def news(index: pd.DatetimeIndex) -> Documents:
    """A document stamped 20 minutes into each bar, published 10 minutes later; the texts
    do not depend on the bars (they are data of their own)."""
    n = len(index)
    stamped = index.as_unit("ns").asi8 + 20 * 60_000_000_000
    return Documents(
        ids=tuple(f"d{i}" for i in range(n)),
        stamped_ns=stamped,
        visible_ns=stamped + 10 * 60_000_000_000,
        texts=tuple(("good", "bad news", "not good at all")[i % 3] for i in range(n)),
        titles=("",) * n,
        sources=("",) * n,
        symbols=((),) * n,
    )


def test_the_pipeline_holds_every_built_in_kind() -> None:
    kinds = {c.kind for c in features_plugin.tradeloom_components()} - set(CROSS_KINDS)
    assert {KINDS[build] for build, _ in PIPELINE} == kinds  # the cross-sectional: test_cross


positive = st.floats(1e-6, 1e9, allow_nan=False)
spreads = st.floats(0.0, 0.5)


def arrays(draw: st.DrawFn, values: st.SearchStrategy[float], n: int) -> np.ndarray:
    return np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)


@st.composite
def market_and_future(
    draw: st.DrawFn,
) -> tuple[int, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Bars (close, volume, spread), a bar t, and other bars after t."""
    n = draw(st.integers(2, 50))
    t = draw(st.integers(0, n - 2))
    future = n - t - 1
    bars = (arrays(draw, positive, n), arrays(draw, positive, n), arrays(draw, spreads, n))
    other = (
        arrays(draw, positive, future),
        arrays(draw, positive, future),
        arrays(draw, spreads, future),
    )
    return t, bars, other


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a.shape == b.shape and bool(
        np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True)
        and (a.columns == b.columns).all()
    )


@pytest.mark.slow
@settings(max_examples=examples(150), deadline=None)
@given(case=market_and_future())
def test_the_future_never_moves_the_past(case) -> None:
    t, bars, other = case
    full = compute_all(*bars)
    truncated = compute_all(*(a[: t + 1] for a in bars))
    changed = compute_all(
        *(np.concatenate([a[: t + 1], b]) for a, b in zip(bars, other, strict=True))
    )
    assert same(full.iloc[: t + 1], truncated)  # bit for bit
    assert same(full.iloc[: t + 1], changed.iloc[: t + 1])


def test_warm_up_rows_are_nan_and_nothing_else_is() -> None:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    volume = rng.lognormal(3, 0.5, 40)
    features = compute_all(close, volume, np.full(40, 0.01))
    first_value = {column: int(np.flatnonzero(features[column].notna())[0]) for column in features}
    assert first_value == {
        "spread_bps": 0,  # the book is there from the first bar
        "lexicon_score": 0,  # a bar with no document in its window: 0.0 (empty: zero)
        "lexicon_hits": 0,
        "lexicon_count": 0,
        **{f"embedding_dim{i:03d}": 0 for i in range(64)},
        "embedding_count": 0,
        "llm_sentiment": 0,
        "llm_relevance": 0,
        "llm_count": 0,
        "book_imbalance_2": 0,
        "book_depth_bid_30": 0,
        "log_return_1": 1,
        "log_return_3": 3,
        "returns_2": 2,
        "rsi_3": 3,
        "bb_width_4": 3,
        "bb_upper_3": 2,
        "bb_middle_3": 2,
        "bb_lower_3": 2,
        "volatility_3": 3,
        "volume_zscore_4": 3,
        "ema_3": 2,
        "macd_2_3": 2,
        "macd_signal_2_3_2": 3,
        "macd_hist_2_3_2": 3,
        "atr_2": 2,
        "stoch_k_3": 2,
        "stoch_d_3_2": 3,
        "sma_3": 2,
        "adx_2": 3,
        "obv": 0,
        "donchian_upper_3": 2,
        "donchian_middle_3": 2,
        "donchian_lower_3": 2,
        "vwap": 0,
        "hour": 0,
        "weekday": 0,
        "month": 0,
        "session_open": 0,
        "session_close": 0,
        "rsi_3_zscore_3": 5,
        "aux_diff": 1,
        "aux_zscore_3": 2,
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
