"""scikit-learn's plain estimators, declared (`tradeloom.plugins.model.estimator_table`):
the table is what the installed scikit-learn says, and every verdict it gives is the one
`check_estimator` gives, so that a first ``validate`` may skip importing scikit-learn."""

from __future__ import annotations

import json
import math
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pytest

from tradeloom.plugins.component import ParamError
from tradeloom.plugins.model import estimator_checks, estimator_table
from tradeloom.plugins.model.estimator_checks import (
    CheckedEstimator,
    check_estimator,
    remembered_estimator,
)
from tradeloom.plugins.model.estimator_table_build import generate

FOREST = "sklearn.ensemble.RandomForestClassifier"
TABLE: dict[str, Any] = json.loads(estimator_table.TABLE.read_text(encoding="utf-8"))

made_for_this_scikit_learn = pytest.mark.skipif(
    TABLE["version"] != installed_version("scikit-learn"),
    reason=f"the estimator table was made for scikit-learn {TABLE['version']}, "
    f"{installed_version('scikit-learn')} is installed (validate reads nothing from it: "
    "test_another_scikit_learn_version_reads_nothing_from_the_table); remake it with "
    "python -m tradeloom.plugins.model.estimator_table_build",
)
"""A table made for another scikit-learn (a new release, or .ci/lowest's oldest) is not
read: the tests of what it says wait for it to be made again."""


@made_for_this_scikit_learn
def test_the_table_is_what_the_installed_scikit_learn_says() -> None:
    assert generate() == TABLE, (
        "the estimator table is stale: python -m tradeloom.plugins.model.estimator_table_build"
    )


def test_the_table_holds_the_estimators_the_shipped_strategies_name() -> None:
    for path in (
        FOREST,
        "sklearn.ensemble.ExtraTreesClassifier",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.linear_model.LogisticRegression",
    ):
        entry = TABLE["estimators"][path]
        assert entry["classifier"] and entry["proba"], path
    # a classifier whose probabilities depend on its params is left to the check
    assert (
        "sklearn.svm.SVC" not in TABLE["estimators"]
        or not TABLE["estimators"]["sklearn.svm.SVC"]["proba"]
    )


def _candidates(allowed: Any) -> list[Any]:
    """Values near and at every edge of a param's encoded constraints, and wrong kinds."""
    found: list[Any] = [None, True, 0, 1, -1, 0.5, "nonsense", math.inf]
    if allowed == "no_validation":
        return found
    for constraint in allowed:
        inner = constraint[1] if constraint[0] == "hidden" else constraint
        if inner[0] == "interval":
            for bound in inner[2:4]:
                if bound is not None:
                    found += [bound, bound - 1, bound + 1, bound + 0.5, float(bound)]
        if inner[0] == "str_options":
            found += [*inner[1], *inner[2], inner[1][0].upper()]
    return found


def _cases() -> list[tuple[str, str, str, Any]]:
    cases = []
    for path, entry in sorted(TABLE["estimators"].items()):
        task = "classifier" if entry["classifier"] else "regressor"
        for key, allowed in sorted(entry["constraints"].items()):
            cases.extend((path, task, key, value) for value in _candidates(allowed))
    return cases


@pytest.mark.slow
@made_for_this_scikit_learn
def test_every_verdict_the_table_gives_is_the_checks_own() -> None:
    """Each param of each estimator at the edges of its constraints and beyond: where the
    table gives a verdict, `check_estimator` passes with the very same one; and the table
    gives one for most of the values the check passes (it is no empty promise)."""
    version = TABLE["version"]
    given = passed = 0
    for path, task, key, value in _cases():
        verdict = estimator_checks._declared_verdict(path, {key: value}, 7, task)
        try:
            checked, _ = check_estimator(path, {key: value}, 7, task)  # type: ignore[arg-type]
        except ParamError:
            assert verdict is None, (path, key, value)
            continue
        passed += 1
        if verdict is not None:
            given += 1
            assert verdict == checked, (path, key, value)
            assert list(verdict.settings) == list(checked.settings)
    assert version is not None and passed > 1000
    assert given > 0.5 * passed, (given, passed)


def test_a_random_state_the_check_refuses_is_left_to_it() -> None:
    assert estimator_checks._declared_verdict(FOREST, {}, 2**32, "classifier") is None
    assert estimator_checks._declared_verdict(FOREST, {}, -1, "classifier") is None
    made = estimator_checks._declared_verdict(FOREST, {"n_estimators": 10}, 3, "classifier")
    assert made == CheckedEstimator(
        FOREST, "RandomForestClassifier", {"n_estimators": 10, "random_state": 3}
    )


def test_another_scikit_learn_version_reads_nothing_from_the_table() -> None:
    assert estimator_table.table_verdict(FOREST, {}, 7, "classifier", TABLE["version"])
    assert estimator_table.table_verdict(FOREST, {}, 7, "classifier", "0.0.1") is None


@pytest.mark.parametrize(
    ("params", "key", "message"),
    [
        (
            {"n_estimator": 5},
            "params.n_estimator",
            "unknown parameter of RandomForestClassifier (did you mean 'n_estimators'?)",
        ),
        ({"n_estimators": 0}, "params.n_estimators", "must be an int in the range [1, inf), was 0"),
        (
            {"n_estimators": 20_000},
            "params.n_estimators",
            "must be <= 10,000 for RandomForestClassifier (the ceiling on the work of one "
            "fold), was 20,000",
        ),
        (
            {"n_jobs": 0},
            "params.n_jobs",
            "must be a count of workers from 1 to 1,024, or -1 (every core) down to -256 "
            "(every core but 255), or null; was 0",
        ),
    ],
)
def test_a_first_check_still_refuses_with_the_checks_own_line(
    tmp_path: Path, params: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ParamError) as raised:
        remembered_estimator(FOREST, params, 7, tmp_path)
    assert (raised.value.key, raised.value.message) == (key, message)
    assert not (tmp_path / "estimator-checks").exists()


def test_a_verdict_read_from_the_table_is_remembered(tmp_path: Path) -> None:
    answer = remembered_estimator(FOREST, {"n_estimators": 50}, 7, tmp_path)
    assert answer == CheckedEstimator(
        FOREST, "RandomForestClassifier", {"n_estimators": 50, "random_state": 7}
    )
    assert len(list((tmp_path / "estimator-checks").glob("*.json"))) == 1
    assert remembered_estimator(FOREST, {"n_estimators": 50}, 7, tmp_path) == answer


@made_for_this_scikit_learn
@pytest.mark.parametrize(
    "path",
    [
        FOREST,  # calibrated on predict_proba: compiled
        "sklearn.ensemble.HistGradientBoostingClassifier",  # on its decision_function
        "sklearn.linear_model.LogisticRegression",
        "sklearn.naive_bayes.GaussianNB",  # not compiled at all
    ],
)
def test_a_calibrated_estimators_parity_note_is_read_from_the_table_as_it_says_it(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the class has a decision_function (what a calibration is fitted on) is
    declared: the note of a checked estimator is read without building it, and is the
    one the built estimator gives."""
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.model import SklearnParams, build_sklearn_model

    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path))  # no verdict remembered
    params = SklearnParams.model_validate(
        {
            "estimator": path,
            "calibration": {"method": "sigmoid", "holdout": 50},
            "walk_forward": {"train_window": 200, "retrain_every": 50},
        }
    )
    model = build_sklearn_model(params, BuildContext("t", Path("."), seed=3))
    assert isinstance(model._estimator, CheckedEstimator)  # the table's verdict
    note = model.parity_note
    assert isinstance(model._estimator, CheckedEstimator)  # read, not built
    assert TABLE["estimators"][path]["decision_function"] == hasattr(
        model.estimator, "decision_function"
    )
    assert not isinstance(model._estimator, CheckedEstimator)  # built now: asked of it
    assert model.parity_note == note
    assert (note is None) is (path == FOREST)
