"""``model.estimator: {class: ..., params: {...}}``: nested estimators declared in YAML,
checked key by key at ``file:line:col``, compiled where every part is (issue 46 item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    ExtraTreesClassifier,
    RandomForestClassifier,
    StackingClassifier,
    VotingClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tradeloom.cli.main import main
from tradeloom.plugins.component import ParamError, ParamErrors
from tradeloom.plugins.model.compiling import estimator_problem
from tradeloom.plugins.model.declared_estimators import (
    DeclaredEstimator,
    DeclaredRecipe,
    build_declared,
    remembered_declared,
)
from tradeloom.plugins.model.fold_predictor import FoldPredictor

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "strategies" / "btc_stack.yaml"


def _declared(document: dict[str, Any]) -> Any:
    return build_declared(DeclaredEstimator.model_validate(document), seed=7)


def _forest(name: str, cls: str = "RandomForestClassifier", **params: Any) -> dict[str, Any]:
    return {
        "name": name,
        "class": f"sklearn.ensemble.{cls}",
        "params": {"n_estimators": 5, "max_depth": 3, **params},
    }


def test_nested_declarations_build_the_estimators_they_name_seeded() -> None:
    stacking = _declared(
        {
            "class": "sklearn.ensemble.StackingClassifier",
            "params": {
                "estimators": [
                    _forest("forest"),
                    {
                        "name": "scaled",
                        "class": "sklearn.pipeline.Pipeline",
                        "params": {
                            "steps": [
                                {"name": "scale", "class": "sklearn.preprocessing.StandardScaler"},
                                {
                                    "name": "logit",
                                    "class": "sklearn.linear_model.LogisticRegression",
                                    "params": {"C": 0.5},
                                },
                            ]
                        },
                    },
                ],
                "final_estimator": {
                    "class": "sklearn.linear_model.LogisticRegression",
                    "params": {"C": 2.0},
                },
            },
        }
    )
    assert isinstance(stacking, StackingClassifier)
    (forest_name, forest), (pipe_name, pipe) = stacking.estimators
    assert (forest_name, pipe_name) == ("forest", "scaled")
    assert isinstance(forest, RandomForestClassifier)
    assert (forest.n_estimators, forest.max_depth, forest.random_state) == (5, 3, 7)
    assert isinstance(pipe, Pipeline)
    assert [type(s).__name__ for _, s in pipe.steps] == ["StandardScaler", "LogisticRegression"]
    assert pipe.steps[1][1].C == 0.5 and pipe.steps[1][1].random_state == 7
    assert isinstance(stacking.final_estimator, LogisticRegression)
    assert stacking.final_estimator.C == 2.0
    # a stacking classifier predicts through the library, and says why
    assert estimator_problem(stacking) == (
        "StackingClassifier is not compiled; compiled are DecisionTreeClassifier, "
        "ExtraTreesClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier, "
        "LinearDiscriminantAnalysis, LogisticRegression, LogisticRegressionCV, "
        "RandomForestClassifier, SGDClassifier from scikit-learn; LGBMClassifier from "
        "LightGBM; XGBClassifier from XGBoost"
    )


@pytest.mark.parametrize(
    ("document", "key", "message"),
    [
        (
            {
                "class": "sklearn.ensemble.VotingClassifier",
                "params": {"estimators": [_forest("a"), _forest("b", max_dept=2)]},
            },
            "estimator.params.estimators.1.params.max_dept",
            "unknown parameter of RandomForestClassifier (did you mean 'max_depth'?)",
        ),
        (
            {
                "class": "sklearn.ensemble.VotingClassifier",
                "params": {"estimators": [_forest("a"), _forest("a")]},
            },
            "estimator.params.estimators",
            "names must differ; a is repeated",
        ),
        (
            {
                "class": "sklearn.calibration.CalibratedClassifierCV",
                "params": {
                    "estimator": {
                        "class": "sklearn.ensemble.RandomForestClassifier",
                        "params": {"n_estimators": 20000},
                    }
                },
            },
            "estimator.params.estimator.params.n_estimators",
            "must be <= 10,000 for RandomForestClassifier (the ceiling on the work of one "
            "fold), was 20,000",
        ),
        (
            {
                "class": "sklearn.ensemble.StackingClassifier",
                "params": {
                    "estimators": [_forest("a")],
                    "final_estimator": {
                        "class": "sklearn.linear_model.LogisticRegression",
                        "params": {"C": -1.0},
                    },
                },
            },
            "estimator.params.final_estimator.params.C",
            "must be a float in the range (0.0, inf], was -1.0",
        ),
        (
            {
                "class": "sklearn.ensemble.VotingClassifier",
                "params": {
                    "estimators": [{"name": "a", "class": "sklearn.ensemble.RandomForestClassifer"}]
                },
            },
            "estimator.params.estimators.0.class",
            "cannot import 'sklearn.ensemble.RandomForestClassifer': module 'sklearn.ensemble' "
            "has no attribute 'RandomForestClassifer' (did you mean 'RandomForestClassifier'?)",
        ),
    ],
)
def test_every_level_is_checked_and_named_by_its_key_path(
    document: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ParamError) as raised:
        _declared(document)
    assert (raised.value.key, raised.value.message) == (key, message)


def _vote(*members: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {
        "class": "sklearn.ensemble.VotingClassifier",
        "params": {"estimators": list(members), **params},
    }


_XGB_DEVICES = (
    "must be cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal> (such as cuda:0) or null; was "
)


@pytest.mark.parametrize(
    ("document", "key", "message"),
    [
        (
            _vote(),
            "estimator.params.estimators",
            "VotingClassifier needs at least one estimator: a list of "
            "{name: ..., class: ..., params: ...}",
        ),
        (
            _vote(_forest("a__b")),
            "estimator.params.estimators.0.name",
            "must not hold '__' (scikit-learn reads it as a member's parameter), was 'a__b'",
        ),
        (
            _vote(_forest("weights")),
            "estimator.params.estimators.0.name",
            "must not be a parameter of VotingClassifier (estimators, flatten_transform, "
            "n_jobs, verbose, voting, weights), was 'weights'",
        ),
        (
            _vote(_forest("a", n_jobs=-100_000)),
            "estimator.params.estimators.0.params.n_jobs",
            "must be a count of workers from 1 to 1,024, or -1 (every core) down to -256 "
            "(every core but 255), or null; was -100,000",
        ),
        (
            _vote(_forest("a", n_estimators=True)),
            "estimator.params.estimators.0.params.n_estimators",
            "must be an int in the range [1, inf), was True",
        ),
        (
            _vote(_forest("a"), _forest("b", cls="RandomForestRegressor")),
            "estimator.params.estimators.1.class",
            "'sklearn.ensemble.RandomForestRegressor' is not a classifier; expected a "
            "scikit-learn classifier with predict_proba, such as "
            "sklearn.ensemble.RandomForestClassifier (a regressor learns label kind return)",
        ),
        (
            _vote(
                _forest("a"),
                {"name": "svm", "class": "sklearn.svm.SVC", "params": {}},
                voting="soft",
            ),
            "estimator.params.estimators.1.class",
            "SVC has no predict_proba with these params; the model needs class probabilities",
        ),
        (
            _vote(
                _forest("a"),
                {"name": "x", "class": "xgboost.XGBClassifier", "params": {"device": "nosuch"}},
            ),
            "estimator.params.estimators.1.params.device",
            f"{_XGB_DEVICES}'nosuch'",
        ),
        (
            {
                "class": "sklearn.pipeline.Pipeline",
                "params": {"steps": [_forest("first"), _forest("last")]},
            },
            "estimator.params.steps.0.class",
            "'sklearn.ensemble.RandomForestClassifier' is no transformer (fit and transform); "
            "a pipeline's steps before its last transform the rows",
        ),
    ],
    ids=[
        "no-member",
        "dunder-name",
        "param-name",
        "n_jobs",
        "bool-for-int",
        "regressor",
        "soft-without-proba",
        "xgboost-device",
        "pipeline-step",
    ],
)
def test_members_are_checked_as_a_top_level_estimator(
    document: dict[str, Any], key: str, message: str
) -> None:
    """What used to validate and then stop the run at fold 0 (or train on a typo)."""
    with pytest.raises(ParamError) as raised:
        build_declared(DeclaredEstimator.model_validate(document), seed=7, task="classifier")
    assert (raised.value.key, raised.value.message) == (key, message)
    assert not isinstance(raised.value, ParamErrors)  # the one problem, once


def test_every_mistake_of_a_declaration_is_reported_at_once() -> None:
    document = _vote(
        {"name": "a", "class": "sklearn.ensemble.RandomForestClasifier"},
        _forest("b", n_jobs=0, max_dept=2),
        _forest("c__d"),
        {"name": "e", "class": "sklearn.ensemble.ExtraTreesClassifier", "params": {"n_jobs": 0}},
    )
    with pytest.raises(ParamErrors) as raised:
        _declared(document)
    assert [(e.key, e.message) for e in raised.value.errors] == [
        (
            "estimator.params.estimators.0.class",
            "cannot import 'sklearn.ensemble.RandomForestClasifier': module 'sklearn.ensemble' "
            "has no attribute 'RandomForestClasifier' (did you mean 'RandomForestClassifier'?)",
        ),
        (
            "estimator.params.estimators.1.params.max_dept",
            "unknown parameter of RandomForestClassifier (did you mean 'max_depth'?)",
        ),
        (  # the rest of a member with an unknown key is checked all the same
            "estimator.params.estimators.1.params.n_jobs",
            "must be a count of workers from 1 to 1,024, or -1 (every core) down to -256 "
            "(every core but 255), or null; was 0",
        ),
        (
            "estimator.params.estimators.2.name",
            "must not hold '__' (scikit-learn reads it as a member's parameter), was 'c__d'",
        ),
        (
            "estimator.params.estimators.3.params.n_jobs",
            "must be a count of workers from 1 to 1,024, or -1 (every core) down to -256 "
            "(every core but 255), or null; was 0",
        ),
    ]


def test_validate_locates_a_nested_mistake_at_its_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))
    shipped = STACK.read_text()
    hostile = shipped.replace("max_depth: 5", "max_depth: deep")
    assert hostile != shipped
    (tmp_path / "s.yaml").write_text(hostile)
    lines = hostile.splitlines()
    line = next(i for i, s in enumerate(lines, 1) if "max_depth: deep" in s)
    column = lines[line - 1].index("deep") + 1

    assert main(["validate", str(tmp_path / "s.yaml")]) == 2

    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path / 's.yaml'}:{line}:{column} model.estimator.params.estimators.1.params."
        "max_depth: must be an int in the range [1, inf) or None, was 'deep'"
    ]


def test_validate_states_which_declared_estimators_are_not_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADELOOM_CACHE", str(tmp_path / "cache"))
    shipped = STACK.read_text()
    assert main(["validate", str(STACK)]) == 0
    assert "note:" not in capsys.readouterr().err  # the shipped vote compiles

    hard = (
        shipped.replace("voting: soft", "voting: soft\n      weights: [2, 1]")
        .replace("class: sklearn.ensemble.ExtraTreesClassifier", "class: sklearn.svm.SVC")
        .replace("max_depth: 5\n            min_samples_leaf: 20", "probability: true")
    )
    hard = hard.replace("n_estimators: 40\n            probability", "probability")
    (tmp_path / "s.yaml").write_text(hard)
    for _ in ("checked", "remembered"):
        assert main(["validate", str(tmp_path / "s.yaml")]) == 0
        err = capsys.readouterr().err
        assert "model.estimator: note: VotingClassifier of SVC is not compiled; " in err, err


def test_the_verdict_on_a_declaration_is_remembered(tmp_path: Path) -> None:
    spec = DeclaredEstimator.model_validate(
        {
            "class": "sklearn.ensemble.VotingClassifier",
            "params": {"voting": "soft", "estimators": [_forest("a"), _forest("b")]},
        }
    )
    first = remembered_declared(spec, 3, "classifier", cache=tmp_path)
    again = remembered_declared(spec, 3, "classifier", cache=tmp_path)

    assert isinstance(first, tuple) and isinstance(again, DeclaredRecipe)
    assert again == first[0]
    assert (again.name, again.problem, again.calibrated) == ("VotingClassifier", None, None)
    assert type(again.make()) is VotingClassifier


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(240, 4))
    y = (x[:, 0] - x[:, 1] + rng.normal(size=240) > 0).astype(int)
    return x, y


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), weighted=st.booleans(), scaled=st.booleans())
def test_a_compiled_soft_vote_is_the_librarys_predict_proba(
    seed: int, weighted: bool, scaled: bool
) -> None:
    x, y = _data(seed)
    extra: Any = ExtraTreesClassifier(n_estimators=4, max_depth=4, random_state=seed)
    if scaled:
        extra = Pipeline([("s", StandardScaler()), ("t", extra)])
    vote = VotingClassifier(
        [
            ("f", RandomForestClassifier(n_estimators=4, max_depth=3, random_state=seed)),
            ("e", extra),
            ("l", LogisticRegression()),
        ],
        voting="soft",
        weights=[1.0, 2.5, 0.5] if weighted else None,
    ).fit(x[:200], y[:200])
    probes = np.vstack([x[200:], np.random.default_rng(seed).normal(scale=4.0, size=(20, 4))])

    predictor = FoldPredictor(vote)

    assert predictor.compiled is not None, predictor.problem
    library = vote.predict_proba(probes)[:, 1]
    batch = predictor.predict(probes)
    np.testing.assert_allclose(batch, library, rtol=0, atol=1e-12)
    assert np.array_equal(batch, [predictor.predict_one(row) for row in probes])


def test_a_declared_cross_validated_calibration_of_a_forest_compiles() -> None:
    x, y = _data(11)
    calibrated = CalibratedClassifierCV(
        RandomForestClassifier(n_estimators=5, max_depth=2, random_state=0), cv=3
    ).fit(x[:200], y[:200])

    predictor = FoldPredictor(calibrated)

    assert predictor.compiled is not None, predictor.problem
    np.testing.assert_allclose(
        predictor.predict(x[200:]), calibrated.predict_proba(x[200:])[:, 1], rtol=0, atol=1e-12
    )
    assert np.array_equal(predictor.predict(x[200:]), [predictor.predict_one(r) for r in x[200:]])


def test_a_calibration_of_a_decision_function_predicts_through_the_library() -> None:
    x, y = _data(12)
    calibrated = CalibratedClassifierCV(LogisticRegression(), cv=3).fit(x[:200], y[:200])

    predictor = FoldPredictor(calibrated)

    assert predictor.compiled is None
    assert predictor.problem == (
        "CalibratedClassifierCV calibrates the decision_function of LogisticRegression; "
        "compiled calibration takes models calibrated on predict_proba (trees, forests, "
        "XGBoost; not LightGBM 4.7's classifier, which has one)"
    )
    np.testing.assert_array_equal(
        predictor.predict(x[200:]), calibrated.predict_proba(x[200:])[:, 1]
    )


def test_a_misspelt_declaration_key_is_named_without_the_path_forms_complaint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = STACK.read_text().replace(
        "    class: sklearn.ensemble.VotingClassifier",
        "    clas: sklearn.ensemble.VotingClassifier",
    )
    (tmp_path / "s.yaml").write_text(hostile)
    line = hostile.splitlines().index("    clas: sklearn.ensemble.VotingClassifier") + 1

    assert main(["validate", str(tmp_path / "s.yaml")]) == 2

    # not "model.estimator: expected a string": the mapping form's own complaints
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path / 's.yaml'}:{line}:5 model.estimator.clas: unknown key (did you mean 'class'?)"
    ]
