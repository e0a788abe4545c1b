"""Compiled inference for a fitted ``xgboost.XGBClassifier``: XGBoost's float32 arithmetic.

XGBoost's ``predict_proba`` of one row builds an adapter around the array, runs the
C++ predictor and its transform, and costs hundreds of microseconds. `compile_xgboost`
reads the fitted booster from its JSON model (``Booster.save_raw("json")``: every split
condition and leaf value written so that it reads back as the same float32; the
trees ``predict_proba`` uses, up to ``best_iteration`` when early stopping set one) and
walks the trees in a numba kernel that repeats XGBoost 3's CPU prediction
(``src/predictor/cpu_predictor.cc``, ``predict_fn.h``, ``src/common/math.h``):

- The row is cast to float32; a NaN is missing and goes the node's default way
  (``default_left``); any other value goes left when ``x < split_condition`` (float32).
  Infinities are values like any other.
- The margin starts at the base score's logit, ``-logf(1 / base_score - 1)`` in float32,
  and adds each tree's leaf value in tree order, in float32 (the trees are walked in
  blocks of `_BLOCK`, their leaves added in order).
- The probability is XGBoost's float32 sigmoid,
  ``1 / (expf(min(-margin, 88.7)) + 1 + 1e-16)``, returned as a float64 like
  ``predict_proba``'s float32 column.

One row and a batch run through the same kernel (a row is a batch of one). The result
is checked against ``predict_proba`` on probe rows built from the split conditions (on
them, beside them, NaN, infinities, far out) before it is used: equal within
`compiled_model.TOLERANCE`, which for float32 probabilities means bit for bit.
Refused, with the reason: boosters other than ``gbtree`` (``gblinear``, ``dart``),
objectives other than ``binary:logistic``, categorical splits, vector leaves, a
``missing`` value other than NaN.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.kernels.jit import kernel
from tradeloom.plugins.model.compiled_model import (
    BatchKernelClassifier,
    UnsupportedEstimatorError,
    check_binary_classes,
    verify_within_tolerance,
)
from tradeloom.plugins.model.compiled_trees import join_trees, lay_out, walk_trees
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["XGBOOST_ESTIMATORS", "CompiledXGBoost", "compile_xgboost", "xgboost_problem"]

XGBOOST_ESTIMATORS = ("xgboost.XGBClassifier",)
"""Import paths of the classes `compile_xgboost` takes."""

_NODE_DTYPE = [("threshold", "f4"), ("right", "i4"), ("feature", "i4")]
"""A node in depth-first preorder (left child at ``i + 1``; ``right`` -1 for a leaf);
``feature`` is the split feature ``f``, stored as ``-f - 1`` when a missing value goes left."""

_BLOCK = 16
"""Trees walked side by side, a level of each in turn, so that their memory reads overlap
(XGBoost's depth-wise trees end at about the same depth; their leaves are then added in
tree order). Halves the latency of 300 trees of depth 6; LightGBM's leaf-wise trees,
of uneven depth, are walked one by one instead."""
_PROBE_ROWS = 96
_PROBE_SEED = 20240504


@dataclass(frozen=True)
class _Model:
    nodes: npt.NDArray[np.void]
    roots: npt.NDArray[np.int64]
    values: npt.NDArray[np.float32]
    base_margin: np.float32


class CompiledXGBoost(BatchKernelClassifier):
    """A fitted binary XGBoost classifier evaluated in compiled code (``XGBClassifier``).

    Made by `compile_xgboost`; NaN is a missing value, routed as XGBoost routes it.
    """

    def __init__(self, estimator_name: str, n_features: int, model: _Model) -> None:
        super().__init__(estimator_name, n_features, len(model.roots), len(model.nodes))
        self._model = model

    def _down(self, up: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # float64 holding XGBoost's float32 values: class 0 is 1 - p in float32, as XGBoost
        # gives it
        return (np.float32(1.0) - up.astype(np.float32)).astype(np.float64)

    def _up(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        model = self._model
        out = np.empty(rows.shape[0], dtype=np.float64)
        _xgboost_rows(rows, model.nodes, model.roots, model.values, model.base_margin, out)
        return out


def xgboost_problem(path: str, settings: dict[str, Any]) -> str | None:
    """Return why an ``XGBClassifier`` with params ``settings`` will not be compiled, or
    None when it will be (fitted on classes [0, 1], numerical features)."""
    if path not in XGBOOST_ESTIMATORS:
        return f"{path} is not a compiled XGBoost classifier"
    booster = settings.get("booster")
    if booster not in (None, "gbtree"):
        return f"XGBClassifier has booster={booster!r}; only 'gbtree' is compiled"
    objective = settings.get("objective")
    if objective not in (None, "binary:logistic"):
        return f"XGBClassifier has objective={objective!r}; only 'binary:logistic' is compiled"
    if settings.get("enable_categorical"):
        return "XGBClassifier has enable_categorical=True; categorical splits are not compiled"
    missing = settings.get("missing", math.nan)
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        return f"XGBClassifier has missing={missing!r}; only NaN as the missing value is compiled"
    return None


def compile_xgboost(estimator: Any) -> CompiledXGBoost:
    """Compile a fitted binary ``XGBClassifier`` and check it against ``predict_proba``.

    Raises:
        UnsupportedEstimatorError: It is not fitted, not binary on classes [0, 1], not a
            ``gbtree`` booster with ``binary:logistic``, has categorical splits or vector
            leaves, another missing value than NaN, or its compiled probabilities
            differ from ``predict_proba`` on a probe row.
    """
    name = type(estimator).__name__
    if getattr(estimator, "_Booster", None) is None:
        raise UnsupportedEstimatorError(f"{name} is not fitted")
    check_binary_classes(estimator, name)
    problem = xgboost_problem(XGBOOST_ESTIMATORS[0], estimator.get_params(deep=False))
    if problem is not None:
        raise UnsupportedEstimatorError(problem)
    booster = estimator.get_booster()
    document = json.loads(bytes(booster.save_raw(raw_format="json")))
    model = _read(document, name, getattr(booster, "best_iteration", None))
    compiled = CompiledXGBoost(name, int(estimator.n_features_in_), model)
    verify_within_tolerance(compiled, estimator, _probe_rows(compiled), "xgboost", "xgboost")
    return compiled


# --- reading the JSON model ---------------------------------------------------------------


def _read(document: dict[str, Any], name: str, best_iteration: int | None) -> _Model:
    """Return the trees ``predict_proba`` uses: up to ``best_iteration`` when early
    stopping set one (its ``iteration_range``), else all."""
    learner = document["learner"]
    objective = learner["objective"]["name"]
    if objective != "binary:logistic":
        raise UnsupportedEstimatorError(
            f"{name} has objective={objective!r}; only 'binary:logistic' is compiled"
        )
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise UnsupportedEstimatorError(
            f"{name} has booster={booster.get('name')!r}; only 'gbtree' is compiled"
        )
    model = booster["model"]
    end = None if best_iteration is None else int(model["iteration_indptr"][best_iteration + 1])
    trees = model["trees"][:end]
    if not trees:
        raise UnsupportedEstimatorError(f"{name} has no trees")
    base_score = np.float32(float(str(learner["learner_model_param"]["base_score"]).strip("[]")))
    if not 0.0 < base_score < 1.0:
        raise UnsupportedEstimatorError(f"{name} has base_score {base_score}, not in (0, 1)")
    blocks = [_tree(tree, name) for tree in trees]
    nodes, roots, values = join_trees(blocks, np.float32)
    return _Model(nodes, roots, values, np.float32(_base_margin(base_score)))


def _tree(tree: dict[str, Any], name: str) -> tuple[npt.NDArray[np.void], npt.NDArray[np.float32]]:
    """Return one tree's nodes in preorder (``right`` local to the tree) and leaf values."""
    if tree.get("categories_nodes") or any(tree.get("split_type", ())):
        raise UnsupportedEstimatorError(
            f"{name} has categorical splits; only numerical splits are compiled"
        )
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise UnsupportedEstimatorError(f"{name} has vector leaves (multi-target trees)")
    left = np.asarray(tree["left_children"], dtype=np.int64)
    right = np.asarray(tree["right_children"], dtype=np.int64)
    # a leaf's value is in split_conditions (the learning rate applied)
    condition = np.asarray(tree["split_conditions"], dtype=np.float32)
    feature = np.asarray(tree["split_indices"], dtype=np.int64)
    default_left = np.asarray(tree["default_left"], dtype=bool)
    order, right_at = lay_out(left, right)
    inner = left[order] >= 0
    block = np.zeros(len(order), dtype=_NODE_DTYPE)
    block["threshold"] = np.where(inner, condition[order], np.float32(0.0))
    feature = np.where(inner, feature[order], 0)
    block["feature"] = np.where(inner & default_left[order], -feature - 1, feature)
    block["right"] = right_at
    values = np.where(inner, np.float32(0.0), condition[order]).astype(np.float32)
    return block, values


# --- the self-check -----------------------------------------------------------------------


def _probe_rows(compiled: CompiledXGBoost) -> npt.NDArray[np.float64]:
    """Return rows on the split conditions and one float32 step beside them, NaN,
    infinities, and rows far out."""
    rng = np.random.default_rng(_PROBE_SEED)
    model = compiled._model
    inner = model.nodes[model.nodes["right"] >= 0]
    split = np.where(inner["feature"] < 0, -inner["feature"] - 1, inner["feature"])
    rows = rng.normal(size=(_PROBE_ROWS, compiled.n_features))
    for feature in range(compiled.n_features):
        thresholds = inner["threshold"][split == feature]
        if len(thresholds) == 0:
            continue
        picked = rng.choice(thresholds, size=_PROBE_ROWS)
        side = rng.integers(-1, 2, size=_PROBE_ROWS)
        towards = np.where(side < 0, -np.inf, np.inf).astype(np.float32)
        beside = np.nextafter(picked, towards)
        rows[:, feature] = np.where(side == 0, picked, beside).astype(np.float64)
    mask = rng.random(rows.shape) < 0.1
    rows[mask] = rng.choice([np.nan, np.inf, -np.inf, 0.0, 1e300], size=int(mask.sum()))
    far = _PROBE_ROWS // 8
    rows[:far] = rng.normal(scale=1e6, size=(far, compiled.n_features))
    return rows


# --- kernels ------------------------------------------------------------------------------


@kernel
def _base_margin(base_score: np.float32) -> float:
    """Return XGBoost's logistic ProbToMargin of the base score, computed in float32."""
    one = np.float32(1.0)
    return -math.log(one / base_score - one)


@kernel
def _xgboost_rows(
    rows: npt.NDArray[np.float64],
    nodes: npt.NDArray[np.void],
    roots: npt.NDArray[np.int64],
    values: npt.NDArray[np.float32],
    base_margin: np.float32,
    out: npt.NDArray[np.float64],
) -> None:
    """Set ``out[r]`` to P(class 1) of row r, with XGBoost's float32 arithmetic (module doc)."""
    x = np.empty(rows.shape[1], dtype=np.float32)
    leaf = np.empty(_BLOCK, dtype=np.int64)
    one = np.float32(1.0)
    n_trees = roots.shape[0]
    for r in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            x[j] = np.float32(rows[r, j])
        margin = base_margin
        for first in range(0, n_trees, _BLOCK):
            size = min(_BLOCK, n_trees - first)
            walk_trees(x, nodes, roots, first, size, True, leaf)
            for k in range(size):
                margin = margin + values[leaf[k]]
        exponent = min(-margin, np.float32(88.7))
        out[r] = one / (math.exp(exponent) + one + np.float32(1e-16))
