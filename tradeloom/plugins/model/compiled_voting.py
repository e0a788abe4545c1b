"""A fitted soft-voting classifier whose every estimator compiles, compiled.

scikit-learn's ``VotingClassifier.predict_proba`` with ``voting: soft`` is
``np.average`` over its fitted estimators' ``predict_proba``, weighted by ``weights``.
`CompiledVoting` asks each estimator's compiled kernel (through `FoldPredictor`, so a
Pipeline of scalers and a compiled classifier compiles too) and averages the same
arrays with the same call: equal to the library bit for bit where each estimator is,
and a row's number is the same alone and in a batch (the average runs per element).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tradeloom.plugins.model.compiled_model import (
    UnsupportedEstimatorError,
    batch_rows,
    one_row,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["CompiledVoting", "compile_voting", "is_voting", "voting_problem"]


def is_voting(estimator: Any) -> bool:
    """Return whether ``estimator`` is scikit-learn's ``VotingClassifier`` (exactly)."""
    cls = type(estimator)
    return cls.__module__.startswith("sklearn.") and cls.__name__ == "VotingClassifier"


class CompiledVoting:
    """A fitted soft ``VotingClassifier`` whose estimators are compiled.

    Attributes:
        estimator_name: ``VotingClassifier``.
        n_features: The number of values a row must have.
        allows_nan: Whether every estimator predicts a NaN value.
    """

    estimator_name = "VotingClassifier"

    def __init__(self, parts: list[Any], weights: list[float] | None, n_features: int) -> None:
        self._parts = parts
        self._weights = weights
        self.n_features = n_features
        self.allows_nan = all(p.compiled.allows_nan for p in parts)

    def predict_proba_one(self, row: npt.ArrayLike) -> float:
        """Return P(class 1) for one row: the number `predict_proba` gives it in any batch."""
        return float(self.predict_proba(one_row(row, self.n_features)[None, :])[0, 1])

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Return the ``(n_rows, 2)`` probabilities, as the library averages them."""
        rows = batch_rows(X, self.n_features)
        probas = np.asarray([p.predict_proba(rows) for p in self._parts])
        return np.asarray(np.average(probas, axis=0, weights=self._weights), dtype=np.float64)


def compile_voting(estimator: Any, predictor_of: Callable[[Any], Any]) -> CompiledVoting:
    """Compile a fitted soft ``VotingClassifier`` on classes ``[0, 1]``.

    ``predictor_of(fitted)`` is the rule each estimator predicts by (`FoldPredictor`, given
    by it: its ``compiled``, ``problem`` and scaling).

    Raises:
        UnsupportedEstimatorError: Hard voting, other classes, or an estimator that is not
            compiled (naming it).
    """
    if estimator.voting != "soft":
        raise UnsupportedEstimatorError(
            "VotingClassifier with voting hard is not compiled (it has no probabilities)"
        )
    if np.asarray(estimator.classes_).tolist() != [0, 1]:
        raise UnsupportedEstimatorError(
            f"VotingClassifier has classes {np.asarray(estimator.classes_).tolist()!r}; "
            "only binary classification with classes [0, 1] is supported"
        )
    parts = []
    for fitted in estimator.estimators_:
        predictor = predictor_of(fitted)
        if predictor.compiled is None:
            raise UnsupportedEstimatorError(f"VotingClassifier of {predictor.problem}")
        parts.append(_Part(predictor))
    weights = estimator._weights_not_none
    return CompiledVoting(parts, weights, int(estimator.n_features_in_))


class _Part:
    """One estimator of the vote: its ``(n, 2)`` probabilities through its kernel."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.compiled = predictor.compiled

    def predict_proba(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(self.predictor.compiled_proba(rows))


def voting_problem(settings: Mapping[str, Any], problem_of: Any) -> str | None:
    """Return why a VotingClassifier with params ``settings`` will not be compiled, or None.

    ``problem_of(estimator)`` answers for each of its (unfitted) estimators.
    """
    if settings.get("voting", "hard") != "soft":
        return "VotingClassifier with voting hard is not compiled (it has no probabilities)"
    for _, part in settings.get("estimators") or ():
        if isinstance(part, str):  # "drop"
            continue
        problem = problem_of(part)
        if problem is not None:
            return f"VotingClassifier of {problem}"
    return None
