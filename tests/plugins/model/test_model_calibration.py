"""``model.calibration``: a calibrator per fold on its last training rows, purged, compiled.

The done-when of issue 46 item 1: calibrated predictions of a deliberately miscalibrated
model (a random forest of shallow trees) lower the Brier score out of sample in every
fold; the compiled single-row calibrated prediction equals the library's
``predict_proba`` of the calibrated pipeline; the calibrator's rows are purged, and
cutting the future moves no past calibrated probability.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model import SklearnModel, SklearnParams, build_sklearn_model
from tradeloom.plugins.model.calibration import Calibrator, split_holdout
from tradeloom.plugins.model.fold_predictor import FoldPredictor

CTX = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=42)
FAKE_MODULE = "tradeloom_test_calibration"
RECORDS: list[dict[str, Any]] = []


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Record the bars (feature column 0) each fit trains on and each call predicts."""

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> RecordingClassifier:
        self.classes_ = np.array([0, 1])
        self.record_: dict[str, Any] = {"train": X[:, 0].astype(int), "predict": []}
        RECORDS.append(self.record_)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.record_["predict"].append(X[:, 0].astype(int))
        up = 0.05 + np.mod(X[:, 1] * 7.0, 9.0) / 10.0
        return np.column_stack([1 - up, up])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X), dtype=int)  # never called: the library asks for its type


@pytest.fixture(autouse=True)
def fake_module(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(FAKE_MODULE)
    module.RecordingClassifier = RecordingClassifier  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, FAKE_MODULE, module)
    RECORDS.clear()


def _bars(close: np.ndarray) -> Bars:
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    return Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)


def _planted(n: int, seed: int, strength: float = 1.5) -> tuple[Bars, pd.DataFrame]:
    """Bars whose next return leans on this bar's ``signal`` column, and two noise columns."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    returns = np.zeros(n)
    returns[1:] = 0.01 * (strength * signal[:-1] + rng.normal(size=n - 1))
    bars = _bars(100.0 * np.exp(np.cumsum(returns)))
    features = pd.DataFrame(
        {"signal": signal, "noise_a": rng.normal(size=n), "noise_b": rng.normal(size=n)},
        index=bars.frame.index,
    )
    return bars, features


def _model(estimator: str, calibration: dict[str, Any] | None, **overrides: Any) -> SklearnModel:
    document: dict[str, Any] = {
        "estimator": estimator,
        "walk_forward": {"train_window": 900, "retrain_every": 300},
        "calibration": calibration,
    }
    document.update(overrides)
    return build_sklearn_model(SklearnParams.model_validate(document), CTX)


def _shallow_forest(method: str, **overrides: Any) -> SklearnModel:
    return _model(
        "sklearn.ensemble.RandomForestClassifier",
        {"method": method, "holdout": 400},
        params={"n_estimators": 20, "max_depth": 2, "min_samples_leaf": 50},
        **overrides,
    )


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_lowers_the_out_of_sample_brier_score_in_every_fold(method: str) -> None:
    bars, features = _planted(2400, seed=0)
    model = _shallow_forest(method)
    probability = model.fit_predict(bars, features).probability.to_numpy()

    close = bars.frame["close"].to_numpy()
    up = np.append(close[1:] > close[:-1], False).astype(float)
    x = features.to_numpy()
    assert len(model.trained) == 5
    for fold in model.trained:
        training = fold.training
        segment = np.arange(training.predict_start, min(training.predict_end, len(x) - 2) + 1)
        # the fold's own model, before its calibrator: the library's frozen estimator
        raw = fold.fitted.calibrated_classifiers_[0].estimator.estimator
        before = np.mean((raw.predict_proba(x[segment])[:, 1] - up[segment]) ** 2)
        after = np.mean((probability[segment] - up[segment]) ** 2)
        assert after < before - 0.005, (training.fold, before, after)
        assert training.calibration.startswith(f"{method} on rows ")


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_each_calibrated_fold_is_the_librarys_calibrated_pipeline(method: str) -> None:
    bars, features = _planted(1500, seed=3)
    model = _shallow_forest(method, scaler="standard")
    probability = model.fit_predict(bars, features).probability.to_numpy()
    x = features.to_numpy()

    for fold in model.trained:
        fitted = fold.fitted
        assert isinstance(fitted, CalibratedClassifierCV)
        training = fold.training
        segment = np.arange(training.predict_start, training.predict_end + 1)
        library = fitted.predict_proba(x[segment])[:, 1]
        np.testing.assert_allclose(probability[segment], library, rtol=0, atol=1e-12)
    predictor = FoldPredictor(model.trained[-1].fitted)
    assert predictor.compiled is not None, predictor.problem
    assert model.predict_row(x[-1]) == probability[-1]  # the paper path, bit for bit


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    method=st.sampled_from(["isotonic", "sigmoid"]),
    depth=st.integers(1, 4),
    held=st.integers(20, 200),
)
def test_a_compiled_calibrated_row_is_the_librarys_predict_proba(
    seed: int, method: str, depth: int, held: int
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300 + held, 3))
    y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(int)
    y[300] = 1 - y[301]  # both classes in the holdout
    forest = RandomForestClassifier(n_estimators=5, max_depth=depth, random_state=seed)
    forest.fit(x[:300], y[:300])
    calibrated = CalibratedClassifierCV(FrozenEstimator(forest), method=method)
    calibrated.fit(x[300:], y[300:])
    probes = np.vstack([rng.normal(scale=3.0, size=(40, 3)), x[300:310]])

    predictor = FoldPredictor(calibrated)

    assert predictor.compiled is not None, predictor.problem
    library = calibrated.predict_proba(probes)[:, 1]
    rows = np.array([predictor.predict_one(row) for row in probes])
    np.testing.assert_allclose(rows, library, rtol=0, atol=1e-12)
    assert np.array_equal(rows, predictor.predict(probes))  # a row alone as in a batch


def test_the_calibrators_rows_are_the_folds_last_and_the_models_are_purged_before_them() -> None:
    n, horizon, embargo, held = 400, 3, 2, 30
    rng = np.random.default_rng(5)
    bars = _bars(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))))
    features = pd.DataFrame(
        {"bar": np.arange(n, dtype=float), "noise": rng.normal(size=n)}, index=bars.frame.index
    )
    model = _model(
        f"{FAKE_MODULE}.RecordingClassifier",
        {"method": "sigmoid", "holdout": held},
        label={"horizon": horizon},
        walk_forward={"train_window": 100, "retrain_every": 40, "embargo": embargo},
    )
    output = model.fit_predict(bars, features)

    trained = [t for t in output.trainings if not t.skipped]
    assert len(trained) == len(RECORDS) > 5
    for training, record in zip(trained, RECORDS, strict=True):
        calibration_rows, segment = record["predict"][0], record["predict"][-1]
        rows = np.arange(training.train_start, training.train_end + 1)
        np.testing.assert_array_equal(calibration_rows, rows[-held:])  # the last N rows
        # the model's rows are purged before the first calibration row, like a fold's
        assert record["train"].max() + horizon + embargo < calibration_rows[0]
        assert record["train"].max() + horizon + embargo + 1 == calibration_rows[0]
        # and the calibration rows before the fold's first predicted bar
        assert calibration_rows[-1] + horizon + embargo < segment[0] == training.predict_start
        assert training.calibration == (
            f"sigmoid on rows {calibration_rows[0]}..{calibration_rows[-1]} ({held}); model on "
            f"rows {record['train'][0]}..{record['train'][-1]} ({len(record['train'])})"
        )


def test_split_holdout_purges_by_horizon_and_embargo() -> None:
    rows = np.array([10, 11, 12, 14, 15, 16, 17, 18, 19, 20])
    model_rows, held = split_holdout(rows, 3, horizon=2, embargo=1)
    np.testing.assert_array_equal(held, [18, 19, 20])
    np.testing.assert_array_equal(model_rows, [10, 11, 12, 14])  # 14 + 2 + 1 < 18; 15 is not


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_cutting_the_future_moves_no_past_calibrated_probability(method: str) -> None:
    bars, features = _planted(1500, seed=7)
    model = _shallow_forest(method, label={"horizon": 3})
    before = model.fit_predict(bars, features).probability.to_numpy()

    cut = 1100
    after = model.fit_predict(
        _bars(bars.frame["close"].to_numpy()[: cut + 1]), features.iloc[: cut + 1]
    ).probability.to_numpy()
    changed_close = bars.frame["close"].to_numpy().copy()
    changed_close[cut + 1 :] *= np.linspace(0.5, 3.0, len(changed_close) - cut - 1)
    changed = model.fit_predict(_bars(changed_close), features).probability.to_numpy()

    assert np.isfinite(before[: cut + 1]).sum() > 150
    np.testing.assert_array_equal(after, before[: cut + 1])
    np.testing.assert_array_equal(changed[: cut + 1], before[: cut + 1])
    assert not np.array_equal(changed[cut + 1 :], before[cut + 1 :])


def test_a_holdout_of_one_class_leaves_the_fold_uncalibrated() -> None:
    model = _model(
        f"{FAKE_MODULE}.RecordingClassifier",
        {"method": "isotonic", "holdout": 20},
        walk_forward={"train_window": 60, "retrain_every": 20},
    )
    rows = np.arange(60)
    labels = np.zeros(60)
    labels[:10] = 1
    model_rows, held, note = model._holdout(rows, labels)
    assert (len(model_rows), len(held)) == (60, 0)
    assert note == "isotonic: none (the 20 holdout rows are one class)"


def test_calibrator_numbers_apply_as_the_library_predicts() -> None:
    rng = np.random.default_rng(1)
    p, y = rng.random(200), (rng.random(200) < 0.5).astype(float)
    from sklearn.calibration import _SigmoidCalibration
    from sklearn.isotonic import IsotonicRegression

    probes = np.concatenate([rng.random(50), [-1.0, 0.0, 1.0, 2.0]])
    iso = IsotonicRegression(out_of_bounds="clip").fit(p, y)
    sig = _SigmoidCalibration().fit(p, y)
    for fitted in (iso, sig):
        calibrator = Calibrator.of(fitted)
        np.testing.assert_array_equal(calibrator.apply(probes), fitted.predict(probes))
    assert set(Calibrator.of(sig).describe()) == {"method", "a", "b"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"label": {"kind": "return"}},
            "calibration needs label kind direction or triple_barrier; kind is return",
        ),
        (
            {"calibration": {"method": "isotonic", "holdout": 880}},
            "calibration.holdout must leave at least 20 rows to fit the model on: holdout + "
            "label.horizon + walk_forward.embargo + 20 <= 900 (the rows of the first fold), "
            "was 880 + 1 + 0 + 20",
        ),
    ],
)
def test_calibration_settings_that_cannot_work_are_refused(
    overrides: dict[str, Any], message: str
) -> None:
    document: dict[str, Any] = {
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "walk_forward": {"train_window": 900, "retrain_every": 300},
        "calibration": {"method": "sigmoid", "holdout": 100},
        **overrides,
    }
    with pytest.raises(ValidationError) as info:
        SklearnParams.model_validate(document)
    assert [e["msg"] for e in info.value.errors()] == [f"Value error, {message}"]
