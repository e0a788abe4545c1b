"""The anomaly gate's detector: fitted per fold, seeded, and the same per row as per batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.ensemble import IsolationForest

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model import SklearnModel, SklearnParams, build_sklearn_model
from tradeloom.plugins.model.anomaly import AnomalyParams

CTX = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=42)
N = 900
OUTLIERS = np.arange(450, N, 37)
"""Bars whose features are pushed far outside anything seen before (in predicted segments)."""


def _data(seed: int = 0) -> tuple[Bars, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, N)))
    index = pd.date_range("2024-01-01", periods=N, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    bars = Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)
    x = rng.normal(size=(N, 3))
    x[OUTLIERS] += 12.0
    x[rng.random(N) < 0.05, 1] = np.nan
    return bars, pd.DataFrame(x, index=index, columns=["a", "b", "c"])


def _model(anomaly: dict[str, Any] | None = None, **walk_forward: Any) -> SklearnModel:
    params = SklearnParams.model_validate(
        {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "walk_forward": {"train_window": 300, "retrain_every": 150, **walk_forward},
            **({} if anomaly is None else {"anomaly": anomaly}),
        }
    )
    return build_sklearn_model(params, CTX)


def _predicted(model: SklearnModel, x: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """Each trained fold with the rows it predicted (finite features in its segment)."""
    out = []
    for fold in model.trained:
        t = fold.training
        segment = np.arange(t.predict_start, t.predict_end + 1)
        out.append((fold, segment[np.isfinite(x[segment]).all(axis=1)]))
    return out


def test_flags_are_each_folds_detector_saying_outlier() -> None:
    bars, features = _data()
    model = _model({})
    output = model.fit_predict(bars, features)
    x = features.to_numpy()
    assert output.anomalous is not None and output.anomaly_score is not None
    assert output.anomalous.dtype == bool and output.anomalous.index.equals(bars.frame.index)
    scored = np.zeros(N, bool)
    for fold, rows in _predicted(model, x):
        assert fold.detector is not None
        np.testing.assert_array_equal(
            output.anomalous.to_numpy()[rows], fold.detector.predict(x[rows]) == -1
        )
        np.testing.assert_array_equal(
            output.anomaly_score.to_numpy()[rows], fold.detector.decision_function(x[rows])
        )
        scored[rows] = True
    assert len(model.trained) == 4 and scored.sum() > 500
    assert not output.anomalous.to_numpy()[~scored].any()
    assert np.isnan(output.anomaly_score.to_numpy()[~scored]).all()
    # the injected outliers are found; ordinary rows mostly are not
    flagged = output.anomalous.to_numpy()
    outliers = [t for t in OUTLIERS if scored[t]]
    assert outliers and flagged[outliers].all()
    assert flagged[scored].mean() < 0.2


def test_each_detector_is_a_seeded_isolation_forest_of_its_folds_training_rows() -> None:
    bars, features = _data()
    model = _model({"n_estimators": 30, "contamination": 0.1, "max_samples": 64})
    model.fit_predict(bars, features)
    x = features.to_numpy()
    trainable = np.isfinite(x).all(axis=1)
    trainable[-1] = False  # the last bar has no next close to label it
    for fold, rows in _predicted(model, x):
        t = fold.training
        own = np.flatnonzero(trainable[t.train_start : t.train_end + 1]) + t.train_start
        expected = IsolationForest(
            n_estimators=30, contamination=0.1, max_samples=64, random_state=CTX.seed
        ).fit(x[own])
        assert fold.detector.random_state == CTX.seed
        assert fold.detector.n_features_in_ == 3
        np.testing.assert_array_equal(
            fold.detector.decision_function(x[rows]), expected.decision_function(x[rows])
        )
        # contamination 0.1: about a tenth of the training rows are outliers to it
        assert np.mean(fold.detector.predict(x[own]) == -1) == pytest.approx(0.1, abs=0.01)


def test_one_row_at_a_time_gives_the_batch_answer() -> None:
    bars, features = _data()
    model = _model({})
    output = model.fit_predict(bars, features)
    latest = model.trained[-1].training
    x = features.to_numpy()
    assert output.anomalous is not None and output.anomaly_score is not None
    rows = range(latest.predict_start, latest.predict_end + 1)
    for t in rows:
        score = model.anomaly_score_row(x[t])
        expected = float(output.anomaly_score.iloc[t])
        assert score == expected or (np.isnan(score) and np.isnan(expected)), t
        assert model.anomalous_row(x[t]) is bool(output.anomalous.iloc[t]), t
    assert any(model.anomalous_row(x[t]) for t in rows)  # some of them are anomalous
    assert any(np.isnan(x[t]).any() for t in rows)  # and some are not scored at all
    with pytest.raises(ValueError, match=r"^values must hold one value per feature column \(3\)"):
        model.anomaly_score_row([1.0, 2.0])


def test_without_a_gate_nothing_is_scored() -> None:
    bars, features = _data()
    model = _model()
    output = model.fit_predict(bars, features)
    assert (output.anomalous, output.anomaly_score) == (None, None)
    assert all(fold.detector is None for fold in model.trained)
    row = features.to_numpy()[-1]
    assert np.isnan(model.anomaly_score_row(row)) and model.anomalous_row(row) is False
    untrained = _model({})
    assert untrained.anomalous_row(row) is False  # before the first fold


def test_parallel_folds_and_a_second_run_give_the_same_scores() -> None:
    bars, features = _data()
    serial = _model({}).fit_predict(bars, features)
    parallel = _model({}, n_jobs=2).fit_predict(bars, features)
    assert serial.anomaly_score is not None and parallel.anomaly_score is not None
    pd.testing.assert_series_equal(serial.anomaly_score, parallel.anomaly_score)
    again = _model({}).fit_predict(bars, features)
    pd.testing.assert_series_equal(serial.anomalous, again.anomalous)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("contamination", 0.7, "expected 'auto' or a number in (0, 0.5], was 0.7"),
        ("contamination", 0, "expected 'auto' or a number in (0, 0.5], was 0"),
        ("contamination", "automatic", "expected 'auto' or a number in (0, 0.5], was 'automatic'"),
        ("contamination", True, "expected 'auto' or a number in (0, 0.5], was true"),
        ("max_samples", 0, "expected 'auto', a count >= 1 or a fraction in (0, 1], was 0"),
        ("max_samples", 1.5, "expected 'auto', a count >= 1 or a fraction in (0, 1], was 1.5"),
    ],
)
def test_bad_detector_settings_say_what_was_expected(key: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        AnomalyParams.model_validate({key: value})
    (error,) = info.value.errors()
    assert error["loc"] == (key,)
    assert error["msg"] == f"Value error, {message}"


def test_good_detector_settings_are_kept() -> None:
    params = AnomalyParams.model_validate({"contamination": 0.5, "max_samples": 0.25})
    assert (params.n_estimators, params.contamination, params.max_samples) == (100, 0.5, 0.25)
    assert AnomalyParams().contamination == "auto"
    with pytest.raises(ValidationError):
        AnomalyParams.model_validate({"n_estimator": 10})
