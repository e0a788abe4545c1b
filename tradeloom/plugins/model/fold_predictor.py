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
from typing import TYPE_CHECKING, Any, TypeAlias

from tradeloom.plugins.model.compiled_model import CompiledModel, UnsupportedEstimatorError
from tradeloom.plugins.model.labels import BINARY_KINDS
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ROW_EXACT",
    "FoldPredictor",
    "label_problem",
    "parity_note",
    "predict_up",
    "up_probability_of_classes",
    "up_probability_of_return",
]

Scale: TypeAlias = "Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]"


class FoldPredictor:
    """The probability of an up move for a fitted fold's rows, one row or many alike.

    What the core reads is ``probability_up``; each label kind maps its estimator's
    answer to it (one rule, `up_probability`, for the batch and the row):

    - ``direction``, ``triple_barrier``: P(class 1), a binary classifier's.
    - ``classes`` (0 down, 1 flat, 2 up): ``P(up) + P(flat) / 2``, so that ``p - 0.5 =
      (P(up) - P(down)) / 2`` and the signal's confidence ``|p - 0.5| * 2`` is the margin
      of up over down. A class a fold never saw has probability 0.
    - ``return``: ``0.5 + r / 2`` of the predicted forward return r, clipped to [0, 1],
      so that the confidence is ``|r|`` (at most 1): ``signal.threshold`` is the predicted
      return a trade needs.

    Only binary classifiers are compiled (`tradeloom.plugins.model.compiling`); the other
    kinds predict through the estimator itself, one row as part of no batch (`problem`
    says so, and a paper or live run prints it).

    Args:
        fitted: A fitted classifier with ``classes_`` holding class 1, or a ``Pipeline``
            of a scaler and such a classifier (as `SklearnModel` builds it); for
            ``classes`` one with classes among 0, 1, 2; for ``return`` a regressor.
        kind: The label kind it was trained on.

    Attributes:
        fitted: The fitted classifier (or pipeline) it predicts with.
        compiled: The compiled estimator, or None when it is not compiled.
        problem: Why it is not compiled (None when it is).
        n_features: The number of values a row must have (None: the estimator does not say).
    """

    def __init__(self, fitted: Any, kind: str = "direction") -> None:
        from sklearn.pipeline import Pipeline

        from tradeloom.plugins.model.calibration import compile_calibrated, is_calibrated
        from tradeloom.plugins.model.compiled_voting import compile_voting, is_voting
        from tradeloom.plugins.model.compiling import compile_classifier

        self.fitted = fitted
        self.kind = kind
        n_features = getattr(fitted, "n_features_in_", None)  # not every estimator says
        self.n_features = None if n_features is None else int(n_features)
        steps: list[Any] = []
        estimator = fitted
        while isinstance(estimator, Pipeline):
            # SklearnModel's (scaler, estimator), a declared one, or the one nested in it
            steps.extend(step for _, step in estimator.steps[:-1])
            estimator = estimator.steps[-1][1]
        self.compiled: CompiledModel | None = None
        self.problem: str | None = None
        other = next((step for step in steps if not _element_wise(step)), None)
        if other is not None:
            self.problem = (
                f"{type(other).__name__} in the Pipeline is not compiled; compiled are "
                "StandardScaler, RobustScaler and MinMaxScaler steps (and row-exact fold "
                "transforms)"
            )
        elif kind in BINARY_KINDS:
            try:
                if is_calibrated(estimator):
                    self.compiled = compile_calibrated(estimator, FoldPredictor)
                elif is_voting(estimator):
                    self.compiled = compile_voting(estimator, FoldPredictor)
                else:
                    self.compiled = compile_classifier(estimator, strict=True)
            except UnsupportedEstimatorError as exc:
                self.problem = str(exc)
        else:
            cls = type(estimator)
            self.problem = label_problem(kind, f"{cls.__module__}.{cls.__name__}")
        self._scale = _chained([_scaling(step) for step in steps])
        self._column = -1
        self._classes: npt.NDArray[np.intp] = np.empty(0, np.intp)
        if kind in BINARY_KINDS:
            up = np.flatnonzero(np.asarray(fitted.classes_) == 1)
            self._column = int(up[0]) if len(up) == 1 else -1
        elif kind == "classes":
            self._classes = _class_columns(fitted.classes_)

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return P(up) of each row of ``x``: of a compiled estimator, each row's number
        alone (`predict_one`'s), bit for bit.

        Raises:
            ValueError: ``classes_`` does not hold exactly one class 1 (``classes``: holds
                a class other than 0, 1, 2), or the estimator refuses a row.
        """
        self._check_classes()
        if self.compiled is not None:
            return self.compiled.predict_proba(self._scale(x))[:, 1]
        if self.kind == "return":
            return up_probability_of_return(np.asarray(self.fitted.predict(x), np.float64))
        proba = np.asarray(self.fitted.predict_proba(x), dtype=np.float64)
        if self.kind == "classes":
            return up_probability_of_classes(proba, self._classes)
        return proba[:, self._column]

    def compiled_proba(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return the ``(n_rows, 2)`` probabilities of the compiled estimator (scaled as
        the fold scales), for an ensemble that averages them (`compiled_voting`).

        Raises:
            ValueError: The estimator is not compiled.
        """
        if self.compiled is None:
            raise ValueError(f"not compiled: {self.problem}")
        return np.asarray(self.compiled.predict_proba(self._scale(x)), dtype=np.float64)

    def predict_one(self, row: npt.NDArray[np.float64]) -> float:
        """Return P(up) of one row (1-D, one value per feature column).

        Raises:
            ValueError: As `predict`.
        """
        self._check_classes()
        if self.compiled is not None:
            scale = self._scale  # none to apply: the row as it is (a call per bar saved)
            return self.compiled.predict_proba_one(row if scale is _unscaled else scale(row))
        return float(self.predict(row[None, :])[0])

    def _check_classes(self) -> None:
        if self.kind in BINARY_KINDS and self._column < 0:
            raise ValueError(f"classes_ is {self.fitted.classes_!r}, expected one class 1")


def _class_columns(classes: Any) -> npt.NDArray[np.intp]:
    """Return, for down, flat and up (0, 1, 2), the column of ``predict_proba`` holding
    its probability, -1 for a class the fold never saw.

    Raises:
        ValueError: A class other than 0, 1 and 2.
    """
    values = np.asarray(classes)
    if not set(values.tolist()) <= {0, 1, 2}:
        raise ValueError(f"classes_ is {classes!r}, expected classes among 0, 1, 2")
    found = [np.flatnonzero(values == c) for c in (0, 1, 2)]
    return np.array([int(f[0]) if len(f) else -1 for f in found], dtype=np.intp)


def up_probability_of_classes(
    proba: npt.NDArray[np.float64], columns: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    """Return ``P(up) + P(flat) / 2`` per row of ``proba`` (``columns``: `_class_columns`)."""
    _, flat, up = (proba[:, c] if c >= 0 else np.zeros(len(proba)) for c in columns.tolist())
    return up + flat * 0.5


def up_probability_of_return(predicted: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return ``0.5 + r / 2`` per predicted return r, clipped to [0, 1] (NaN stays NaN)."""
    return np.clip(0.5 + predicted * 0.5, 0.0, 1.0)


ROW_EXACT: tuple[str, ...] = (
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.tree.DecisionTreeRegressor",
)
"""Estimators (these classes exactly) whose ``predict_proba`` and ``predict`` give a row the
same number alone as in any batch: a tree walks each row on its own, and a forest adds its
trees' answers for the row in ``estimators_`` order (predicting with one job, as
`SklearnModel` does). A ``classes`` or ``return`` model of one needs no compiled kernel for
a paper run to journal the backtest's probabilities bit for bit."""

_ROW_EXACT = {(p.partition(".")[0], p.rpartition(".")[2]) for p in ROW_EXACT}


def label_problem(kind: str, path: str) -> str | None:
    """Return why a model of label ``kind`` (not binary) with the estimator at import path
    ``path`` may predict a row alone otherwise than in a batch, or None (`ROW_EXACT`)."""
    if (path.partition(".")[0], path.rpartition(".")[2]) in _ROW_EXACT:
        return None
    return (
        f"label kind {kind} predicts through the estimator itself (compiled inference "
        "covers binary classifiers: label kinds direction and triple_barrier; of the others "
        f"only {', '.join(p.rpartition('.')[2] for p in ROW_EXACT)} predict a row alone as "
        "in a batch)"
    )


def predict_up(
    model: Any, x: npt.NDArray[np.float64], kind: str = "direction"
) -> npt.NDArray[np.float64]:
    """Return ``model``'s probability of an up move for each row of ``x``.

    ``FoldPredictor(model, kind).predict(x)``: a walk-forward fold and the same fold
    loaded from the registry give the same numbers.

    Raises:
        ValueError: ``model.classes_`` does not hold exactly one class 1.
    """
    return FoldPredictor(model, kind).predict(x)


def parity_note(problem: str, method: str = "predict_proba") -> str:
    """Return what a paper or live run of an estimator that is not compiled (``problem``:
    why not) should know about its probabilities (``method``: what it is asked)."""
    return (
        f"{problem}; a paper or live run predicts each bar alone with its {method}, "
        "which may differ from the backtest's batch prediction in the last bits"
    )


def _element_wise(step: Any) -> bool:
    """Whether `_scaling` repeats ``step``'s transform element by element, or ``step``
    transforms a row alone as in a batch (``row_exact``: the features' fold transforms,
    `tradeloom.plugins.model.fold_transforms`)."""
    from sklearn import preprocessing

    if getattr(step, "row_exact", False) is True and hasattr(step, "transform_rows"):
        return True
    return type(step) in (
        preprocessing.StandardScaler,
        preprocessing.RobustScaler,
        preprocessing.MinMaxScaler,
    )


def _unscaled(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return x


def _chained(scales: list[Scale]) -> Scale:
    if not scales:
        return _unscaled
    if len(scales) == 1:
        return scales[0]

    def chain(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        for scale in scales:
            x = scale(x)
        return x

    return chain


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
    if getattr(scaler, "row_exact", False) is True and hasattr(scaler, "transform_rows"):
        return scaler.transform_rows  # type: ignore[no-any-return]
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
