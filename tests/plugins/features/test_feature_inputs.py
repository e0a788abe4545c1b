"""Every built-in feature declares the columns of the bars it reads (`ReadsColumns`), and
validation refuses data without one, by one rule (`tradeloom.engine.feature_inputs`).

The declarations are proven, not listed: each column of the bars is changed in turn and a
feature's values must move exactly when it declares that column. A new built-in that
reads volume without saying so fails here, before a user's run trains nothing on NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.plugins.features.llm_stand_in import text_llm_keys
from tradeloom.domain import OHLCV, Bars
from tradeloom.engine.informative import InformativePair
from tradeloom.engine.timeframe import HigherTimeframe
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features import tradeloom_components
from tradeloom.plugins.protocols import CrossSectionalFeature, ReadsColumns, input_columns_of
from tradeloom.text.documents import Documents

REQUIRED = {
    "zscore": {"of": "x"},
    "lags": {"of": ["x"], "lags": [1]},
    "series": {"of": "aux"},
    "cross_rank": {"of": "x"},
    "cross_zscore": {"of": "x"},
    "cross_mean": {"of": "x"},
    "book_depth": {"within_bps": 10},
    "lexicon": {
        "of": "news",
        "lexicon": str(Path(__file__).resolve().parents[2] / "fixtures" / "text" / "words.csv"),
    },
    "text_embedding": {"of": "news", "knowledge_cutoff": "2020-01", "dimensions": 64},
    "text_llm": text_llm_keys(),
}
"""The keys a kind needs: ``x`` is an earlier feature's column, ``aux`` one beside OHLCV."""

BOOK = {"spread_bps", "book_imbalance", "book_depth"}
"""They read the recorded order book (``data.order_book``), whose levels their own rule
checks (`BookFeature.check_depth`); they declare no column of the bars."""

COMPONENTS = {c.kind: c for c in tradeloom_components()}


def _bars(seed: int = 0, n: int = 120) -> Bars:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n)),
            "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n)),
            "close": close,
            "volume": rng.lognormal(3, 1, n),
            "aux": rng.normal(0, 1, n),
        },
        index=index,
    )
    stamped = index.as_unit("ns").asi8[::3] + 60_000_000_000
    news = Documents(
        ids=tuple(f"d{i}" for i in range(len(stamped))),
        stamped_ns=stamped,
        visible_ns=stamped,
        texts=tuple(("good", "not bad", "bad")[i % 3] for i in range(len(stamped))),
        titles=("",) * len(stamped),
        sources=("",) * len(stamped),
        symbols=((),) * len(stamped),
    )
    return Bars(frame, "T", "1h", 3600, documents={"news": news})


def _built(kind: str) -> object:
    component = COMPONENTS[kind]
    params = component.params.model_validate(REQUIRED.get(kind, {}))
    return component.factory(params, BuildContext("s", Path("."), 0, ("x",)))


def _values(feature: object, bars: Bars) -> np.ndarray:
    earlier = pd.DataFrame({"x": np.linspace(-1.0, 1.0, len(bars))}, index=bars.frame.index)
    return np.asarray(feature.compute(bars, earlier), dtype=np.float64)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kind", sorted(k for k in COMPONENTS if k not in BOOK and not k.startswith("cross_"))
)
def test_a_feature_moves_with_exactly_the_columns_it_declares(kind: str) -> None:
    feature = _built(kind)
    assert isinstance(feature, ReadsColumns), f"{kind} does not declare what it reads"
    bars = _bars()
    before = _values(feature, bars)
    moved = []
    for column in (*OHLCV, "aux"):
        frame = bars.frame.copy()
        frame[column] = frame[column] * np.random.default_rng(1).uniform(0.5, 1.5, len(frame))
        changed = Bars(
            frame, bars.symbol, bars.timeframe, bars.timeframe_seconds, documents=bars.documents
        )
        if not np.array_equal(_values(feature, changed), before, equal_nan=True):
            moved.append(column)
    assert sorted(input_columns_of(feature)) == sorted(moved)


@pytest.mark.parametrize("kind", sorted(k for k in COMPONENTS if k.startswith("cross_")))
def test_a_cross_sectional_feature_reads_features_not_bars(kind: str) -> None:
    feature = _built(kind)
    assert isinstance(feature, CrossSectionalFeature)
    assert input_columns_of(feature) == ()


def test_the_volume_readers_are_the_ones_the_issue_named_and_no_list_says_so() -> None:
    readers = sorted(
        kind
        for kind in COMPONENTS
        if kind not in BOOK and "volume" in input_columns_of(_built(kind))
    )
    assert readers == ["obv", "volume_zscore", "vwap"]


def test_a_feature_on_a_higher_timeframe_or_another_market_reads_what_its_inner_reads() -> None:
    obv = _built("obv")
    assert input_columns_of(HigherTimeframe(obv, "4h")) == ("close", "volume")  # type: ignore[arg-type]
    assert input_columns_of(InformativePair(obv, "ETH/USDT")) == ("close", "volume")  # type: ignore[arg-type]
