"""The ``sklearn`` model: a scikit-learn classifier trained walk-forward with purging.

The factory imports, checks and configures the estimator without touching data, so
that validating a strategy reports a bad estimator or parameter before anything runs.
`SklearnModel.fit_predict` then trains one clone of it per fold of `plan_folds`, the folds
one after another or in parallel threads (``walk_forward.n_jobs``) with the same result.

scikit-learn is imported when a model is built, not when the plugin is registered:
importing it takes most of a second, which every ``tradeloom`` command would pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tradeloom.domain import Bars, ModelOutput, ModelTraining, Retraining, Universe
from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.model.anomaly import DetectorSpec, anomaly_scores, fit_detector
from tradeloom.plugins.model.calibration import CalibrationParams
from tradeloom.plugins.model.declared_estimators import DeclaredEstimator, remembered_declared
from tradeloom.plugins.model.estimator_checks import (
    Task,
    import_estimator,
    remembered_estimator,
)
from tradeloom.plugins.model.fold_predictor import FoldPredictor
from tradeloom.plugins.model.folds import (
    Fold,
    fitted_history,
    plan_checked_folds,
    plan_checked_retrain,
    plan_folds,
    plan_next_fold,
    predicts_latest,
)
from tradeloom.plugins.model.labels import make_labels
from tradeloom.plugins.model.sklearn_fitting import (
    SINGLE_CLASS,
    ModelFitError,
    Target,
    TrainedFold,
    training_data_sha256,
)
from tradeloom.plugins.model.sklearn_inference import RowInference
from tradeloom.plugins.model.sklearn_params import (
    LabelParams,
    OnSingleClass,
    Pooling,
    Scaler,
    SklearnParams,
    WalkForwardParams,
)
from tradeloom.plugins.model.universe_fit import (
    PooledRows,
    fit_per_symbol,
    plan_pooled_folds,
    pooled_rows,
)
from tradeloom.plugins.protocols_symbols import train_fold_in_effect
from tradeloom.runtime import progress
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

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


class SklearnModel(RowInference):
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
        fold_columns: The features' fold transforms as one unfitted
            `tradeloom.plugins.model.fold_transforms.FoldColumns` (`fold_columns_of`):
            each fold fits it on its training rows, before the scaler, and saves it
            with its estimator (None: no feature asks for one).

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
        fold_columns: Any | None = None,
    ) -> None:
        self._estimator = estimator
        self.fold_columns = fold_columns
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

    fits_fold_transforms = True
    """It fits the features' fold transforms (`tradeloom.plugins.protocols.FitsFoldTransforms`)."""

    def label_record(self) -> dict[str, Any]:
        """Return the label as its saved folds record it (`DescribedModel`)."""
        from tradeloom.plugins.model.registry import label_record

        return label_record(self.label)

    @property
    def calibrated(self) -> bool:
        """Whether each fold is calibrated (``calibration``)."""
        return self.calibration is not None

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
        folds = plan_checked_folds(trainable, self)
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

        The universe of one trains as `fit_predict` does, on the symbol's bars, whatever
        the pooling.

        Args:
            universe: The symbols' bars on one clock.
            features: Per symbol, its feature rows indexed like its own bars.

        Returns:
            Each symbol's output on the clock (`tradeloom.plugins.model.universe_fit`).
        """
        if len(universe.symbols) == 1:
            return (self.fit_predict(universe.bars[0], features[0]),)
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
        planned = plan_next_fold(trainable, self, reason)
        if planned is None:
            return None
        fold, kind, rows = planned
        columns = tuple(str(c) for c in features.columns)
        y = self._targets(trainable, labels)
        return self._train_latest(fold, rows, x, y, labels, columns, kind)

    @property
    def pooled(self) -> bool:
        """Whether it trains one estimator on every symbol's rows (``pooling: pooled``)."""
        return self.pooling == "pooled"

    def train_next_universe(
        self,
        universe: Universe,
        features: Sequence[pd.DataFrame],
        *,
        reason: str | None = None,
        in_effect: bool = False,
    ) -> ModelTraining | None:
        """Train, at the close of the clock's last bar, the fold that predicts from the next
        one: the universe of one's as `train_next` trains it, else the pooled fold, if the
        pooled walk-forward plan starts one there.

        The live driver's pooled training: the fold trains on the rows, labels and seeded
        clone `fit_predict_universe` over any longer history gives it (its plan over the
        clock, `plan_pooled_folds`), so it predicts what the backtest predicts. It
        becomes `latest`, which `predict_row` uses for every symbol's row.

        Args:
            universe: Every bar known now, on the clock.
            features: Per symbol, its feature rows indexed like its own bars.
            reason: The universe of one: why to train when no scheduled fold is due (a
                pooled model trains on its plan only).
            in_effect: Train the latest fold that starts by the next bar, wherever it
                starts (a run starting or restarting over a long history;
                `train_fold_in_effect` for the universe of one).

        Returns:
            The training (a skipped one included), or None when no fold starts next
            (``in_effect``: none starts by then).

        Raises:
            ModelFitError: As for a fold of `fit_predict_universe`.
        """
        if len(universe.symbols) == 1:
            bars, frame = universe.bars[0], features[0]
            if in_effect:
                return train_fold_in_effect(self, bars, frame)
            return self.train_next(bars, frame, reason=reason)
        n = len(universe)
        plan, rows = self._pooled_plan(universe, features)
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

    def scheduled_start_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> int | None:
        """Return the first clock bar of the latest walk-forward fold that starts by the
        next bar: the universe of one's (`scheduled_start`), else the pooled plan's.

        ``universe`` is every bar known now; None when no fold starts by then.
        """
        if len(universe.symbols) == 1:
            return self.scheduled_start(universe.bars[0], features[0])
        plan, _ = self._pooled_plan(universe, features)
        return plan[-1][0].predict_start if plan else None

    def _pooled_plan(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[list[tuple[Fold, npt.NDArray[np.intp]]], PooledRows]:
        """The pooled folds of a universe known up to its last bar, planned up to the next
        one, and the rows they train on."""
        self._refuse_pooled_calibration()
        rows = pooled_rows(self._rows, self.horizon, universe, features, symbol_id=self.symbol_id)
        plan = plan_pooled_folds(
            rows,
            len(universe) + 1,
            self.train_window,
            self.retrain_every,
            self.min_train_rows,
            self.embargo,
        )
        return plan, rows

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

    def universe_refusal(self, symbols: int) -> ParamError | None:
        """Return why it cannot train over ``symbols`` symbols: calibrated pooled training
        (`tradeloom.plugins.protocols.UniverseRefusal`); None: it can."""
        if symbols > 1 and self.pooling == "pooled" and self.calibration is not None:
            return ParamError(
                "calibration",
                "pooled training over several symbols is not calibrated (its rows are not "
                "one bar each); set model.pooling: per_symbol",
            )
        return None

    def _refuse_pooled_calibration(self) -> None:
        # refused before any bar (`universe_refusal`); kept for a direct caller
        refusal = self.universe_refusal(2)
        if refusal is not None:
            raise UserError(f"model.{refusal}")

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
        history = fitted_history(self._history)
        retrain = plan_checked_retrain(bar, history, self)
        if retrain is None:
            return None
        fold, rows, bars, segment = retrain.fold, retrain.rows, retrain.bars, retrain.segment
        x, y = history.x, history.y
        training = self._plan_training(fold, rows, y, x, history.columns, reason)
        if training.skipped:
            return Retraining(training, None)
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
        if predicts_latest(fold, None if self.latest is None else self.latest.training):
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


@dataclass
class _History:
    """What `SklearnModel.retrain` needs of the data `fit_predict` was given."""

    x: npt.NDArray[np.float64]
    y: Target
    trainable: npt.NDArray[np.bool_]
    usable: npt.NDArray[np.bool_]
    columns: tuple[str, ...]
    folds: tuple[Fold, ...]


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
        fold_columns=fold_columns_of(ctx),
    )


def fold_columns_of(ctx: BuildContext) -> Any | None:
    """Return the features' fold transforms (``ctx.fold_transforms``) as one unfitted
    `FoldColumns` step over the model's input columns (``ctx.feature_columns``), or None."""
    if not ctx.fold_transforms or not ctx.features_known:
        return None
    from tradeloom.plugins.model.fold_transforms import FoldColumns

    where = {column: i for i, column in enumerate(ctx.feature_columns)}
    return FoldColumns(
        tuple(
            (t.columns[0], tuple(where[c] for c in t.columns), t.transformer)
            for t in ctx.fold_transforms
        )
    )
