"""Every supported estimator is saved and loaded back through the allow-list, unchanged
(LightGBM's and XGBoost's when the strategy file trusts their package).

Each case trains walk-forward on a small synthetic series, saves its folds as a run would
(`save_models`), loads the latest with `load_saved_model` (the restricted unpickler and
every check) and compares the loaded model's probabilities and anomaly scores with the
trained fold's, bit for bit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model import SklearnParams, build_sklearn_model
from tradeloom.plugins.model.anomaly import anomaly_scores
from tradeloom.plugins.model.fold_predictor import predict_up
from tradeloom.plugins.model.loading import ModelRequest, load_saved_model
from tradeloom.plugins.model.registry import save_models

CTX = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=11)
N = 420
FEATURES = [{"kind": "test", "name": None, "window": 3}]
COLUMNS = ("a", "b", "c")


def _data() -> tuple[Bars, pd.DataFrame]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, len(COLUMNS)))
    drift = 0.004 * x[:, 0] + rng.normal(0.0, 0.01, N)  # the next return leans on column a
    close = 100.0 * np.exp(np.cumsum(np.r_[0.0, drift[:-1]]))
    index = pd.date_range("2024-01-01", periods=N, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    bars = Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)
    return bars, pd.DataFrame(x, index=index, columns=list(COLUMNS))


ESTIMATORS: list[tuple[str, dict[str, Any], str, bool]] = [
    ("sklearn.tree.DecisionTreeClassifier", {"max_depth": 4}, "none", False),
    ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5}, "none", True),
    ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 5}, "standard", False),
    ("sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 5}, "minmax", True),
    ("sklearn.ensemble.GradientBoostingClassifier", {"n_estimators": 10}, "none", False),
    (
        "sklearn.ensemble.GradientBoostingClassifier",
        {"n_estimators": 10, "loss": "exponential", "subsample": 0.7},
        "robust",
        True,
    ),
    ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 10}, "none", True),
    (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        {"max_iter": 30, "early_stopping": True, "validation_fraction": 0.2},
        "standard",
        False,
    ),
    ("sklearn.linear_model.LogisticRegression", {}, "none", False),
    ("sklearn.linear_model.LogisticRegression", {"C": 0.5}, "standard", True),
    ("lightgbm.LGBMClassifier", {"n_estimators": 10, "num_leaves": 7}, "none", False),
    ("lightgbm.LGBMClassifier", {"n_estimators": 10, "min_data_in_leaf": 5}, "standard", True),
    ("xgboost.XGBClassifier", {"n_estimators": 10, "max_depth": 3}, "none", True),
    ("xgboost.XGBClassifier", {"n_estimators": 10}, "robust", False),
]


@pytest.mark.parametrize(("estimator", "params", "scaler", "anomaly"), ESTIMATORS)
def test_a_saved_fold_loads_through_the_allow_list_and_predicts_the_same(
    tmp_path: Path, estimator: str, params: dict[str, Any], scaler: str, anomaly: bool
) -> None:
    config = {
        "estimator": estimator,
        "params": params,
        "scaler": scaler,
        "walk_forward": {"train_window": 150, "retrain_every": 120},
        **({"anomaly": {"n_estimators": 10}} if anomaly else {}),
    }
    model = build_sklearn_model(SklearnParams.model_validate(config), CTX)
    bars, features = _data()
    model.fit_predict(bars, features)
    saved = save_models(
        tmp_path, model, strategy="t", feature_spec=FEATURES, timestamps=bars.frame.index
    )
    assert saved is not None and not list(tmp_path.glob("*.detector.pkl"))
    latest = saved.latest
    pkl = tmp_path / latest.model.file
    assert latest.model.sha256 == hashlib.sha256(pkl.read_bytes()).hexdigest()
    package = estimator.partition(".")[0]  # LightGBM and XGBoost load if the file trusts them
    trusted = () if package == "sklearn" else (package,)
    loaded = load_saved_model(
        ModelRequest(path=pkl, sha256=latest.model.sha256, trusted_packages=trusted),
        feature_spec=FEATURES,
        columns=COLUMNS,
    )
    fold = model.latest
    assert fold is not None and latest.has_detector == anomaly
    x = features.to_numpy()
    assert np.array_equal(predict_up(loaded.fitted, x), predict_up(fold.fitted, x))
    assert loaded.bundled.training.fold == fold.training.fold
    assert tuple(loaded.bundled.columns) == COLUMNS
    if anomaly:
        assert loaded.detector is not None and fold.detector is not None
        assert np.array_equal(anomaly_scores(loaded.detector, x), anomaly_scores(fold.detector, x))
    else:
        assert loaded.detector is None
