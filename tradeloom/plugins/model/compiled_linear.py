"""Compiled inference for fitted linear classifiers: one kernel for one row and for many.

A linear classifier's binary ``predict_proba`` is ``expit(X @ coef_.T + intercept_)``
(scikit-learn 1.9.1: ``LinearClassifierMixin.decision_function`` then
``_predict_proba_lr`` or, for ``LinearDiscriminantAnalysis``, ``_expit``). The product
``X @ coef_.T`` goes to BLAS, whose kernels add the terms of a row in an order that
depends on how many rows there are (one row takes a matrix-vector kernel, many a
blocked matrix-matrix one, with fused multiply-adds): the same row predicted alone and
in a batch can differ in the last bits (5.6e-17 at one bar of 300 in the lead's paper
run of examples/two_strategies.yaml). A backtest predicts a fold's rows in a batch, a
paper or live run one row at a time, so they would not journal the same number.

`compile_linear` takes the fitted weights and computes each row's score in a numba
kernel: ``0.0 + x[0] * w[0] + x[1] * w[1] + ...`` in feature order, then
``+ intercept``, each product rounded before it is added (numba emits no fused
multiply-add: without ``fastmath`` LLVM may not contract them), so the score of a row
depends on that row only. One row and a batch run through the same kernel
(`_linear_scores`, a row being a batch of one), and the probability is
``scipy.special.expit`` of the score, the function scikit-learn's link applies,
element by element. The compiled number differs from scikit-learn's by the order of a
sum: each order is within ``gamma(n+1) · (Σ|x_i w_i| + |b|)`` of the exact score (the
forward error bound of a sum of ``n + 1`` rounded terms), so the two are within twice
that, and the probabilities within ``p (1 - p)`` times it (`probability_slack`). On a
well-conditioned row that is some 1e-16; where large terms cancel it is more. The
compiled model is checked against ``predict_proba`` on probe rows to `TOLERANCE` plus
that bound before it is used, and refused beyond it.

Compiled, these exact classes only (a subclass may predict differently):
``LogisticRegression`` and ``LogisticRegressionCV``, ``SGDClassifier`` with
``loss="log_loss"`` (its ``predict_proba`` is ``_predict_proba_lr`` too; the
``modified_huber`` probabilities are not a logistic link) and
``LinearDiscriminantAnalysis`` (binary: ``expit`` of the same linear decision), each
fitted on classes ``[0, 1]``. Rows with NaN or infinities are refused, as scikit-learn
refuses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeloom.kernels.jit import kernel
from tradeloom.plugins.model.compiled_model import (
    TOLERANCE,
    UnsupportedEstimatorError,
    batch_rows,
    check_binary_classes,
    one_row,
    verify_within_tolerance,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "LINEAR_ESTIMATORS",
    "TOLERANCE",
    "CompiledLinear",
    "compile_linear",
    "linear_problem",
    "probability_slack",
]

LINEAR_ESTIMATORS = (
    "sklearn.discriminant_analysis.LinearDiscriminantAnalysis",
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.LogisticRegressionCV",
    "sklearn.linear_model.SGDClassifier",
)
"""Import paths of the classes `compile_linear` takes (SGDClassifier with log_loss only)."""

_PROBE_ROWS = 256
_PROBE_SEED = 20240502


class CompiledLinear:
    """A fitted binary linear classifier evaluated in compiled code, row by row.

    Made by `compile_linear`. Holds a copy of the weights as they were when compiled and
    may be called from several threads.

    Attributes:
        estimator_name: The class name of the compiled estimator.
        n_features: The number of values a row must have.
        allows_nan: Always False: NaN is refused, as scikit-learn refuses it.
    """

    allows_nan = False

    def __init__(
        self, estimator_name: str, coef: npt.NDArray[np.float64], intercept: float
    ) -> None:
        from scipy.special import expit  # the function scikit-learn's logistic link applies

        self.estimator_name = estimator_name
        self.n_features = len(coef)
        self._coef = np.ascontiguousarray(coef, dtype=np.float64)
        self._intercept = float(intercept)
        self._expit = expit

    def predict_proba_one(self, row: npt.ArrayLike) -> float:
        """Return P(class 1) for one row: what `predict_proba` gives it in any batch.

        Args:
            row: The ``n_features`` values of one row, in the training columns' order.

        Raises:
            ValueError: The row has the wrong shape, or holds NaN or an infinity.
        """
        x = one_row(row, self.n_features)
        return float(self._probabilities(x.reshape(1, -1), one=True)[0])

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the probabilities of classes 0 and 1, each row as `predict_proba_one`.

        Args:
            X: Rows of shape ``(n_rows, n_features)``.

        Returns:
            An ``(n_rows, 2)`` float64 array: ``1 - p`` and ``p``.

        Raises:
            ValueError: ``X`` has the wrong shape, or a row holds NaN or an infinity.
        """
        rows = batch_rows(X, self.n_features)
        up = self._probabilities(rows, one=False)
        return np.column_stack([1 - up, up])

    def decision_function(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return each row's score ``x . coef + intercept``, added in feature order.

        Raises:
            ValueError: As `predict_proba`.
        """
        rows = batch_rows(X, self.n_features)
        return self._scores(rows, one=False)

    def _scores(self, rows: npt.NDArray[np.float64], *, one: bool) -> npt.NDArray[np.float64]:
        out = np.empty(rows.shape[0], dtype=np.float64)
        refused = _linear_scores(rows, self._coef, self._intercept, out)
        if refused >= 0:
            raise ValueError(self._refusal(rows, refused, one=one))
        return out

    def _probabilities(
        self, rows: npt.NDArray[np.float64], *, one: bool
    ) -> npt.NDArray[np.float64]:
        scores = self._scores(rows, one=one)
        return np.asarray(self._expit(scores, out=scores), dtype=np.float64)

    def _refusal(self, rows: npt.NDArray[np.float64], row: int, *, one: bool) -> str:
        where = "" if one else f"row {row}: "
        for feature, value in enumerate(rows[row]):
            if np.isnan(value):
                return f"{where}feature {feature} is NaN; {self.estimator_name} does not accept NaN"
            if np.isinf(value):
                return (
                    f"{where}feature {feature} is {float(value)!r}; "
                    f"{self.estimator_name} does not accept infinite values"
                )
        raise AssertionError(f"the kernel refused row {row}, which holds no refused value")


def linear_problem(path: str, settings: dict[str, Any]) -> str | None:
    """Return why an estimator of import path ``path`` with ``settings`` is not compiled
    as a linear classifier, or None when it is (fitted on classes [0, 1])."""
    if path not in LINEAR_ESTIMATORS:
        return f"{path} is not a compiled linear classifier"
    loss = settings.get("loss", "hinge")
    if path.endswith(".SGDClassifier") and loss != "log_loss":
        return (
            f"SGDClassifier has loss={loss!r}; only loss='log_loss' gives the logistic "
            "probabilities that are compiled"
        )
    return None


def compile_linear(estimator: Any) -> CompiledLinear:
    """Compile a fitted binary linear classifier and check it against ``predict_proba``.

    Args:
        estimator: A fitted classifier of `LINEAR_ESTIMATORS` (the exact class).

    Returns:
        A `CompiledLinear` within `TOLERANCE` of ``predict_proba`` on probe rows.

    Raises:
        UnsupportedEstimatorError: The estimator is not one of these classes, not fitted,
            not binary on classes [0, 1], an SGDClassifier without ``log_loss``, or its
            compiled probabilities differ from ``predict_proba`` on a probe row.
    """
    name = type(estimator).__name__
    path = _linear_classes().get(type(estimator))
    if path is None:
        raise UnsupportedEstimatorError(f"{name} is not a compiled linear classifier")
    problem = linear_problem(path, {"loss": getattr(estimator, "loss", None)})
    if problem is not None:
        raise UnsupportedEstimatorError(problem)
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        raise UnsupportedEstimatorError(f"{name} is not fitted")
    check_binary_classes(estimator, name)
    weights = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(estimator.intercept_, dtype=np.float64).reshape(-1)
    if weights.ndim != 2 or weights.shape[0] != 1 or intercept.shape != (1,):
        raise UnsupportedEstimatorError(
            f"{name} has coef_ of shape {weights.shape}; expected one row (binary)"
        )
    if not (np.isfinite(weights).all() and np.isfinite(intercept).all()):
        raise UnsupportedEstimatorError(f"{name} has weights that are not finite")
    compiled = CompiledLinear(name, weights[0], float(intercept[0]))
    verify_within_tolerance(
        compiled,
        estimator,
        _probe_rows(compiled),
        "scikit-learn",
        "sklearn",
        slack=lambda rows: probability_slack(compiled, rows),
    )
    return compiled


def probability_slack(
    compiled: CompiledLinear, rows: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Return how far another order of the same sum may move each row's probability.

    Two sums of the same ``k = n + 1`` rounded terms, each within ``gamma(k) · Σ|term|`` of
    the exact score (``gamma(k) = k u / (1 - k u)``, ``u`` the unit roundoff), differ by at
    most ``Δ``, twice that; the logistic link's slope ``p (1 - p)`` is largest at the
    score of ``[s - Δ, s + Δ]`` nearest zero, so the probabilities differ by at most
    ``Δ`` times that slope.

    Args:
        compiled: The compiled classifier.
        rows: Finite rows, one per line.
    """
    from scipy.special import expit

    terms = np.abs(rows * compiled._coef).sum(axis=1) + abs(compiled._intercept)
    unit = np.finfo(np.float64).eps / 2
    k = compiled.n_features + 1
    delta = 2 * k * unit / (1 - k * unit) * terms
    nearest = np.maximum(np.abs(compiled.decision_function(rows)) - delta, 0.0)
    p = expit(nearest)
    return np.asarray(p * (1 - p) * delta, dtype=np.float64)


def _linear_classes() -> dict[type, str]:
    """Return each class of `LINEAR_ESTIMATORS` and its import path (scikit-learn is loaded)."""
    import importlib

    classes = {}
    for path in LINEAR_ESTIMATORS:
        module, _, name = path.rpartition(".")
        classes[getattr(importlib.import_module(module), name)] = path
    return classes


def _probe_rows(compiled: CompiledLinear) -> npt.NDArray[np.float64]:
    """Return rows whose scores lie on the logistic curve's slope, and rows far out.

    Half the rows have products of order one (scores within a few units of the
    intercept): there a kernel that computed another function would show at once, and
    no cancellation makes the two orders of addition differ by more than a few ulps.
    """
    rng = np.random.default_rng(_PROBE_SEED)
    rows = rng.normal(size=(_PROBE_ROWS, compiled.n_features))
    norm = float(np.linalg.norm(compiled._coef))
    if norm > 0:
        rows[: _PROBE_ROWS // 2] *= 3.0 / norm
    rows[-_PROBE_ROWS // 8 :] *= 10.0 ** rng.uniform(-6, 6, size=(_PROBE_ROWS // 8, 1))
    return rows


# --- kernel -------------------------------------------------------------------------------


@kernel
def _linear_scores(
    rows: npt.NDArray[np.float64],
    coef: npt.NDArray[np.float64],
    intercept: float,
    out: npt.NDArray[np.float64],
) -> int:
    """Set ``out[r]`` to ``0.0 + rows[r, 0] * coef[0] + ... + intercept``, in feature order.

    Returns:
        The first row holding NaN or an infinity (left unscored), or -1.
    """
    for r in range(rows.shape[0]):
        score = 0.0
        for j in range(rows.shape[1]):
            value = rows[r, j]
            if value - value != 0.0:  # NaN or an infinity: inf - inf is NaN
                return r
            score += value * coef[j]
        out[r] = score + intercept
    return -1
