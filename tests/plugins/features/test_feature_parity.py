"""One kernel, two drivers: every built-in feature's batch output equals its per-bar
output, bit for bit, on any valid bars.

The suite draws 50 markets and pipelines, a hunt (scripts/hunt.sh) 80; a long run more:
``TRADELOOM_PARITY_EXAMPLES=1000 pytest -p no:xdist tests/plugins/features/test_feature_parity.py``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import tradeloom.plugins.features as features_plugin
from tests.hunting import examples
from tests.plugins.features.llm_stand_in import text_llm_keys
from tradeloom.domain import Bar, Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.cross import CROSS_KINDS
from tradeloom.plugins.protocols import Feature
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext
from tradeloom.text.documents import Documents

COMPONENTS = {c.kind: c for c in features_plugin.tradeloom_components()}

PRICE_EXPONENTS = st.integers(-8, 11)  # prices from 1e-8 to about 1e12


def build_all(pipeline: list[tuple[str, dict[str, Any]]]) -> list[Feature]:
    """Build the features in order, each seeing the columns of those before it."""
    features: list[Feature] = []
    columns: list[str] = []
    for kind, keys in pipeline:
        component = COMPONENTS[kind]
        ctx = BuildContext("s", Path("."), seed=0, feature_columns=tuple(columns))
        feature = component.factory(component.params.model_validate(keys), ctx)
        features.append(feature)
        columns.extend(feature.columns())
    return features


def batch(features: list[Feature], bars: Bars) -> pd.DataFrame:
    """Compute the features in order over all bars, as the backtest does."""
    frame = pd.DataFrame(index=bars.frame.index)
    for feature in features:
        frame = pd.concat([frame, feature.compute(bars, frame).astype(np.float64)], axis=1)
    return frame


def each_bar(bars: Bars) -> list[Bar]:
    frame = bars.frame
    columns = [frame[k].tolist() for k in ("open", "high", "low", "close", "volume")]
    return [
        Bar(t, ts, *row) for t, (ts, *row) in enumerate(zip(frame.index, *columns, strict=True))
    ]


def stepped(features: list[Feature], bars: Bars) -> np.ndarray:
    """Step the features bar by bar, as a live run does."""
    stepper = FeatureStepper(features, StepContext.of(bars))
    rows = [stepper.step(bar) for bar in each_bar(bars)]
    return np.vstack(rows) if rows else np.empty((0, len(stepper.columns)))


def assert_identical(features: list[Feature], bars: Bars) -> None:
    expected = batch(features, bars)
    got = stepped(features, bars)
    values = np.ascontiguousarray(expected.to_numpy(dtype=np.float64))
    assert list(expected.columns) == list(FeatureStepper(features, StepContext.of(bars)).columns)
    assert np.array_equal(values, got, equal_nan=True), (expected, got)
    assert values.tobytes() == got.tobytes()  # NaN payloads and signed zeros too


@st.composite
def market(draw: st.DrawFn) -> Bars:
    """Valid bars: tiny to huge prices, flat stretches, jumps, zero volume, time gaps."""
    n = draw(st.integers(1, 60))
    seconds = draw(st.sampled_from([60, 3600, 86400]))
    flat = draw(st.booleans())
    exponent = draw(PRICE_EXPONENTS)
    closes: list[float] = []
    for t in range(n):
        if t and flat and draw(st.booleans()):
            closes.append(closes[-1])
            continue
        if draw(st.integers(0, 9)) == 0:
            exponent = draw(PRICE_EXPONENTS)  # a jump of many decades
        closes.append(draw(st.integers(1, 999)) * 10.0**exponent)
    spread = st.sampled_from([0.0, 0.0, 1e-12, 1e-4, 0.02, 0.5])
    opens = [closes[0], *closes[:-1]]
    highs = [max(o, c) * (1.0 + draw(spread)) for o, c in zip(opens, closes, strict=True)]
    lows = [min(o, c) / (1.0 + draw(spread)) for o, c in zip(opens, closes, strict=True)]
    volume = st.sampled_from([0.0, 0.0, 1e-3, 1.0, 7.0, 1e9]) if flat else st.floats(0.0, 1e9)
    volumes = [draw(volume) for _ in range(n)]
    steps = [draw(st.sampled_from([1, 1, 1, 2, 7])) for _ in range(n)]  # gaps
    index = pd.DatetimeIndex(
        pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.cumsum(steps) * seconds, "s"),
        name="timestamp",
    )
    # an auxiliary series joined as-of: nothing published at first, then held values
    published = draw(st.integers(0, n))
    aux = [math.nan] * published + [
        draw(st.sampled_from([0.0, -1.5, 2.25, 1e9])) for _ in range(n - published)
    ]
    # a recorded book of three levels joined the same way; a shallow side lacks level 2
    book: dict[str, list[float]] = {}
    sizes = st.sampled_from([0.0, 1e-3, 0.5, 2.0, 1e6])
    for level in range(3):
        for side, sign in (("bid", -1.0), ("ask", 1.0)):
            gap = draw(st.sampled_from([1e-4, 1e-3, 0.02]))
            shallow = level == 2 and draw(st.booleans())
            book[f"book_{side}_price_{level}"] = [
                math.nan if t < published or shallow else c * (1 + sign * gap * (level + 1))
                for t, c in enumerate(closes)
            ]
            book[f"book_{side}_size_{level}"] = [
                math.nan if t < published or shallow else draw(sizes) for t in range(n)
            ]
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": volumes,
            "aux": aux,
            **book,
        },
        index=index,
        dtype=np.float64,
    )
    # documents of a text source: any times around the bars (some published before the
    # first, some after the last, ties), any symbols, texts scored by WORDS
    first = int(index[0].value) - 3 * seconds * 1_000_000_000
    span = (int(index[-1].value) - first) // 1_000_000_000 + 4 * seconds
    count = draw(st.integers(0, 3 * n))
    stamped = sorted(first + draw(st.integers(0, span)) * 1_000_000_000 for _ in range(count))
    delays = [draw(st.sampled_from([0, 1, seconds, 3 * seconds])) * 10**9 for _ in stamped]
    visible = np.asarray(stamped, dtype=np.int64) + np.asarray(delays, dtype=np.int64)
    order = np.argsort(visible, kind="stable")
    words = st.sampled_from(["good", "bad", "not", "news", "good good", "not bad"])
    texts = [draw(words) for _ in stamped]
    about = [draw(st.sampled_from([(), ("TEST",), ("OTHER",)])) for _ in stamped]
    news = Documents(
        ids=tuple(f"d{i}" for i in order),
        stamped_ns=np.asarray(stamped, dtype=np.int64)[order],
        visible_ns=visible[order],
        texts=tuple(texts[i] for i in order),
        titles=("",) * count,
        sources=("",) * count,
        symbols=tuple(about[i] for i in order),
    )
    return Bars(frame, "TEST", f"{seconds}s", seconds, documents={"news": news})


WORDS = Path(__file__).resolve().parents[2] / "fixtures" / "text" / "words.csv"


@st.composite
def pipelines(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    """Every built-in kind, with windows from 1 to past the length of the series."""
    window = st.integers(2, 40)
    fast = draw(st.integers(2, 10))
    pipeline: list[tuple[str, dict[str, Any]]] = [
        ("log_return", {"period": draw(st.integers(1, 5))}),
        ("returns", {"period": draw(st.integers(1, 5)), "name": "ret"}),
        ("rsi", {"window": draw(window), "name": "rsi"}),
        ("bb_width", {"window": draw(window), "std": draw(st.floats(0.1, 4.0)), "name": "bbw"}),
        ("bollinger", {"window": draw(window), "std": draw(st.floats(0.1, 4.0))}),
        ("volatility", {"window": draw(window), "name": "vol"}),
        ("volatility", {"window": draw(window), "annualize": False, "name": "vol_raw"}),
        ("volume_zscore", {"window": draw(window), "name": "vz"}),
        ("ema", {"period": draw(window), "name": "ema"}),
        (
            "macd",
            {
                "fast": fast,
                "slow": fast + draw(st.integers(1, 20)),
                "signal": draw(st.integers(2, 9)),
                "name": "macd",
            },
        ),
        ("atr", {"window": draw(st.integers(1, 30)), "name": "atr"}),
        (
            "stochastic",
            {"k_window": draw(st.integers(1, 30)), "d_window": draw(st.integers(1, 5))},
        ),
        ("sma", {"window": draw(st.integers(1, 40)), "name": "sma"}),
        ("adx", {"window": draw(st.integers(2, 20)), "name": "adx"}),
        ("obv", {}),
        ("donchian", {"window": draw(st.integers(1, 30))}),
        ("vwap", {}),
        ("time_features", {"prefix": "t"}),
        ("zscore", {"of": "rsi", "window": draw(window)}),
        ("zscore", {"of": "ret", "window": draw(window)}),
        ("lags", {"of": ["ret", "rsi", "macd_hist", "vz"], "lags": draw(st.integers(1, 4))}),
        ("series", {"of": "aux"}),
        ("series", {"of": "aux", "transform": "diff"}),
        ("series", {"of": "aux", "transform": "zscore", "window": draw(window)}),
        ("spread_bps", {}),
        ("book_imbalance", {"levels": draw(st.integers(1, 3))}),
        ("book_depth", {"within_bps": draw(st.sampled_from([1, 25, 500])), "side": "both"}),
        ("book_depth", {"within_bps": 40, "side": "ask", "name": "ask_depth"}),
        (
            "lexicon",
            {
                "of": "news",
                "lexicon": str(WORDS),
                "window": draw(st.sampled_from(["1s", "1h", "2d"])),
                "half_life": draw(st.sampled_from([None, "30m", "1d"])),
                "aggregate": draw(st.sampled_from(["mean", "sum"])),
                "scope": draw(st.sampled_from(["symbol", "global"])),
                "empty": draw(st.sampled_from(["zero", "nan"])),
            },
        ),
        (
            "text_llm",
            text_llm_keys(
                window=draw(st.sampled_from(["1s", "1h", "2d"])),
                half_life=draw(st.sampled_from([None, "30m", "1d"])),
                scope=draw(st.sampled_from(["symbol", "global"])),
                empty=draw(st.sampled_from(["zero", "nan"])),
            ),
        ),
        (
            "text_embedding",
            {
                "of": "news",
                "knowledge_cutoff": "2020-01",
                "dimensions": 64,
                "window": draw(st.sampled_from(["1s", "1h", "2d"])),
                "half_life": draw(st.sampled_from([None, "30m", "1d"])),
                "scope": draw(st.sampled_from(["symbol", "global"])),
                "empty": draw(st.sampled_from(["zero", "nan"])),
            },
        ),
    ]
    return pipeline


def test_the_parity_pipeline_covers_every_built_in_kind() -> None:
    # the cross-sectional kinds run over a universe: tests/backtest/test_universe_backtest.py
    expected = set(COMPONENTS) - set(CROSS_KINDS)
    assert {kind for kind, _ in find(pipelines(), lambda _: True)} == expected


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("TRADELOOM_PARITY_EXAMPLES", examples(80))), deadline=None
)
@given(bars=market(), pipeline=pipelines())
def test_batch_and_per_bar_drivers_agree_bit_for_bit(
    bars: Bars, pipeline: list[tuple[str, dict[str, Any]]]
) -> None:
    assert_identical(build_all(pipeline), bars)


def test_drivers_agree_over_many_blocks_of_windows() -> None:
    # Long enough for several blocks of the batch kernels, with windows that use every
    # unrolled width of their sums (8, 4, 2 and 1 terms per pass).
    rng = np.random.default_rng(5)
    n = 2100
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    close[700:760] = close[699]  # a flat stretch
    close[1200] *= 1e6  # a spike, then back
    opens = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) * (1 + rng.random(n) * 0.01),
            "low": np.minimum(opens, close) * (1 - rng.random(n) * 0.01),
            "close": close,
            "volume": np.where(rng.random(n) < 0.1, 0.0, rng.lognormal(3, 1, n)),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp"),
    )
    bars = Bars(frame, "TEST", "1h", 3600)
    pipeline: list[tuple[str, dict[str, Any]]] = []
    for w in (2, 3, 5, 8, 9, 15, 16, 23, 64):
        pipeline += [
            ("bb_width", {"window": w}),
            ("volatility", {"window": w}),
            ("volume_zscore", {"window": w}),
            ("rsi", {"window": w}),
            ("zscore", {"of": f"rsi_{w}", "window": w}),
        ]
    pipeline += [
        ("log_return", {"period": 1}),
        ("returns", {"period": 4}),
        ("ema", {"period": 12}),
        ("macd", {}),
        ("atr", {}),
        ("stochastic", {}),
        ("lags", {"of": ["rsi_15", "log_return_1"], "lags": [1, 2, 24]}),
    ]
    assert_identical(build_all(pipeline), bars)
