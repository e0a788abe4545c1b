"""LightGBM and XGBoost: compiled inference equal to their own ``predict_proba`` bit for bit
(on this platform; the compile-time check allows 1e-12), one row and a batch alike; the
refusals and their reasons; and the estimators as a walk-forward model: checked keys,
defaults, threads, and the message when the library is not installed.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from hypothesis import given, settings
from hypothesis import strategies as st

import tradeloom.plugins.model.compiled_lightgbm as compiled_lightgbm
import tradeloom.plugins.model.compiled_xgboost as compiled_xgboost
from tests.hunting import examples
from tradeloom.domain import Bars
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.model import SklearnParams, build_sklearn_model
from tradeloom.plugins.model.compiled_lightgbm import CompiledLightGBM
from tradeloom.plugins.model.compiled_model import UnsupportedEstimatorError
from tradeloom.plugins.model.compiled_xgboost import CompiledXGBoost
from tradeloom.plugins.model.compiling import compile_classifier, compile_problem

ROOT = Path(__file__).resolve().parents[3]


def _assert_exact(compiled: Any, estimator: Any, rows: np.ndarray) -> None:
    expected = estimator.predict_proba(rows).astype(np.float64)
    got = compiled.predict_proba(rows)
    assert np.array_equal(got, expected), _first_difference(got, expected, rows)
    one = np.array([compiled.predict_proba_one(row) for row in rows])
    assert np.array_equal(one, expected[:, 1])
    assert all(type(compiled.predict_proba_one(row)) is float for row in rows[:3])


def _first_difference(got: np.ndarray, expected: np.ndarray, rows: np.ndarray) -> str:
    row = int(np.flatnonzero((got != expected).any(axis=1))[0])
    return f"row {row} {rows[row]!r}: {got[row]!r} != {expected[row]!r}"


def _training_data(draw: st.DrawFn, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(60, 600))
    n_features = draw(st.integers(1, 8))
    scale = 10.0 ** rng.uniform(-3, 3, n_features)
    x = rng.normal(size=(n, n_features)) * scale
    if draw(st.booleans()):
        x = np.round(x / scale, 1) * scale  # repeated values: thresholds between them
    y = (x[:, 0] / scale[0] + rng.normal(size=n) > draw(st.floats(-1.0, 1.0))).astype(int)
    y[:4] = [0, 1, 0, 1]
    x[rng.random(x.shape) < draw(st.sampled_from([0.0, 0.05, 0.3]))] = np.nan
    x[rng.random(x.shape) < draw(st.sampled_from([0.0, 0.1]))] = 0.0
    return x, y


def _test_rows(compiled: Any, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows on the trees' thresholds and beside them (float64 and float32 steps), the
    training rows, zeros, tiny values, NaN, infinities, far out."""
    nodes = compiled._model.nodes
    inner = nodes[nodes["right"] >= 0]
    if isinstance(compiled, CompiledLightGBM):
        split = inner["code"] & ((1 << 28) - 1)
    else:
        split = np.where(inner["feature"] < 0, -inner["feature"] - 1, inner["feature"])
    n_features = x.shape[1]
    on = rng.normal(size=(300, n_features))
    for f in range(n_features):
        thresholds = inner["threshold"][split == f].astype(np.float64)
        if len(thresholds):
            on[:, f] = rng.choice(thresholds, size=300)
    on32 = on.astype(np.float32)
    rows = np.concatenate(
        [
            on,
            np.nextafter(on, np.inf),
            np.nextafter(on, -np.inf),
            np.nextafter(on32, np.float32(np.inf)).astype(np.float64),
            np.nextafter(on32, np.float32(-np.inf)).astype(np.float64),
            x[rng.integers(0, len(x), 100)],
            rng.normal(size=(50, n_features)) * 1e6,
        ]
    )
    special = rng.random(rows.shape) < 0.08
    values = [0.0, -0.0, 1e-40, 1e-35, np.nan, np.inf, -np.inf, 1e300, -3.0e38]
    rows[special] = rng.choice(values, size=int(special.sum()))
    return rows


@st.composite
def _lightgbm_cases(draw: st.DrawFn) -> tuple[Any, np.ndarray, np.random.Generator]:
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x, y = _training_data(draw, rng)
    boosting = draw(st.sampled_from(["gbdt", "gbdt", "dart", "rf"]))
    params: dict[str, Any] = {
        "n_estimators": draw(st.integers(1, 60)),
        "num_leaves": draw(st.sampled_from([2, 3, 7, 31])),
        "learning_rate": draw(st.sampled_from([0.01, 0.1, 0.5])),
        "min_child_samples": draw(st.sampled_from([1, 5, 20])),
        "boosting_type": boosting,
        "use_missing": draw(st.booleans()),
        "zero_as_missing": draw(st.booleans()),
        "reg_lambda": draw(st.sampled_from([0.0, 1.0])),
        "random_state": seed,
        "n_jobs": 1,
        "verbose": -1,
    }
    if boosting == "rf":
        params.update(subsample=0.7, subsample_freq=1)
    estimator = lightgbm.LGBMClassifier(**params).fit(x, y)
    return estimator, x, rng


@st.composite
def _xgboost_cases(draw: st.DrawFn) -> tuple[Any, np.ndarray, np.random.Generator]:
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x, y = _training_data(draw, rng)
    estimator = xgboost.XGBClassifier(
        n_estimators=draw(st.integers(1, 60)),
        max_depth=draw(st.sampled_from([1, 3, 6])),
        learning_rate=draw(st.sampled_from([0.01, 0.3, 1.0])),
        tree_method=draw(st.sampled_from(["hist", "exact", "approx"])),
        grow_policy=draw(st.sampled_from(["depthwise", "lossguide"])),
        num_parallel_tree=draw(st.sampled_from([1, 1, 3])),
        subsample=draw(st.sampled_from([1.0, 0.7])),
        scale_pos_weight=draw(st.sampled_from([1.0, 4.0])),
        base_score=draw(st.sampled_from([None, 0.2])),
        random_state=seed,
        n_jobs=1,
    ).fit(x, y)
    return estimator, x, rng


@pytest.mark.slow
@settings(max_examples=examples(80), deadline=None)
@given(_lightgbm_cases())
def test_random_lightgbm_models_predict_exactly_what_lightgbm_predicts(
    case: tuple[Any, np.ndarray, np.random.Generator],
) -> None:
    estimator, x, rng = case
    compiled = compile_classifier(estimator, strict=True)
    assert isinstance(compiled, CompiledLightGBM)
    _assert_exact(compiled, estimator, _test_rows(compiled, x, rng))


@pytest.mark.slow
@settings(max_examples=examples(80), deadline=None)
@given(_xgboost_cases())
def test_random_xgboost_models_predict_exactly_what_xgboost_predicts(
    case: tuple[Any, np.ndarray, np.random.Generator],
) -> None:
    estimator, x, rng = case
    compiled = compile_classifier(estimator, strict=True)
    assert isinstance(compiled, CompiledXGBoost)
    _assert_exact(compiled, estimator, _test_rows(compiled, x, rng))


def _xy(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] + rng.normal(size=n) > 0).astype(int)


def test_early_stopping_predicts_with_the_best_iteration_as_the_libraries_do() -> None:
    x, y = _xy(1200)
    fit, held = slice(0, 800), slice(800, None)
    boosted = lightgbm.LGBMClassifier(n_estimators=400, learning_rate=0.3, verbose=-1).fit(
        x[fit],
        y[fit],
        eval_X=(x[held],),  # lightgbm >= 4.7; eval_set is deprecated
        eval_y=(y[held],),
        callbacks=[lightgbm.early_stopping(5, verbose=False)],
    )
    assert 0 < boosted.best_iteration_ < 400
    compiled = compile_classifier(boosted, strict=True)
    assert isinstance(compiled, CompiledLightGBM) and compiled.n_trees == boosted.best_iteration_
    _assert_exact(compiled, boosted, x)
    xgb = xgboost.XGBClassifier(n_estimators=400, learning_rate=0.5, early_stopping_rounds=5)
    xgb.fit(x[fit], y[fit], eval_set=[(x[held], y[held])], verbose=False)
    assert 0 < xgb.best_iteration < 399
    compiled = compile_classifier(xgb, strict=True)
    assert isinstance(compiled, CompiledXGBoost) and compiled.n_trees == xgb.best_iteration + 1
    _assert_exact(compiled, xgb, x)


def test_one_row_and_a_batch_run_through_the_same_kernel() -> None:
    x, y = _xy()
    for estimator in (
        lightgbm.LGBMClassifier(n_estimators=30, verbose=-1).fit(x, y),
        xgboost.XGBClassifier(n_estimators=30).fit(x, y),
    ):
        compiled = compile_classifier(estimator, strict=True)
        assert compiled is not None
        rows = np.random.default_rng(1).normal(size=(500, 4))
        batch = compiled.predict_proba(rows)
        assert np.array_equal(compiled.predict_proba(rows[::-1])[::-1], batch)
        assert [compiled.predict_proba_one(r) for r in rows] == list(batch[:, 1])
        with pytest.raises(ValueError, match=r"^row must have shape \(4,\), has \(3,\)$"):
            compiled.predict_proba_one(np.zeros(3))
        with pytest.raises(ValueError, match=r"^X must have shape \(n, 4\), has \(2, 3\)$"):
            compiled.predict_proba(np.zeros((2, 3)))


# --- refusals ------------------------------------------------------------------------------


def _categorical_lightgbm() -> Any:
    x, _ = _xy()
    x[:, 0] = np.arange(len(x)) % 5
    y = np.isin(x[:, 0], [1, 3]).astype(int)  # the category decides
    return lightgbm.LGBMClassifier(n_estimators=5, verbose=-1, min_child_samples=5).fit(
        x, y, categorical_feature=[0]
    )


def _categorical_xgboost() -> Any:
    x, y = _xy()
    frame = pd.DataFrame(x, columns=list("abcd"))
    frame["a"] = pd.Categorical(np.arange(len(x)) % 5)
    y = (frame["a"].cat.codes.to_numpy() % 2 == 0).astype(int)
    return xgboost.XGBClassifier(n_estimators=5, enable_categorical=True).fit(frame, y)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: lightgbm.LGBMClassifier(), "LGBMClassifier is not fitted"),
        (
            lambda: lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(
                _xy()[0], np.arange(400) % 3
            ),
            "LGBMClassifier has classes [0, 1, 2]; "
            "only binary classification with classes [0, 1] is supported",
        ),
        (
            _categorical_lightgbm,
            "LGBMClassifier has categorical splits; only numerical splits are compiled",
        ),
        (
            lambda: lightgbm.LGBMClassifier(n_estimators=3, verbose=-1, linear_tree=True).fit(
                *_xy()
            ),
            "LGBMClassifier has linear trees; they are not compiled",
        ),
        (
            lambda: lightgbm.LGBMClassifier(
                n_estimators=3, verbose=-1, objective="cross_entropy"
            ).fit(*_xy()),
            "LGBMClassifier has objective 'cross_entropy'; only binary is compiled",
        ),
        (lambda: xgboost.XGBClassifier(), "XGBClassifier is not fitted"),
        (
            lambda: xgboost.XGBClassifier(n_estimators=3).fit(_xy()[0], np.arange(400) % 3),
            "XGBClassifier has classes [0, 1, 2]; "
            "only binary classification with classes [0, 1] is supported",
        ),
        (
            lambda: xgboost.XGBClassifier(n_estimators=3, booster="dart").fit(*_xy()),
            "XGBClassifier has booster='dart'; only 'gbtree' is compiled",
        ),
        (
            lambda: xgboost.XGBClassifier(n_estimators=3, booster="gblinear").fit(*_xy()),
            "XGBClassifier has booster='gblinear'; only 'gbtree' is compiled",
        ),
        (
            lambda: xgboost.XGBClassifier(n_estimators=3, objective="binary:logitraw").fit(*_xy()),
            "XGBClassifier has objective='binary:logitraw'; only 'binary:logistic' is compiled",
        ),
        (
            lambda: xgboost.XGBClassifier(n_estimators=3, missing=0.0).fit(*_xy()),
            "XGBClassifier has missing=0.0; only NaN as the missing value is compiled",
        ),
        (
            _categorical_xgboost,
            "XGBClassifier has enable_categorical=True; categorical splits are not compiled",
        ),
    ],
)
def test_unsupported_boosters_are_refused_with_the_reason(make: Any, message: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LightGBM on a few rows, dart's and gblinear's notes
        estimator = make()
    assert compile_classifier(estimator) is None
    with pytest.raises(UnsupportedEstimatorError, match=rf"^{re.escape(message)}$"):
        compile_classifier(estimator, strict=True)


def test_which_boosters_compile_is_known_from_their_params() -> None:
    assert compile_problem("lightgbm.LGBMClassifier", {"num_leaves": 7}) is None
    assert compile_problem("lightgbm.sklearn.LGBMClassifier", {}) is None
    assert compile_problem("xgboost.XGBClassifier", {"objective": "binary:logistic"}) is None
    assert compile_problem("lightgbm.LGBMClassifier", {"linear_tree": True}) == (
        "LGBMClassifier has linear_tree=True; linear trees are not compiled"
    )
    assert compile_problem("lightgbm.LGBMClassifier", {"objective": "cross_entropy"}) == (
        "LGBMClassifier has objective='cross_entropy'; only 'binary' is compiled"
    )
    assert compile_problem("xgboost.XGBClassifier", {"booster": "dart"}) == (
        "XGBClassifier has booster='dart'; only 'gbtree' is compiled"
    )
    assert compile_problem("xgboost.XGBClassifier", {"missing": -999.0}) == (
        "XGBClassifier has missing=-999.0; only NaN as the missing value is compiled"
    )
    assert compile_problem("lightgbm.LGBMRegressor", {}) == (
        "LGBMRegressor is not compiled; compiled are DecisionTreeClassifier, "
        "ExtraTreesClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier, "
        "LinearDiscriminantAnalysis, LogisticRegression, LogisticRegressionCV, "
        "RandomForestClassifier, SGDClassifier from scikit-learn; LGBMClassifier from "
        "LightGBM; XGBClassifier from XGBoost"
    )


def test_a_compiled_booster_that_disagrees_with_its_library_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Leaves a little off (as a changed library could be): the self-check catches it. For
    # XGBoost one float32 ulp is too far; LightGBM's float64 leaves, 1e-9 relative.
    real_lightgbm, real_xgboost = compiled_lightgbm._read, compiled_xgboost._read

    def lightgbm_off(*args: Any) -> Any:
        model = real_lightgbm(*args)
        values = model.values * (1 + 1e-9)
        return compiled_lightgbm._Model(
            model.nodes, model.roots, values, model.sigmoid, model.divisor
        )

    def xgboost_off(*args: Any) -> Any:
        model = real_xgboost(*args)
        values = np.nextafter(model.values, np.float32(np.inf))
        return compiled_xgboost._Model(model.nodes, model.roots, values, model.base_margin)

    monkeypatch.setattr(compiled_lightgbm, "_read", lightgbm_off)
    monkeypatch.setattr(compiled_xgboost, "_read", xgboost_off)
    x, y = _xy()
    for estimator, library in (
        (lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y), lightgbm),
        (xgboost.XGBClassifier(n_estimators=20).fit(x, y), xgboost),
    ):
        name = type(estimator).__name__
        with pytest.raises(
            UnsupportedEstimatorError,
            match=rf"^compiled {name} differs from its predict_proba by more than 1e-12 on "
            rf"probe rows under {library.__name__} {re.escape(library.__version__)}$",
        ):
            compile_classifier(estimator, strict=True)


# --- as a walk-forward model ---------------------------------------------------------------


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
    noise[rng.random(n) < 0.05] = 0.0
    features = pd.DataFrame({"signal": signal, "noise": noise}, index=index)
    return bars, features


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("lightgbm.LGBMClassifier", {"n_estimators": 40, "num_leaves": 7}),
        ("xgboost.XGBClassifier", {"n_estimators": 40, "max_depth": 3}),
    ],
)
def test_a_walk_forward_fold_predicts_a_bar_alone_as_in_its_batch(
    estimator: str, params: dict[str, Any]
) -> None:
    document = SklearnParams.model_validate(
        {
            "estimator": estimator,
            "params": params,
            "walk_forward": {"train_window": 250, "retrain_every": 200},
        }
    )
    model = build_sklearn_model(document, BuildContext("t", Path("."), seed=7))
    bars, features = _market(900, seed=2)
    output = model.fit_predict(bars, features)
    assert model.parity_note is None and model.not_compiled is None
    assert model.compiled is not None
    last = [t for t in output.trainings if not t.skipped][-1]
    batch = output.probability.to_numpy()[last.predict_start : last.predict_end + 1]
    values = features.to_numpy()[last.predict_start : last.predict_end + 1]
    assert [model.predict_row(row) for row in values] == list(batch)
    assert np.array_equal(batch, model.fitted.predict_proba(values)[:, 1])  # type: ignore[union-attr]
    assert len(set(batch)) > 20
