"""Compiled single-row inference for fitted scikit-learn tree ensembles, bit for bit.

Live trading predicts one row at a time, where ``predict_proba``'s per-call overhead
(input validation, joblib, one Python call per tree) dominates: a 300-tree forest takes
milliseconds for a row that its trees answer in microseconds. `compile_trees`
flattens the fitted trees of a supported estimator into contiguous arrays and walks them
in a numba kernel that repeats scikit-learn's arithmetic exactly (read from
scikit-learn 1.9.1's sources):

- Trees and forests (``DecisionTreeClassifier``, ``RandomForestClassifier``,
  ``ExtraTreesClassifier``, ``tree/_tree.pyx`` and ``ensemble/_forest.py``): the row is
  cast to float32; a node sends it left when ``x <= threshold`` (the float32 value
  against the float64 threshold, compared in float64) and a NaN the way the node's
  ``missing_go_to_left`` says. A leaf holds the class fractions (normalised when the
  tree is built). A forest adds its trees' fractions to 0.0 in ``estimators_`` order
  and divides the sums by the number of trees: ``predict_proba``'s order with
  ``n_jobs=1``. With ``n_jobs > 1`` scikit-learn adds each tree's prediction when its
  thread gets the lock, so its own last bits may depend on thread timing; the compiled
  path always gives the ``n_jobs=1`` result. NaN is accepted (scikit-learn >= 1.3 trees
  route it); infinities, and values beyond the float32 range, are refused as
  scikit-learn refuses them.
- ``GradientBoostingClassifier`` (``ensemble/_gb.py``, ``_gradient_boosting.pyx``): the
  raw score starts from the init estimator's raw prediction (the class prior's logit,
  computed by scikit-learn itself once, at compile time: it is the same for every row)
  and adds ``learning_rate * leaf`` (one float64 product, precomputed) tree by tree on
  the float32 row; the probability is ``scipy.special.expit`` of it (of twice it for the
  exponential loss), applied in Python exactly as scikit-learn's link does, and class 0
  gets ``1 - p``. NaN and infinities are refused, as scikit-learn refuses them.
- ``HistGradientBoostingClassifier`` (``_hist_gradient_boosting/_predictor.pyx``): the
  row stays float64 (``x <= threshold``; NaN by ``missing_go_to_left``; infinities are
  accepted and compared as they are); the raw score is ``0.0 + baseline`` plus the
  leaves (which already carry the learning rate) in iteration order, then ``expit``.
  Categorical splits are refused.

Only binary classifiers with ``classes_ == [0, 1]`` and one output are compiled. Before
a compiled classifier is returned it is checked against the estimator's own
``predict_proba`` on probe rows built from the trees' thresholds (on them, just beside
them, far outside, NaN); a mismatch (a scikit-learn whose arithmetic has changed, a
platform whose compiler fuses multiply-adds) means no compiled classifier, never a
different number.

Nodes are stored in depth-first preorder, 16 bytes each, the left child of node ``i``
at ``i + 1``; the kernel walks blocks of trees side by side so that their memory
reads overlap. scikit-learn and numba are imported only when something is compiled,
and the kernels are compiled (or loaded from numba's on-disk cache) on first use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from tradeloom.kernels.jit import kernel, python_form
from tradeloom.plugins.model.compiled_model import (
    UnsupportedEstimatorError,
    batch_rows,
    check_binary_classes,
    one_row,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "TREE_ESTIMATORS",
    "CompiledClassifier",
    "compile_trees",
    "join_trees",
    "lay_out",
    "tree_problem",
    "walk_trees",
]

TREE_ESTIMATORS = (
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.tree.DecisionTreeClassifier",
)
"""Import paths of the classes `compile_trees` takes."""

_NAMES = tuple(path.rpartition(".")[2] for path in TREE_ESTIMATORS)

_NODE_DTYPE = [("threshold", "f8"), ("right", "i4"), ("feature", "i4")]
"""A node of the flattened trees, in depth-first preorder: node ``i``'s left child is
``i + 1``; ``right`` is the right child's index, -1 for a leaf; ``feature`` is the
split feature ``f``, stored as ``-f - 1`` when a NaN goes left."""

Link = Literal["mean", "logit", "half_logit"]

_FORESTS = ("DecisionTreeClassifier", "ExtraTreesClassifier", "RandomForestClassifier")
_MAX_NODES = 2**31 - 1  # np.iinfo(np.int32).max
_BLOCK = 16  # trees walked side by side; more overlaps more memory reads, to a point
_PROBE_ROWS = 64
_PROBE_SEED = 20240501


@dataclass(frozen=True)
class _Tree:
    """One fitted tree as scikit-learn numbers its nodes (``left < 0`` marks a leaf)."""

    threshold: npt.NDArray[np.float64]
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    feature: npt.NDArray[np.int64]
    missing_left: npt.NDArray[np.bool_]
    values: npt.NDArray[np.float64]  # (n_nodes, n_columns)


@dataclass(frozen=True)
class _Flat:
    """An estimator's trees, flattened, and how their leaf sums become P(class 1)."""

    nodes: npt.NDArray[np.void]
    roots: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # (n_nodes, 2) class fractions, or (n_nodes, 1) scores
    start: float
    divisor: float
    cast32: bool
    allow_nan: bool
    allow_inf: bool
    link: Link


class CompiledClassifier:
    """A fitted binary tree ensemble evaluated in compiled code, equal to ``predict_proba``.

    Made by `compile_trees`, not constructed directly. It holds a copy of the trees
    as they were when compiled (refitting the estimator does not change it) and may be
    called from several threads: calls share nothing but read-only arrays.

    Attributes:
        estimator_name: The class name of the compiled estimator.
        n_features: The number of values a row must have.
        n_trees: The number of trees walked per row.
        n_nodes: The number of nodes of all trees.
        allows_nan: Whether a NaN value is predicted (else refused, as scikit-learn does).
    """

    def __init__(self, estimator_name: str, n_features: int, flat: _Flat) -> None:
        from scipy.special import expit  # the function scikit-learn's logit links apply

        self.estimator_name = estimator_name
        self.n_features = n_features
        self.n_trees = len(flat.roots)
        self.n_nodes = len(flat.nodes)
        self.allows_nan = flat.allow_nan
        self._nodes = flat.nodes
        self._roots = flat.roots
        self._values = flat.values
        self._start = flat.start
        self._divisor = flat.divisor
        self._cast32 = flat.cast32
        self._allow_nan = flat.allow_nan
        self._allow_inf = flat.allow_inf
        self._link = flat.link
        self._expit = expit

    def predict_proba_one(self, row: npt.ArrayLike) -> float:
        """Return P(class 1) for one row: ``predict_proba(row[None, :])[0, 1]``, exactly.

        Args:
            row: The ``n_features`` values of one row, in the training columns' order.

        Raises:
            ValueError: The row has the wrong shape, or a value the estimator refuses
                (NaN for gradient boosting; infinity or beyond float32 for the others
                but histogram gradient boosting).
        """
        x = one_row(row, self.n_features)
        raw = _predict_row(
            x,
            self._cast32,
            self._allow_nan,
            self._allow_inf,
            self._nodes,
            self._roots,
            self._values,
            self._start,
            self._divisor,
        )
        if raw != raw:  # NaN: the kernel refused the row
            raise ValueError(self._refusal(x[None, :], 0))
        if self._link == "mean":
            return raw
        return float(self._expit(2 * raw if self._link == "half_logit" else raw))

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the probabilities of classes 0 and 1: ``predict_proba(X)``, exactly.

        Args:
            X: Rows of shape ``(n_rows, n_features)``.

        Returns:
            An ``(n_rows, 2)`` float64 array.

        Raises:
            ValueError: ``X`` has the wrong shape, or a row holds a value the estimator
                refuses.
        """
        rows = batch_rows(X, self.n_features)
        out = np.empty((rows.shape[0], self._values.shape[1]), dtype=np.float64)
        refused = _predict_rows(
            rows,
            self._cast32,
            self._allow_nan,
            self._allow_inf,
            self._nodes,
            self._roots,
            self._values,
            self._start,
            self._divisor,
            out,
        )
        if refused >= 0:
            raise ValueError(self._refusal(rows, refused))
        if self._link == "mean":
            return out
        raw = out[:, 0]
        proba = np.empty((rows.shape[0], 2), dtype=np.float64)
        proba[:, 1] = self._expit(2 * raw if self._link == "half_logit" else raw)
        proba[:, 0] = 1 - proba[:, 1]
        return proba

    def _refusal(self, rows: npt.NDArray[np.float64], row: int) -> str:
        where = "" if len(rows) == 1 else f"row {row}: "
        for feature, value in enumerate(rows[row]):
            with np.errstate(over="ignore"):
                seen = float(np.float32(value)) if self._cast32 else float(value)
            if np.isnan(seen) and not self._allow_nan:
                return f"{where}feature {feature} is NaN; {self.estimator_name} does not accept NaN"
            if np.isinf(seen) and not self._allow_inf:
                beyond = "" if np.isinf(value) else ", beyond the float32 range it predicts in"
                return (
                    f"{where}feature {feature} is {float(value)!r}{beyond}; "
                    f"{self.estimator_name} does not accept infinite values"
                )
        raise AssertionError(f"the kernel refused row {row}, which holds no refused value")


def compile_trees(estimator: Any) -> CompiledClassifier:
    """Compile a fitted binary tree ensemble, checked against its ``predict_proba``.

    Supported: ``DecisionTreeClassifier``, ``RandomForestClassifier``,
    ``ExtraTreesClassifier``, ``GradientBoostingClassifier`` (``init`` None or
    ``"zero"``) and ``HistGradientBoostingClassifier`` (numerical features only), fitted
    on classes ``[0, 1]`` with one output: these classes exactly, not subclasses, which
    may predict differently. The result is checked against the estimator's
    ``predict_proba`` on probe rows before it is returned.

    Args:
        estimator: A fitted scikit-learn classifier.

    Returns:
        A `CompiledClassifier` whose probabilities equal ``predict_proba``'s.

    Raises:
        UnsupportedEstimatorError: The estimator is not supported (the message says why).
    """
    name = type(estimator).__name__
    flat = _flatten(estimator, name)
    compiled = CompiledClassifier(name, int(estimator.n_features_in_), flat)
    _verify(compiled, estimator)
    return compiled


def tree_problem(path: str, settings: dict[str, Any]) -> str | None:
    """Return why an estimator of import path ``path`` with ``settings`` (its params) will
    not be compiled as trees, or None when it will be (fitted on classes [0, 1])."""
    if path not in TREE_ESTIMATORS:
        return f"{path} is not a compiled tree ensemble"
    name = path.rpartition(".")[2]
    init = settings.get("init")
    if name == "GradientBoostingClassifier" and init is not None and init != "zero":
        return f"{name} has init={init!r}; only init=None (the class prior) and 'zero' are compiled"
    categorical = settings.get("categorical_features", "from_dtype")
    if name == "HistGradientBoostingClassifier" and categorical not in (None, "from_dtype"):
        return f"{name} has categorical_features; only numerical features are compiled"
    return None


# --- reading the fitted trees -------------------------------------------------------------


def _flatten(estimator: Any, name: str) -> _Flat:
    if name not in _NAMES or not type(estimator).__module__.startswith("sklearn."):
        raise UnsupportedEstimatorError(f"{name} is not a compiled tree ensemble")
    if not _is_fitted(estimator):
        raise UnsupportedEstimatorError(f"{name} is not fitted")
    check_binary_classes(estimator, name)
    if int(getattr(estimator, "n_outputs_", 1)) != 1:
        raise UnsupportedEstimatorError(
            f"{name} has {estimator.n_outputs_} outputs; only one is supported"
        )
    if name in _FORESTS:
        return _forest(estimator, name)
    if name == "GradientBoostingClassifier":
        return _gradient_boosting(estimator, name)
    return _hist_gradient_boosting(estimator, name)


def _is_fitted(estimator: Any) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _forest(estimator: Any, name: str) -> _Flat:
    from sklearn.utils import get_tags

    trees = [estimator] if name == "DecisionTreeClassifier" else list(estimator.estimators_)
    nodes, roots, values = _pack([_sklearn_tree(tree.tree_, 2) for tree in trees])
    return _Flat(
        nodes=nodes,
        roots=roots,
        values=values,
        start=0.0,
        # A lone tree's fractions are returned as they are; x / 1.0 == x.
        divisor=float(len(trees)),
        cast32=True,
        # A forest validates its input with its first tree's tags, as here.
        allow_nan=bool(get_tags(trees[0]).input_tags.allow_nan),
        allow_inf=False,
        link="mean",
    )


def _sklearn_tree(tree: Any, n_columns: int) -> _Tree:
    value = np.asarray(tree.value, dtype=np.float64)
    if value.shape[1:] != (1, n_columns):
        raise UnsupportedEstimatorError(
            f"a tree has values of shape {value.shape[1:]}, expected {(1, n_columns)}"
        )
    return _Tree(
        threshold=np.asarray(tree.threshold, dtype=np.float64),
        left=np.asarray(tree.children_left, dtype=np.int64),
        right=np.asarray(tree.children_right, dtype=np.int64),
        feature=np.asarray(tree.feature, dtype=np.int64),
        missing_left=np.asarray(tree.missing_go_to_left).astype(bool),
        values=value[:, 0, :],
    )


def _gradient_boosting(estimator: Any, name: str) -> _Flat:
    from sklearn.dummy import DummyClassifier

    init = estimator.init_
    if isinstance(init, str) and init == "zero":
        start = 0.0
    elif type(init) is DummyClassifier and init.strategy == "prior":
        # The prior's raw prediction is the same for every row: let sklearn compute it.
        zeros = np.zeros((1, int(estimator.n_features_in_)))
        start = float(estimator._raw_predict_init(zeros)[0, 0])
    else:
        raise UnsupportedEstimatorError(
            f"{name} has init={init!r}; only init=None (the class prior) and 'zero' are supported"
        )
    links: dict[str, Link] = {"log_loss": "logit", "exponential": "half_logit"}
    if estimator.loss not in links:
        raise UnsupportedEstimatorError(f"{name} has loss={estimator.loss!r}")
    stages = np.asarray(estimator.estimators_, dtype=object)
    if stages.ndim != 2 or stages.shape[1] != 1:
        raise UnsupportedEstimatorError(f"{name} has {stages.shape} trees, expected one per stage")
    scale = float(estimator.learning_rate)
    trees = []
    for regressor in stages[:, 0]:
        tree = _sklearn_tree(regressor.tree_, 1)
        # predict_stages adds `scale * value` to the raw score: one float64 product each.
        trees.append(replace(tree, values=scale * tree.values))
    nodes, roots, values = _pack(trees)
    return _Flat(
        nodes=nodes,
        roots=roots,
        values=values,
        start=start,
        divisor=1.0,
        cast32=True,
        allow_nan=False,
        allow_inf=False,
        link=links[estimator.loss],
    )


def _hist_gradient_boosting(estimator: Any, name: str) -> _Flat:
    categorical = getattr(estimator, "is_categorical_", None)
    if getattr(estimator, "_preprocessor", None) is not None or (
        categorical is not None and np.any(categorical)
    ):
        raise UnsupportedEstimatorError(
            f"{name} has categorical features; only numerical features are supported"
        )
    if int(estimator.n_trees_per_iteration_) != 1 or estimator.loss != "log_loss":
        raise UnsupportedEstimatorError(
            f"{name} has {estimator.n_trees_per_iteration_} trees per iteration and "
            f"loss={estimator.loss!r}; expected 1 and 'log_loss'"
        )
    trees = []
    for iteration in estimator._predictors:
        (predictor,) = iteration
        raw = predictor.nodes
        if np.any(raw["is_categorical"]):
            raise UnsupportedEstimatorError(
                f"{name} has categorical splits; only numerical splits are supported"
            )
        leaf = raw["is_leaf"].astype(bool)
        trees.append(
            _Tree(
                threshold=raw["num_threshold"].astype(np.float64),
                left=np.where(leaf, -1, raw["left"].astype(np.int64)),
                right=np.where(leaf, -1, raw["right"].astype(np.int64)),
                feature=raw["feature_idx"].astype(np.int64),
                missing_left=raw["missing_go_to_left"].astype(bool),
                values=raw["value"].astype(np.float64)[:, None],
            )
        )
    nodes, roots, values = _pack(trees)
    # _raw_predict starts from zeros, adds the baseline, then each predictor's value.
    baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(-1)
    return _Flat(
        nodes=nodes,
        roots=roots,
        values=values,
        start=float(np.float64(0.0) + baseline[0]),
        divisor=1.0,
        cast32=False,
        allow_nan=True,
        allow_inf=True,
        link="logit",
    )


def _pack(
    trees: list[_Tree],
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Lay the trees out one after the other, each in depth-first preorder."""
    if not trees:
        raise UnsupportedEstimatorError("the estimator has no trees")
    total = sum(len(tree.left) for tree in trees)
    if total > _MAX_NODES:
        raise UnsupportedEstimatorError(f"the trees have {total} nodes, more than {_MAX_NODES}")
    nodes = np.empty(total, dtype=_NODE_DTYPE)
    values = np.empty((total, trees[0].values.shape[1]), dtype=np.float64)
    roots = np.empty(len(trees), dtype=np.int64)
    offset = 0
    for t, tree in enumerate(trees):
        order, right = lay_out(tree.left, tree.right)
        end = offset + len(order)
        block = nodes[offset:end]
        left = tree.left[order]
        block["threshold"] = tree.threshold[order]
        block["right"] = np.where(right >= 0, right + offset, -1)
        feature = np.where(left >= 0, tree.feature[order], 0)
        block["feature"] = np.where(tree.missing_left[order] & (left >= 0), -feature - 1, feature)
        values[offset:end] = tree.values[order]
        roots[t] = offset
        offset = end
    return nodes[:offset], roots, values[:offset]


def lay_out(
    left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return a tree's nodes in depth-first preorder and, for each, its right child's place.

    Args:
        left: Each node's left child; negative for a leaf (node 0 is the root).
        right: Each node's right child.

    Returns:
        ``order``, the nodes reachable from the root in preorder (a node's left child
        right after it), and ``right_at``, for each node of ``order`` the position in
        ``order`` of its right child (-1 for a leaf).
    """
    inner = left >= 0
    if np.array_equal(left[inner], np.flatnonzero(inner) + 1):
        order = np.arange(len(left))  # left children already at i + 1 (depth-first)
    else:
        order = _preorder(left, right)
    position = np.full(len(left), -1, dtype=np.int64)
    position[order] = np.arange(len(order))
    return order, np.where(left[order] >= 0, position[right[order]], -1)


def join_trees(
    blocks: list[tuple[npt.NDArray[np.void], npt.NDArray[Any]]], value_dtype: type
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Return trees laid out one after another: their nodes, each one's root, their values.

    Args:
        blocks: Each tree's nodes in preorder (a ``right`` field local to the tree, -1
            for a leaf) and its nodes' values.
        value_dtype: The values' dtype.

    Returns:
        ``nodes`` (each ``right`` made global), ``roots`` (each tree's first node) and
        ``values``.
    """
    total = sum(len(block) for block, _ in blocks)
    nodes = np.empty(total, dtype=blocks[0][0].dtype)
    values: npt.NDArray[Any] = np.empty(total, dtype=value_dtype)
    roots = np.empty(len(blocks), dtype=np.int64)
    offset = 0
    for t, (block, leaf_values) in enumerate(blocks):
        end = offset + len(block)
        nodes[offset:end] = block
        nodes["right"][offset:end] = np.where(block["right"] >= 0, block["right"] + offset, -1)
        values[offset:end] = leaf_values
        roots[t] = offset
        offset = end
    return nodes, roots, values


# --- the self-check -----------------------------------------------------------------------


def _verify(compiled: CompiledClassifier, estimator: Any) -> None:
    reference = estimator
    if getattr(estimator, "n_jobs", None) not in (None, 1):
        # The compiled path reproduces the n_jobs=1 order of summation.
        reference = copy.copy(estimator)
        reference.n_jobs = 1
    probes = _probe_rows(compiled)
    expected = np.asarray(reference.predict_proba(probes), dtype=np.float64)
    got = compiled.predict_proba(probes)
    one = np.array([compiled.predict_proba_one(row) for row in probes[:8]])
    if not (np.array_equal(got, expected) and np.array_equal(one, expected[:8, 1])):
        import sklearn

        raise UnsupportedEstimatorError(
            f"compiled {compiled.estimator_name} differs from its predict_proba on probe "
            f"rows under scikit-learn {sklearn.__version__}"
        )


def _probe_rows(compiled: CompiledClassifier) -> npt.NDArray[np.float64]:
    """Return rows on the trees' thresholds, just beside them, far outside, and NaN."""
    rng = np.random.default_rng(_PROBE_SEED)
    nodes = compiled._nodes
    inner = nodes[nodes["right"] >= 0]
    split = np.where(inner["feature"] < 0, -inner["feature"] - 1, inner["feature"])
    rows = rng.normal(size=(_PROBE_ROWS, compiled.n_features))
    for feature in range(compiled.n_features):
        thresholds = inner["threshold"][split == feature]
        thresholds = thresholds[np.isfinite(thresholds)]  # a NaN-only split's is inf
        if len(thresholds) == 0:
            continue
        picked = rng.choice(thresholds, size=_PROBE_ROWS)
        side = rng.integers(-1, 2, size=_PROBE_ROWS)
        beside = np.nextafter(picked, np.where(side < 0, -np.inf, np.inf))
        rows[:, feature] = np.where(side == 0, picked, beside)
    far = _PROBE_ROWS // 8
    rows[:far] = rng.normal(scale=1e6, size=(far, compiled.n_features))
    if compiled.allows_nan:
        rows[rng.random(rows.shape) < 0.1] = np.nan
    return rows


# --- kernels ------------------------------------------------------------------------------


@kernel
def _preorder(left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Return the nodes reachable from node 0 in depth-first preorder, left first."""
    order = np.empty(left.shape[0], dtype=np.int64)
    stack = np.empty(left.shape[0] + 1, dtype=np.int64)
    stack[0] = 0
    top = 1
    count = 0
    while top > 0:
        top -= 1
        node = stack[top]
        order[count] = node
        count += 1
        if left[node] >= 0:
            stack[top] = right[node]
            stack[top + 1] = left[node]
            top += 2
    return order[:count]


@kernel
def _prepare(
    row: npt.NDArray[np.float64],
    cast32: bool,
    allow_nan: bool,
    allow_inf: bool,
    out: npt.NDArray[np.float64],
) -> bool:
    """Write the row as the estimator sees it into ``out``; False if it refuses the row."""
    for j in range(row.shape[0]):
        value = np.float64(np.float32(row[j])) if cast32 else row[j]
        if np.isnan(value):
            if not allow_nan:
                return False
        elif np.isinf(value) and not allow_inf:
            return False
        out[j] = value
    return True


@kernel
def walk_trees(
    x: npt.NDArray[np.floating[Any]],
    nodes: npt.NDArray[np.void],
    roots: npt.NDArray[np.int64],
    first: int,
    size: int,
    strict: bool,
    leaf: npt.NDArray[np.int64],
) -> None:
    """Set ``leaf[k]`` to the leaf that row ``x`` reaches in tree ``first + k``, for each
    k below ``size``.

    The trees are walked side by side, one level of each in turn, so that their memory
    reads overlap. A row goes left where its feature is at most the node's threshold
    (below it when ``strict``, XGBoost's rule); a NaN compares false: it goes left only
    where the node says so.
    """
    tie = not strict  # a value equal to the threshold goes left
    for k in range(size):
        leaf[k] = roots[first + k]
    walking = True
    while walking:
        walking = False
        for k in range(size):
            i = leaf[k]
            node = nodes[i]
            right = node["right"]
            if right >= 0:
                walking = True
                code = node["feature"]
                value = x[code ^ (code >> 31)]  # the feature, whichever way NaN goes
                threshold = node["threshold"]
                # Bitwise, not `or`: no branch to mispredict.
                left = (
                    (value < threshold)
                    | ((value == threshold) & tie)
                    | ((value != value) & (code < 0))
                )
                leaf[k] = i + 1 if left else right


@kernel
def _leaf_sums(
    x: npt.NDArray[np.float64],
    nodes: npt.NDArray[np.void],
    roots: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    start: float,
    totals: npt.NDArray[np.float64],
) -> None:
    """Set ``totals[c]`` to ``start`` plus each tree's leaf value in column c, in tree order.

    Trees are walked ``_BLOCK`` at a time (`walk_trees`); their leaves are then added in
    tree order.
    """
    totals[:] = start
    leaf = np.empty(_BLOCK, dtype=np.int64)
    n_trees = roots.shape[0]
    for first in range(0, n_trees, _BLOCK):
        size = min(_BLOCK, n_trees - first)
        walk_trees(x, nodes, roots, first, size, False, leaf)
        for k in range(size):
            for c in range(values.shape[1]):
                totals[c] += values[leaf[k], c]


@kernel
def _predict_row(
    row: npt.NDArray[np.float64],
    cast32: bool,
    allow_nan: bool,
    allow_inf: bool,
    nodes: npt.NDArray[np.void],
    roots: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    start: float,
    divisor: float,
) -> float:
    """Return the last column's leaf sum of one row over ``divisor``; NaN if refused."""
    x = np.empty(row.shape[0], dtype=np.float64)
    if not _prepare(row, cast32, allow_nan, allow_inf, x):
        return np.nan
    totals = np.empty(values.shape[1], dtype=np.float64)
    _leaf_sums(x, nodes, roots, values, start, totals)
    return float(totals[-1] / divisor)


@kernel
def _predict_rows(
    rows: npt.NDArray[np.float64],
    cast32: bool,
    allow_nan: bool,
    allow_inf: bool,
    nodes: npt.NDArray[np.void],
    roots: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    start: float,
    divisor: float,
    out: npt.NDArray[np.float64],
) -> int:
    """Set ``out[r, c]`` to row r's leaf sum in column c over ``divisor``.

    Returns:
        The first refused row, or -1.
    """
    x = np.empty(rows.shape[1], dtype=np.float64)
    totals = np.empty(values.shape[1], dtype=np.float64)
    for r in range(rows.shape[0]):
        if not _prepare(rows[r], cast32, allow_nan, allow_inf, x):
            return r
        _leaf_sums(x, nodes, roots, values, start, totals)
        for c in range(values.shape[1]):
            out[r, c] = totals[c] / divisor
    return -1


@python_form(_predict_rows)
def _predict_rows_at_once(
    rows: npt.NDArray[np.float64],
    cast32: bool,
    allow_nan: bool,
    allow_inf: bool,
    nodes: npt.NDArray[np.void],
    roots: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    start: float,
    divisor: float,
    out: npt.NDArray[np.float64],
) -> int:
    """`_predict_rows` as Python: every row down every tree at once, a level at a time.

    The same comparisons on the same values, the leaves summed from ``start`` in tree
    order (``np.add.accumulate`` adds left to right, as the kernel's loop does), so the
    same bits.
    """
    x = rows.astype(np.float32).astype(np.float64) if cast32 else rows
    refused = np.zeros(x.shape[0], dtype=np.bool_)
    if not allow_nan:
        refused |= np.isnan(x).any(axis=1)
    if not allow_inf:
        refused |= np.isinf(x).any(axis=1)
    first = int(np.argmax(refused)) if refused.any() else x.shape[0]
    x = x[:first]
    at = np.broadcast_to(roots, (first, roots.shape[0])).copy()  # each row's node in each tree
    row = np.arange(first)[:, None]
    while True:
        right = nodes["right"][at]
        walking = right >= 0
        if not walking.any():
            break
        code = nodes["feature"][at]
        value = x[row, code ^ (code >> 31)]
        left = (value <= nodes["threshold"][at]) | ((value != value) & (code < 0))
        at = np.where(walking, np.where(left, at + 1, right), at)
    leaves = values[at]  # rows, trees, columns
    summed = np.add.accumulate(
        np.concatenate([np.full((first, 1, values.shape[1]), start), leaves], axis=1), axis=1
    )
    out[:first] = summed[:, -1, :] / divisor
    return first if first < rows.shape[0] else -1
