"""Types and bounds of LightGBM's and XGBoost's params, checked before a fold trains.

scikit-learn's estimators declare their params' constraints (``_parameter_constraints``)
and `tradeloom.plugins.model.estimator_checks` runs them at ``tradeloom validate``;
LightGBM's and XGBoost's scikit-learn wrappers declare none and pass any value on to
their C++ libraries, which refuse it at the first fold, in words that name no key (or
take ``n_jobs: -100000`` and ``max_depth: 1e308``). Here each param gets a constraint in
scikit-learn's terms, checked by scikit-learn's own validator, so that the message is
the same as for a scikit-learn estimator (``params.num_leaves: must be an int in the
range [2, 131072], was 'abc'``):

- the type comes from the library's own signature (``LGBMClassifier.__init__``,
  ``XGBModel.__init__``: ``num_leaves: int``, ``subsample: Optional[float]``) where the
  param is in it; LightGBM's other params, which its wrapper passes through by name or
  alias, have the type in `LIGHTGBM_BOUNDS`;
- the bounds are the libraries' documented ranges (LightGBM's ``Parameters.rst``,
  XGBoost's ``parameter.rst``: ``num_leaves`` 1 < n <= 131072, a fraction in (0, 1]),
  and where a library has no upper bound on a count, a ceiling far above any sensible
  strategy (the trees' count is `WORK_CEILINGS`'s ``n_estimators``), so that no value
  asks a fold for unbounded work; ``n_jobs`` at most 1,024 threads, and down to -256
  (joblib's "all cores but N-1");
- a string param (the objective, the booster, the tree method) is one of the values
  the library documents, with a "did you mean".

A LightGBM alias (``min_data_in_leaf`` for ``min_child_samples``) has its param's
constraint. A param not listed here goes to the library unchecked.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from functools import cache
from numbers import Integral, Real
from typing import Any, Literal

__all__ = [
    "LIGHTGBM_BOUNDS",
    "LIGHTGBM_CHOICES",
    "LIGHTGBM_FLAGS",
    "XGBOOST_BOUNDS",
    "XGBOOST_CHOICES",
    "library_constraints",
]

Closed = Literal["left", "right", "both", "neither"]

_INF = None  # an open end (scikit-learn's Interval takes None)

LIGHTGBM_BOUNDS: dict[str, tuple[type, float | None, float | None, Closed]] = {
    # LightGBM's canonical name: (the type where the signature has none, low, high, closed)
    "num_iterations": (Integral, 1, 10_000, "both"),
    "num_leaves": (Integral, 2, 131_072, "both"),
    "max_depth": (Integral, -1, 1_000, "both"),  # <= 0: no limit
    "learning_rate": (Real, 0, 10, "right"),
    "bin_construct_sample_cnt": (Integral, 1, 1_000_000_000, "both"),
    "min_gain_to_split": (Real, 0, _INF, "left"),
    "min_sum_hessian_in_leaf": (Real, 0, _INF, "left"),
    "min_data_in_leaf": (Integral, 0, 1_000_000_000, "both"),
    "bagging_fraction": (Real, 0, 1, "right"),
    "bagging_freq": (Integral, 0, 1_000_000, "both"),
    "feature_fraction": (Real, 0, 1, "right"),
    "feature_fraction_bynode": (Real, 0, 1, "right"),
    "lambda_l1": (Real, 0, _INF, "left"),
    "lambda_l2": (Real, 0, _INF, "left"),
    "num_threads": (Integral, -256, 1_024, "both"),
    "max_bin": (Integral, 2, 1_000_000, "both"),
    "min_data_in_bin": (Integral, 1, 1_000_000_000, "both"),
    "path_smooth": (Real, 0, _INF, "left"),
    "max_delta_step": (Real, _INF, _INF, "neither"),
    "scale_pos_weight": (Real, 0, _INF, "neither"),
    "early_stopping_round": (Integral, 0, 1_000_000, "both"),
    "top_rate": (Real, 0, 1, "both"),
    "other_rate": (Real, 0, 1, "both"),
    "drop_rate": (Real, 0, 1, "both"),
    "max_drop": (Integral, -1, 1_000_000, "both"),
    "skip_drop": (Real, 0, 1, "both"),
    "num_class": (Integral, 1, 100_000, "both"),
    "max_cat_threshold": (Integral, 1, 1_000_000, "both"),
    "max_cat_to_onehot": (Integral, 1, 1_000_000, "both"),
    "cat_l2": (Real, 0, _INF, "left"),
    "cat_smooth": (Real, 0, _INF, "left"),
    "min_data_per_group": (Integral, 1, 1_000_000_000, "both"),
    "verbosity": (Integral, -1_000, 1_000, "both"),
}
"""LightGBM's params (by canonical name) and their bounds."""

LIGHTGBM_CHOICES: dict[str, frozenset[str]] = {
    "objective": frozenset(
        {
            *("regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root"),
            *("root_mean_squared_error", "rmse", "regression_l1", "l1"),
            *("mean_absolute_error", "mae", "huber", "fair", "poisson", "quantile", "mape"),
            *("mean_absolute_percentage_error", "gamma", "tweedie", "binary", "multiclass"),
            *("softmax", "multiclassova", "multiclass_ova", "ova", "ovr", "cross_entropy"),
            *("xentropy", "cross_entropy_lambda", "xentlambda", "lambdarank", "rank_xendcg"),
            *("xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart"),
        }
    ),
    "boosting": frozenset({"gbdt", "gbrt", "rf", "random_forest", "dart"}),
    "data_sample_strategy": frozenset({"bagging", "goss"}),
    "importance_type": frozenset({"split", "gain"}),
}
"""LightGBM's string params (by canonical name) and the values it documents (4.x)."""

LIGHTGBM_FLAGS = frozenset(
    {
        *("deterministic", "force_col_wise", "force_row_wise", "extra_trees"),
        *("linear_tree", "is_unbalance", "boost_from_average", "xgboost_dart_mode"),
        *("uniform_drop", "use_missing", "zero_as_missing", "feature_pre_filter"),
    }
)
"""LightGBM's params that are true or false (by canonical name)."""

XGBOOST_BOUNDS: dict[str, tuple[type, float | None, float | None, Closed]] = {
    "n_estimators": (Integral, 1, 10_000, "both"),
    "max_depth": (Integral, 0, 1_000, "both"),  # 0: no limit (lossguide)
    "max_leaves": (Integral, 0, 10_000_000, "both"),  # 0: no limit
    "max_bin": (Integral, 2, 1_000_000, "both"),
    "learning_rate": (Real, 0, 1, "both"),
    "verbosity": (Integral, 0, 3, "both"),
    "n_jobs": (Integral, -256, 1_024, "both"),
    "gamma": (Real, 0, _INF, "left"),
    "min_child_weight": (Real, 0, _INF, "left"),
    "max_delta_step": (Real, 0, _INF, "left"),
    "subsample": (Real, 0, 1, "right"),
    "colsample_bytree": (Real, 0, 1, "right"),
    "colsample_bylevel": (Real, 0, 1, "right"),
    "colsample_bynode": (Real, 0, 1, "right"),
    "reg_alpha": (Real, 0, _INF, "left"),
    "reg_lambda": (Real, 0, _INF, "left"),
    "scale_pos_weight": (Real, 0, _INF, "neither"),
    "num_parallel_tree": (Integral, 1, 10_000, "both"),
    "max_cat_to_onehot": (Integral, 1, 1_000_000, "both"),
    "max_cat_threshold": (Integral, 1, 1_000_000, "both"),
    "early_stopping_rounds": (Integral, 1, 1_000_000, "both"),
}
"""XGBoost's scikit-learn params and their bounds."""

XGBOOST_CHOICES: dict[str, frozenset[str]] = {
    "objective": frozenset(
        {
            *("reg:squarederror", "reg:squaredlogerror", "reg:logistic"),
            *("reg:pseudohubererror", "reg:absoluteerror", "reg:quantileerror"),
            *("binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson"),
            *("survival:cox", "survival:aft", "multi:softmax", "multi:softprob"),
            *("rank:ndcg", "rank:map", "rank:pairwise", "reg:gamma", "reg:tweedie"),
        }
    ),
    "booster": frozenset({"gbtree", "gblinear", "dart"}),
    "tree_method": frozenset({"auto", "exact", "approx", "hist"}),
    "grow_policy": frozenset({"depthwise", "lossguide"}),
    "sampling_method": frozenset({"uniform", "gradient_based"}),
    "importance_type": frozenset({"gain", "weight", "cover", "total_gain", "total_cover"}),
    "multi_strategy": frozenset({"one_output_per_tree", "multi_output_tree"}),
}
"""XGBoost's string params and the values it documents (3.x)."""


def library_constraints(estimator: Any, params: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Return scikit-learn constraints of each of ``params`` a LightGBM or XGBoost
    estimator takes (none for another library's, or for a param not listed here).

    Args:
        estimator: The estimator (its class's module says the library).
        params: The strategy's params of it (keys as written: a name or an alias).

    Returns:
        Each key -> its constraints, for scikit-learn's ``validate_parameter_constraints``.
    """
    cls: type = type(estimator)
    library = cls.__module__.partition(".")[0]
    if library not in ("lightgbm", "xgboost"):
        return {}
    signature = _signature_types(cls)
    found: dict[str, list[Any]] = {}
    for key in params:
        if "__" in key:
            continue
        constraints = _constraints(library, key, signature)
        if constraints:
            found[key] = constraints
    return found


def _constraints(
    library: str, key: str, signature: Mapping[str, tuple[type | None, bool]]
) -> list[Any]:
    from sklearn.utils._param_validation import Interval, StrOptions

    if library == "lightgbm":
        from tradeloom.plugins.model.boosting_libraries import lightgbm_aliases

        aliases = lightgbm_aliases()
        name = next((canon for canon, names in aliases.items() if key in names), key)
        bounds, choices = LIGHTGBM_BOUNDS.get(name), LIGHTGBM_CHOICES.get(name)
        flag = name in LIGHTGBM_FLAGS
        spelled = [n for n in aliases.get(name, (name,)) if n in signature]
    else:
        bounds, choices = XGBOOST_BOUNDS.get(key), XGBOOST_CHOICES.get(key)
        flag = False
        spelled = [key] if key in signature else []
    kind, optional = signature[spelled[0]] if spelled else (None, False)
    constraints: list[Any] = []
    if bounds is not None:
        number, low, high, closed = bounds
        if kind in (int, float):  # the library's own signature says which
            number = Integral if kind is int else Real
        constraints.append(Interval(number, low, high, closed=closed))
    elif choices is not None:
        constraints.append(StrOptions(set(choices)))
    elif kind is bool or flag:
        constraints.append("boolean")
    if constraints and optional:
        constraints.append(None)
    return constraints


@cache
def _signature_types(cls: type) -> dict[str, tuple[type | None, bool]]:
    """Return each param of ``cls``'s ``__init__`` (and its bases') -> (its type where the
    annotation is a plain ``int``, ``float``, ``str`` or ``bool``, alone or with None;
    whether None is allowed: in the annotation, or the default)."""
    found: dict[str, tuple[type | None, bool]] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        for name, parameter in parameters.items():
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            found[name] = _plain_type(parameter.annotation, parameter.default is None)
    return found


def _plain_type(annotation: Any, default_none: bool) -> tuple[type | None, bool]:
    plain = (int, float, str, bool)
    if annotation in plain:
        return annotation, default_none
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        optional = default_none or type(None) in members
        others = [a for a in members if a is not type(None)]
        return (others[0] if len(others) == 1 and others[0] in plain else None), optional
    return None, default_none
