"""Every model family tradeloom ships, as an ONNX graph: onnxruntime's ``probability_up``
equals tradeloom's probability (`FoldPredictor` for a fitted fold, `TorchFold.predict` for a
network) to 1e-6 on the rows the fold was fitted on, calibrated folds included; what
cannot be exported is refused with the reason.

Folds are fitted here as the walk-forward fits them (the fold's scaler in a ``Pipeline``,
its calibrator through `calibrate_fold`), on tiny data; the command over whole run folders
is tested in ``test_models_export.py``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tradeloom.cli.onnx_sklearn import OUTPUT, NotExported, sklearn_graph
from tradeloom.cli.onnx_torch import WINDOWS, torch_graph
from tradeloom.plugins.model.calibration import Calibrator, calibrate_fold
from tradeloom.plugins.model.fold_predictor import FoldPredictor
from tradeloom.plugins.model.torch_fold import TorchFold
from tradeloom.plugins.model.torch_networks import build_network, check_network

pytestmark = pytest.mark.xdist_group("torch")

TOLERANCE = 1e-6


def _rows(n: int = 240, columns: int = 3, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, columns)) * [0.01, 10.0, 1.0][:columns]
    noise = rng.normal(scale=0.8, size=n)
    y = (x[:, 0] * 100 + x[:, 2] * 0.5 + noise > 0).astype(np.int64)
    return x, y


def _onnx(graph: Any, name: str, inputs: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(
        graph.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return np.asarray(session.run([OUTPUT], {name: inputs})[0])


def _lightgbm() -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1, n_jobs=1)


def _xgboost() -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1)


FAMILIES: dict[str, Any] = {
    "random_forest": lambda: RandomForestClassifier(n_estimators=6, max_depth=4, random_state=1),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=6, max_depth=4, random_state=1),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(max_iter=8, random_state=1),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=8, random_state=1),
    "logistic_regression": lambda: LogisticRegression(),
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
}


@pytest.mark.parametrize("calibration", [None, "sigmoid", "isotonic"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_gives_tradeloom_s_probability(family: str, calibration: str | None) -> None:
    x, y = _rows()
    fit, holdout = slice(0, 180), slice(180, None)
    model: Any = Pipeline([("scaler", StandardScaler()), ("estimator", FAMILIES[family]())])
    model.fit(x[fit], y[fit])
    if calibration is not None:
        model = calibrate_fold(model, calibration, x[holdout], y[holdout])
    expected = FoldPredictor(model, "direction").predict(x)
    got = _onnx(sklearn_graph(model, x.shape[1], "direction"), "features", x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.ptp(expected) > 0.05  # a graph of a constant would pass on a constant model


def test_classes_and_return_labels_map_as_tradeloom_maps_them() -> None:
    x, _ = _rows()
    classes = np.digitize(x[:, 0] * 100 + x[:, 2], [-0.5, 0.5])  # 0 down, 1 flat, 2 up
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=2).fit(x, classes)
    expected = FoldPredictor(forest, "classes").predict(x)
    assert np.abs(_onnx(sklearn_graph(forest, 3, "classes"), "features", x) - expected).max() <= (
        TOLERANCE
    )
    returns = x[:, 0] * 300 + x[:, 2] * 0.2
    regressor = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=2)
    regressor.fit(x, returns)
    expected = FoldPredictor(regressor, "return").predict(x)
    got = _onnx(sklearn_graph(regressor, 3, "return"), "features", x)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert ((expected == 0.0) | (expected == 1.0)).any()  # the clip to [0, 1] is exercised


def test_a_calibrator_on_a_decision_function_the_graph_lacks_is_refused() -> None:
    x, y = _rows()
    svc = SVC(probability=True, random_state=0).fit(x[:180], y[:180])
    calibrated = calibrate_fold(svc, "sigmoid", x[180:], y[180:])
    with pytest.raises(NotExported) as caught:
        sklearn_graph(calibrated, 3, "direction")
    assert str(caught.value) == (
        "its calibrator was fitted on the decision_function of SVC, which the ONNX graph "
        "does not give (exported: calibrated trees, boosting, and LogisticRegression, "
        "HistGradientBoostingClassifier, GradientBoostingClassifier, LGBMClassifier)"
    )


NETWORKS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": 8, "layers": 1},
    "lstm": {"hidden": 5, "layers": 2},
    "gru": {"hidden": 6},
    "tcn": {"channels": 4, "levels": 2},
    "transformer": {"d_model": 8, "heads": 2, "layers": 1, "feedforward": 16},
}

CALIBRATORS: dict[str, Calibrator | None] = {
    "none": None,
    "sigmoid": Calibrator("sigmoid", np.empty(0), np.empty(0), a=-3.0, b=1.2),
    "isotonic": Calibrator(
        "isotonic",
        np.array([0.2, 0.4, 0.45, 0.6, 0.8]),
        np.array([0.1, 0.3, 0.5, 0.52, 0.9]),
        low=0.2,
        high=0.8,
    ),
}


@pytest.mark.parametrize(
    ("network", "kind", "calibration"),
    [
        *((name, "direction", "isotonic") for name in NETWORKS),
        ("lstm", "classes", "sigmoid"),
        ("gru", "return", "none"),
        ("tcn", "direction", "sigmoid"),
    ],
)
def test_each_network_gives_its_fold_s_probability(
    network: str, kind: str, calibration: str
) -> None:
    torch.manual_seed(3)
    rng = np.random.default_rng(4)
    outputs = 3 if kind == "classes" else 1
    spec = check_network(network, NETWORKS[network], window=6, outputs=outputs, n_features=3)
    fold = TorchFold(
        spec,
        build_network(spec),
        kind,
        mean=rng.normal(size=3),
        scale=rng.uniform(0.5, 2.0, 3),
        target_scale=0.5,
        calibrator=CALIBRATORS[calibration],
    )
    windows = rng.normal(size=(40, 6, 3))
    expected = fold.predict(windows)
    got = _onnx(torch_graph(fold), WINDOWS, windows)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.ptp(expected) > 0.0


def test_a_bidirectional_cell_is_refused_with_the_reason() -> None:
    from tradeloom.cli import onnx_torch

    rnn = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    with pytest.raises(NotExported, match=re.escape("its LSTM is bidirectional")):
        onnx_torch._unrolled(torch.nn.Sequential(rnn))
