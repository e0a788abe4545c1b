"""A torch network as a scikit-learn classifier: an ensemble's member beside trees, trained
in each fold, pickled with its ensemble as numbers the model files' allow-list admits."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier, VotingClassifier

from tests.builders import OMIT, write_strategy
from tradeloom.backtest.run import run_strategy
from tradeloom.engine.wiring import build_pipeline
from tradeloom.plugins.model.safe_pickle import restricted_loads
from tradeloom.plugins.model.torch_estimator import TorchClassifier
from tradeloom.schemas import load_strategy

pytestmark = pytest.mark.xdist_group("torch")


def _rows(n: int = 400, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return x, y


def test_it_learns_repeats_and_survives_the_model_files_unpickler() -> None:
    x, y = _rows()
    net = TorchClassifier(
        network_params={"hidden": 8}, epochs=20, learning_rate=0.01, random_state=4
    )
    p = net.fit(x[:300], y[:300]).predict_proba(x[300:])
    again = clone(net).fit(x[:300], y[:300]).predict_proba(x[300:])

    assert p.shape == (100, 2) and np.allclose(p.sum(axis=1), 1.0)
    assert np.array_equal(p, again)
    assert (net.predict(x[300:]) == y[300:]).mean() > 0.8  # it learnt the rows' sign
    loaded = restricted_loads(pickle.dumps(net, protocol=5))
    assert np.array_equal(loaded.predict_proba(x[300:]), p)
    one = np.array([net.predict_proba(x[i : i + 1])[0, 1] for i in range(300, 400)])
    np.testing.assert_allclose(one, p[:, 1], rtol=0, atol=1e-12)


def test_three_classes_get_three_probabilities() -> None:
    x, _ = _rows()
    y3 = np.where(x[:, 0] > 0.5, 2, np.where(x[:, 0] < -0.5, 0, 1))
    p = TorchClassifier(epochs=5, random_state=1).fit(x, y3).predict_proba(x[:10])

    assert p.shape == (10, 3) and np.allclose(p.sum(axis=1), 1.0)


def test_a_bad_param_is_refused_by_scikit_learns_constraints() -> None:
    x, y = _rows(50)
    with pytest.raises(ValueError, match=r"The 'network' parameter of TorchClassifier must be"):
        TorchClassifier(network="rnn").fit(x, y)


def test_a_voting_ensemble_trains_a_network_beside_a_forest_in_each_fold(tmp_path: Path) -> None:
    estimator = {
        "class": "sklearn.ensemble.VotingClassifier",
        "params": {
            "voting": "soft",
            "estimators": [
                {
                    "name": "forest",
                    "class": "sklearn.ensemble.RandomForestClassifier",
                    "params": {"n_estimators": 10, "max_depth": 3},
                },
                {
                    "name": "net",
                    "class": "tradeloom.plugins.model.torch_estimator.TorchClassifier",
                    "params": {"network_params": {"hidden": 6}, "epochs": 3},
                },
            ],
        },
    }
    model = {
        "estimator": estimator,
        "params": OMIT,
        "calibration": {"method": "sigmoid", "holdout": 40},
    }
    path = write_strategy(tmp_path, model=model, signal={"threshold": 0.01})
    config, plugins = load_strategy(path)
    pipeline = build_pipeline(config)
    outcome = run_strategy(pipeline, plugins, out=tmp_path / "run")

    trained = pipeline.model.trained
    assert len(trained) >= 2
    for fold in trained:
        ensemble = fold.fitted.calibrated_classifiers_[0].estimator.estimator
        assert isinstance(ensemble, VotingClassifier)
        forest, net = ensemble.estimators_
        assert isinstance(forest, RandomForestClassifier) and isinstance(net, TorchClassifier)
        assert net.random_state == config.seed  # the strategy's seed, as a forest's
    p = outcome.result.probability.to_numpy()
    assert np.isfinite(p).sum() > 100 and np.ptp(p[np.isfinite(p)]) > 0
