"""Compiled tree inference equals ``predict_proba`` bit for bit, and refuses what it cannot do.

Every comparison of probabilities is ``np.array_equal`` or ``==``: no tolerance.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import tradeloom.plugins.model.compiled_trees as compiled_trees
from tests.hunting import examples
from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model import SklearnModel, SklearnParams, build_sklearn_model
from tradeloom.plugins.model.compiled_model import UnsupportedEstimatorError
from tradeloom.plugins.model.compiled_trees import CompiledClassifier
from tradeloom.plugins.model.compiling import compile_classifier

KINDS = ("tree", "forest", "extra", "gb", "hgb")
TAKES_NAN = {"tree", "forest", "extra", "hgb"}  # in training and prediction


def _assert_exact(compiled: CompiledClassifier, estimator: Any, rows: np.ndarray) -> None:
    expected = estimator.predict_proba(rows)
    got = compiled.predict_proba(rows)
    assert np.array_equal(got, expected), _first_difference(got, expected, rows)
    assert got.dtype == expected.dtype == np.float64
    one = np.array([compiled.predict_proba_one(row) for row in rows])
    assert np.array_equal(one, expected[:, 1]), _first_difference(one, expected[:, 1], rows)
    assert all(type(compiled.predict_proba_one(row)) is float for row in rows[:3])


def _first_difference(got: np.ndarray, expected: np.ndarray, rows: np.ndarray) -> str:
    if got.shape != expected.shape:
        return f"shape {got.shape} != {expected.shape}"
    row = int(np.flatnonzero((got != expected).reshape(len(rows), -1).any(axis=1))[0])
    return f"row {row} {rows[row]!r}: {got[row]!r} != {expected[row]!r}"


def _compile(estimator: Any) -> CompiledClassifier:
    compiled = compile_classifier(estimator, strict=True)
    assert isinstance(compiled, CompiledClassifier)
    return compiled


# --- random models, random inputs -------------------------------------------------------


def _estimator(kind: str, draw: st.DrawFn, seed: int) -> Any:
    depth = draw(st.sampled_from([None, 1, 2, 3, 6, 12]))
    if kind in ("tree", "forest", "extra"):
        params: dict[str, Any] = {
            "max_depth": depth,
            "max_features": draw(st.sampled_from([None, "sqrt", 0.5, 1])),
            "min_samples_leaf": draw(st.sampled_from([1, 2, 3, 7])),
            # best-first growth numbers nodes out of preorder: the relayout is exercised
            "max_leaf_nodes": draw(st.sampled_from([None, None, 5, 17])),
            "class_weight": draw(st.sampled_from([None, "balanced"])),
            "criterion": draw(st.sampled_from(["gini", "entropy"])),
            "random_state": seed,
        }
        if kind == "tree":
            return DecisionTreeClassifier(
                splitter=draw(st.sampled_from(["best", "random"])), **params
            )
        n_estimators = draw(st.integers(1, 25))
        bootstrap = draw(st.booleans())
        cls = RandomForestClassifier if kind == "forest" else ExtraTreesClassifier
        return cls(n_estimators=n_estimators, bootstrap=bootstrap, **params)
    if kind == "gb":
        return GradientBoostingClassifier(
            n_estimators=draw(st.integers(1, 40)),
            learning_rate=draw(st.sampled_from([0.01, 0.1, 0.3, 1.0])),
            max_depth=depth,
            subsample=draw(st.sampled_from([1.0, 0.6])),
            max_features=draw(st.sampled_from([None, "sqrt"])),
            loss=draw(st.sampled_from(["log_loss", "exponential"])),
            init=draw(st.sampled_from([None, "zero"])),
            random_state=seed,
        )
    return HistGradientBoostingClassifier(
        max_iter=draw(st.integers(1, 40)),
        learning_rate=draw(st.sampled_from([0.05, 0.1, 0.5])),
        max_depth=depth,
        max_leaf_nodes=draw(st.sampled_from([3, 31])),
        min_samples_leaf=draw(st.sampled_from([1, 5, 20])),
        l2_regularization=draw(st.sampled_from([0.0, 1.0])),
        early_stopping=draw(st.sampled_from([False, True])),
        random_state=seed,
    )


def _training_data(
    draw: st.DrawFn, rng: np.random.Generator, with_nan: bool
) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(12, 300))
    n_features = draw(st.integers(1, 6))
    scale = 10.0 ** rng.uniform(-3, 3, n_features)
    x = rng.normal(size=(n, n_features)) * scale + rng.normal(size=n_features) * scale
    shape = draw(st.sampled_from(["continuous", "discrete", "constant_column", "all_constant"]))
    if shape == "discrete":
        x = np.round(x / scale) * scale  # ties: thresholds between repeated values
    elif shape == "constant_column":
        x[:, 0] = 3.25
    elif shape == "all_constant":
        x[:] = 1.5  # every tree is a single leaf
    y = (x[:, -1] / scale[-1] + rng.normal(size=n) > draw(st.floats(-1.5, 1.5))).astype(int)
    y[:8] = [0, 1] * 4  # both classes, enough of each for a stratified split
    if with_nan:
        x[rng.random(x.shape) < draw(st.sampled_from([0.0, 0.05, 0.3]))] = np.nan
    return x, y


def _test_rows(x: np.ndarray, rng: np.random.Generator, *, nan: bool, inf: bool) -> np.ndarray:
    """Rows on the candidate thresholds and beside them, like the training rows, far out."""
    n_features = x.shape[1]
    seen = np.nan_to_num(x)
    # Trees split halfway between adjacent training values (of the float32 values, for
    # all but histogram boosting): land on those points, and one step to either side.
    on = np.empty((400, n_features))
    for f in range(n_features):
        values = np.unique(seen[:, f])
        values32 = np.unique(seen[:, f].astype(np.float32)).astype(np.float64)
        halfway = np.concatenate(
            [(values[:-1] + values[1:]) / 2, (values32[:-1] + values32[1:]) / 2, values]
        )
        on[:, f] = rng.choice(halfway, size=400)
    on32 = on.astype(np.float32)
    rows = [
        on,
        np.nextafter(on, np.inf),
        np.nextafter(on, -np.inf),
        np.nextafter(on32, np.float32(np.inf)).astype(np.float64),
        np.nextafter(on32, np.float32(-np.inf)).astype(np.float64),
        seen[rng.integers(0, len(seen), 100)],
        rng.normal(size=(100, n_features)) * 1e6,
        rng.choice([-1e30, -1e10, -0.0, 0.0, 1e10, 1e30, 3.0e38], size=(50, n_features)),
    ]
    out = np.concatenate(rows)
    if nan:
        out[rng.random(out.shape) < 0.1] = np.nan
    if inf:
        infinite = rng.random(out.shape) < 0.02
        out[infinite] = rng.choice([-np.inf, np.inf], size=int(infinite.sum()))
    return out


@st.composite
def _cases(draw: st.DrawFn) -> tuple[Any, np.ndarray, np.ndarray]:
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x, y = _training_data(draw, rng, with_nan=kind in TAKES_NAN and draw(st.booleans()))
    estimator = _estimator(kind, draw, seed).fit(x, y)
    rows = _test_rows(x, rng, nan=kind in TAKES_NAN, inf=kind == "hgb")
    return estimator, x, rows


@pytest.mark.slow
@settings(max_examples=examples(150), deadline=None)
@given(_cases())
def test_random_models_predict_exactly_what_sklearn_predicts(
    case: tuple[Any, np.ndarray, np.ndarray],
) -> None:
    estimator, x, rows = case
    compiled = _compile(estimator)
    _assert_exact(compiled, estimator, rows)
    _assert_exact(compiled, estimator, x[:50])


@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(n_estimators=120, min_samples_leaf=3, random_state=1),
        ExtraTreesClassifier(n_estimators=120, max_features=None, random_state=2),
        GradientBoostingClassifier(n_estimators=150, max_depth=4, random_state=3),
        HistGradientBoostingClassifier(max_iter=150, random_state=4),
        DecisionTreeClassifier(random_state=5),
    ],
    ids=lambda e: type(e).__name__,
)
def test_realistic_models_on_many_rows(estimator: Any) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, 10)) * [1, 10, 100, 0.01, 1, 1, 1, 1e4, 1, 1]
    y = (x[:, 0] + x[:, 1] / 10 + rng.normal(size=3000) > 0).astype(int)
    takes_nan = not isinstance(estimator, GradientBoostingClassifier)
    if takes_nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    fitted = clone(estimator).fit(x, y)
    rows = _test_rows(
        x, rng, nan=takes_nan, inf=isinstance(estimator, HistGradientBoostingClassifier)
    )
    _assert_exact(_compile(fitted), fitted, np.concatenate([rows, rng.normal(size=(3000, 10))]))


def test_a_forest_sums_its_trees_in_estimators_order() -> None:
    # With leaves holding fractions like 1/3, the order of the sum shows in the last bits:
    # this is what makes the exact comparisons above sensitive to it.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6))
    y = (x[:, 0] + rng.normal(size=2000) > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=60, min_samples_leaf=3, random_state=0).fit(x, y)
    rows = rng.normal(size=(2000, 6))
    compiled = _compile(forest)
    _assert_exact(compiled, forest, rows)
    reversed_order = copy.copy(compiled)
    reversed_order._roots = compiled._roots[::-1].copy()
    assert not np.array_equal(reversed_order.predict_proba(rows), forest.predict_proba(rows))


def test_forest_with_n_jobs_equals_its_n_jobs_1_prediction() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 5))
    y = (x[:, 1] + rng.normal(size=1500) > 0).astype(int)
    forest = RandomForestClassifier(
        n_estimators=40, min_samples_leaf=3, n_jobs=2, random_state=0
    ).fit(x, y)
    compiled = _compile(forest)
    assert forest.n_jobs == 2  # the self-check predicted with a copy
    sequential = copy.copy(forest)
    sequential.n_jobs = 1
    _assert_exact(compiled, sequential, rng.normal(size=(1000, 5)))


def test_thresholds_are_compared_after_the_float32_cast() -> None:
    # 0.1 is not a float32: a tree splitting between two float32 training values sends a
    # float64 input that rounds onto a training value to the same side as that value.
    x = np.array([[0.1], [0.1], [np.float32(0.1) + 1e-7], [0.3]])
    y = np.array([0, 0, 1, 1])
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)
    threshold = tree.tree_.threshold[0]
    values = np.array(
        [
            threshold,
            np.nextafter(threshold, np.inf),
            np.nextafter(threshold, -np.inf),
            float(np.float32(threshold)),
            float(np.nextafter(np.float32(threshold), np.float32(1))),
            float(np.nextafter(np.float32(threshold), np.float32(0))),
        ]
    )
    rows = values[:, None]
    _assert_exact(_compile(tree), tree, rows)
    assert len(set(tree.predict_proba(rows)[:, 1])) == 2  # both sides are reached


def test_single_leaf_models() -> None:
    x = np.ones((30, 3))
    y = np.array([0, 1] * 15)
    rows = np.random.default_rng(0).normal(size=(20, 3)) * 1e3
    for estimator in (
        DecisionTreeClassifier(),
        RandomForestClassifier(n_estimators=5, random_state=0),
        GradientBoostingClassifier(n_estimators=5),
        HistGradientBoostingClassifier(max_iter=5),
    ):
        estimator.fit(x, y)
        compiled = _compile(estimator)
        assert compiled.n_nodes == compiled.n_trees
        _assert_exact(compiled, estimator, rows)


def test_nan_is_routed_as_the_trees_learned() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3))
    y = (rng.random(400) < 0.5).astype(int)
    x[y == 1, 1] = np.nan  # a NaN in feature 1 means class 1, and nothing else tells
    rows = rng.normal(size=(300, 3))
    rows[::2, 1] = np.nan
    for estimator in (
        DecisionTreeClassifier(random_state=0),
        RandomForestClassifier(n_estimators=10, random_state=0),
        ExtraTreesClassifier(n_estimators=10, random_state=0),
        HistGradientBoostingClassifier(max_iter=20),
    ):
        estimator.fit(x, y)
        compiled = _compile(estimator)
        assert compiled.allows_nan
        _assert_exact(compiled, estimator, rows)
        if isinstance(estimator, (DecisionTreeClassifier, HistGradientBoostingClassifier)):
            up = compiled.predict_proba(rows)[:, 1]
            assert up[::2].min() > 0.9 and up[1::2].max() < 0.1


# --- refusals -----------------------------------------------------------------------------


def _xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(90, 3)), np.arange(90) % 2


def _fitted(estimator: Any, labels: np.ndarray | None = None) -> Any:
    x, y = _xy()
    return estimator.fit(x, y if labels is None else labels)


class _OwnForest(RandomForestClassifier):
    """A subclass may predict differently: not compiled."""


SUPPORTED = (
    "DecisionTreeClassifier, ExtraTreesClassifier, GradientBoostingClassifier, "
    "HistGradientBoostingClassifier, LinearDiscriminantAnalysis, LogisticRegression, "
    "LogisticRegressionCV, RandomForestClassifier, SGDClassifier from scikit-learn; "
    "LGBMClassifier from LightGBM; XGBClassifier from XGBoost"
)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _fitted(make_pipeline(StandardScaler(), RandomForestClassifier(3))),
            f"Pipeline is not compiled; compiled are {SUPPORTED}",
        ),
        (
            lambda: _fitted(SVC()),
            f"SVC is not compiled; compiled are {SUPPORTED}",
        ),
        (
            lambda: _fitted(DecisionTreeRegressor()),
            f"DecisionTreeRegressor is not compiled; compiled are {SUPPORTED}",
        ),
        (
            lambda: _fitted(_OwnForest(3)),
            f"_OwnForest is not compiled; compiled are {SUPPORTED}",
        ),
        (
            lambda: RandomForestClassifier(3),
            "RandomForestClassifier is not fitted",
        ),
        (
            lambda: _fitted(RandomForestClassifier(3), np.arange(90) % 3),
            "RandomForestClassifier has classes [0, 1, 2]; "
            "only binary classification with classes [0, 1] is supported",
        ),
        (
            lambda: _fitted(GradientBoostingClassifier(n_estimators=3), np.arange(90) % 2 + 1),
            "GradientBoostingClassifier has classes [1, 2]; "
            "only binary classification with classes [0, 1] is supported",
        ),
        (
            lambda: _fitted(DecisionTreeClassifier(), np.where(np.arange(90) % 2, "up", "down")),
            "DecisionTreeClassifier has classes ['down', 'up']; "
            "only binary classification with classes [0, 1] is supported",
        ),
        (
            lambda: _fitted(DecisionTreeClassifier(), np.where(np.arange(90) % 2, 1, -1)),
            "DecisionTreeClassifier has classes [-1, 1]; "
            "only binary classification with classes [0, 1] is supported",
        ),
        (
            lambda: _fitted(
                RandomForestClassifier(3), np.column_stack([np.arange(90) % 2, np.arange(90) % 2])
            ),
            "RandomForestClassifier has classes [[0, 1], [0, 1]]; "
            "only binary classification with classes [0, 1] is supported",
        ),
        (
            lambda: _fitted(GradientBoostingClassifier(n_estimators=3, init=LogisticRegression())),
            "GradientBoostingClassifier has init=LogisticRegression(); only init=None "
            "(the class prior) and 'zero' are supported",
        ),
        (
            lambda: HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]).fit(
                np.column_stack([np.arange(90) % 4, _xy()[0][:, 1:]]), np.arange(90) % 2
            ),
            "HistGradientBoostingClassifier has categorical features; "
            "only numerical features are supported",
        ),
    ],
)
def test_unsupported_estimators_are_refused_with_the_reason(make: Any, message: str) -> None:
    estimator = make()
    assert compile_classifier(estimator) is None
    with pytest.raises(UnsupportedEstimatorError, match=rf"^{_escape(message)}$"):
        compile_classifier(estimator, strict=True)


def _escape(text: str) -> str:
    return re.escape(text)


def test_a_compiled_model_that_disagrees_with_sklearn_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One ulp off in every leaf (as a changed sklearn could be): the self-check catches it.
    real_pack = compiled_trees._pack

    def off_by_one_ulp(trees: Any) -> Any:
        nodes, roots, values = real_pack(trees)
        return nodes, roots, np.nextafter(values, np.inf)

    monkeypatch.setattr(compiled_trees, "_pack", off_by_one_ulp)
    forest = _fitted(RandomForestClassifier(5, random_state=0))
    assert compile_classifier(forest) is None
    with pytest.raises(
        UnsupportedEstimatorError,
        match=rf"^compiled RandomForestClassifier differs from its predict_proba on probe "
        rf"rows under scikit-learn {_escape(sklearn.__version__)}$",
    ):
        compile_classifier(forest, strict=True)


def test_refused_inputs_are_refused_like_sklearn() -> None:
    forest = _compile(_fitted(RandomForestClassifier(5, random_state=0)))
    boosting = _fitted(GradientBoostingClassifier(n_estimators=5))
    compiled_boosting = _compile(boosting)
    cases = [
        (
            forest,
            [0.0, np.inf, 1.0],
            "feature 1 is inf; RandomForestClassifier does not accept infinite values",
        ),
        (
            forest,
            [0.0, 1.0, 1e300],
            "feature 2 is 1e+300, beyond the float32 range it predicts "
            "in; RandomForestClassifier does not accept infinite values",
        ),
        (
            compiled_boosting,
            [np.nan, 0.0, 0.0],
            "feature 0 is NaN; GradientBoostingClassifier does not accept NaN",
        ),
        (
            compiled_boosting,
            [0.0, -np.inf, 0.0],
            "feature 1 is -inf; GradientBoostingClassifier does not accept infinite values",
        ),
    ]
    for compiled, row, message in cases:
        with pytest.raises(ValueError, match=rf"^{_escape(message)}$"):
            compiled.predict_proba_one(np.array(row))
        with pytest.raises(ValueError, match=rf"^row 1: {_escape(message)}$"):
            compiled.predict_proba(np.array([[0.0, 0.0, 0.0], row]))
    with pytest.raises(ValueError, match=r"^Input X contains NaN"):
        boosting.predict_proba(np.array([[np.nan, 0.0, 0.0]]))
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=r"^Input X contains inf"):
        _fitted(RandomForestClassifier(5)).predict_proba(np.array([[0.0, 1.0, 1e300]]))


def test_the_float32_range_ends_where_sklearn_says() -> None:
    tree = _fitted(DecisionTreeClassifier(random_state=0))
    compiled = _compile(tree)
    largest = float(np.finfo(np.float32).max)
    halfway = 3.4028235677973366e38  # halfway to the next power: rounds (to even) to inf
    below = np.nextafter(halfway, 0.0)  # rounds down to the largest float32
    _assert_exact(compiled, tree, np.array([[largest, -largest, below]]))
    with np.errstate(over="ignore"), pytest.raises(ValueError, match=r"^Input X contains inf"):
        tree.predict_proba(np.array([[0.0, 0.0, halfway]]))
    with pytest.raises(ValueError, match=r"beyond the float32 range"):
        compiled.predict_proba_one(np.array([0.0, 0.0, halfway]))


def test_rows_of_the_wrong_shape_are_refused() -> None:
    compiled = _compile(_fitted(DecisionTreeClassifier()))
    with pytest.raises(ValueError, match=r"^row must have shape \(3,\), has \(2,\)$"):
        compiled.predict_proba_one(np.zeros(2))
    with pytest.raises(ValueError, match=r"^X must have shape \(n, 3\), has \(4, 2\)$"):
        compiled.predict_proba(np.zeros((4, 2)))


# --- the sklearn model's predict_row ------------------------------------------------------


def _market(n: int, seed: int) -> tuple[Bars, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    returns = np.zeros(n)
    returns[1:] = 0.01 * (0.8 * signal[:-1] + rng.normal(size=n - 1))
    close = 100.0 * np.exp(np.cumsum(returns))
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    bars = Bars(frame=frame, symbol="TEST/USDT", timeframe="1h", timeframe_seconds=3600)
    noise = rng.normal(size=n) * 1e3
    noise[rng.random(n) < 0.05] = np.nan
    features = pd.DataFrame(
        {"signal": signal, "noise": noise, "trend": np.arange(n, dtype=float)}, index=index
    )
    return bars, features


def _model(estimator: str, params: dict[str, Any], scaler: str = "none") -> SklearnModel:
    document = SklearnParams.model_validate(
        {
            "estimator": estimator,
            "params": params,
            "scaler": scaler,
            "walk_forward": {"train_window": 200, "retrain_every": 250},
        }
    )
    return build_sklearn_model(document, BuildContext("t", Path("."), seed=7))


@pytest.mark.parametrize(
    ("estimator", "params", "scaler"),
    [
        ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 30}, "none"),
        ("sklearn.ensemble.RandomForestClassifier", {"min_samples_leaf": 3}, "standard"),
        ("sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 20}, "robust"),
        ("sklearn.ensemble.GradientBoostingClassifier", {"n_estimators": 30}, "minmax"),
        ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 30}, "none"),
        ("sklearn.tree.DecisionTreeClassifier", {"max_depth": 5}, "standard"),
    ],
)
def test_predict_row_equals_the_batch_predictions_of_the_last_fold(
    estimator: str, params: dict[str, Any], scaler: str
) -> None:
    bars, features = _market(700, seed=1)
    model = _model(estimator, params, scaler)
    output = model.fit_predict(bars, features)
    assert model.compiled is not None
    last = [t for t in output.trainings if not t.skipped][-1]
    batch = output.probability.to_numpy()
    values = features.to_numpy()
    bars_checked = 0
    for bar in range(last.predict_start, last.predict_end + 1):
        row = model.predict_row(values[bar])
        assert (np.isnan(row) and np.isnan(batch[bar])) or row == batch[bar]
        bars_checked += int(np.isfinite(row))
    assert bars_checked > 150
    # Far from the training range too, where only the trees' outermost leaves are reached.
    far = np.array([[5.0, 1e6, 1e6], [-5.0, -1e6, -1e6]])
    expected = model.fitted.predict_proba(far)[:, 1]  # type: ignore[union-attr]
    assert [model.predict_row(row) for row in far] == list(expected)


@pytest.mark.parametrize(
    ("estimator", "scaler"),
    [
        ("sklearn.neural_network.MLPClassifier", "standard"),
        ("sklearn.neighbors.KNeighborsClassifier", "minmax"),
    ],
)
def test_predict_row_of_other_estimators_is_their_predict_proba_of_the_row(
    estimator: str, scaler: str
) -> None:
    # Not compiled: predict_proba on the one row. An MLP's BLAS products may add in another
    # order for one row than for many, so the last bits may differ from the batch.
    bars, features = _market(700, seed=1)
    model = _model(estimator, {}, scaler)
    output = model.fit_predict(bars, features)
    assert model.compiled is None
    last = [t for t in output.trainings if not t.skipped][-1]
    batch = output.probability.to_numpy()
    values = features.to_numpy()
    for bar in range(last.predict_start, last.predict_end + 1):
        if np.isfinite(values[bar]).all():
            row = model.predict_row(values[bar])
            alone = model.fitted.predict_proba(values[bar][None, :])[0, 1]  # type: ignore[union-attr]
            assert row == alone
            assert row == pytest.approx(batch[bar], rel=1e-12, abs=0)


def test_predict_row_follows_the_latest_fit() -> None:
    bars, features = _market(500, seed=2)
    model = _model("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 10})
    assert np.isnan(model.predict_row([0.0, 1.0, 2.0]))  # no fold has trained
    assert model.compiled is None
    model.fit_predict(bars, features)
    first = model.compiled
    assert first is not None
    row = features.to_numpy()[-1]
    assert model.predict_row(row) == model.fitted.predict_proba(row[None, :])[0, 1]  # type: ignore[union-attr]
    model.fit_predict(bars, features * 2)
    assert model.compiled is not first
    assert model.predict_row(row) == model.fitted.predict_proba(row[None, :])[0, 1]  # type: ignore[union-attr]
    assert np.isnan(model.predict_row([0.0, np.nan, 2.0]))
    assert np.isnan(model.predict_row([0.0, np.inf, 2.0]))
    with pytest.raises(
        ValueError, match=r"^values must hold one value per feature column \(3\), has shape \(2,\)$"
    ):
        model.predict_row([0.0, 1.0])
