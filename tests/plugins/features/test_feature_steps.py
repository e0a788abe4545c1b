"""The per-bar driver: FeatureStepper's rows, what each step sees, and features without
a step kernel of their own (driven by recomputing them over the history)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.domain import Bar, Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.features.lags import LagsParams, build_lags
from tradeloom.plugins.features.returns import LogReturnParams, build_log_return
from tradeloom.plugins.features.rsi import RsiParams, build_rsi
from tradeloom.plugins.features.volatility import VolatilityParams, build_volatility
from tradeloom.plugins.protocols import Feature
from tradeloom.plugins.protocols_steps import (
    ComputeStep,
    FeatureStep,
    FeatureStepper,
    StepContext,
    SteppedFeature,
)

NAN = math.nan


def make_bars(n: int = 40, seed: int = 0) -> Bars:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    frame = pd.DataFrame(
        {
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.lognormal(3, 0.5, n),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="4h", tz="UTC", name="timestamp"),
    )
    return Bars(frame, "TEST", "4h", 4 * 3600)


def each_bar(bars: Bars) -> list[Bar]:
    f = bars.frame
    return [
        Bar(t, ts, *(float(f[k].iloc[t]) for k in ("open", "high", "low", "close", "volume")))
        for t, ts in enumerate(f.index)
    ]


def ctx(*columns: str) -> BuildContext:
    return BuildContext("s", Path("."), seed=0, feature_columns=columns)


def batch(features: list[Feature], bars: Bars) -> pd.DataFrame:
    frame = pd.DataFrame(index=bars.frame.index)
    for feature in features:
        frame = pd.concat([frame, feature.compute(bars, frame)], axis=1)
    return frame


@dataclass(frozen=True)
class Drawdown:
    """A plain-pandas feature with compute only: distance of the close below its peak."""

    def columns(self) -> list[str]:
        return ["drawdown"]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        close = bars.frame["close"]
        return pd.DataFrame({"drawdown": 1 - close / close.cummax()}, index=bars.frame.index)


@dataclass(frozen=True)
class TrendOfReturns:
    """A plain-pandas feature of an earlier feature: the rolling sum of log returns."""

    def columns(self) -> list[str]:
        return ["trend_5", "seen_bars"]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        trend = features["log_return_1"].rolling(5).sum()
        seen = pd.Series(np.arange(1.0, len(bars) + 1), index=bars.frame.index)
        return pd.DataFrame({"trend_5": trend, "seen_bars": seen}, index=bars.frame.index)


def test_a_feature_without_a_step_kernel_is_recomputed_over_the_history() -> None:
    bars = make_bars()
    features = [
        build_log_return(LogReturnParams(period=1), ctx()),
        Drawdown(),
        TrendOfReturns(),
        build_lags(LagsParams(of=["trend_5", "drawdown"], lags=[1, 2]), ctx("trend_5", "drawdown")),
    ]
    assert not isinstance(features[1], SteppedFeature)
    stepper = FeatureStepper(features, StepContext.of(bars))
    rows = np.vstack([stepper.step(bar) for bar in each_bar(bars)])
    expected = batch(features, bars)
    assert list(stepper.columns) == list(expected.columns)
    assert rows.tobytes() == np.ascontiguousarray(expected.to_numpy(np.float64)).tobytes()
    assert rows[:, stepper.columns.index("seen_bars")].tolist() == list(range(1, 41))


def test_compute_step_rebuilds_the_bars_and_the_earlier_features() -> None:
    seen: list[tuple[Bars, pd.DataFrame]] = []

    @dataclass(frozen=True)
    class Spy:
        def columns(self) -> list[str]:
            return ["spy"]

        def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
            seen.append((bars, features))
            return pd.DataFrame({"spy": 0.0}, index=bars.frame.index)

    bars = make_bars(3)
    step = ComputeStep(Spy(), StepContext.of(bars))
    assert isinstance(step, FeatureStep)
    for t, bar in enumerate(each_bar(bars)):
        assert step.step(bar, {"a": float(t), "b": -float(t)}) == (0.0,)
    last_bars, last_features = seen[-1]
    assert (last_bars.symbol, last_bars.timeframe, last_bars.timeframe_seconds) == (
        "TEST",
        "4h",
        14400,
    )
    pd.testing.assert_frame_equal(
        last_bars.frame, bars.frame[["open", "high", "low", "close", "volume"]], check_freq=False
    )
    assert last_features.index.equals(bars.frame.index)
    assert last_features.to_dict("list") == {"a": [0.0, 1.0, 2.0], "b": [0.0, -1.0, -2.0]}


def test_compute_step_refuses_other_columns_than_declared() -> None:
    @dataclass(frozen=True)
    class Liar:
        def columns(self) -> list[str]:
            return ["x"]

        def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"y": 1.0}, index=bars.frame.index)

    bars = make_bars(2)
    stepper = FeatureStepper([Liar()], StepContext.of(bars))
    with pytest.raises(RuntimeError, match=r"^feature Liar returned columns \['y'\] over 1 rows; "):
        stepper.step(each_bar(bars)[0])


def test_each_step_sees_this_bars_values_of_the_earlier_columns_only() -> None:
    views: list[dict[str, float]] = []

    class Recorder:
        def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
            views.append(dict(features))
            return (bar.close * 2,)

    @dataclass(frozen=True)
    class Recorded:
        def columns(self) -> list[str]:
            return ["twice"]

        def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
            raise AssertionError("the per-bar driver must use the stepper")

        def stepper(self, context: StepContext) -> FeatureStep:
            return Recorder()

    bars = make_bars(20)
    features = [build_rsi(RsiParams(window=3), ctx()), Recorded(), Drawdown()]
    stepper = FeatureStepper(features, StepContext.of(bars))
    rows = [stepper.step(bar) for bar in each_bar(bars)]
    assert stepper.columns == ("rsi_3", "twice", "drawdown")
    assert [list(view) for view in views] == [["rsi_3"]] * 20
    np.testing.assert_array_equal([v["rsi_3"] for v in views], [row[0] for row in rows])
    assert [row[1] for row in rows] == [2 * c for c in bars.frame["close"]]


def test_each_row_is_a_new_array() -> None:
    bars = make_bars(5)
    stepper = FeatureStepper([build_log_return(LogReturnParams(), ctx())], StepContext.of(bars))
    first, second = (stepper.step(bar) for bar in each_bar(bars)[:2])
    assert math.isnan(first[0]) and not math.isnan(second[0])


def test_the_volatility_stepper_annualizes_from_the_context() -> None:
    bars = make_bars(10)
    feature = build_volatility(VolatilityParams(window=3), ctx())
    hourly = FeatureStepper([feature], StepContext("TEST", "1h", 3600))
    daily = FeatureStepper([feature], StepContext("TEST", "1d", 86400))
    last = [(hourly.step(bar)[0], daily.step(bar)[0]) for bar in each_bar(bars)][-1]
    assert last[0] / last[1] == pytest.approx(math.sqrt(24), rel=1e-12)


def test_two_features_with_one_column_are_refused() -> None:
    bars = make_bars(2)
    with pytest.raises(ValueError, match=r"^column 'drawdown' is declared by two features$"):
        FeatureStepper([Drawdown(), Drawdown()], StepContext.of(bars))


def test_a_step_returning_another_number_of_values_is_refused() -> None:
    class TwoValues:
        def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
            return (1.0, 2.0)

    @dataclass(frozen=True)
    class OneColumn:
        def columns(self) -> list[str]:
            return ["one"]

        def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"one": 1.0}, index=bars.frame.index)

        def stepper(self, context: StepContext) -> FeatureStep:
            return TwoValues()

    bars = make_bars(2)
    stepper = FeatureStepper([OneColumn()], StepContext.of(bars))
    with pytest.raises(
        RuntimeError, match=r"^feature OneColumn stepped 2 values; it declared 1 columns$"
    ):
        stepper.step(each_bar(bars)[0])
