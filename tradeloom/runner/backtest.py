"""The backtest: data, features and the model over the history, then the sequential layers.

The sequential layers (signal, risk, execution, portfolio) run under one of two
drivers that journal identical events: the compiled batch driver
(`tradeloom.runner.batch`) when every one of them offers a kernel, else the
per-bar driver (`tradeloom.runner.engine.BarEngine`), the one live trading uses.
A health rule that retrains or halts changes every bar after the one it fires at,
from a metric known only bar by bar: such a strategy runs under the per-bar driver.
``driver="per_bar"`` forces the per-bar driver (a replay as live would run it): it
also steps the features bar by bar and checks each row against the batch features.
A decision at t's close uses nothing after t, and fills no earlier than t's close.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from tradeloom.domain import OHLCV, Bar, Bars, ModelOutput, ModelTraining, Order
from tradeloom.plugins.features.steps import FeatureStepper, StepContext, SteppedFeature
from tradeloom.plugins.protocols import Retrainable
from tradeloom.runner.batch import core_params, execute_core, replay_events
from tradeloom.runner.engine import BarEngine
from tradeloom.runner.events import Recorder
from tradeloom.runner.health import batch_refusal
from tradeloom.runner.portfolio import Portfolio
from tradeloom.runner.retraining import Retrainer
from tradeloom.runner.wiring import Pipeline

__all__ = ["BacktestResult", "Driver", "FeatureRow", "compute_features", "run_backtest"]

Driver = Literal["auto", "batch", "per_bar"]


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced, for the outputs and the metrics."""

    bars: Bars
    features: pd.DataFrame
    probability: pd.Series
    equity: pd.DataFrame
    portfolio: Portfolio
    recorder: Recorder
    unfilled: tuple[Order, ...]


def compute_features(pipeline: Pipeline, bars: Bars) -> pd.DataFrame:
    """Compute every feature in file order; each sees the bars and the features before it.

    Raises:
        RuntimeError: A feature returned other columns than it declared, or other rows.
    """
    frame = pd.DataFrame(index=bars.frame.index)
    for item, feature in zip(pipeline.config.features, pipeline.features, strict=True):
        out = feature.compute(bars, frame)
        declared = feature.columns()
        if list(out.columns) != declared or not out.index.equals(bars.frame.index):
            raise RuntimeError(
                f"{item.path} ({item.kind}, plugin '{item.registered.plugin.name}') returned "
                f"columns {list(out.columns)} over {len(out)} rows; it declared {declared} "
                f"over the {len(bars)} bars"
            )
        frame = pd.concat([frame, out.astype(np.float64)], axis=1)
    return frame


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
        driver: ``auto`` (batch when every sequential layer has a kernel and no health
            rule retrains or halts), ``batch`` (refused otherwise) or ``per_bar``.

    The result's ``probability`` is what was traded on: a fold retrained by a health
    rule replaces the scheduled predictions of the bars after it.

    Raises:
        ValueError: ``driver="batch"`` for a pipeline with a plain-Python sequential layer,
            or with a health rule that retrains or halts.
    """
    bars = pipeline.data.load()
    recorder.note(
        "data_loaded",
        {
            "symbol": bars.symbol,
            "timeframe": bars.timeframe,
            "bars": len(bars),
            "first": bars.frame.index[0],
            "last": bars.frame.index[-1],
            "repaired": [vars(i) for i in bars.repaired],
            "gaps": [vars(i) for i in bars.gaps],
        },
    )
    features = compute_features(pipeline, bars)
    output = pipeline.model.fit_predict(bars, features)
    probability = output.probability
    if len(probability) != len(bars):
        raise RuntimeError(
            f"model ({pipeline.config.model.kind}) returned {len(probability)} probabilities "
            f"for {len(bars)} bars"
        )
    trainings_at: dict[int, list[ModelTraining]] = {}
    for training in output.trainings:
        trainings_at.setdefault(training.predict_start, []).append(training)
    p = probability.to_numpy(np.float64)
    anomalous, anomaly_score = _anomalies(pipeline, output, len(bars))
    acting = batch_refusal(pipeline.config)
    if driver == "batch" and acting is not None:
        raise ValueError(f"driver='batch': {acting.path}: {acting.message}")
    params = None if driver == "per_bar" or acting else core_params(pipeline)
    if driver == "batch" and params is None:
        raise ValueError("driver='batch' needs a kernel for every sequential layer")
    if params is not None:
        _check_probabilities(p)
        core = execute_core(params, bars.frame, p, anomalous=anomalous)
        portfolio, working = replay_events(
            core,
            pipeline=pipeline,
            frame=bars.frame,
            probability=p,
            trainings_at=trainings_at,
            recorder=recorder,
            order_prefix=order_prefix,
            anomaly_score=anomaly_score,
            features=features,
        )
        columns = np.column_stack([core.position, core.cash, core.equity])
    else:
        retrainer = None
        if any(rule.action == "retrain" for rule in pipeline.config.health):
            model = pipeline.model
            assert isinstance(model, Retrainable)  # checked when the strategy was built
            p = p.copy()  # the folds a rule retrains write over the bars after it
            anomalous, anomaly_score = anomalous.copy(), anomaly_score.copy()
            retrainer = Retrainer(
                model, p, trainings_at, recorder, bars.frame.index, (anomalous, anomaly_score)
            )
        engine = BarEngine(pipeline, recorder, order_prefix, retrain=retrainer)
        columns = _per_bar(
            engine, bars, features, p, trainings_at, recorder, (anomalous, anomaly_score)
        )
        portfolio, working = engine.portfolio, pipeline.venue.pending()
        if retrainer is not None and retrainer.retrained:
            probability = pd.Series(p, index=probability.index, name=probability.name)
    equity = _equity_frame(bars, columns, portfolio.initial_cash)
    unfilled = tuple(working)
    for order in unfilled:
        recorder.note(
            "order_expired",
            {"order_id": order.id, "reason": "no bar left to fill"},
            bar=order.bar,
            timestamp=order.timestamp,
        )
    return BacktestResult(
        bars=bars,
        features=features,
        probability=probability,
        equity=equity,
        portfolio=portfolio,
        recorder=recorder,
        unfilled=unfilled,
    )


def _per_bar(
    engine: BarEngine,
    bars: Bars,
    features: pd.DataFrame,
    probability: np.ndarray,
    trainings_at: dict[int, list[ModelTraining]],
    recorder: Recorder,
    anomalies: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Drive the bars one at a time, as live trading does.

    ``anomalies`` are the model's anomaly flags and scores per bar (`_anomalies`).

    When every feature has a per-bar driver, the features are stepped bar by bar too
    (what the risk rules see) and each row must equal the batch row: a difference is
    a bug in a feature, raised with its column and bar.
    """
    frame = bars.frame
    times = list(frame.index)  # boxed once: indexing a DatetimeIndex per bar is slow
    o, h, lo, c, v = (frame[k].to_numpy(np.float64) for k in OHLCV)
    feats = features.to_numpy(np.float64)
    names = {name: j for j, name in enumerate(features.columns)}
    stepper = None
    if all(isinstance(f, SteppedFeature) for f in engine.p.features):
        stepper = FeatureStepper(engine.p.features, StepContext.of(bars))
    rows = np.empty((len(frame), 3))
    flags, scores = anomalies
    for t in range(len(frame)):
        ts = times[t]
        for training in trainings_at.get(t, ()):
            recorder.training(training, ts)
        bar = Bar(t, ts, float(o[t]), float(h[t]), float(lo[t]), float(c[t]), float(v[t]))
        row = feats[t]
        if stepper is not None:
            row = stepper.step(bar)
            if not np.array_equal(row, feats[t], equal_nan=True):
                j = int(
                    np.flatnonzero(~((row == feats[t]) | (np.isnan(row) & np.isnan(feats[t]))))[0]
                )
                raise RuntimeError(
                    f"feature column {features.columns[j]} at bar {t}: the per-bar driver "
                    f"gives {float(row[j])!r}, the batch driver {float(feats[t, j])!r}"
                )
        rows[t] = engine.on_bar(
            bar,
            float(probability[t]),
            FeatureRow(names, row),
            anomalous=bool(flags[t]),
            anomaly_score=float(scores[t]),
        )
    return rows


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
