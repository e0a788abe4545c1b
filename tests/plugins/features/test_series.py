"""The ``series`` feature: a column of the bars (an auxiliary series) as a feature column."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.domain import Bar, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.features.series import SeriesParams, build_series, transform_series
from tradeloom.plugins.features.zscore import zscore
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext

NAN = math.nan


def make_bars(n: int = 60) -> Bars:
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    mood = np.repeat(rng.normal(size=n // 6), 6)  # changes every 6 bars, as a joined series
    mood[:7] = np.nan  # nothing published yet
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0, "mood": mood},
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp"),
    )
    return Bars(frame, "TEST", "1h", 3600)


def ctx(*columns: str) -> BuildContext:
    return BuildContext("s", Path("."), seed=0, feature_columns=columns)


def bars_of(bars: Bars) -> list[Bar]:
    f = bars.frame
    return [
        Bar(t, ts, *(float(f[k].iloc[t]) for k in ("open", "high", "low", "close", "volume")))
        for t, ts in enumerate(f.index)
    ]


def test_transforms_have_their_columns_and_values() -> None:
    x = np.array([NAN, 1.0, 3.0, 2.0, 2.0])
    np.testing.assert_array_equal(transform_series(x, "level", 2), x)
    np.testing.assert_array_equal(transform_series(x, "diff", 2), [NAN, NAN, 2.0, -1.0, 0.0])
    np.testing.assert_array_equal(transform_series(x, "zscore", 3), zscore(x, 3))
    assert SeriesParams(of="mood").column() == "mood"
    assert SeriesParams(of="mood", transform="diff").column() == "mood_diff"
    assert SeriesParams(of="mood", transform="zscore", window=5).column() == "mood_zscore_5"
    assert SeriesParams(of="mood", name="m").column() == "m"


@pytest.mark.parametrize("transform", ["level", "diff", "zscore"])
def test_the_per_bar_driver_gives_the_batch_numbers_bit_for_bit(transform: str) -> None:
    bars = make_bars()
    feature = build_series(SeriesParams(of="mood", transform=transform, window=8), ctx())
    batch = feature.compute(bars, pd.DataFrame(index=bars.frame.index)).to_numpy()[:, 0]
    stepper = FeatureStepper([feature], StepContext.of(bars))
    stepped = np.array([stepper.step(bar)[0] for bar in bars_of(bars)])
    np.testing.assert_array_equal(stepped, batch)
    assert np.isfinite(batch).sum() > 20


def test_a_column_the_bars_lack_is_a_data_error_naming_the_remedy() -> None:
    bars = make_bars()
    feature = build_series(SeriesParams(of="sentiment"), ctx())
    with pytest.raises(DataError) as info:
        feature.compute(bars, pd.DataFrame(index=bars.frame.index))
    assert str(info.value) == (
        "features: series of 'sentiment': the bars have no such column (its extra columns: "
        "mood); declare the series under data.auxiliary"
    )
    live = StepContext("TEST", "1h", 3600)  # a paper or live run's context: no extra columns
    with pytest.raises(DataError, match=r"^features: series of 'mood': the bars stepped have"):
        build_series(SeriesParams(of="mood"), ctx()).stepper(live)


def test_its_column_must_be_new() -> None:
    with pytest.raises(ParamError) as info:
        build_series(SeriesParams(of="mood"), ctx("mood"))
    assert info.value.key == "name"
