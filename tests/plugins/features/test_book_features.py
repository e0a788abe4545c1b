"""The order-book features' values on a hand-made book, and their refusals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.domain import Bar, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.book import (
    BookDepthParams,
    BookImbalanceParams,
    SpreadBpsParams,
    build_book_depth,
    build_book_imbalance,
    build_spread_bps,
)
from tradeloom.plugins.protocols_steps import StepContext

CTX = BuildContext("s", Path("."), seed=0)

# Two bars: no snapshot yet, then a book with mid 100 and three levels a side.
LEVELS = {
    "bid_price": [99.95, 99.9, 99.0],
    "bid_size": [2.0, 1.0, 5.0],
    "ask_price": [100.05, 100.2, math.nan],  # a shallow ask side
    "ask_size": [1.0, 4.0, math.nan],
}


def book_bars() -> Bars:
    index = pd.date_range("2024-01-01", periods=2, freq="1h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": 5.0}, index=index
    )
    for field, values in LEVELS.items():
        for level, value in enumerate(values):
            frame[f"book_{field}_{level}"] = [math.nan, value]
    return Bars(frame, "BTC/USDT", "1h", 3600)


def values(feature: object) -> list[float]:
    out = feature.compute(book_bars(), pd.DataFrame())  # type: ignore[attr-defined]
    return out.iloc[:, 0].tolist()


def test_spread_is_in_bps_of_the_mid() -> None:
    feature = build_spread_bps(SpreadBpsParams(), CTX)
    first, second = values(feature)
    assert feature.columns() == ["spread_bps"]
    assert math.isnan(first)
    assert second == pytest.approx(0.1 / 100.0 * 10_000)


def test_imbalance_over_the_top_and_over_several_levels() -> None:
    top = build_book_imbalance(BookImbalanceParams(), CTX)
    deep = build_book_imbalance(BookImbalanceParams(levels=3), CTX)
    assert top.columns() == ["book_imbalance_1"]
    assert values(top)[1] == pytest.approx((2 - 1) / (2 + 1))
    assert values(deep)[1] == pytest.approx((8 - 5) / (8 + 5))  # the missing ask level is empty
    assert math.isnan(values(deep)[0])


def test_depth_counts_the_size_within_the_distance_of_the_mid() -> None:
    within = {
        side: build_book_depth(BookDepthParams(within_bps=25, side=side), CTX)
        for side in ("bid", "ask", "both")
    }
    # mid 100, 25 bps: bids at or above 99.75 (2 + 1), asks at or below 100.25 (1 + 4)
    assert {side: values(f)[1] for side, f in within.items()} == {"bid": 3, "ask": 5, "both": 8}
    assert within["bid"].columns() == ["book_depth_bid_25"]
    half = build_book_depth(BookDepthParams(within_bps=7.5), CTX)
    assert (half.columns(), values(half)[1]) == (["book_depth_both_7p5"], 3.0)


def test_the_per_bar_driver_gives_the_batch_numbers() -> None:
    bars = book_bars()
    feature = build_book_imbalance(BookImbalanceParams(levels=2), CTX)
    step = feature.stepper(StepContext.of(bars))
    rows = bars.frame
    got = [
        step.step(Bar(t, stamp, 100.0, 101.0, 99.0, 100.0, 5.0), {})[0]
        for t, stamp in enumerate(rows.index)
    ]
    assert np.array_equal(got, values(feature), equal_nan=True)


def test_without_a_book_or_with_too_few_levels_the_feature_says_what_to_do() -> None:
    bars = book_bars()
    plain = Bars(bars.frame[["open", "high", "low", "close", "volume"]], "BTC/USDT", "1h", 3600)
    with pytest.raises(
        DataError,
        match=r"^features: spread_bps: the bars have no order book \(book_bid_price_0, \.\.\.\); "
        r"declare data.order_book$",
    ):
        build_spread_bps(SpreadBpsParams(), CTX).compute(plain, pd.DataFrame())
    with pytest.raises(
        DataError,
        match=r"^features: book_imbalance: levels 4 > the 3 levels recorded in data.order_book; "
        r"lower levels or record with --depth 4$",
    ):
        build_book_imbalance(BookImbalanceParams(levels=4), CTX).compute(bars, pd.DataFrame())
    with pytest.raises(DataError, match=r"^features: book_depth: the bars stepped have no order"):
        build_book_depth(BookDepthParams(within_bps=5), CTX).stepper(
            StepContext("BTC/USDT", "1h", 3600)
        )
