"""Which fitted classifiers are compiled, and by which module.

`compile_classifier` hands a fitted estimator to the module of its family: scikit-learn's
tree ensembles to `compiled_trees` (bit for bit its ``predict_proba``), linear
classifiers to `compiled_linear` (within 1e-12 of it), LightGBM's and XGBoost's
classifiers to `compiled_lightgbm` and `compiled_xgboost` (within 1e-12 of their own
``predict_proba``, bit for bit where tested). Each returns a `CompiledModel`
whose kernel gives a row the same number alone or in a batch; a backtest predicts a
fold's rows with it and a paper or live run each bar's row, so that both journal the
same probability. `compile_problem` answers from the import path and params alone,
before anything is fitted (``tradeloom validate`` says which estimators are not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloom.plugins.model.compiled_lightgbm import LIGHTGBM_ESTIMATORS, lightgbm_problem
from tradeloom.plugins.model.compiled_linear import LINEAR_ESTIMATORS, linear_problem
from tradeloom.plugins.model.compiled_model import CompiledModel, UnsupportedEstimatorError
from tradeloom.plugins.model.compiled_trees import TREE_ESTIMATORS, tree_problem
from tradeloom.plugins.model.compiled_xgboost import XGBOOST_ESTIMATORS, xgboost_problem

__all__ = [
    "COMPILED_ESTIMATORS",
    "calibrated_problem",
    "compile_classifier",
    "compile_problem",
    "decision_function_problem",
    "estimator_problem",
]

COMPILED_ESTIMATORS: tuple[str, ...] = (
    *TREE_ESTIMATORS,
    *LINEAR_ESTIMATORS,
    *LIGHTGBM_ESTIMATORS,
    *XGBOOST_ESTIMATORS,
)
"""Import paths of the classes `compile_classifier` compiles (these classes exactly)."""

_BY_NAME = {(path.partition(".")[0], path.rpartition(".")[2]): path for path in COMPILED_ESTIMATORS}
"""(top-level package, class name) -> import path: a class is known by its package and name,
whichever module path the strategy file gives (sklearn.linear_model._logistic...)."""


def compile_classifier(estimator: Any, *, strict: bool = False) -> CompiledModel | None:
    """Compile a fitted binary classifier; None when it is not compiled.

    The classes of `COMPILED_ESTIMATORS` (exactly: a subclass may predict differently),
    fitted on classes ``[0, 1]``; each family's module says what else it needs, and
    checks its result against the estimator's ``predict_proba`` on probe rows.

    Args:
        estimator: A fitted classifier (not a pipeline: its last step).
        strict: Raise `UnsupportedEstimatorError` saying why, instead of returning None.

    Raises:
        UnsupportedEstimatorError: ``strict`` is set and the estimator is not compiled.
    """
    try:
        return _compile(estimator)
    except UnsupportedEstimatorError:
        if strict:
            raise
        return None


def compile_problem(path: str, settings: Mapping[str, Any]) -> str | None:
    """Return why the estimator at import path ``path`` with params ``settings`` will not be
    compiled once fitted (on classes [0, 1]), or None when it will be.

    Answers from the names alone: nothing is imported.
    """
    name = path.rpartition(".")[2]
    known = _BY_NAME.get((path.partition(".")[0], name))
    if path.startswith("sklearn.") and name in _COMPOSITES:
        return _COMPOSITES[name](settings)
    if known is None:
        return _not_compiled(name)
    if known in TREE_ESTIMATORS:
        return tree_problem(known, dict(settings))
    if known in LIGHTGBM_ESTIMATORS:
        return lightgbm_problem(known, dict(settings))
    if known in XGBOOST_ESTIMATORS:
        return xgboost_problem(known, dict(settings))
    return linear_problem(known, dict(settings))


def estimator_problem(estimator: Any) -> str | None:
    """Return why an unfitted (declared) estimator will not be compiled once fitted, or None."""
    cls = type(estimator)
    return compile_problem(f"{cls.__module__}.{cls.__name__}", estimator.get_params(deep=False))


def calibrated_problem(estimator: Any) -> str | None:
    """Return why a model calibrated by ``CalibratedClassifierCV`` will not be compiled."""
    if hasattr(estimator, "decision_function"):
        return decision_function_problem(type(estimator).__name__)
    problem = estimator_problem(estimator)
    return None if problem is None else f"CalibratedClassifierCV of {problem}"


def decision_function_problem(name: str) -> str:
    """Return `calibrated_problem`'s answer for a class ``name`` with a decision_function."""
    return (
        f"CalibratedClassifierCV calibrates the decision_function of {name}; compiled "
        "calibration takes models calibrated on predict_proba (trees, forests, LightGBM, "
        "XGBoost)"
    )


def _pipeline_problem(settings: Mapping[str, Any]) -> str | None:
    steps = list(settings.get("steps") or ())
    for _, step in steps[:-1]:
        if type(step).__name__ not in ("StandardScaler", "RobustScaler", "MinMaxScaler"):
            return (
                f"{type(step).__name__} in the Pipeline is not compiled; compiled are "
                "StandardScaler, RobustScaler and MinMaxScaler steps"
            )
    return estimator_problem(steps[-1][1]) if steps else "an empty Pipeline is not compiled"


def _voting_problem(settings: Mapping[str, Any]) -> str | None:
    from tradeloom.plugins.model.compiled_voting import voting_problem

    return voting_problem(settings, estimator_problem)


def _calibrated_cv_problem(settings: Mapping[str, Any]) -> str | None:
    inner = settings.get("estimator")
    if inner is None:
        return "CalibratedClassifierCV of its default LinearSVC is not compiled"
    if settings.get("method", "sigmoid") not in ("isotonic", "sigmoid"):
        return f"CalibratedClassifierCV with method {settings['method']} is not compiled"
    return calibrated_problem(inner)


_COMPOSITES = {
    "Pipeline": _pipeline_problem,
    "VotingClassifier": _voting_problem,
    "CalibratedClassifierCV": _calibrated_cv_problem,
}
"""scikit-learn's composite estimators: compiled when every part is (`estimator_problem`)."""


def _compile(estimator: Any) -> CompiledModel:
    from tradeloom.plugins.model.compiled_lightgbm import compile_lightgbm
    from tradeloom.plugins.model.compiled_linear import compile_linear
    from tradeloom.plugins.model.compiled_trees import compile_trees
    from tradeloom.plugins.model.compiled_xgboost import compile_xgboost

    cls = type(estimator)
    name = cls.__name__
    path = _BY_NAME.get((cls.__module__.partition(".")[0], name))
    if path is None:
        raise UnsupportedEstimatorError(_not_compiled(name))
    if path in TREE_ESTIMATORS:
        return compile_trees(estimator)
    if path in LIGHTGBM_ESTIMATORS:
        return compile_lightgbm(estimator)
    if path in XGBOOST_ESTIMATORS:
        return compile_xgboost(estimator)
    return compile_linear(estimator)


def _not_compiled(name: str) -> str:
    return f"{name} is not compiled; compiled are {_listing()}"


def _listing() -> str:
    by_package: dict[str, list[str]] = {}
    for path in COMPILED_ESTIMATORS:
        by_package.setdefault(path.partition(".")[0], []).append(path.rpartition(".")[2])
    return "; ".join(
        f"{', '.join(sorted(names))} from {_LIBRARY.get(package, package)}"
        for package, names in by_package.items()
    )


_LIBRARY = {"sklearn": "scikit-learn", "lightgbm": "LightGBM", "xgboost": "XGBoost"}
