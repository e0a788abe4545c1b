"""The estimator checks: every problem of a strategy's estimator at once, and their
remembered verdicts, reused only for the very same question."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from tradeloom.plugins.component import ParamError, ParamErrors
from tradeloom.plugins.model import estimator_checks
from tradeloom.plugins.model.estimator_checks import (
    CheckedEstimator,
    check_estimator,
    remembered_estimator,
)

FOREST = "sklearn.ensemble.RandomForestClassifier"


@pytest.fixture(autouse=True)
def _checked_by_scikit_learn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every verdict here is the check's own: the verdicts the declared estimators give
    without it are `test_estimator_table`'s."""
    monkeypatch.setattr(estimator_checks, "_declared_verdict", lambda *args: None)


def _verdicts(cache: Path) -> list[Path]:
    return sorted((cache / "estimator-checks").glob("*.json"))


def test_a_passing_verdict_is_remembered_and_makes_the_same_estimator(tmp_path: Path) -> None:
    first = remembered_estimator(FOREST, {"n_estimators": 50, "max_depth": 3}, 7, tmp_path)
    assert isinstance(first, tuple)  # checked: nothing remembered yet
    checked, estimator = first
    assert len(_verdicts(tmp_path)) == 1
    again = remembered_estimator(FOREST, {"n_estimators": 50, "max_depth": 3}, 7, tmp_path)
    assert (
        again
        == checked
        == CheckedEstimator(
            FOREST,
            "RandomForestClassifier",
            {"n_estimators": 50, "max_depth": 3, "random_state": 7},
        )
    )
    assert isinstance(again, CheckedEstimator)
    assert again.make().get_params() == estimator.get_params()


@pytest.mark.parametrize(
    ("path", "params", "has"),
    [
        ("xgboost.XGBClassifier", {"n_estimators": 5}, False),
        ("lightgbm.LGBMClassifier", {"n_estimators": 5}, True),
        (FOREST, {"n_estimators": 5}, False),
        ("sklearn.linear_model.LogisticRegression", {"C": 1.0}, True),
    ],
    ids=["xgboost", "lightgbm", "forest", "logistic"],
)
def test_a_verdict_remembers_whether_the_estimator_has_a_decision_function(
    tmp_path: Path, path: str, params: dict[str, Any], has: bool
) -> None:
    """What a calibration of it is fitted on, and so whether it is compiled: a remembered
    verdict answers it (a second validate of a calibrated LightGBM or XGBoost model, which
    no table declares, imports no library; it imported them all at every validate)."""
    pytest.importorskip(path.partition(".")[0])
    first = remembered_estimator(path, params, 7, tmp_path)
    assert isinstance(first, tuple)  # checked: nothing remembered yet
    checked, estimator = first
    assert checked.decision_function is has is hasattr(estimator, "decision_function")
    again = remembered_estimator(path, params, 7, tmp_path)
    assert isinstance(again, CheckedEstimator)
    assert again.decision_function is has


@pytest.mark.parametrize(
    ("params", "seed"),
    [({"n_estimators": 51, "max_depth": 3}, 7), ({"n_estimators": 50, "max_depth": 3}, 8)],
    ids=["other params", "other seed"],
)
def test_another_question_is_checked_anew(
    tmp_path: Path, params: dict[str, int], seed: int
) -> None:
    remembered_estimator(FOREST, {"n_estimators": 50, "max_depth": 3}, 7, tmp_path)
    answer = remembered_estimator(FOREST, params, seed, tmp_path)
    assert isinstance(answer, tuple)
    assert answer[1].get_params()["random_state"] == seed
    assert len(_verdicts(tmp_path)) == 2


def test_a_failing_check_is_never_remembered(tmp_path: Path) -> None:
    for _ in range(2):
        with pytest.raises(ParamError) as raised:
            remembered_estimator(FOREST, {"n_estimators": -1}, 7, tmp_path)
        assert raised.value.key == "params.n_estimators"
        assert raised.value.message == "must be an int in the range [1, inf), was -1"
    assert _verdicts(tmp_path) == []


def test_a_damaged_verdict_is_checked_again_and_replaced(tmp_path: Path) -> None:
    remembered_estimator(FOREST, {}, 7, tmp_path)
    (file,) = _verdicts(tmp_path)
    file.write_text('{"name": ', encoding="utf-8")
    answer = remembered_estimator(FOREST, {}, 7, tmp_path)
    assert isinstance(answer, tuple)
    assert isinstance(remembered_estimator(FOREST, {}, 7, tmp_path), CheckedEstimator)


def test_params_json_cannot_hold_are_not_remembered(tmp_path: Path) -> None:
    # YAML may give class_weight integer keys; JSON would bring them back as strings
    answer = remembered_estimator(FOREST, {"class_weight": {0: 1.0, 1: 2.0}}, 7, tmp_path)
    assert isinstance(answer, tuple)
    assert _verdicts(tmp_path) == []


class _LocalClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, depth: int = 1) -> None:
        self.depth = depth

    def fit(self, x: object, y: object) -> _LocalClassifier:
        return self

    def predict_proba(self, x: object) -> object:
        return x


def test_an_estimator_of_no_installed_distribution_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the user's own module may change without a version: checked every time
    module = types.ModuleType("tradeloom_local_estimators")
    module._LocalClassifier = _LocalClassifier  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    path = "tradeloom_local_estimators._LocalClassifier"
    for _ in range(2):
        answer = remembered_estimator(path, {"depth": 2}, 7, tmp_path)
        assert isinstance(answer, tuple)
    assert _verdicts(tmp_path) == []
    assert check_estimator(path, {"depth": 2}, 7)[0].settings == {"depth": 2}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (FOREST, {"n_estimators": 5, "max_depth": 3}),
        # LightGBM and XGBoost keep the params they are given in the order given (and
        # tradeloom adds its own after the strategy's): a fresh check and the remembered
        # verdict must set them in one order, or the fold files differ by a fresh cache
        ("lightgbm.LGBMClassifier", {"n_estimators": 5, "num_leaves": 7, "subsample": 0.8}),
        ("xgboost.XGBClassifier", {"n_estimators": 5, "max_depth": 3, "subsample": 0.8}),
    ],
    ids=["forest", "lightgbm", "xgboost"],
)
def test_a_model_made_from_a_remembered_verdict_pickles_to_the_same_bytes(
    tmp_path: Path, path: str, params: dict[str, Any]
) -> None:
    # a fold's file pickles the fitted estimator beside its class name: the name must be
    # the class's own object, as pickle writes an object it saw once by reference
    import pickle

    import numpy as np
    from sklearn.base import clone

    from tradeloom.plugins.model import SklearnModel
    from tradeloom.plugins.model.sklearn_model import LabelParams

    eager = remembered_estimator(path, params, 7, tmp_path)
    remembered = remembered_estimator(path, params, 7, tmp_path)
    assert isinstance(eager, tuple) and isinstance(remembered, CheckedEstimator)
    x = np.random.default_rng(0).normal(size=(200, 3))
    y = (x[:, 0] > 0).astype(int)
    files = []
    for estimator in (eager[1], remembered):
        model = SklearnModel(estimator, label=LabelParams(), train_window=10, retrain_every=10)
        fitted = clone(model.estimator).fit(x, y)
        files.append(pickle.dumps({"model": fitted, "estimator": model.estimator_name}))
    assert files[0] == files[1]


def test_every_problem_of_an_estimator_is_named_at_once() -> None:
    """A regressor where a classifier is needed is said once (not again for its missing
    predict_proba); true for a count, a joblib n_jobs of -100000 and a misspelt key each
    get their line."""
    with pytest.raises(ParamErrors) as raised:
        check_estimator(
            "sklearn.ensemble.RandomForestRegressor",
            {"n_estimators": True, "n_jobs": -100_000, "max_dept": 3},
            7,
        )
    assert [(e.key, e.message) for e in raised.value.errors] == [
        (
            "estimator",
            "'sklearn.ensemble.RandomForestRegressor' is not a classifier; expected a "
            "scikit-learn classifier with predict_proba, such as "
            "sklearn.ensemble.RandomForestClassifier (a regressor learns label kind return)",
        ),
        (
            "params.max_dept",
            "unknown parameter of RandomForestRegressor (did you mean 'max_depth'?)",
        ),
        ("params.n_estimators", "must be an int in the range [1, inf), was True"),
        (
            "params.n_jobs",
            "must be a count of workers from 1 to 1,024, or -1 (every core) down to -256 "
            "(every core but 255), or null; was -100,000",
        ),
    ]


@pytest.mark.parametrize(
    ("n_jobs", "ok"),
    [(1, True), (-1, True), (-256, True), (1024, True), (0, False), (1025, False), (-257, False)],
)
def test_a_joblib_n_jobs_is_bounded(n_jobs: int, ok: bool) -> None:
    if ok:
        checked, _ = check_estimator(FOREST, {"n_jobs": n_jobs}, 7)
        assert checked.settings["n_jobs"] == n_jobs
    else:
        with pytest.raises(ParamError, match=r"^params.n_jobs: must be a count of workers"):
            check_estimator(FOREST, {"n_jobs": n_jobs}, 7)
