"""The ``sklearn`` model: a scikit-learn classifier trained walk-forward with purging.

The factory imports, checks and configures the estimator without touching data, so
that validating a strategy reports a bad estimator or parameter before anything runs.
`SklearnModel.fit_predict` then trains one clone of it per fold of `plan_folds`, the folds
one after another or in parallel threads (``walk_forward.n_jobs``) with the same result.

scikit-learn is imported when a model is built, not when the plugin is registered:
importing it takes most of a second, which every ``tradeloom`` command would pay.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator, model_validator

from tradeloom.bounds import MAX_WINDOW
from tradeloom.domain import (
    Bars,
    FeatureReference,
    ModelOutput,
    ModelTraining,
    Retraining,
    Universe,
)
from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext, Params, bars_key
from tradeloom.plugins.model.anomaly import (
    AnomalyParams,
    DetectorSpec,
    anomaly_scores,
    fit_detector,
)
from tradeloom.plugins.model.boosting_libraries import set_threads
from tradeloom.plugins.model.calibration import (
    CalibrationParams,
    calibrate_fold,
    calibration_figures,
    split_holdout,
    uncalibrated_model,
)
from tradeloom.plugins.model.declared_estimators import (
    DeclaredEstimator,
    DeclaredRecipe,
    remembered_declared,
)
from tradeloom.plugins.model.estimator_checks import (
    CheckedEstimator,
    Task,
    import_estimator,
    remembered_estimator,
)
from tradeloom.plugins.model.fold_predictor import FoldPredictor, label_problem, parity_note
from tradeloom.plugins.model.folds import Fold, check_purging, plan_folds, plan_retrain
from tradeloom.plugins.model.labels import BINARY_KINDS, LabelKind, make_labels
from tradeloom.plugins.model.universe_fit import fit_per_symbol, plan_pooled_folds, pooled_rows
from tradeloom.runtime import progress
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.runtime.threads import openmp_threads

if TYPE_CHECKING:
    from tradeloom.plugins.model.compiled_model import CompiledModel

__all__ = [
    "SINGLE_CLASS",
    "LabelParams",
    "ModelFitError",
    "OnSingleClass",
    "Scaler",
    "SklearnModel",
    "SklearnParams",
    "TrainedFold",
    "WalkForwardParams",
    "build_sklearn_model",
    "import_estimator",
]

Scaler = Literal["none", "standard", "minmax", "robust"]

OnSingleClass = Literal["skip", "fail"]

Pooling = Literal["pooled", "per_symbol"]

SINGLE_CLASS = "single class in training rows"
"""`ModelTraining.skipped` of a fold whose training labels are all up or all down."""

_SCALERS = {"standard": "StandardScaler", "minmax": "MinMaxScaler", "robust": "RobustScaler"}
"""Scaler name -> class in ``sklearn.preprocessing``."""

_LEAST_MODEL_ROWS = 20
"""Fewest rows a calibrated fold's model may be fitted on (the walk-forward's own floor)."""

_log = logger("tradeloom.model")
_T = TypeVar("_T")

_NOTE_LOCK = threading.Lock()
"""Held while a model notes its first fold that is not compiled (folds train in threads)."""


class LabelParams(Params):
    """The training label: the direction of the forward return, a triple barrier, the
    forward return itself (a regressor), or down/flat/up classes."""

    kind: LabelKind = Field(
        default="direction",
        description="direction: is the close higher horizon bars later; triple_barrier: "
        "is the take-profit touched before the stop-loss within horizon bars; return: the "
        "forward return close[t+h] / close[t] - 1, learnt by a regressor (probability_up = "
        "0.5 + predicted return / 2, clipped to [0, 1]: signal.threshold is the predicted "
        "return a trade needs); classes: down / flat / up, flat within dead_band, learnt by "
        "a classifier (probability_up = P(up) + P(flat) / 2).",
    )
    horizon: int = Field(
        default=1,
        ge=1,
        le=MAX_WINDOW,
        description="Bars ahead the label looks (the triple barrier's time limit; 1 .. 1,000,000).",
    )
    dead_zone: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="direction and triple_barrier: rows whose forward log return is smaller "
        "than this in absolute value get no label and are not trained on.",
    )
    take_profit: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="triple_barrier: take-profit distance as a fraction of the entry close.",
    )
    stop_loss: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="triple_barrier: stop-loss distance as a fraction of the entry close.",
    )
    dead_band: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="classes (required there): a forward return within +/- dead_band is "
        "flat, above it up, below it down (e.g. 0.002 = 0.2%).",
    )

    @model_validator(mode="after")
    def _keys_match_kind(self) -> LabelParams:
        kind = self.kind
        barriers = [k for k in ("take_profit", "stop_loss") if getattr(self, k) is not None]
        if kind == "triple_barrier" and len(barriers) < 2:
            missing = " and ".join(k for k in ("take_profit", "stop_loss") if k not in barriers)
            raise ValueError(f"kind triple_barrier needs {missing}")
        if kind != "triple_barrier" and barriers:
            keys = (
                "take_profit and stop_loss are triple_barrier keys"
                if len(barriers) == 2
                else f"{barriers[0]} is a triple_barrier key"
            )
            raise ValueError(f"{keys}; kind is {kind}")
        if kind == "classes" and self.dead_band is None:
            raise ValueError("kind classes needs dead_band (the flat band, e.g. 0.002)")
        if kind != "classes" and self.dead_band is not None:
            raise ValueError(f"dead_band is a classes key; kind is {kind}")
        if kind in ("return", "classes") and self.dead_zone > 0:
            instead = "dead_band sets its flat class" if kind == "classes" else "none is left out"
            raise ValueError(
                f"dead_zone is a direction and triple_barrier key; kind is {kind} ({instead})"
            )
        return self

    @property
    def regression(self) -> bool:
        """Whether the label is a number to regress (``return``), not a class."""
        return self.kind == "return"

    def recorded(self) -> dict[str, Any]:
        """Return the keys a saved model records (``dead_band`` only where it is set, so
        that the metadata of a model of the other kinds is what it always was)."""
        keys = self.model_dump(mode="json")
        if keys["dead_band"] is None:
            del keys["dead_band"]
        return keys


class WalkForwardParams(Params):
    """How the walk-forward folds are laid out."""

    train_window: int = bars_key(..., 20, "Most rows a fold trains on", strict=False)
    retrain_every: int = bars_key(..., 1, "Bars each fold predicts before retraining", strict=False)
    min_train_rows: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WINDOW,
        description="Rows needed before the first fold (default: train_window; at most 1,000,000).",
    )
    embargo: int = bars_key(
        0, 0, "Bars dropped from each fold's training rows before the purged ones", strict=False
    )
    n_jobs: int = Field(
        default=1,
        description="Folds trained at once: 1 one after another, -1 every core (at most 1024).",
    )
    on_single_class: OnSingleClass = Field(
        default="skip",
        description="A fold whose training labels are one class: skip it (journaled) or fail.",
    )

    @field_validator("n_jobs")
    @classmethod
    def _jobs_in_range(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(f"must be >= 1, or -1 for every core, was {value}")
        if value > 1024:
            raise ValueError(f"must be <= 1024, or -1 for every core, was {value}")
        return value

    @model_validator(mode="after")
    def _min_rows_fit_window(self) -> WalkForwardParams:
        if self.min_train_rows is not None and self.min_train_rows > self.train_window:
            raise ValueError(
                f"min_train_rows must be <= train_window ({self.train_window}), "
                f"was {self.min_train_rows}"
            )
        return self


class SklearnParams(Params):
    """YAML keys of the ``sklearn`` model."""

    estimator: str | DeclaredEstimator = Field(
        description="Import path of a classifier, e.g. sklearn.ensemble.RandomForestClassifier, "
        "lightgbm.LGBMClassifier (pip install tradeloom[lightgbm]) or xgboost.XGBClassifier "
        "(tradeloom[xgboost]); or a declared one, {class: ..., params: {...}}, whose params "
        "may declare the estimators it takes (a Pipeline's steps, a Stacking or Voting "
        "classifier's estimators and final_estimator, CalibratedClassifierCV's estimator).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor parameters of the estimator (for LightGBM also its own "
        "parameter names and aliases). Those that size the work have ceilings: n_estimators "
        "(and LightGBM's num_iterations and its aliases) at most 10,000, max_iter and n_iter "
        "at most 100,000, max_fun at most 1,000,000, n_restarts_optimizer at most 100.",
    )
    scaler: Scaler = Field(
        default="none", description="Feature scaling, fitted on each fold's training rows."
    )
    label: LabelParams = Field(default_factory=LabelParams)
    walk_forward: WalkForwardParams
    anomaly: AnomalyParams | None = Field(
        default=None,
        description="Fit an IsolationForest beside each fold's model; no new position is "
        "opened on a bar it finds anomalous (null: no anomaly gate).",
    )
    pooling: Pooling = Field(
        default="pooled",
        description="Over several symbols (data.symbols): pooled trains one model on every "
        "symbol's rows, walk-forward on the common clock; per_symbol trains one model per "
        "symbol on its own bars. One symbol: the same model either way.",
    )
    symbol_id: bool = Field(
        default=False,
        description="pooled: add the symbol's index in data.symbols as a feature column "
        "(symbol_id).",
    )
    calibration: CalibrationParams | None = Field(
        default=None,
        description="Calibrate each fold's probabilities on its last training rows "
        "(method: isotonic | sigmoid, holdout: rows); null: the estimator's own.",
    )

    @field_validator("estimator")
    @classmethod
    def _path_not_empty(cls, value: str | DeclaredEstimator) -> str | DeclaredEstimator:
        if isinstance(value, str) and not value:
            raise ValueError("expected an import path or {class: ..., params: {...}}, was ''")
        return value

    @model_validator(mode="after")
    def _params_beside_a_path(self) -> SklearnParams:
        if isinstance(self.estimator, DeclaredEstimator) and self.params:
            raise ValueError(
                "params is for an estimator given by import path; a declared estimator "
                "takes them under estimator.params"
            )
        return self

    @model_validator(mode="after")
    def _calibration_fits(self) -> SklearnParams:
        calibration = self.calibration
        if calibration is None:
            return self
        if self.label.kind not in BINARY_KINDS:
            raise ValueError(
                f"calibration needs label kind direction or triple_barrier; kind is "
                f"{self.label.kind}"
            )
        walk_forward = self.walk_forward
        least = walk_forward.min_train_rows or walk_forward.train_window
        purged = self.label.horizon + walk_forward.embargo
        if calibration.holdout + purged + _LEAST_MODEL_ROWS > least:
            raise ValueError(
                f"calibration.holdout must leave at least {_LEAST_MODEL_ROWS} rows to fit the "
                f"model on: holdout + label.horizon + walk_forward.embargo + "
                f"{_LEAST_MODEL_ROWS} <= {least} (the rows of the first fold), was "
                f"{calibration.holdout} + {self.label.horizon} + {walk_forward.embargo} + "
                f"{_LEAST_MODEL_ROWS}"
            )
        return self

    @model_validator(mode="after")
    def _symbol_id_needs_pooling(self) -> SklearnParams:
        if self.symbol_id and self.pooling != "pooled":
            raise ValueError("symbol_id is a pooled key; pooling is per_symbol")
        return self

    @model_validator(mode="after")
    def _horizon_fits_window(self) -> SklearnParams:
        if self.label.horizon > self.walk_forward.train_window:
            raise ValueError(
                f"label.horizon must be <= walk_forward.train_window "
                f"({self.walk_forward.train_window}), was {self.label.horizon}"
            )
        return self


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


Target = npt.NDArray[np.int64] | npt.NDArray[np.float64]
"""What an estimator fits: classes (int64) or, for label kind ``return``, numbers (float64)."""


def _ups(labels: npt.NDArray[Any], kind: str) -> npt.NDArray[np.bool_]:
    """Return which labels are an up move (journaled as a fold's ``positives``)."""
    if kind == "classes":
        return np.asarray(labels == 2)
    if kind == "return":
        return np.asarray(labels > 0)
    return np.asarray(labels == 1)


class SklearnModel:
    """Train a classifier walk-forward with purging; predict the probability of an up move.

    Each fold trains a fresh clone of ``estimator`` (behind the scaler, if any, so that
    the scaler is fitted on that fold's training rows only) and predicts the bars of its
    segment whose features are all finite. Rows with a non-finite feature are neither
    trained on nor predicted; rows without a label (see `make_labels`) are predicted but
    not trained on.

    Folds are independent: with ``n_jobs`` other than 1 they train in a pool of threads
    (scikit-learn's estimators release the GIL while they fit, and threads share the
    feature matrix instead of copying it to processes). Every fold gets the same seeded
    clone and its own rows, so the predictions are those of a serial run, bit for bit.

    Args:
        estimator: An unfitted scikit-learn classifier, configured and seeded.
        label: How rows are labelled; ``label.horizon`` is the purge distance.
        train_window: Most rows a fold trains on.
        retrain_every: Bars each fold predicts.
        min_train_rows: Rows needed before the first fold (default: ``train_window``).
        scaler: ``none``, ``standard``, ``minmax`` or ``robust``.
        embargo: Bars dropped from training before each fold's purged rows.
        n_jobs: Folds trained at once (1: serially; -1: as many as there are cores). The
            estimator's own ``n_jobs`` is separate: that is parallelism inside a fold.
        on_single_class: ``skip`` a fold whose training labels are one class (journaled
            with `SINGLE_CLASS`) or ``fail`` with a `ModelFitError`.
        detector: An unfitted, seeded anomaly detector (`make_detector`): each fold fits
            a clone on its training rows and scores its segment (None: no anomaly gate).
        pooling: Over several symbols: ``pooled`` or ``per_symbol``
            (`fit_predict_universe`).
        symbol_id: ``pooled``: add each row's symbol index as a feature column.
        calibration: Fit each fold's model on its training rows but the last
            ``holdout`` (purged like a fold's rows before its predictions, `split_holdout`)
            and a calibrator on those (`calibrate_fold`); None: no calibration.

    Attributes:
        horizon: Label horizon in bars.
        estimator_name: The estimator's class name, as journaled with each fold.
        latest: The latest trained fold (None before `fit_predict`): the one predicting
            the last bars, of two the one that starts predicting later, as the registry's
            ``index.json`` names it. A fold of `retrain` replaces it when no scheduled
            fold comes after it. `predict_row` and `anomaly_score_row` both use it.
        fitted: ``latest``'s fitted estimator (None before `fit_predict`); a ``Pipeline``
            of the fold's scaler and estimator when ``scaler`` is set.
        trained: Every fold trained by `fit_predict`, in fold order (skipped ones excluded),
            then those trained by `retrain`, in the order they were.
        per_symbol: After `fit_predict_universe` with ``per_symbol``: each symbol's
            trained model (empty otherwise).
        calibration_by_fold: After `fit_predict` with ``calibration``: per calibrated
            fold, its out-of-sample Brier score and ECE before and after calibration and
            its reliability diagram (`calibration_figures`); empty otherwise.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        label: LabelParams,
        train_window: int,
        retrain_every: int,
        min_train_rows: int | None = None,
        scaler: Scaler = "none",
        embargo: int = 0,
        n_jobs: int = 1,
        on_single_class: OnSingleClass = "skip",
        detector: Any | None = None,
        pooling: Pooling = "pooled",
        symbol_id: bool = False,
        calibration: CalibrationParams | None = None,
    ) -> None:
        self._estimator = estimator
        self.calibration = calibration
        self._detector = detector
        self.label = label
        self.horizon = label.horizon
        self.train_window = train_window
        self.retrain_every = retrain_every
        self.min_train_rows = train_window if min_train_rows is None else min_train_rows
        self.scaler = scaler
        self.embargo = embargo
        self.n_jobs = n_jobs
        self.on_single_class = on_single_class
        self.pooling: Pooling = pooling
        self.symbol_id = symbol_id
        self.per_symbol: dict[str, SklearnModel] = {}
        self.calibration_by_fold: list[dict[str, Any]] = []
        self.latest: TrainedFold | None = None
        self.trained: list[TrainedFold] = []
        self._row_model: FoldPredictor | None = None
        self._history: _History | None = None
        self._not_compiled: str | None = None

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

    def first_fold_bar(self) -> tuple[int, str]:
        """Return the earliest bar the first walk-forward fold can predict, and why.

        That fold trains on ``min_train_rows`` rows whose labels (``horizon`` bars ahead)
        and embargo end before it; rows whose features are still warming up come on top.
        """
        bar = self.min_train_rows + self.horizon + self.embargo
        why = (
            f"min_train_rows {self.min_train_rows} + label.horizon {self.horizon} + "
            f"embargo {self.embargo}"
        )
        return bar, why

    def fit_predict(self, bars: Bars, features: pd.DataFrame) -> ModelOutput:
        """Train walk-forward and predict; a prediction at bar s uses only labels known at s.

        Args:
            bars: The validated bars; labels come from ``high``, ``low`` and ``close``.
            features: Feature columns indexed like ``bars.frame``; all are used, in order.

        Returns:
            The probability of an up move per bar (NaN where no fold has trained or a
            feature is missing) and one `ModelTraining` per fold, skipped ones included.

        Raises:
            UserError: There are no feature columns.
            ModelFitError: The estimator failed to train or predict on a fold, or a fold's
                labels are one class and ``on_single_class`` is ``fail`` (the first such
                fold in order, however many jobs there are).
        """
        frame = bars.frame
        x, labels, usable, trainable = self._rows(bars, features)
        folds = plan_folds(
            len(frame),
            trainable,
            self.horizon,
            self.train_window,
            self.retrain_every,
            self.min_train_rows,
            self.embargo,
        )
        # Every label of row i is known at bar i + horizon (labels.py): a plan that lets a
        # fold train on one reaching its predictions is a bug, never a user's mistake.
        check_purging(folds, trainable, np.arange(len(frame)) + self.horizon)
        columns = tuple(str(c) for c in features.columns)
        y = self._targets(trainable, labels)
        jobs: list[tuple[Fold, npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
        trainings: list[ModelTraining] = []
        for fold in folds:
            rows = fold.training_rows(trainable)
            training = self._plan_training(fold, rows, labels, x, columns, "scheduled")
            if not training.skipped:
                segment = np.arange(fold.predict_start, fold.predict_end + 1)
                jobs.append((fold, rows, segment[usable[segment]]))
            trainings.append(training)
        by_fold = {t.fold: t for t in trainings}
        probability = np.full(len(frame), np.nan)
        scores = np.full(len(frame), np.nan)
        self.trained, self.latest = [], None
        with progress.task("walk-forward folds", total=len(jobs)) as shown:
            for (fold, rows, segment), (fitted, predicted) in zip(
                jobs, self._run(jobs, x, y, shown), strict=True
            ):
                probability[segment] = predicted
                self.latest, scored = self._trained_fold(
                    fold, by_fold[fold.index], fitted, columns, x[rows], y[rows], x[segment]
                )
                self.trained.append(self.latest)
                if scored is not None:
                    scores[segment] = scored
        self._history = _History(x, y, trainable, usable, columns, tuple(folds))
        self.calibration_by_fold = self._calibration_figures(jobs, x, labels, trainable)
        series = pd.Series(probability, index=frame.index, name="probability_up")
        if self.detector is None:
            return ModelOutput(probability=series, trainings=tuple(trainings))
        return ModelOutput(
            probability=series,
            trainings=tuple(trainings),
            anomalous=pd.Series(scores < 0.0, index=frame.index, name="anomalous"),
            anomaly_score=pd.Series(scores, index=frame.index, name="anomaly_score"),
        )

    def fit_predict_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[ModelOutput, ...]:
        """Train over every symbol of ``universe``, pooled or per symbol; see `pooling`.

        Args:
            universe: The symbols' bars on one clock.
            features: Per symbol, its feature rows indexed like its own bars.

        Returns:
            Each symbol's output on the clock (`tradeloom.plugins.model.universe_fit`).
        """
        if self.pooling == "pooled":
            return self._fit_pooled(universe, features)
        outputs, models = fit_per_symbol(self, universe, features)
        self.per_symbol = models
        return outputs

    def _fit_pooled(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[ModelOutput, ...]:
        """Train the estimator on every symbol's rows; return each symbol's output.

        The folds (`plan_pooled_folds`) train and predict as `fit_predict`'s do (same
        clone, scaler, single-class rule, threads); each fold's predictions are the rows
        of every symbol in its clock segment. `trained` and `latest` are the pooled folds,
        in clock bars, for the registry.
        """
        n, m = len(universe), len(universe.symbols)
        self._refuse_pooled_calibration()
        rows = pooled_rows(self._rows, self.horizon, universe, features, symbol_id=self.symbol_id)
        plan = plan_pooled_folds(
            rows, n, self.train_window, self.retrain_every, self.min_train_rows, self.embargo
        )
        x, labels, columns = rows.x, rows.labels, rows.columns
        y = self._targets(rows.trainable, labels)
        jobs: list[tuple[Fold, npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
        trainings: list[ModelTraining] = []
        for fold, kept in plan:
            training = self._plan_training(fold, kept, labels, x, columns, "scheduled")
            if not training.skipped:
                inside = (rows.bar >= fold.predict_start) & (rows.bar <= fold.predict_end)
                jobs.append((fold, kept, np.flatnonzero(inside & rows.usable)))
            trainings.append(training)
        by_fold = {t.fold: t for t in trainings}
        probability = np.full((n, m), np.nan)
        scores = np.full((n, m), np.nan)
        self.trained, self.latest = [], None
        with progress.task("walk-forward folds (pooled)", total=len(jobs)) as shown:
            for (fold, kept, segment), (fitted, predicted) in zip(
                jobs, self._run(jobs, x, y, shown), strict=True
            ):
                probability[rows.bar[segment], rows.symbol[segment]] = predicted
                self.latest, scored = self._trained_fold(
                    fold, by_fold[fold.index], fitted, columns, x[kept], y[kept], x[segment]
                )
                self.trained.append(self.latest)
                if scored is not None:
                    scores[rows.bar[segment], rows.symbol[segment]] = scored
        index = universe.index
        outputs = []
        for s in range(m):
            output = ModelOutput(
                probability=pd.Series(probability[:, s], index=index, name="probability_up"),
                trainings=tuple(trainings) if s == 0 else (),
            )
            if self.detector is not None:
                output = replace(
                    output,
                    anomalous=pd.Series(scores[:, s] < 0.0, index=index, name="anomalous"),
                    anomaly_score=pd.Series(scores[:, s], index=index, name="anomaly_score"),
                )
            outputs.append(output)
        return tuple(outputs)

    def train_next(
        self, bars: Bars, features: pd.DataFrame, *, reason: str | None = None
    ) -> ModelTraining | None:
        """Train, at the last bar's close, the fold that predicts from the next bar.

        The live driver's training: ``bars`` are every bar known at the close of the
        last one. When the walk-forward plan starts a fold at the next bar, that fold
        trains here on the rows, labels and seeded clone `fit_predict` over any longer
        history gives it, so it predicts what the backtest predicts. Otherwise, with a
        ``reason`` (a retraining cron, a health rule), a fold planned as `retrain` plans
        one trains on every label known now and predicts up to the next scheduled fold.
        The fold becomes `latest`: `predict_row` and `anomaly_score_row` use it.

        Args:
            bars: Every bar known now, the last one just closed.
            features: Their feature rows, indexed like ``bars.frame``.
            reason: Why to train when no scheduled fold is due (None: only if one is).

        Returns:
            The training (a skipped one included), or None when none was due or
            possible (fewer than ``min_train_rows`` rows are known).

        Raises:
            ModelFitError: As for a scheduled fold of `fit_predict`.
        """
        x, labels, _, trainable = self._rows(bars, features)
        n = len(x)
        mask = np.append(trainable, False)  # the next bar: known to exist, not its label
        plan = (self.horizon, self.train_window, self.retrain_every, self.min_train_rows)
        folds = plan_folds(n + 1, mask, *plan, self.embargo)
        fold = next((f for f in folds if f.predict_start == n), None)
        kind, end = "scheduled", n + self.retrain_every - 1
        if fold is None and reason is not None:
            horizon, window, _, least = plan
            fold = plan_retrain(n - 1, mask, horizon, window, least, self.embargo, folds)
            kind, end = reason, n
            if folds:  # it predicts up to the next scheduled fold
                first, every = folds[0].predict_start, self.retrain_every
                end = first + -(-(n - first) // every) * every - 1
        if fold is None:
            return None
        check_purging([fold], mask, np.arange(n + 1) + self.horizon)
        fold = replace(fold, predict_end=end)  # as the backtest's fold (unclipped) has it
        columns = tuple(str(c) for c in features.columns)
        y = self._targets(trainable, labels)
        return self._train_latest(fold, fold.training_rows(mask), x, y, labels, columns, kind)

    @property
    def pooled(self) -> bool:
        """Whether it trains one estimator on every symbol's rows (``pooling: pooled``)."""
        return self.pooling == "pooled"

    def train_next_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame], *, in_effect: bool = False
    ) -> ModelTraining | None:
        """Train, at the close of the clock's last bar, the pooled fold that predicts from
        the next one, if the pooled walk-forward plan starts one there.

        The live driver's pooled training: the fold trains on the rows, labels and seeded
        clone `fit_predict_universe` over any longer history gives it (its plan over the
        clock, `plan_pooled_folds`), so it predicts what the backtest predicts. It
        becomes `latest`, which `predict_row` uses for every symbol's row.

        Args:
            universe: Every bar known now, on the clock.
            features: Per symbol, its feature rows indexed like its own bars.
            in_effect: Train the latest fold that starts by the next bar, wherever it
                starts (a run starting or restarting over a long history).

        Returns:
            The training (a skipped one included), or None when no fold starts next
            (``in_effect``: none starts by then).

        Raises:
            ModelFitError: As for a fold of `fit_predict_universe`.
        """
        n = len(universe)
        self._refuse_pooled_calibration()
        rows = pooled_rows(self._rows, self.horizon, universe, features, symbol_id=self.symbol_id)
        plan = plan_pooled_folds(
            rows, n + 1, self.train_window, self.retrain_every, self.min_train_rows, self.embargo
        )
        found = plan[-1] if in_effect and plan else None
        if not in_effect:
            found = next(((f, k) for f, k in plan if f.predict_start == n), None)
        if found is None:
            return None
        fold, kept = found
        # unclipped, as the backtest's fold has it
        fold = replace(fold, predict_end=fold.predict_start + self.retrain_every - 1)
        y = self._targets(rows.trainable, rows.labels)
        return self._train_latest(fold, kept, rows.x, y, rows.labels, rows.columns, "scheduled")

    def _train_latest(
        self,
        fold: Fold,
        rows: npt.NDArray[np.intp],
        x: npt.NDArray[np.float64],
        y: Target,
        labels: npt.NDArray[np.float64] | npt.NDArray[np.int64],
        columns: tuple[str, ...],
        kind: str,
    ) -> ModelTraining:
        """Train ``fold`` on ``rows`` now, at the live driver's close, and make it `latest`
        (unless its plan skips it); return the training."""
        training = self._plan_training(fold, rows, labels, x, columns, kind)
        if training.skipped:
            return training
        outcome = self._train(fold, rows, np.empty(0, np.intp), x, y)
        if isinstance(outcome, ModelFitError):
            raise outcome
        self.latest, _ = self._trained_fold(
            fold, training, outcome[0], columns, x[rows], y[rows], x[rows[:1]]
        )
        self.trained.append(self.latest)
        # compiled now, at the close that trained it, not at the next bar's prediction
        # (a large forest compiles and checks for tens of ms: a tick's worth)
        self._latest_row_model()
        return training

    def _refuse_pooled_calibration(self) -> None:
        if self.calibration is not None:
            raise UserError(
                "model.calibration: pooled training over several symbols is not calibrated "
                "(its rows are not one bar each); set model.pooling: per_symbol"
            )

    def scheduled_start(self, bars: Bars, features: pd.DataFrame) -> int | None:
        """Return the first bar of the latest walk-forward fold that starts by the next bar.

        ``bars`` are every bar known now; None when no fold starts by then (too few rows).
        """
        _, _, _, trainable = self._rows(bars, features)
        n = len(trainable)
        mask = np.append(trainable, False)
        plan = (self.horizon, self.train_window, self.retrain_every, self.min_train_rows)
        folds = plan_folds(n + 1, mask, *plan, self.embargo)
        return folds[-1].predict_start if folds else None

    def _rows(
        self, bars: Bars, features: pd.DataFrame
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
    ]:
        """Return the feature matrix, the labels, and which rows are usable and trainable.

        Raises:
            ValueError: ``features`` is not indexed like ``bars.frame``.
            UserError: There are no feature columns.
        """
        frame = bars.frame
        if not features.index.equals(frame.index):
            raise ValueError("features must be indexed like bars.frame")
        if features.shape[1] == 0:
            raise UserError(
                "model: the sklearn model needs at least one feature column; "
                "add one under features:"
            )
        x = features.to_numpy(dtype=np.float64)
        label = self.label
        labels = make_labels(
            *(frame[column].to_numpy(dtype=np.float64) for column in ("high", "low", "close")),
            kind=label.kind,
            horizon=label.horizon,
            dead_zone=label.dead_zone,
            take_profit=label.take_profit,
            stop_loss=label.stop_loss,
            dead_band=label.dead_band,
        )
        usable = np.isfinite(x).all(axis=1)
        return x, labels, usable, usable & ~np.isnan(labels)

    def _targets(self, trainable: npt.NDArray[np.bool_], labels: npt.NDArray[np.float64]) -> Target:
        """Return what the estimator fits: the class of each trainable row as an int64
        (0 elsewhere), or for ``return`` the forward return as a float64 (0.0 elsewhere)."""
        y = np.where(trainable, labels, 0.0)
        return y if self.label.regression else y.astype(np.int64)

    def retrain(self, bar: int, reason: str) -> Retraining | None:
        """Train a fold at ``bar``'s close on the rows whose labels are known then.

        The fold is planned by `plan_retrain` (purged and embargoed like a scheduled
        fold starting at ``bar + 1``, and checked by `check_purging`), trains and
        predicts exactly as a scheduled fold does, and predicts ``bar + 1`` up to the bar
        before the next scheduled fold; it keeps the number of the scheduled fold whose
        bars it takes over. A fold whose labels are one class follows
        ``on_single_class``: skipped (the old predictions stand) or a `ModelFitError`.

        Args:
            bar: The bar at whose close a health rule fired.
            reason: Why (``ModelTraining.reason``), e.g. ``health.0: calibration.brier
                0.291 > 0.27``.

        Returns:
            The fold and its probabilities (NaN where a feature is not finite), or None
            when there is nothing to retrain (see `plan_retrain`).

        Raises:
            RuntimeError: Called before `fit_predict`.
            ModelFitError: As for a scheduled fold.
        """
        history = self._history
        if history is None:
            raise RuntimeError("retrain needs the data of fit_predict; call it first")
        trainable, n = history.trainable, len(history.trainable)
        fold = plan_retrain(
            bar,
            trainable,
            self.horizon,
            self.train_window,
            self.min_train_rows,
            self.embargo,
            history.folds,
        )
        if fold is None:
            return None
        check_purging([fold], trainable, np.arange(n) + self.horizon)
        x, y = history.x, history.y
        rows = fold.training_rows(trainable)
        training = self._plan_training(fold, rows, y, x, history.columns, reason)
        if training.skipped:
            return Retraining(training, None)
        bars = np.arange(fold.predict_start, fold.predict_end + 1)
        segment = bars[history.usable[bars]]
        outcome = self._train(fold, rows, segment, x, y)
        if isinstance(outcome, ModelFitError):
            raise outcome
        fitted, predicted = outcome
        retrained, segment_scores = self._trained_fold(
            fold, training, fitted, history.columns, x[rows], y[rows], x[segment]
        )
        self.trained.append(retrained)
        scores = None
        if segment_scores is not None:
            scores = np.full(len(bars), np.nan)
            scores[history.usable[bars]] = segment_scores
        latest = self.latest
        # as the registry's index picks its latest: the fold predicting the last bars
        if latest is None or (fold.predict_end, fold.predict_start) >= (
            latest.training.predict_end,
            latest.training.predict_start,
        ):
            self.latest = retrained
        probability = np.full(len(bars), np.nan)
        probability[history.usable[bars]] = predicted
        return Retraining(training, probability, scores)

    def _trained_fold(
        self,
        fold: Fold,
        training: ModelTraining,
        fitted: Any,
        columns: tuple[str, ...],
        x: npt.NDArray[np.float64],
        y: Target,
        segment: npt.NDArray[np.float64],
    ) -> tuple[TrainedFold, npt.NDArray[np.float64] | None]:
        """Return ``fold``'s model trained on rows ``x, y``, with its anomaly detector
        fitted on ``x``, and the detector's scores of the ``segment`` rows (None: the
        model has no detector)."""
        detector, scores = None, None
        if self.detector is not None:
            detector, scores = self._detect(fold, x, segment)
        return TrainedFold(training, fitted, columns, training_data_sha256(x, y), detector), scores

    def _detect(
        self, fold: Fold, train: npt.NDArray[np.float64], segment: npt.NDArray[np.float64]
    ) -> tuple[Any, npt.NDArray[np.float64]]:
        """Fit the fold's anomaly detector on its training rows; score its segment's rows.

        After the folds, one by one: an IsolationForest's trees are grown in Python,
        holding the GIL, so fold threads would not make it faster.
        """
        try:
            detector = fit_detector(self.detector, train)
            return detector, anomaly_scores(detector, segment)
        except Exception as exc:  # a failure of sklearn's fit is reported like the model's
            raise ModelFitError(
                f"model.anomaly: IsolationForest failed on fold {fold.index} (training rows "
                f"{fold.train_start}..{fold.train_end}, predicting bars "
                f"{fold.predict_start}..{fold.predict_end}): {type(exc).__name__}: {exc}"
            ) from exc

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

    @property
    def fitted(self) -> Any | None:
        """The fitted estimator of the latest fold (`latest`), or None before `fit_predict`."""
        return None if self.latest is None else self.latest.fitted

    @property
    def compiled(self) -> CompiledModel | None:
        """The compiled estimator `predict_row` uses for the latest fold; None if it has none.

        Reading it prepares the latest fold for `predict_row` (compiling and checking a
        large forest takes a fraction of a second), so a live driver can do that right
        after training rather than at the next bar.
        """
        row_model = self._latest_row_model()
        return None if row_model is None else row_model.compiled

    def predict_row(self, values: npt.ArrayLike) -> float:
        """Return the probability of an up move for one bar's features, as the batch path does.

        Uses the latest trained fold (`latest`) through its `FoldPredictor`, the rule
        `fit_predict` predicts that fold's segment with: for a compiled estimator
        (`compiling.compile_classifier`) the number is the one `fit_predict` gives the
        same row, bit for bit (for a forest with ``n_jobs`` > 1, the one it gives with
        ``n_jobs=1``: see `compiled_trees`). Other estimators are asked for
        ``predict_proba`` of the one row, which is what they say for it alone; one whose
        arithmetic depends on the batch (a BLAS product adds in another order for one row
        than for many) may differ from `fit_predict` in the last bits; the model logs
        ``model_not_compiled`` once (see `fold_predictor`).

        Args:
            values: One value per feature column, in the order `fit_predict` was given.

        Returns:
            The probability, or NaN when no fold has trained or a value is not finite
            (rows the batch path does not predict either).

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        row = np.asarray(values, dtype=np.float64)
        row_model = self._latest_row_model()
        if row_model is None:
            return float("nan")
        n_features = row_model.n_features
        if row.ndim != 1 or (n_features is not None and len(row) != n_features):
            raise ValueError(
                f"values must hold one value per feature column ({n_features}), "
                f"has shape {row.shape}"
            )
        if not np.isfinite(row).all():
            return float("nan")
        return row_model.predict_one(row)

    def anomaly_score_row(self, values: npt.ArrayLike) -> float:
        """Return the anomaly score of one bar's features, as `fit_predict` scores it.

        Uses the detector of the latest trained fold (`latest`, as `predict_row` does);
        the number is the one `fit_predict` gives the same row in that fold's segment
        (see `anomaly_scores`). Below 0 is anomalous.

        Args:
            values: One value per feature column, in the order `fit_predict` was given.

        Returns:
            The score, or NaN without an anomaly gate, before the first fold, or when a
            value is not finite (rows the batch path does not score either).

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        row = np.asarray(values, dtype=np.float64)
        latest = self.latest
        if latest is None or latest.detector is None:
            return float("nan")
        if row.ndim != 1 or len(row) != len(latest.columns):
            raise ValueError(
                f"values must hold one value per feature column ({len(latest.columns)}), "
                f"has shape {row.shape}"
            )
        if not np.isfinite(row).all():
            return float("nan")
        return float(anomaly_scores(latest.detector, row[None, :])[0])

    def anomalous_row(self, values: npt.ArrayLike) -> bool:
        """Return whether the latest fold's detector finds one bar's features anomalous.

        What `fit_predict` says in ``ModelOutput.anomalous`` for the same row: False
        without an anomaly gate, before the first fold and for a non-finite value.

        Raises:
            ValueError: ``values`` does not hold one value per feature column.
        """
        return self.anomaly_score_row(values) < 0.0

    def _latest_row_model(self) -> FoldPredictor | None:
        fitted = self.fitted
        if fitted is None:
            return None
        row_model = self._row_model
        if row_model is None or row_model.fitted is not fitted:
            row_model = FoldPredictor(fitted, self.label.kind)
            self._row_model = row_model
            self._note_not_compiled(row_model)
        return row_model

    @property
    def not_compiled(self) -> str | None:
        """Why a fold's estimator was not compiled (the first fold met), or None."""
        return self._not_compiled

    @property
    def parity_note(self) -> str | None:
        """Why paper and live may not journal this model's backtest probabilities bit for
        bit (its estimator will not be compiled), or None.

        Answered from the estimator's import path and params (`compile_problem`), before
        anything trains, and without importing it when its check was remembered.
        """
        from tradeloom.plugins.model.compiling import calibrated_problem, compile_problem

        estimator = self._estimator
        if isinstance(estimator, DeclaredRecipe) and self.label.kind in BINARY_KINDS:
            found = estimator.problem
            if found is None and self.calibration is not None:
                found = estimator.calibrated
            return None if found is None else parity_note(found)
        if isinstance(estimator, DeclaredRecipe):
            path, settings = estimator.spec.class_, {}
        elif isinstance(estimator, CheckedEstimator):
            path, settings = estimator.path, estimator.settings
        else:
            cls = type(estimator)
            path = f"{cls.__module__}.{cls.__name__}"
            settings = estimator.get_params(deep=False)
        if self.label.kind not in BINARY_KINDS:
            method = "predict" if self.label.regression else "predict_proba"
            problem = label_problem(self.label.kind, path)
            return None if problem is None else parity_note(problem, method)
        problem = compile_problem(path, settings)
        if problem is None and self.calibration is not None:
            problem = calibrated_problem(self.estimator)
        return None if problem is None else parity_note(problem)

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

    def _fit(self, fold: Fold, x: npt.NDArray[np.float64], y: Target) -> Any:
        from sklearn import preprocessing
        from sklearn.base import clone
        from sklearn.pipeline import Pipeline

        model = clone(self.estimator)
        set_threads(model, openmp_threads())
        if self.scaler != "none":
            scaler = getattr(preprocessing, _SCALERS[self.scaler])()
            model = Pipeline([("scaler", scaler), ("estimator", model)])
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
        """Fit the fold's model on its rows, calibrated on its holdout (`_holdout`)."""
        model_rows, held, _ = self._holdout(rows, y)
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


@dataclass
class _History:
    """What `SklearnModel.retrain` needs of the data `fit_predict` was given."""

    x: npt.NDArray[np.float64]
    y: Target
    trainable: npt.NDArray[np.bool_]
    usable: npt.NDArray[np.bool_]
    columns: tuple[str, ...]
    folds: tuple[Fold, ...]


def _predict_serially(model: Any) -> None:
    """Predict with one job: a forest's threads add up tree probabilities in whatever
    order they finish, so with ``n_jobs`` > 1 the same row can differ in the last bit
    from one run to the next. Training in parallel stays deterministic and is kept."""
    keys = [key for key in model.get_params() if key == "n_jobs" or key.endswith("__n_jobs")]
    if keys:
        model.set_params(**dict.fromkeys(keys, 1))


def build_sklearn_model(params: SklearnParams, ctx: BuildContext) -> SklearnModel:
    """Check, configure and seed the estimator; load no data.

    The estimator gets ``params``; if it has a ``random_state`` that ``params`` do not
    set, it is set to ``ctx.seed``. The checks are `estimator_checks.check_estimator`'s;
    a verdict remembered from an earlier check imports no scikit-learn until the model
    trains (`estimator_checks.remembered_estimator`).

    Raises:
        ParamError: At ``estimator`` (cannot import, not a classifier, no probabilities)
            or at ``params.KEY`` (unknown parameter, invalid value).
    """
    task: Task = "regressor" if params.label.regression else "classifier"
    checked: Any
    if isinstance(params.estimator, DeclaredEstimator):
        checked = remembered_declared(params.estimator, ctx.seed, task)
    else:
        checked = remembered_estimator(params.estimator, dict(params.params), ctx.seed, task=task)
    estimator = checked[1] if isinstance(checked, tuple) else checked
    walk_forward = params.walk_forward
    return SklearnModel(
        estimator,
        label=params.label,
        train_window=walk_forward.train_window,
        retrain_every=walk_forward.retrain_every,
        min_train_rows=walk_forward.min_train_rows,
        scaler=params.scaler,
        embargo=walk_forward.embargo,
        n_jobs=walk_forward.n_jobs,
        on_single_class=walk_forward.on_single_class,
        detector=None if params.anomaly is None else DetectorSpec(params.anomaly, ctx.seed),
        pooling=params.pooling,
        symbol_id=params.symbol_id,
        calibration=params.calibration,
    )


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
