"""What every compiled classifier offers, and the error that says why one was not compiled.

A family of estimators (trees and forests, linear classifiers, LightGBM, XGBoost) is
compiled by its own module; `tradeloom.plugins.model.compiling` picks the module. Each
gives a `CompiledModel`: one row and a batch of rows through the same kernel, so that a
row's probability does not depend on the rows predicted with it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["CompiledModel", "UnsupportedEstimatorError"]


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
