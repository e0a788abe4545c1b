"""The ``torch`` model: a network over a window of the features, trained walk-forward.

The folds are the ``sklearn`` model's: planned by `plan_folds` over the rows a fold may
train on, purged by the label horizon and the embargo (`check_purging`), with the same
labels (`make_labels`), single-class rule, calibration holdout and journaled
`ModelTraining`. What differs is what a row is: the window of ``model.window`` rows
ending at it, of the same symbol, so a row is usable when every row of its window has
every feature finite (`window_rows`). Each fold trains a fresh network
(`tradeloom.plugins.model.torch_training.fit_network`: seeded by the strategy's seed,
deterministic, early stopping on the fold's own last rows) and predicts its segment's
windows in batches.

Paper and live ask `predict_window` with the symbol's last ``window`` feature rows (the
live driver keeps them per symbol, `WindowedModel`): one forward pass per bar, the
backtest's number to float32's last bits (`PARITY_NOTE`).

torch is imported when the model trains or predicts, not when the strategy is
validated (a built-in network's keys are checked without it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tradeloom.domain import Bars, ModelOutput, ModelTraining, Retraining, Universe
from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.model.calibration import (
    CalibrationParams,
    Calibrator,
    calibration_figures,
)
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
    FoldFitter,
    Target,
    TrainedFold,
    training_data_sha256,
)
from tradeloom.plugins.model.sklearn_params import LabelParams, OnSingleClass
from tradeloom.plugins.model.torch_fold import (
    PARITY_NOTE,
    TorchFold,
    check_window,
    window_rows,
)
from tradeloom.plugins.model.torch_networks import NetworkSpec, check_network
from tradeloom.plugins.model.torch_params import TorchParams, TorchScaler
from tradeloom.plugins.model.torch_training import (
    TrainingSettings,
    fit_network,
    outputs_of,
    standard_scaler,
)
from tradeloom.plugins.protocols_symbols import fit_each_symbol, train_fold_in_effect
from tradeloom.runtime import progress
from tradeloom.runtime.extras import require, require_installed
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["TorchModel", "TorchParams", "build_torch_model", "fit_calibrator"]


class TorchModel(FoldFitter):
    """Train a network walk-forward with purging; predict the probability of an up move.

    Each fold trains a new network of ``spec`` on the windows ending at its training
    rows (less its calibration and early-stopping rows, each purged by the horizon and
    the embargo) and predicts the windows ending at its segment's usable rows. Rows
    without a label are predicted but not trained on; a row whose window holds a
    non-finite feature, or that has fewer than ``window - 1`` rows before it, is neither.

    Args:
        spec: The network (its ``n_features`` is set from the features it is given).
        label: How rows are labelled; ``label.horizon`` is the purge distance.
        train_window: Most rows a fold trains on.
        retrain_every: Bars each fold predicts.
        training: How each fold's network is trained.
        seed: The strategy's seed: every fold's network starts from it.
        min_train_rows: Rows needed before the first fold (default: ``train_window``).
        scaler: ``standard`` or ``none``.
        embargo: Bars dropped from training before each fold's purged rows.
        on_single_class: ``skip`` or ``fail`` a fold whose labels are one class.
        calibration: Calibrate each fold on its last ``holdout`` training rows.
        device: ``cpu`` or ``cuda`` (resolved).

    Attributes:
        horizon: Label horizon in bars.
        window: Rows each prediction reads.
        latest: The latest trained fold (None before `fit_predict`), as `SklearnModel`'s.
        trained: Every fold trained, in order (skipped ones excluded), then retrainings.
        per_symbol: After `fit_predict_universe` over several symbols: each symbol's model.
        calibration_by_fold: Per calibrated fold, its figures before and after calibration.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        *,
        label: LabelParams,
        train_window: int,
        retrain_every: int,
        training: TrainingSettings,
        seed: int,
        min_train_rows: int | None = None,
        scaler: TorchScaler = "standard",
        embargo: int = 0,
        on_single_class: OnSingleClass = "skip",
        calibration: CalibrationParams | None = None,
        device: str = "cpu",
    ) -> None:
        self.spec = spec
        self._estimator = None
        self._detector = None
        self.label = label
        self.horizon = label.horizon
        self.window = spec.window
        self.train_window = train_window
        self.retrain_every = retrain_every
        self.training = training
        self.seed = seed
        self.min_train_rows = train_window if min_train_rows is None else min_train_rows
        self.scaler = scaler
        self.embargo = embargo
        self.n_jobs = 1
        self.on_single_class = on_single_class
        self.calibration = calibration
        self.device = device
        self.per_symbol: dict[str, TorchModel] = {}
        self.calibration_by_fold: list[dict[str, Any]] = []
        self.latest: TrainedFold | None = None
        self.trained: list[TrainedFold] = []
        self._not_compiled = None
        self._history: _History | None = None

    # --- what the engine and the registry ask --------------------------------------

    @property
    def estimator_name(self) -> str:
        """The network's class name (``LSTMNetwork``), as journaled with each fold."""
        return self.spec.class_name

    @property
    def pooled(self) -> bool:
        """False: over several symbols each symbol has its own network (its own windows)."""
        return False

    def label_record(self) -> dict[str, Any]:
        """Return the label as its saved folds record it (`DescribedModel`)."""
        from tradeloom.plugins.model.registry import label_record

        return label_record(self.label)

    @property
    def calibrated(self) -> bool:
        """Whether each fold is calibrated (``calibration``)."""
        return self.calibration is not None

    @property
    def parity_note(self) -> str | None:
        """Why paper and live may differ from the backtest in the last bits (`PARITY_NOTE`)."""
        return PARITY_NOTE

    def first_fold_bar(self) -> tuple[int, str]:
        """Return the earliest bar the first fold can predict, and why (`SklearnModel`'s,
        plus the rows before the first full window)."""
        bar = self.min_train_rows + self.horizon + self.embargo + self.window - 1
        why = (
            f"min_train_rows {self.min_train_rows} + label.horizon {self.horizon} + "
            f"embargo {self.embargo} + window {self.window} - 1"
        )
        return bar, why

    # --- the backtest ---------------------------------------------------------------

    def fit_predict_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> tuple[ModelOutput, ...]:
        """Train on each symbol apart: itself on the universe of one, else a fresh copy per
        symbol on its own bars (`per_symbol`); return each symbol's output on the clock."""
        outputs, models = fit_each_symbol(self, universe, features)
        self.per_symbol = models
        return outputs

    def fit_predict(self, bars: Bars, features: pd.DataFrame) -> ModelOutput:
        """Train walk-forward and predict; a prediction at bar s uses only labels known at s.

        Args:
            bars: The validated bars; labels come from ``high``, ``low`` and ``close``.
            features: Feature columns indexed like ``bars.frame``; all are used, in order.

        Returns:
            The probability of an up move per bar (NaN where no fold has trained or the
            window is not complete) and one `ModelTraining` per fold, skipped ones included.

        Raises:
            UserError: There are no feature columns.
            ModelFitError: A fold failed to train or predict, or its labels are one class
                and ``on_single_class`` is ``fail``.
        """
        frame = bars.frame
        x, labels, usable, trainable = self._rows(bars, features)
        folds = plan_checked_folds(trainable, self)
        columns = tuple(str(c) for c in features.columns)
        y = self._targets(trainable, labels)
        probability = np.full(len(frame), np.nan)
        trainings: list[ModelTraining] = []
        self.trained, self.latest, figures = [], None, []
        planned = [
            (f, self._plan_training(f, f.training_rows(trainable), labels, x, columns, "scheduled"))
            for f in folds
        ]
        with progress.task(
            "walk-forward folds", total=sum(not t.skipped for _, t in planned)
        ) as shown:
            for fold, training in planned:
                trainings.append(training)
                if training.skipped:
                    continue
                rows = fold.training_rows(trainable)
                bars_ = np.arange(fold.predict_start, fold.predict_end + 1)
                segment = bars_[usable[bars_]]
                fitted, predicted = self._fold(fold, rows, segment, x, y)
                probability[segment] = predicted
                self.latest = self._trained_fold(training, fitted, columns, x, y, rows)
                self.trained.append(self.latest)
                figure = self._figure(fold, fitted, x, labels, segment[trainable[segment]])
                if figure is not None:
                    figures.append(figure)
                shown.advance()
        self.calibration_by_fold = figures
        self._history = _History(x, y, labels, trainable, usable, columns, tuple(folds))
        series = pd.Series(probability, index=frame.index, name="probability_up")
        return ModelOutput(probability=series, trainings=tuple(trainings))

    def retrain(self, bar: int, reason: str) -> Retraining | None:
        """Train a fold at ``bar``'s close on the rows whose labels are known then
        (`SklearnModel.retrain`'s plan and rules); it predicts from ``bar + 1``.

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
        training = self._plan_training(fold, rows, history.labels, x, history.columns, reason)
        if training.skipped:
            return Retraining(training, None)
        fitted, predicted = self._fold(fold, rows, segment, x, y)
        retrained = self._trained_fold(training, fitted, history.columns, x, y, rows)
        self.trained.append(retrained)
        if predicts_latest(fold, None if self.latest is None else self.latest.training):
            self.latest = retrained
        probability = np.full(len(bars), np.nan)
        probability[history.usable[bars]] = predicted
        return Retraining(training, probability)

    # --- paper and live: training -----------------------------------------------------

    def train_next(
        self, bars: Bars, features: pd.DataFrame, *, reason: str | None = None
    ) -> ModelTraining | None:
        """Train, at the last bar's close, the fold that predicts from the next bar, on the
        rows and seed the backtest's fold has (`SklearnModel.train_next`'s rules)."""
        x, labels, _, trainable = self._rows(bars, features)
        planned = plan_next_fold(trainable, self, reason)
        if planned is None:
            return None
        fold, kind, rows = planned
        columns = tuple(str(c) for c in features.columns)
        y = self._targets(trainable, labels)
        training = self._plan_training(fold, rows, labels, x, columns, kind)
        if training.skipped:
            return training
        fitted, _ = self._fold(fold, rows, np.empty(0, np.intp), x, y)
        self.latest = self._trained_fold(training, fitted, columns, x, y, rows)
        self.trained.append(self.latest)
        return training

    def scheduled_start(self, bars: Bars, features: pd.DataFrame) -> int | None:
        """Return the first bar of the latest walk-forward fold that starts by the next bar
        (None: too few rows yet)."""
        _, _, _, trainable = self._rows(bars, features)
        mask = np.append(trainable, False)
        plan = (self.horizon, self.train_window, self.retrain_every, self.min_train_rows)
        folds = plan_folds(len(mask), mask, *plan, self.embargo)
        return folds[-1].predict_start if folds else None

    def train_next_universe(
        self,
        universe: Universe,
        features: Sequence[pd.DataFrame],
        *,
        reason: str | None = None,
        in_effect: bool = False,
    ) -> ModelTraining | None:
        """Train the universe of one's next fold (`train_next`), or with ``in_effect`` the
        fold in effect at the next bar (`train_fold_in_effect`). It does not pool: the live
        driver trains a copy per symbol on its own bars."""
        bars, frame = universe.bars[0], features[0]
        if in_effect:
            return train_fold_in_effect(self, bars, frame)
        return self.train_next(bars, frame, reason=reason)

    def scheduled_start_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> int | None:
        """Return the universe of one's latest scheduled fold's start (`scheduled_start`)."""
        return self.scheduled_start(universe.bars[0], features[0])

    # --- paper and live: predicting ---------------------------------------------------

    def predict_window(self, rows: npt.ArrayLike) -> float:
        """Return the probability of an up move from the symbol's last ``window`` feature
        rows (oldest first), as `fit_predict` predicts the window ending at that bar.

        Returns:
            The probability, or NaN before the first fold, or when a value is not finite
            (or fewer rows than ``window`` are given: a symbol's first bars).

        Raises:
            ValueError: The rows do not have one value per feature column.
        """
        latest = self.latest
        block = np.asarray(rows, dtype=np.float64)
        if latest is None:
            return math.nan
        check_window(block, len(latest.columns))
        if len(block) < self.window or not np.isfinite(block[-self.window :]).all():
            return math.nan
        fold: TorchFold = latest.fitted
        return fold.predict_one(block[-self.window :])

    def predict_row(self, values: npt.ArrayLike) -> float:
        """Return the probability of an up move for one row: a network whose ``window`` is
        1 reads no more (`predict_window`).

        Raises:
            ValueError: The window is longer than one row: ask `predict_window`.
        """
        if self.window != 1:
            raise ValueError(
                f"the torch model reads the last {self.window} rows of a symbol; "
                "call predict_window with them"
            )
        return self.predict_window(np.asarray(values, dtype=np.float64)[None, :])

    # --- one fold ---------------------------------------------------------------------

    def _rows(
        self, bars: Bars, features: pd.DataFrame
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
    ]:
        """Return the feature rows, the labels, and which rows are usable (a complete,
        finite window ends there) and trainable (usable, with a label)."""
        frame = bars.frame
        if not features.index.equals(frame.index):
            raise ValueError("features must be indexed like bars.frame")
        if features.shape[1] == 0:
            raise UserError(
                "model: the torch model needs at least one feature column; add one under features:"
            )
        x = features.to_numpy(dtype=np.float64)
        if x.shape[1] != self.spec.n_features:
            self.spec = replace(self.spec, n_features=x.shape[1])
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
        usable = window_rows(np.asarray(np.isfinite(x).all(axis=1)), self.window)
        return x, labels, usable, usable & ~np.isnan(labels)

    def _fold(
        self,
        fold: Fold,
        rows: npt.NDArray[np.intp],
        segment: npt.NDArray[np.intp],
        x: npt.NDArray[np.float64],
        y: Target,
    ) -> tuple[TorchFold, npt.NDArray[np.float64]]:
        """Train ``fold``'s network on ``rows`` (calibrated on its holdout); return it and
        its predictions of the windows ending at ``segment``."""
        require("torch", "model kind torch")
        model_rows, held, _ = self._holdout(rows, y)
        fit_rows, stop_rows = model_rows, model_rows[:0]
        validation = int(len(model_rows) * self.training.validation)
        if validation:
            from tradeloom.plugins.model.calibration import split_holdout

            fit_rows, stop_rows = split_holdout(model_rows, validation, self.horizon, self.embargo)
        try:
            fitted = fit_network(
                self.spec,
                self.label.kind,
                x,
                fit_rows,
                y[fit_rows],
                (stop_rows, y[stop_rows]) if len(stop_rows) else None,
                self.training,
                seed=self.seed,
                scaler=standard_scaler(x[fit_rows]) if self.scaler == "standard" else None,
                device=self.device,
            )
        except (UserError, ParamError):
            raise
        except Exception as exc:  # a user's module may raise anything
            raise self._failure("train", fold, exc) from exc
        if len(held) and self.calibration is not None:
            try:
                raw = fitted.uncalibrated(fitted.scaled_windows(x, held))
                fitted = fitted.with_calibrator(
                    fit_calibrator(self.calibration.method, raw, np.asarray(y[held]))
                )
            except Exception as exc:  # as for fit
                raise self._failure("calibrate", fold, exc) from exc
        if not len(segment):
            return fitted, np.empty(0)
        try:
            return fitted, fitted.predict_rows(x, segment)
        except Exception as exc:  # as for fit
            raise self._failure("predict", fold, exc) from exc

    def _trained_fold(
        self,
        training: ModelTraining,
        fitted: TorchFold,
        columns: tuple[str, ...],
        x: npt.NDArray[np.float64],
        y: Target,
        rows: npt.NDArray[np.intp],
    ) -> TrainedFold:
        """Return the fold as the registry saves it; its data hash covers every row its
        training windows read, and the training rows' labels."""
        first = int(rows[0]) - self.window + 1
        read = x[first : int(rows[-1]) + 1]
        return TrainedFold(training, fitted, columns, training_data_sha256(read, y[rows]))

    def _figure(
        self,
        fold: Fold,
        fitted: TorchFold,
        x: npt.NDArray[np.float64],
        labels: npt.NDArray[np.float64],
        known: npt.NDArray[np.intp],
    ) -> dict[str, Any] | None:
        """A calibrated fold's out-of-sample figures before and after its calibrator."""
        if fitted.calibrator is None:
            return None
        before = fitted.uncalibrated(fitted.scaled_windows(x, known))
        after = fitted.calibrated(before)
        return calibration_figures(fold.index, before, after, (labels[known] == 1).astype(float))


def fit_calibrator(method: str, p: npt.NDArray[np.float64], y: npt.NDArray[Any]) -> Calibrator:
    """Return the calibrator scikit-learn's ``CalibratedClassifierCV`` fits on a frozen
    model's probabilities ``p`` of class 1 (isotonic, clipping; or Platt's sigmoid), as
    numbers (`Calibrator`)."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        fitted: Any = IsotonicRegression(out_of_bounds="clip").fit(p, y)
    else:
        from sklearn.calibration import _SigmoidCalibration

        fitted = _SigmoidCalibration().fit(p, y)
    return Calibrator.of(fitted)


@dataclass
class _History:
    """What `TorchModel.retrain` needs of the data `fit_predict` was given."""

    x: npt.NDArray[np.float64]
    y: Target
    labels: npt.NDArray[np.float64]
    trainable: npt.NDArray[np.bool_]
    usable: npt.NDArray[np.bool_]
    columns: tuple[str, ...]
    folds: tuple[Fold, ...]


def build_torch_model(params: TorchParams, ctx: BuildContext) -> TorchModel:
    """Check the network and its parameters, and the device; load no data.

    A built-in network's parameters are checked without torch; a user's module is
    imported, checked against its constructor and run once on zeros (`check_network`).

    Raises:
        ParamError: At ``network`` or ``params.KEY``, or ``device`` (cuda without a GPU).
        MissingExtra: torch is not installed (``pip install 'tradeloom[torch]'``).
    """
    from tradeloom.plugins.model.torch_networks import BUILT_IN

    # validate and run both build the model: a missing torch is told before a run starts
    require_installed("torch", "model kind torch")
    known = ctx.features_known and bool(ctx.feature_columns)
    if params.network not in BUILT_IN:
        require("torch", f"model.network {params.network}")
    spec = check_network(
        params.network,
        params.params,
        window=params.window,
        outputs=outputs_of(params.label.kind),
        n_features=len(ctx.feature_columns) if known else None,
    )
    device = "cpu"
    if params.device != "cpu":
        require("torch", f"model.device {params.device}")
        from tradeloom.plugins.model.torch_training import resolve_device

        try:
            device = resolve_device(params.device)
        except UserError as exc:
            raise ParamError("device", str(exc).removeprefix("model.device: ")) from None
    training = params.training
    walk_forward = params.walk_forward
    return TorchModel(
        spec,
        label=params.label,
        train_window=walk_forward.train_window,
        retrain_every=walk_forward.retrain_every,
        training=TrainingSettings(**training.model_dump()),
        seed=ctx.seed,
        min_train_rows=walk_forward.min_train_rows,
        scaler=params.scaler,
        embargo=walk_forward.embargo,
        on_single_class=walk_forward.on_single_class,
        calibration=params.calibration,
        device=device,
    )
