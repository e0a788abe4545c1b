"""Retraining mid-backtest: a health rule's ``retrain`` at bar t, applied to the bars after t.

`Retrainer` is the callback the per-bar driver gives `tradeloom.engine.driver.Engine` in
a backtest. It asks the model for a fold trained at t's close (`Retrainable.retrain`), checks that
the fold learns nothing from bar t+1 on and predicts exactly the bars after t,
writes its probabilities over those bars (the driver reads them as it reaches
them) and queues the training to be journaled at t+1, where scheduled folds are
journaled too.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import ModelTraining
from tradeloom.engine.events import Recorder
from tradeloom.journal import RetrainSkipped
from tradeloom.plugins.protocols import Retrainable
from tradeloom.runtime.lazy import logger

__all__ = ["Retrainer"]

_log = logger("tradeloom.run")


class Retrainer:
    """Retrain ``model`` at a bar and apply the result to the rest of the backtest.

    Args:
        model: The model, after `fit_predict`.
        probability: The probability per bar the driver reads; overwritten in place
            over the bars a new fold predicts.
        trainings_at: The trainings to journal, by the bar they are journaled at; a new
            fold is added at its ``predict_start``.
        recorder: The run's recorder (a retrain with nothing to train is noted there).
        index: The bars' timestamps.
        anomalies: The anomaly flags and scores per bar the driver reads (see
            `run_backtest`); overwritten in place over the bars a new fold scores.

    Attributes:
        retrained: Whether any fold replaced probabilities.
    """

    def __init__(
        self,
        model: Retrainable,
        probability: npt.NDArray[np.float64],
        trainings_at: dict[int, list[ModelTraining]],
        recorder: Recorder,
        index: pd.DatetimeIndex,
        anomalies: tuple[npt.NDArray[np.bool_ | np.uint8], npt.NDArray[np.float64]] | None = None,
    ) -> None:
        self.model = model
        self.anomalies = anomalies
        self.probability = probability
        self.trainings_at = trainings_at
        self.rec = recorder
        self.index = index
        self.retrained = False

    def __call__(self, bar: int, reason: str) -> None:
        """Retrain at ``bar``'s close because of ``reason``.

        Raises:
            RuntimeError: The model returned a fold that does not start at bar + 1, ends
                past the last bar, trains on a row whose label is not known at ``bar``,
                or probabilities of another length or outside [0, 1].
        """
        result = self.model.retrain(bar, reason)
        if result is None:
            _log.info("retrain_skipped", bar=bar, reason=reason)
            if bar == len(self.probability) - 1:
                return  # the data ends here: live, a next bar would come (nothing to journal)
            self.rec.record(
                RetrainSkipped(
                    **self.rec.at(bar, self.index[bar]),
                    reason=reason,
                    why="nothing to retrain: no bar before the next scheduled fold, "
                    "or too few labelled rows",
                )
            )
            return
        training = result.training
        self._check(bar, training)
        if result.probability is not None:
            new = np.asarray(result.probability, dtype=np.float64)
            span = training.predict_end - training.predict_start + 1
            if new.shape != (span,):
                raise RuntimeError(
                    f"model.retrain at bar {bar} returned {new.shape} probabilities for the "
                    f"{span} bars {training.predict_start}..{training.predict_end}"
                )
            if not np.all(np.isnan(new) | ((new >= 0.0) & (new <= 1.0))):
                raise RuntimeError(
                    f"model.retrain at bar {bar} returned probabilities outside [0, 1]"
                )
            self.probability[training.predict_start : training.predict_end + 1] = new
            self.retrained = True
        if result.anomaly_score is not None and self.anomalies is not None:
            self._rescore(bar, training, np.asarray(result.anomaly_score, dtype=np.float64))
        self.trainings_at.setdefault(training.predict_start, []).append(training)

    def _rescore(self, bar: int, training: ModelTraining, scores: npt.NDArray[np.float64]) -> None:
        """Put the new fold's anomaly verdicts over its bars: its detector, fitted on its
        own training rows, is the one that judges them (as it will live)."""
        assert self.anomalies is not None
        span = slice(training.predict_start, training.predict_end + 1)
        if scores.shape != (span.stop - span.start,):
            raise RuntimeError(
                f"model.retrain at bar {bar} returned {scores.shape} anomaly scores for the "
                f"bars {training.predict_start}..{training.predict_end}"
            )
        flags, current = self.anomalies
        current[span] = scores
        flags[span] = scores < 0.0  # NaN: not scored, not anomalous

    def _check(self, bar: int, training: ModelTraining) -> None:
        last = len(self.probability) - 1
        if training.predict_start != bar + 1 or not bar < training.predict_end <= last:
            raise RuntimeError(
                f"model.retrain at bar {bar} returned a fold predicting bars "
                f"{training.predict_start}..{training.predict_end}; expected {bar + 1}..(at "
                f"most {last})"
            )
        reach = training.train_end + training.horizon + training.embargo
        if training.rows and not reach < training.predict_start:
            raise RuntimeError(
                f"model.retrain at bar {bar} trained on rows up to {training.train_end}, whose "
                f"labels reach bar {training.train_end + training.horizon}: not known at "
                f"bar {bar}"
            )
