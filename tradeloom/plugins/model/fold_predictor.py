"""One fitted fold's prediction rule, for a backtest's batch and a live bar's single row alike.

tradeloom promises that a backtest and a paper or live run of a strategy journal the same
probability at every bar, exactly. A backtest predicts the rows of a fold's segment in one
batch; paper and live predict each bar's row alone, when it closes. A `FoldPredictor` is
built once per fitted fold and does both through the same arithmetic:

- The fold's scaler (``model.scaler``), when it has one, is applied with scikit-learn's
  element-wise operations repeated one by one (``transform`` in
  sklearn/preprocessing/_data.py): element-wise, a row is scaled the same alone or in a
  batch, and the input validation that would cost more than the compiled model is skipped.
- A compiled estimator (`tradeloom.plugins.model.compiling`) predicts one row and a batch
  through the same kernel: the number is the same bit for bit in every mode.
- Any other estimator is asked for ``predict_proba``: of the batch in a backtest, of the
  row alone on paper and live. Its arithmetic may depend on the batch (a BLAS product adds
  a row's terms in another order for one row than for many: an MLP, a quadratic
  discriminant), so the two may differ in the last bits. Predicting each row alone in the
  backtest as well would close that gap at the cost of one ``predict_proba`` call per bar
  (``benchmarks/bench_row_parity.py``, 17,000 predicted bars: 2.0 s for an MLP, 137 s for
  a 50-tree AdaBoost, against 20 and 25 ms in a batch), so it is not done; the
  difference is surfaced instead:
  `problem` says why the estimator is not compiled, ``tradeloom validate`` and a paper or
  live run's start print it, and the model logs ``model_not_compiled`` once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloom.plugins.model.compiled_model import CompiledModel, UnsupportedEstimatorError

__all__ = ["FoldPredictor", "parity_note", "predict_up"]

Scale = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]


class FoldPredictor:
    """The probability of an up move for a fitted fold's rows, one row or many alike.

    Args:
        fitted: A fitted classifier with ``classes_`` holding class 1, or a ``Pipeline``
            of a scaler and such a classifier (as `SklearnModel` builds it).

    Attributes:
        fitted: The fitted classifier (or pipeline) it predicts with.
        compiled: The compiled estimator, or None when it is not compiled.
        problem: Why it is not compiled (None when it is).
        n_features: The number of values a row must have (None: the estimator does not say).
    """

    def __init__(self, fitted: Any) -> None:
        from sklearn.pipeline import Pipeline

        from tradeloom.plugins.model.compiling import compile_classifier

        self.fitted = fitted
        n_features = getattr(fitted, "n_features_in_", None)  # not every estimator says
        self.n_features = None if n_features is None else int(n_features)
        scaler, estimator = None, fitted
        if isinstance(fitted, Pipeline):  # as SklearnModel builds it: scaler, then estimator
            scaler, estimator = fitted.named_steps["scaler"], fitted.named_steps["estimator"]
        self.compiled: CompiledModel | None = None
        self.problem: str | None = None
        try:
            self.compiled = compile_classifier(estimator, strict=True)
        except UnsupportedEstimatorError as exc:
            self.problem = str(exc)
        self._scale = _scaling(scaler)
        up = np.flatnonzero(np.asarray(fitted.classes_) == 1)
        self._column = int(up[0]) if len(up) == 1 else -1

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return P(up) of each row of ``x``: of a compiled estimator, each row's number
        alone (`predict_one`'s), bit for bit.

        Raises:
            ValueError: ``classes_`` does not hold exactly one class 1, or the estimator
                refuses a row.
        """
        self._check_classes()
        if self.compiled is not None:
            return self.compiled.predict_proba(self._scale(x))[:, 1]
        return np.asarray(self.fitted.predict_proba(x), dtype=np.float64)[:, self._column]

    def predict_one(self, row: npt.NDArray[np.float64]) -> float:
        """Return P(up) of one row (1-D, one value per feature column).

        Raises:
            ValueError: As `predict`.
        """
        self._check_classes()
        if self.compiled is not None:
            return self.compiled.predict_proba_one(self._scale(row))
        return float(self.fitted.predict_proba(row[None, :])[0, self._column])

    def _check_classes(self) -> None:
        if self._column < 0:
            raise ValueError(f"classes_ is {self.fitted.classes_!r}, expected one class 1")


def predict_up(model: Any, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return ``model``'s probability of class 1 (an up move) for each row of ``x``.

    ``FoldPredictor(model).predict(x)``: a walk-forward fold and the same fold loaded
    from the registry give the same numbers.

    Raises:
        ValueError: ``model.classes_`` does not hold exactly one class 1.
    """
    return FoldPredictor(model).predict(x)


def parity_note(problem: str) -> str:
    """Return what a paper or live run of an estimator that is not compiled (``problem``:
    why not) should know about its probabilities."""
    return (
        f"{problem}; a paper or live run predicts each bar alone with its predict_proba, "
        "which may differ from the backtest's batch prediction in the last bits"
    )


def _scaling(scaler: Any) -> Scale:
    """Return a function that scales rows (one 1-D row, or a 2-D batch) exactly as
    ``scaler.transform`` scales them.

    The three scalers `SklearnModel` builds are repeated operation for operation (their
    ``transform`` in sklearn/preprocessing/_data.py works in place on a float64 copy);
    any other falls back to ``transform`` itself.
    """
    from sklearn import preprocessing

    if scaler is None:
        return lambda x: x
    kind = type(scaler)
    if kind is preprocessing.StandardScaler:
        mean = scaler.mean_ if scaler.with_mean else None
        std = scaler.scale_ if scaler.with_std else None
        return lambda x: _shift_divide(x, mean, std)
    if kind is preprocessing.RobustScaler:
        center = scaler.center_ if scaler.with_centering else None
        scale = scaler.scale_ if scaler.with_scaling else None
        return lambda x: _shift_divide(x, center, scale)
    if kind is preprocessing.MinMaxScaler and not scaler.clip:
        factor, offset = scaler.scale_, scaler.min_
        return lambda x: x * factor + offset
    return lambda x: np.asarray(scaler.transform(np.atleast_2d(x)), dtype=np.float64).reshape(
        x.shape
    )


def _shift_divide(
    x: npt.NDArray[np.float64],
    shift: npt.NDArray[np.float64] | None,
    divisor: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.float64]:
    out = x if shift is None else x - shift
    return out if divisor is None else out / divisor
