"""The backtest: data, features and the model over the history, then the sequential layers.

The sequential layers (signal, risk, execution, portfolio) run in the compiled core
(`tradeloom.runner.engine.Engine`, `tradeloom.core.bar`), the same step paper and
live trading run. Two drivers give it the bars and journal identical events: the
batch driver hands it every bar at once (it stops only where a plugin's component
or the monitors need Python), the per-bar driver one bar at a time, as live
trading does; the per-bar driver also steps the features bar by bar and checks each
row against the batch features. A decision at t's close uses nothing after t, and
fills no earlier than t's close.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tradeloom import progress
from tradeloom.core import layout as L
from tradeloom.core.state import BarInputs
from tradeloom.domain import OHLCV, Bar, Bars, ModelOutput, ModelTraining, Order
from tradeloom.journal import DataLoaded, OrderExpired
from tradeloom.plugins.features.finite import check_finite_features
from tradeloom.plugins.features.steps import FeatureStepper, StepContext, SteppedFeature
from tradeloom.plugins.protocols import Feature, Retrainable
from tradeloom.plugins.signal.regime import regime_codes
from tradeloom.runner.engine import Book, Engine
from tradeloom.runner.events import Recorder
from tradeloom.runner.retraining import Retrainer
from tradeloom.runner.wiring import Pipeline
from tradeloom.schemas.config import ComponentConfig

__all__ = ["BacktestResult", "Driver", "FeatureRow", "compute_features", "run_backtest"]

Driver = Literal["auto", "batch", "per_bar"]


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced, for the outputs and the metrics."""

    bars: Bars
    features: pd.DataFrame
    probability: pd.Series
    equity: pd.DataFrame
    portfolio: Book
    recorder: Recorder
    unfilled: tuple[Order, ...]


def compute_features(pipeline: Pipeline, bars: Bars) -> pd.DataFrame:
    """Compute every feature in file order; each sees the bars and the features before it.

    Raises:
        RuntimeError: A feature returned other columns than it declared, or other rows.
        DataError: A feature value is infinite (`check_finite_features`).
    """
    frame = pd.DataFrame(index=bars.frame.index)
    with progress.task("features", total=len(pipeline.features)) as shown:
        for item, feature in zip(pipeline.config.features, pipeline.features, strict=True):
            shown.describe(f"features: {item.kind}")
            frame = _feature(item, feature, bars, frame)
            shown.advance()
    check_finite_features(
        frame,
        [
            (f.path, f.kind, c.columns())
            for f, c in zip(pipeline.config.features, pipeline.features, strict=True)
        ],
    )
    return frame


def _feature(
    item: ComponentConfig, feature: Feature, bars: Bars, frame: pd.DataFrame
) -> pd.DataFrame:
    out = feature.compute(bars, frame)
    declared = feature.columns()
    if list(out.columns) != declared or not out.index.equals(bars.frame.index):
        raise RuntimeError(
            f"{item.path} ({item.kind}, plugin '{item.registered.plugin.name}') returned "
            f"columns {list(out.columns)} over {len(out)} rows; it declared {declared} "
            f"over the {len(bars)} bars"
        )
    return pd.concat([frame, out.astype(np.float64)], axis=1)


class FeatureRow(Mapping[str, float]):
    """One bar's features as a read-only mapping, without copying the row."""

    __slots__ = ("_columns", "_values")

    def __init__(self, columns: dict[str, int], values: np.ndarray) -> None:
        self._columns = columns
        self._values = values

    def __getitem__(self, key: str) -> float:
        return float(self._values[self._columns[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def run_backtest(
    pipeline: Pipeline, recorder: Recorder, order_prefix: str, *, driver: Driver = "auto"
) -> BacktestResult:
    """Run ``pipeline`` over its data and return the result.

    Args:
        pipeline: The built components.
        recorder: Journals and broadcasts the events.
        order_prefix: Start of every client order id (strategy and run key).
        driver: ``auto`` or ``batch`` (every bar in one call of the core) or ``per_bar``
            (one bar per call, the features stepped as live steps them).

    The result's ``probability`` is what was traded on: a fold retrained by a health
    rule replaces the scheduled predictions of the bars after it.
    """
    bars = pipeline.data.load()
    recorder.symbol = bars.symbol
    recorder.record(
        DataLoaded(
            symbol=bars.symbol,
            timeframe=bars.timeframe,
            bars=len(bars),
            first=bars.frame.index[0],
            last=bars.frame.index[-1],
            repaired=[vars(i) for i in bars.repaired],
            gaps=[vars(i) for i in bars.gaps],
        )
    )
    features = compute_features(pipeline, bars)
    output = pipeline.model.fit_predict(bars, features)
    probability = output.probability
    n = len(bars)
    if len(probability) != n:
        raise RuntimeError(
            f"model ({pipeline.config.model.kind}) returned {len(probability)} probabilities "
            f"for {n} bars"
        )
    _check_probabilities(probability.to_numpy(np.float64))
    trainings_at: dict[int, list[ModelTraining]] = {}
    for training in output.trainings:
        trainings_at.setdefault(training.predict_start, []).append(training)
    anomalous, anomaly_score = _anomalies(pipeline, output, n)
    frame = bars.frame
    config = pipeline.config
    inputs = BarInputs.of(
        [frame[k].to_numpy(np.float64) for k in OHLCV],
        probability.to_numpy(np.float64),
        frame.index.asi8,
        anomalous=anomalous,
        score=anomaly_score,
        regime=None
        if config.regime is None
        else regime_codes(frame["close"].to_numpy(np.float64), config.regime),
        trainings=np.array([len(trainings_at.get(t, ())) for t in range(n)], np.int64),
    )
    index = frame.index
    feats = features.to_numpy(np.float64)
    p = inputs.px[5, :, 0]  # a view: a retrained fold writes over the bars it predicts
    retrainer = None
    if any(rule.action == "retrain" for rule in config.health):
        model = pipeline.model
        assert isinstance(model, Retrainable)  # checked when the strategy was built
        retrainer = _Retrain(
            Retrainer(
                model,
                p,
                trainings_at,
                recorder,
                index,
                (inputs.flags[0, :, 0], inputs.score[:, 0]),
            ),
            inputs,
            trainings_at,
        )
    engine = Engine(
        pipeline,
        recorder,
        lambda seq: f"{order_prefix}-{seq:06d}",
        times=index.__getitem__,
        timeframe_seconds=bars.timeframe_seconds,
        features=feats.__getitem__,
        columns=tuple(str(c) for c in features.columns),
        retrain=retrainer,
        trainings_at=trainings_at,
        bulk=driver != "per_bar",  # per bar, as live: each event journaled as it comes
        order_prefix=order_prefix,
    )
    if driver == "per_bar":
        _per_bar(engine, bars, features, inputs)
    else:
        engine.run(inputs, n)
    engine.finish(inputs.time_ns, bars.symbol)
    if retrainer is not None and retrainer.retrainer.retrained:
        probability = pd.Series(p.copy(), index=probability.index, name=probability.name)
    columns = engine.equity_curve(frame["close"].to_numpy(np.float64))
    equity = _equity_frame(bars, columns, engine.portfolio.initial_cash)
    unfilled = tuple(_working(engine))
    for order in unfilled:
        recorder.record(
            OrderExpired(
                **recorder.at(order.bar, order.timestamp, market=True),
                order_id=order.id,
                reason="no bar left to fill",
            )
        )
    return BacktestResult(
        bars=bars,
        features=features,
        probability=probability,
        equity=equity,
        portfolio=engine.portfolio,
        recorder=recorder,
        unfilled=unfilled,
    )


class _Retrain:
    """A health rule's retrain: the model's new fold, journaled at the bar it starts."""

    def __init__(
        self, retrainer: Retrainer, inputs: BarInputs, trainings_at: dict[int, list[ModelTraining]]
    ) -> None:
        self.retrainer = retrainer
        self.inputs = inputs
        self.trainings_at = trainings_at

    def __call__(self, bar: int, reason: str) -> None:
        self.retrainer(bar, reason)
        for start, trainings in self.trainings_at.items():
            self.inputs.trainings[start] = len(trainings)


def _working(engine: Engine) -> list[Order]:
    """Return the orders still working after the last bar."""
    if engine.spec.venue is None:
        return list(engine.venue.pending())
    row = engine.state.sym[0]
    if row[L.S_W_ACTIVE] == 0.0:
        return []
    return [engine.ctx.orders[int(row[L.S_W_SEQ])]]


def _per_bar(engine: Engine, bars: Bars, features: pd.DataFrame, inputs: BarInputs) -> None:
    """Drive the bars one at a time, as live trading does.

    When every feature has a per-bar driver, the features are stepped bar by bar too
    and each row must equal the batch row: a difference is a bug in a feature, raised
    with its column and bar.
    """
    stepper = None
    if all(isinstance(f, SteppedFeature) for f in engine.p.features):
        stepper = FeatureStepper(engine.p.features, StepContext.of(bars))
    feats = features.to_numpy(np.float64)
    frame = bars.frame
    times = list(frame.index)  # boxed once: indexing a DatetimeIndex per bar is slow
    o, h, lo, c, v = (frame[k].to_numpy(np.float64) for k in OHLCV)
    for t in range(len(frame)):
        if stepper is not None:
            bar = Bar(t, times[t], float(o[t]), float(h[t]), float(lo[t]), float(c[t]), float(v[t]))
            row = stepper.step(bar)
            if not np.array_equal(row, feats[t], equal_nan=True):
                j = int(
                    np.flatnonzero(~((row == feats[t]) | (np.isnan(row) & np.isnan(feats[t]))))[0]
                )
                raise RuntimeError(
                    f"feature column {features.columns[j]} at bar {t}: the per-bar driver "
                    f"gives {float(row[j])!r}, the batch driver {float(feats[t, j])!r}"
                )
        engine.run(inputs, t + 1)


def _anomalies(pipeline: Pipeline, output: ModelOutput, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the model's anomaly flags (bool) and scores (NaN: none) per bar.

    Raises:
        RuntimeError: The model returned flags or scores for another number of bars.
    """
    flags, scores = np.zeros(n, bool), np.full(n, np.nan)
    for name, series in (("anomalous", output.anomalous), ("anomaly_score", output.anomaly_score)):
        if series is not None and len(series) != n:
            raise RuntimeError(
                f"model ({pipeline.config.model.kind}) returned {len(series)} {name} values "
                f"for {n} bars"
            )
    if output.anomalous is not None:
        flags = output.anomalous.to_numpy(dtype=bool, na_value=False)
    if output.anomaly_score is not None:
        scores = output.anomaly_score.to_numpy(dtype=np.float64, na_value=np.nan)
    return flags, scores


def _equity_frame(bars: Bars, columns: np.ndarray, initial_cash: float) -> pd.DataFrame:
    equity = pd.DataFrame(
        {
            "close": bars.frame["close"].to_numpy(np.float64),
            "position": columns[:, 0],
            "cash": columns[:, 1],
            "equity": columns[:, 2],
        },
        index=bars.frame.index,
    )
    peak = np.maximum.accumulate(np.maximum(columns[:, 2], initial_cash))
    equity["drawdown"] = 1.0 - columns[:, 2] / peak
    return equity


def _check_probabilities(probability: np.ndarray) -> None:
    bad = ~((probability >= 0.0) & (probability <= 1.0) | np.isnan(probability))
    if bad.any():
        t = int(np.argmax(bad))
        raise ValueError(
            f"probability must be in [0, 1] or NaN, was {float(probability[t])} at bar {t}"
        )
