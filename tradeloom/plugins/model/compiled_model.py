"""What every compiled classifier offers, and the error that says why one was not compiled.

A family of estimators (trees and forests, linear classifiers, LightGBM, XGBoost) is
compiled by its own module; `tradeloom.plugins.model.compiling` picks the module. Each
gives a `CompiledModel`: one row and a batch of rows through the same kernel, so that a
row's probability does not depend on the rows predicted with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "TOLERANCE",
    "BatchKernelClassifier",
    "CompiledModel",
    "UnsupportedEstimatorError",
    "batch_rows",
    "check_binary_classes",
    "one_row",
    "verify_within_tolerance",
]

TOLERANCE = 1e-12
"""Largest difference from ``predict_proba`` a compiled linear classifier, LightGBM or
XGBoost model may have (compiled scikit-learn trees must be equal to it)."""


class UnsupportedEstimatorError(ValueError):
    """The estimator cannot be compiled; the message says why."""


class CompiledModel(Protocol):
    """A fitted binary classifier evaluated in compiled code.

    Attributes:
        estimator_name: The class name of the compiled estimator.
        n_features: The number of values a row must have.
        allows_nan: Whether a NaN value is predicted (else refused, as the library does).
    """

    estimator_name: str
    n_features: int
    allows_nan: bool

    def predict_proba_one(self, row: npt.ArrayLike) -> float:
        """Return P(class 1) for one row, the number `predict_proba` gives it in any batch."""
        ...

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the ``(n_rows, 2)`` probabilities of classes 0 and 1."""
        ...


def one_row(row: npt.ArrayLike, n_features: int) -> npt.NDArray[np.float64]:
    """Return ``row`` as the float64 values of one row.

    Raises:
        ValueError: The row does not hold ``n_features`` values.
    """
    x = np.asarray(row, dtype=np.float64)
    if x.shape != (n_features,):
        raise ValueError(f"row must have shape ({n_features},), has {x.shape}")
    return x


def batch_rows(X: npt.ArrayLike, n_features: int) -> npt.NDArray[np.float64]:
    """Return ``X`` as C-contiguous float64 rows.

    Raises:
        ValueError: ``X`` is not of shape ``(n_rows, n_features)``.
    """
    rows = np.ascontiguousarray(X, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != n_features:
        raise ValueError(f"X must have shape (n, {n_features}), has {rows.shape}")
    return rows


def check_binary_classes(estimator: Any, name: str) -> None:
    """Refuse a fitted estimator whose classes are not ``[0, 1]``.

    Raises:
        UnsupportedEstimatorError: Naming the classes it has.
    """
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind not in "biuf" or classes.tolist() != [0, 1]:
        raise UnsupportedEstimatorError(
            f"{name} has classes {classes.tolist()!r}; "
            "only binary classification with classes [0, 1] is supported"
        )


def verify_within_tolerance(
    compiled: CompiledModel,
    estimator: Any,
    probes: npt.NDArray[np.float64],
    library: str,
    module: str,
    slack: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]] | None = None,
) -> None:
    """Refuse ``compiled`` unless it agrees with ``estimator.predict_proba`` on ``probes``.

    It agrees when every probability is within `TOLERANCE` (plus the row's ``slack``) of
    the estimator's and the first rows predicted one by one give the numbers of the batch.

    Args:
        compiled: The compiled classifier.
        estimator: The fitted estimator it was compiled from.
        probes: The probe rows.
        library: The library as the message names it (``scikit-learn``).
        module: The module whose ``__version__`` the message gives (``sklearn``).
        slack: Given the probe rows, what each row's probability may differ by beyond
            `TOLERANCE` because the two add the same terms in another order (None:
            nothing).

    Raises:
        UnsupportedEstimatorError: Naming the library and its version.
    """
    expected = np.asarray(estimator.predict_proba(probes), dtype=np.float64)
    got = compiled.predict_proba(probes)
    one = np.array([compiled.predict_proba_one(row) for row in probes[:8]])
    allowed = TOLERANCE if slack is None else TOLERANCE + slack(probes)[:, None]
    if not (np.array_equal(one, got[:8, 1]) and bool(np.all(np.abs(got - expected) <= allowed))):
        version = importlib.import_module(module).__version__
        raise UnsupportedEstimatorError(
            f"compiled {compiled.estimator_name} differs from its predict_proba by more than "
            f"{TOLERANCE:g} on probe rows under {library} {version}"
        )


class BatchKernelClassifier:
    """Base of a compiled tree booster whose kernel gives P(class 1) of a batch of rows.

    A row is a batch of one, so its number does not depend on the rows predicted with
    it. A subclass implements `_up` (the kernel's call) and may override `_down` (the
    probability of class 0). Made by its module's compile function; it holds a copy of
    the trees as they were when compiled and may be called from several threads.

    Attributes:
        estimator_name: The class name of the compiled estimator.
        n_features: The number of values a row must have.
        n_trees: The number of trees walked per row.
        n_nodes: The number of nodes of all trees.
        allows_nan: True: NaN is a missing value, routed as the library routes it.
    """

    allows_nan = True

    def __init__(self, estimator_name: str, n_features: int, n_trees: int, n_nodes: int) -> None:
        self.estimator_name = estimator_name
        self.n_features = n_features
        self.n_trees = n_trees
        self.n_nodes = n_nodes

    def predict_proba_one(self, row: npt.ArrayLike) -> float:
        """Return P(class 1) for one row, the number `predict_proba` gives it in any batch.

        Raises:
            ValueError: The row does not hold ``n_features`` values.
        """
        return float(self._up(one_row(row, self.n_features).reshape(1, -1))[0])

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the ``(n_rows, 2)`` probabilities of classes 0 and 1.

        Raises:
            ValueError: ``X`` is not of shape ``(n_rows, n_features)``.
        """
        up = self._up(batch_rows(X, self.n_features))
        return np.column_stack([self._down(up), up])

    def _up(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        raise NotImplementedError

    def _down(self, up: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 1.0 - up
