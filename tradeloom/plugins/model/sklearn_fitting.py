"""Fitting one walk-forward fold of the ``sklearn`` model: its rows, its single-class rule,
its scaler, calibration and estimator, the folds trained serially or in threads.

`FoldFitter` is the part of `tradeloom.plugins.model.sklearn_model.SklearnModel` that
trains; the walk-forward plan that says which rows each fold has is the model's own.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from tradeloom.domain import FeatureReference, ModelTraining
from tradeloom.errors import UserError
from tradeloom.plugins.model.anomaly import DetectorSpec
from tradeloom.plugins.model.boosting_libraries import set_threads
from tradeloom.plugins.model.calibration import (
    CalibrationParams,
    calibrate_fold,
    calibration_figures,
    split_holdout,
    uncalibrated_model,
)
from tradeloom.plugins.model.declared_estimators import DeclaredRecipe
from tradeloom.plugins.model.estimator_checks import CheckedEstimator
from tradeloom.plugins.model.fold_predictor import FoldPredictor, parity_note
from tradeloom.plugins.model.folds import Fold
from tradeloom.plugins.model.sklearn_params import LabelParams, OnSingleClass, Scaler
from tradeloom.runtime import progress
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.threads import openmp_threads
from tradeloom.runtime.warning_filters import kept_warning_filters

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "SINGLE_CLASS",
    "FoldFitter",
    "ModelFitError",
    "Target",
    "TrainedFold",
    "training_data_sha256",
]

SINGLE_CLASS = "single class in training rows"
"""`ModelTraining.skipped` of a fold whose training labels are all up or all down."""

_SCALERS = {"standard": "StandardScaler", "minmax": "MinMaxScaler", "robust": "RobustScaler"}
"""Scaler name -> class in ``sklearn.preprocessing``."""

_T = TypeVar("_T")

_log = logger("tradeloom.model")

_NOTE_LOCK = threading.Lock()
"""Held while a model notes its first fold that is not compiled (folds train in threads)."""


class ModelFitError(UserError):
    """The estimator failed on a fold (usually a parameter that does not suit the data),
    or a fold's training labels are one class and ``on_single_class`` is ``fail``."""


@dataclass(frozen=True)
class TrainedFold:
    """A fold's fitted model with what the registry saves beside it.

    Attributes:
        training: The fold (its ``reference`` is the training rows' feature distribution).
        fitted: The fitted estimator (a ``Pipeline`` of scaler and estimator with a scaler).
        columns: The feature columns it was trained on, in order.
        data_sha256: SHA-256 of the training rows' features and labels (float64 and int64
            bytes, C order), so that two models can be shown to share their training data.
        detector: The fold's fitted IsolationForest (``model.anomaly``), trained on the
            same rows, unscaled; None without an anomaly gate.
    """

    training: ModelTraining
    fitted: Any
    columns: tuple[str, ...]
    data_sha256: str
    detector: Any | None = None


def training_data_sha256(x: npt.NDArray[np.float64], y: Target) -> str:
    """Return the SHA-256 of training rows ``x`` and labels ``y`` as `TrainedFold` records it
    (classes as int64 bytes, a regression target as float64 bytes)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    dtype = np.float64 if np.asarray(y).dtype.kind == "f" else np.int64
    digest.update(np.ascontiguousarray(y, dtype=dtype).tobytes())
    return digest.hexdigest()


Target: TypeAlias = "npt.NDArray[np.int64] | npt.NDArray[np.float64]"
"""What an estimator fits: classes (int64) or, for label kind ``return``, numbers (float64)."""


def _ups(labels: npt.NDArray[Any], kind: str) -> npt.NDArray[np.bool_]:
    """Return which labels are an up move (journaled as a fold's ``positives``)."""
    if kind == "classes":
        return np.asarray(labels == 2)
    if kind == "return":
        return np.asarray(labels > 0)
    return np.asarray(labels == 1)


class FoldFitter:
    """Train the folds of a walk-forward plan: each a fresh clone of the estimator.

    The configuration is the model's (`SklearnModel`'s arguments); its ``__init__`` sets it.
    """

    _estimator: Any
    _detector: Any | None
    label: LabelParams
    horizon: int
    scaler: Scaler
    embargo: int
    n_jobs: int
    on_single_class: OnSingleClass
    calibration: CalibrationParams | None
    trained: list[TrainedFold]
    _not_compiled: str | None
    fold_columns: Any | None = None
    """The features' fold transforms as one unfitted `FoldColumns` step (None: none),
    put at the head of each fold's ``Pipeline`` and fitted on the fold's rows."""

    @property
    def estimator(self) -> Any:
        """The unfitted estimator; made at first use from a `CheckedEstimator` (or a
        `DeclaredRecipe`)."""
        if isinstance(self._estimator, CheckedEstimator | DeclaredRecipe):
            self._estimator = self._estimator.make()
        return self._estimator

    @estimator.setter
    def estimator(self, estimator: Any) -> None:
        self._estimator = estimator

    @property
    def estimator_name(self) -> str:
        """The estimator's class name, as journaled with each fold.

        The class's own ``__name__`` (the estimator is made first): a fold's pickle
        holds the name and the class reference, and pickle writes one object once, so
        a copy of the name read from the checks' cache would change the file's bytes.
        """
        return type(self.estimator).__name__

    @property
    def detector(self) -> Any | None:
        """The unfitted anomaly detector, or None; made at first use from a `DetectorSpec`."""
        if isinstance(self._detector, DetectorSpec):
            self._detector = self._detector.make()
        return self._detector

    def _targets(self, trainable: npt.NDArray[np.bool_], labels: npt.NDArray[np.float64]) -> Target:
        """Return what the estimator fits: the class of each trainable row as an int64
        (0 elsewhere), or for ``return`` the forward return as a float64 (0.0 elsewhere)."""
        y = np.where(trainable, labels, 0.0)
        return y if self.label.regression else y.astype(np.int64)

    def _run(
        self,
        jobs: list[tuple[Fold, npt.NDArray[np.intp], npt.NDArray[np.intp]]],
        x: npt.NDArray[np.float64],
        y: Target,
        shown: progress.Task | None = None,
    ) -> Iterator[tuple[Any, npt.NDArray[np.float64]]]:
        """Yield each job's fitted model and predictions, in job order; raise the first
        job's failure in that order (not in the order the threads finish). Each fold
        trained advances ``shown``."""
        if self.n_jobs == 1 or len(jobs) < 2:
            outcomes: Iterable[Any] = (
                self._train(fold, rows, seg, x, y, shown) for fold, rows, seg in jobs
            )
        else:
            # scikit-learn's wrappers carry its configuration into the fold threads (and
            # keep an estimator's own n_jobs from warning that they were not used). All
            # folds finish before the first failure is raised: the fitted folds are kept
            # anyway, and a generator dropped half way makes joblib warn from its threads.
            from sklearn.utils.parallel import Parallel, delayed

            with kept_warning_filters():  # its threads' too (`kept_warning_filters`)
                outcomes = Parallel(n_jobs=self.n_jobs, backend="threading")(
                    delayed(_in_one_openmp_thread)(self._train, fold, rows, seg, x, y, shown)
                    for fold, rows, seg in jobs
                )
        for outcome in outcomes:
            if isinstance(outcome, ModelFitError):
                raise outcome
            yield outcome

    def _train(
        self,
        fold: Fold,
        rows: npt.NDArray[np.intp],
        segment: npt.NDArray[np.intp],
        x: npt.NDArray[np.float64],
        y: Target,
        shown: progress.Task | None = None,
    ) -> tuple[Any, npt.NDArray[np.float64]] | ModelFitError:
        try:
            fitted = self._fit_calibrated(fold, rows, x, y)
            predicted = self._predict(fold, fitted, x[segment]) if len(segment) else np.empty(0)
        except ModelFitError as exc:  # returned, so that the caller raises in fold order
            return exc
        finally:
            if shown is not None:
                shown.advance()  # from a fold's thread too: rich's display takes a lock
        return fitted, predicted

    def _fit(self, fold: Fold, x: npt.NDArray[np.float64], y: Target) -> Any:
        from sklearn import preprocessing
        from sklearn.base import clone
        from sklearn.pipeline import Pipeline

        model = clone(self.estimator)
        set_threads(model, openmp_threads())
        steps: list[tuple[str, Any]] = []
        if self.fold_columns is not None:  # the features' transforms, fitted on these rows
            steps.append(("fold_columns", clone(self.fold_columns)))
        if self.scaler != "none":
            steps.append(("scaler", getattr(preprocessing, _SCALERS[self.scaler])()))
        if steps:
            model = Pipeline([*steps, ("estimator", model)])
        try:
            model.fit(x, y)
        except Exception as exc:  # any failure of a third-party fit is reported the same way
            raise self._failure("train", fold, exc) from exc
        _predict_serially(model)
        return model

    def _calibration_figures(
        self,
        jobs: list[tuple[Fold, npt.NDArray[np.intp], npt.NDArray[np.intp]]],
        x: npt.NDArray[np.float64],
        labels: npt.NDArray[Any],
        trainable: npt.NDArray[np.bool_],
    ) -> list[dict[str, Any]]:
        """Return each calibrated fold's out-of-sample figures before and after calibration
        (`calibration_figures`), over its predicted bars whose label the data holds."""
        if self.calibration is None:
            return []
        figures = []
        for (fold, _, segment), trained in zip(jobs, self.trained, strict=True):
            model = uncalibrated_model(trained.fitted)
            known = segment[trainable[segment]]
            if model is None:
                continue
            before = FoldPredictor(model, self.label.kind).predict(x[known])
            after = FoldPredictor(trained.fitted, self.label.kind).predict(x[known])
            up = _ups(labels[known], self.label.kind).astype(np.float64)
            figures.append(calibration_figures(fold.index, before, after, up))
        return figures

    def _holdout(
        self, rows: npt.NDArray[np.intp], labels: npt.NDArray[Any]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], str]:
        """Return a fold's model rows, its calibration rows and the journal's note of them.

        Without ``calibration``: every row, none, ''. A holdout whose labels are one class
        calibrates nothing: the model is fitted on every row, uncalibrated, and the note
        says so.
        """
        calibration = self.calibration
        if calibration is None or len(rows) == 0:
            return rows, rows[:0], ""
        model_rows, held = split_holdout(rows, calibration.holdout, self.horizon, self.embargo)
        method = calibration.method
        if len(np.unique(labels[held])) < 2:
            return rows, rows[:0], f"{method}: none (the {len(held)} holdout rows are one class)"
        first = int(model_rows[0]) if len(model_rows) else int(held[0])
        last = int(model_rows[-1]) if len(model_rows) else int(held[0]) - 1
        return (
            model_rows,
            held,
            f"{method} on rows {int(held[0])}..{int(held[-1])} ({len(held)}); "
            f"model on rows {first}..{last} ({len(model_rows)})",
        )

    def _fit_calibrated(
        self, fold: Fold, rows: npt.NDArray[np.intp], x: npt.NDArray[np.float64], y: Target
    ) -> Any:
        """Fit the fold's model on its rows, calibrated on its holdout (`_holdout`); the
        process's warning filters as they were after (scikit-learn's worker threads can
        leave them emptied: `kept_warning_filters`)."""
        model_rows, held, _ = self._holdout(rows, y)
        with kept_warning_filters():
            fitted = self._fit(fold, x[model_rows], y[model_rows])
            if len(held) == 0 or self.calibration is None:
                return fitted
            try:
                return calibrate_fold(fitted, self.calibration.method, x[held], y[held])
            except Exception as exc:  # as for fit
                raise self._failure("calibrate", fold, exc) from exc

    def _predict(
        self, fold: Fold, model: Any, x: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        try:
            predictor = FoldPredictor(model, self.label.kind)
            self._note_not_compiled(predictor)
            return predictor.predict(x)
        except Exception as exc:  # as for fit
            raise self._failure("predict", fold, exc) from exc

    def _plan_training(
        self,
        fold: Fold,
        rows: npt.NDArray[np.intp],
        labels: npt.NDArray[np.float64] | npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        columns: tuple[str, ...],
        reason: str,
    ) -> ModelTraining:
        """Return the fold's `ModelTraining` (skipped when its labels are one class).

        Raises:
            ModelFitError: The labels are one class and ``on_single_class`` is ``fail``.
        """
        trained = labels[rows]
        positives = int(_ups(trained, self.label.kind).sum())
        skipped = SINGLE_CLASS if len(np.unique(trained)) < 2 else ""
        if skipped and self.on_single_class == "fail":
            raise self._single_class(fold, trained)
        return ModelTraining(
            fold=fold.index,
            train_start=fold.train_start,
            train_end=fold.train_end,
            predict_start=fold.predict_start,
            predict_end=fold.predict_end,
            rows=fold.rows,
            positives=positives,
            horizon=self.horizon,
            estimator=self.estimator_name,
            skipped=skipped,
            embargo=self.embargo,
            reason=reason,
            reference=None if skipped else FeatureReference.of(x[rows], columns),
            calibration="" if skipped else self._holdout(rows, labels)[2],
        )

    def _single_class(self, fold: Fold, labels: npt.NDArray[Any]) -> ModelFitError:
        value = labels[0] if len(labels) else 0
        every = f"{value:g}" if self.label.regression else f"{int(value)}"
        return ModelFitError(
            f"model: fold {fold.index} has one class only in its {fold.rows} training rows "
            f"{fold.train_start}..{fold.train_end} (every label is {every}; "
            f"predicting bars {fold.predict_start}..{fold.predict_end}); lengthen "
            "walk_forward.train_window, change the label, or set "
            "walk_forward.on_single_class: skip"
        )

    def _failure(self, stage: str, fold: Fold, exc: Exception) -> ModelFitError:
        return ModelFitError(
            f"model: {self.estimator_name} failed to {stage} fold {fold.index} "
            f"(training rows {fold.train_start}..{fold.train_end}, predicting bars "
            f"{fold.predict_start}..{fold.predict_end}): {type(exc).__name__}: {exc}"
        )

    def _note_not_compiled(self, predictor: FoldPredictor) -> None:
        """Log once per model that a fold's estimator is not compiled (from any thread)."""
        if predictor.problem is None:
            return
        with _NOTE_LOCK:
            if self._not_compiled is not None:
                return
            self._not_compiled = predictor.problem
        method = "predict" if self.label.regression else "predict_proba"
        _log.warning(
            "model_not_compiled",
            estimator=self.estimator_name,
            note=parity_note(predictor.problem, method),
        )


def _predict_serially(model: Any) -> None:
    """Predict with one job: a forest's threads add up tree probabilities in whatever
    order they finish, so with ``n_jobs`` > 1 the same row can differ in the last bit
    from one run to the next. Training in parallel stays deterministic and is kept."""
    keys = [key for key in model.get_params() if key == "n_jobs" or key.endswith("__n_jobs")]
    if keys:
        model.set_params(**dict.fromkeys(keys, 1))


def _in_one_openmp_thread(call: Callable[..., _T], *args: Any) -> _T:
    """Return ``call(*args)`` with this thread's OpenMP pool limited to one thread.

    The folds are the parallelism here: an estimator that fits with OpenMP
    (HistGradientBoosting) would otherwise start a pool of every core inside every
    fold thread. OpenMP's thread count is a per-thread setting, so it is set in the
    fold's own thread; the arithmetic, and so the predictions, do not depend on it.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        return call(*args)
