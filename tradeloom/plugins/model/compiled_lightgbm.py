"""Compiled inference for a fitted ``lightgbm.LGBMClassifier``: LightGBM's arithmetic, in numba.

LightGBM's ``predict_proba`` of one row goes through its Python wrapper, a ctypes call
and a C++ predictor set up per call: about a hundred microseconds for trees that answer
in a few. `compile_lightgbm` reads the fitted booster's trees from its own text dump
(``Booster.model_to_string()``: every threshold and leaf value printed with 17
significant digits, so read back exactly; the trees ``predict_proba`` uses, up to
``best_iteration`` when there is one) and walks them in a numba kernel that repeats
LightGBM 4's prediction (``include/LightGBM/tree.h``, ``src/boosting/gbdt_prediction.cpp``,
``src/objective/binary_objective.hpp``):

- The row is read as the C API reads a dense float64 matrix: a value within
  ``kZeroThreshold`` (1e-35f) of zero is zero; NaN and infinities are kept.
- A node's ``missing_type`` says what a NaN is: with ``NaN`` it goes the node's default
  way; otherwise it is 0.0 first. With ``Zero``, a zero goes the default way. Any other
  value goes left when ``x <= threshold`` (float64).
- The raw score is ``0.0`` plus each tree's leaf, in tree order (float64), divided by
  the number of iterations for ``boosting_type="rf"`` (``average_output``); the
  probability is ``1.0 / (1.0 + exp(-sigmoid * score))``.

One row and a batch run through the same kernel (a row is a batch of one), so a row's
number does not depend on the rows predicted with it. The result is checked against
``predict_proba`` on probe rows built from the trees' thresholds (on them, beside them,
zeros, NaN, infinities, far out) before it is used: equal within
`compiled_model.TOLERANCE` (1e-12), and bit for bit on the platforms tested, where
``exp`` is the C library's on both sides. Refused, with the reason: categorical splits,
linear trees, an objective other than ``binary``, more than one tree per iteration.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradeloom.kernels.jit import kernel
from tradeloom.plugins.model.compiled_model import (
    BatchKernelClassifier,
    UnsupportedEstimatorError,
    check_binary_classes,
    verify_within_tolerance,
)
from tradeloom.plugins.model.compiled_trees import join_trees, lay_out
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["LIGHTGBM_ESTIMATORS", "CompiledLightGBM", "compile_lightgbm", "lightgbm_problem"]

LIGHTGBM_ESTIMATORS = ("lightgbm.LGBMClassifier",)
"""Import paths of the classes `compile_lightgbm` takes."""

_NODE_DTYPE = [("threshold", "f8"), ("right", "i4"), ("code", "i4")]
"""A node in depth-first preorder (left child at ``i + 1``; ``right`` -1 for a leaf);
``code`` is the split feature, its missing type (bits 28-29) and default-left bit (30)."""

_FEATURE_BITS = 28
# kZeroThreshold, a float literal read as double: 1e-35 rounded to a float32
_ZERO_THRESHOLD = struct.unpack("<f", struct.pack("<f", 1e-35))[0]
_PROBE_ROWS = 96
_PROBE_SEED = 20240503


@dataclass(frozen=True)
class _Model:
    nodes: npt.NDArray[np.void]
    roots: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    sigmoid: float
    divisor: float


class CompiledLightGBM(BatchKernelClassifier):
    """A fitted binary LightGBM classifier evaluated in compiled code (``LGBMClassifier``).

    Made by `compile_lightgbm`; NaN is a missing value, routed as LightGBM routes it.
    """

    def __init__(self, estimator_name: str, n_features: int, model: _Model) -> None:
        super().__init__(estimator_name, n_features, len(model.roots), len(model.nodes))
        self._model = model

    def _up(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        model = self._model
        out = np.empty(rows.shape[0], dtype=np.float64)
        _lightgbm_rows(
            rows, model.nodes, model.roots, model.values, model.sigmoid, model.divisor, out
        )
        return out


def lightgbm_problem(path: str, settings: dict[str, Any]) -> str | None:
    """Return why an ``LGBMClassifier`` with params ``settings`` will not be compiled, or
    None when it will be (fitted on classes [0, 1], numerical features)."""
    if path not in LIGHTGBM_ESTIMATORS:
        return f"{path} is not a compiled LightGBM classifier"
    objective = settings.get("objective")
    if objective not in (None, "binary"):
        return f"LGBMClassifier has objective={objective!r}; only 'binary' is compiled"
    if any(settings.get(key) for key in ("linear_tree", "linear_trees")):
        return "LGBMClassifier has linear_tree=True; linear trees are not compiled"
    return None


def compile_lightgbm(estimator: Any) -> CompiledLightGBM:
    """Compile a fitted binary ``LGBMClassifier`` and check it against ``predict_proba``.

    Raises:
        UnsupportedEstimatorError: It is not fitted, not binary on classes [0, 1], has
            categorical splits or linear trees, another objective than ``binary``, or
            its compiled probabilities differ from ``predict_proba`` on a probe row.
    """
    name = type(estimator).__name__
    booster = getattr(estimator, "_Booster", None)
    if booster is None:
        raise UnsupportedEstimatorError(f"{name} is not fitted")
    check_binary_classes(estimator, name)
    model = _read(booster.model_to_string(), name)  # as predict_proba: up to best_iteration
    compiled = CompiledLightGBM(name, int(estimator.n_features_in_), model)
    verify_within_tolerance(compiled, estimator, _probe_rows(compiled), "lightgbm", "lightgbm")
    return compiled


# --- reading the text dump ----------------------------------------------------------------


def _read(text: str, name: str) -> _Model:
    header, trees = _sections(text)
    objective = header.get("objective", "").split()
    if not objective or objective[0] != "binary":
        raise UnsupportedEstimatorError(
            f"{name} has objective {' '.join(objective) or 'none'!r}; only binary is compiled"
        )
    if int(header.get("num_tree_per_iteration", "1")) != 1:
        raise UnsupportedEstimatorError(f"{name} has more than one tree per iteration")
    sigmoid = next((float(o.split(":")[1]) for o in objective if o.startswith("sigmoid:")), 1.0)
    if not trees:
        raise UnsupportedEstimatorError(f"{name} has no trees")
    packed = [_tree(tree, name) for tree in trees]
    nodes, roots, values = join_trees(packed, np.float64)
    divisor = float(len(trees)) if "average_output" in header else 1.0
    return _Model(nodes, roots, values, sigmoid, divisor)


def _sections(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Return the dump's header keys and each tree's keys, up to ``end of trees``."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in text.splitlines():
        if line == "end of trees":
            break
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
        elif line.strip():
            current[line.strip()] = ""  # a flag: average_output
    return header, trees


def _numbers(tree: dict[str, str], key: str, dtype: type) -> npt.NDArray[Any]:
    text = tree.get(key, "").strip()
    return np.array(text.split(), dtype=dtype) if text else np.empty(0, dtype=dtype)


def _tree(tree: dict[str, str], name: str) -> tuple[npt.NDArray[np.void], npt.NDArray[np.float64]]:
    """Return one tree's nodes in preorder (``right`` local to the tree) and leaf values."""
    if int(tree.get("num_cat", "0")) > 0:
        raise UnsupportedEstimatorError(
            f"{name} has categorical splits; only numerical splits are compiled"
        )
    if int(tree.get("is_linear", "0")) != 0:
        raise UnsupportedEstimatorError(f"{name} has linear trees; they are not compiled")
    leaf_value = _numbers(tree, "leaf_value", np.float64)
    n_inner = int(tree["num_leaves"]) - 1
    if n_inner == 0:  # a single leaf
        block = np.zeros(1, dtype=_NODE_DTYPE)
        block["right"] = -1
        return block, leaf_value[:1]
    feature = _numbers(tree, "split_feature", np.int64)
    threshold = _numbers(tree, "threshold", np.float64)
    decision = _numbers(tree, "decision_type", np.int64)
    if np.any(decision & 1):
        raise UnsupportedEstimatorError(
            f"{name} has categorical splits; only numerical splits are compiled"
        )
    if np.any(feature >= 1 << _FEATURE_BITS):
        raise UnsupportedEstimatorError(f"{name} splits on a feature beyond {1 << _FEATURE_BITS}")
    # inner nodes 0..n_inner-1, then leaf j as node n_inner + j (LightGBM writes it ~j)
    children = [_numbers(tree, key, np.int64) for key in ("left_child", "right_child")]
    left, right = (
        np.concatenate([np.where(c >= 0, c, n_inner + ~c), np.full(n_inner + 1, -1)])
        for c in children
    )
    order, right_at = lay_out(left, right)
    code = feature | ((decision >> 2) & 3) << _FEATURE_BITS | ((decision >> 1) & 1) << 30
    block = np.zeros(len(order), dtype=_NODE_DTYPE)
    inner = order < n_inner
    block["threshold"][inner] = threshold[order[inner]]
    block["code"][inner] = code[order[inner]]
    block["right"] = right_at
    values = np.zeros(len(order), dtype=np.float64)
    values[~inner] = leaf_value[order[~inner] - n_inner]
    return block, values


# --- the self-check -----------------------------------------------------------------------


def _probe_rows(compiled: CompiledLightGBM) -> npt.NDArray[np.float64]:
    """Return rows on the trees' thresholds and beside them, zeros, tiny values, NaN,
    infinities, and rows far out."""
    rng = np.random.default_rng(_PROBE_SEED)
    model = compiled._model
    inner = model.nodes[model.nodes["right"] >= 0]
    split = inner["code"] & ((1 << _FEATURE_BITS) - 1)
    rows = rng.normal(size=(_PROBE_ROWS, compiled.n_features))
    for feature in range(compiled.n_features):
        thresholds = inner["threshold"][split == feature]
        if len(thresholds) == 0:
            continue
        picked = rng.choice(thresholds, size=_PROBE_ROWS)
        side = rng.integers(-1, 2, size=_PROBE_ROWS)
        beside = np.nextafter(picked, np.where(side < 0, -np.inf, np.inf))
        rows[:, feature] = np.where(side == 0, picked, beside)
    special = [0.0, -0.0, 1e-40, -1e-36, _ZERO_THRESHOLD, np.nan, np.inf, -np.inf, 1e300]
    mask = rng.random(rows.shape) < 0.12
    rows[mask] = rng.choice(special, size=int(mask.sum()))
    far = _PROBE_ROWS // 8
    rows[:far] = rng.normal(scale=1e6, size=(far, compiled.n_features))
    return rows


# --- kernel -------------------------------------------------------------------------------


@kernel
def _lightgbm_rows(
    rows: npt.NDArray[np.float64],
    nodes: npt.NDArray[np.void],
    roots: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    sigmoid: float,
    divisor: float,
    out: npt.NDArray[np.float64],
) -> None:
    """Set ``out[r]`` to P(class 1) of row r, with LightGBM's arithmetic (module doc)."""
    x = np.empty(rows.shape[1], dtype=np.float64)
    for r in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            value = rows[r, j]
            # the C API drops values within kZeroThreshold of zero: they are read as 0.0
            x[j] = 0.0 if -_ZERO_THRESHOLD <= value <= _ZERO_THRESHOLD else value
        score = 0.0
        for t in range(roots.shape[0]):
            i = roots[t]
            while nodes[i]["right"] >= 0:
                node = nodes[i]
                code = node["code"]
                missing = (code >> _FEATURE_BITS) & 3
                value = x[code & ((1 << _FEATURE_BITS) - 1)]
                if value != value and missing != 2:
                    value = 0.0
                if (missing == 1 and -_ZERO_THRESHOLD <= value <= _ZERO_THRESHOLD) or (
                    missing == 2 and value != value
                ):
                    left = (code >> 30) & 1 == 1
                else:
                    left = value <= node["threshold"]
                i = i + 1 if left else node["right"]
            score += values[i]
        score = score / divisor  # the number of iterations for rf; x / 1.0 == x
        out[r] = 1.0 / (1.0 + math.exp(-sigmoid * score))
