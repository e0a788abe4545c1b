"""Capabilities a model asks of paper and live runs, and what a model says of itself.

The model layer's protocol (`tradeloom.plugins.protocols.Model`) is all a backtest asks; a
paper or live run asks a `LiveModel` (and may use a `LiveTrainer`, a `LiveAnomalyGate`, a
`WindowedModel`), and the lifecycle reads what a model says of itself (its label and
calibration for a swap, its saved file, its folds). Every name here is also exported by
`tradeloom.plugins.protocols`, where plugin authors import them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tradeloom.domain import ModelTraining, Universe
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "DescribedModel",
    "LabelHorizon",
    "LiveAnomalyGate",
    "LiveModel",
    "LiveTrainer",
    "ModelCalibration",
    "ModelParityNote",
    "PerSymbolModels",
    "SavedModelFile",
    "SymbolIdModel",
    "WalkForwardModel",
    "WindowedModel",
]


@runtime_checkable
class LiveModel(Protocol):
    """Model layer, paper and live: predict one bar from its feature row.

    The number must be the one `Model.fit_predict_universe` gives the same row (the
    backtest's), so that a paper run replays its backtest.
    """

    def predict_row(self, values: npt.NDArray[np.float64]) -> float:
        """Return the probability of an up move for one feature row (NaN: no prediction).

        Args:
            values: One value per feature column, in the order the model was given them.
        """
        ...


@runtime_checkable
class WindowedModel(Protocol):
    """Model layer, paper and live: a model that reads a symbol's last ``window`` feature rows
    rather than one (a sequence model, the ``torch`` model; optional).

    The live driver keeps each symbol's last ``window`` rows (its own bars' rows, oldest
    first, a restart's replayed bars included) and asks `predict_window` with them instead
    of `LiveModel.predict_row`. The number must be the one `Model.fit_predict_universe`
    gives the window ending at the same bar.
    """

    window: int
    """Rows each prediction reads: the bar's and the ``window - 1`` before it."""

    def predict_window(self, rows: npt.NDArray[np.float64]) -> float:
        """Return the probability of an up move from ``rows`` (NaN: no prediction).

        Args:
            rows: ``(k, columns)``, the symbol's last ``k <= window`` feature rows, oldest
                first, the bar being predicted last (fewer than ``window`` at a symbol's
                first bars: a model answers NaN, as its batch does).
        """
        ...


@runtime_checkable
class LiveTrainer(Protocol):
    """Model layer, paper and live: train the walk-forward fold that predicts from the next
    clock bar, as `Model.fit_predict_universe` trains it (optional).

    One market is a universe of one. A model that trains one model on every symbol's rows
    (`pooled`) trains its pooled fold on the universe; any other is copied per symbol by
    the live driver, each copy trained on the universe of its one symbol (its own bars).
    A `LiveModel` without it trades with the fold it has (a saved model). A trainer of the
    single-market form (``train_next(bars, ...)``, ``scheduled_start(bars, ...)``) is
    deprecated; it runs through `tradeloom.plugins.protocols_symbols.TrainerOverSymbols`.
    """

    retrain_every: int
    """Clock bars each fold predicts before the next scheduled one."""

    @property
    def pooled(self) -> bool:
        """Whether it trains one model on every symbol's rows (else a copy per symbol)."""
        ...

    def train_next_universe(
        self,
        universe: Universe,
        features: Sequence[pd.DataFrame],
        *,
        reason: str | None = None,
        in_effect: bool = False,
    ) -> ModelTraining | None:
        """Train, at the close of the clock's last bar, the fold that predicts from the next.

        Args:
            universe: Every bar known now, on the clock (a copy of a model that is not
                `pooled`: its one symbol's bars).
            features: Per symbol, its feature rows indexed like its own bars.
            reason: Why to train when no scheduled fold starts at the next bar (a
                retraining cron, a health rule); None: only a scheduled fold.
            in_effect: Train the latest fold that starts by the next bar instead,
                wherever it starts (a run starting or restarting over a long history),
                on the rows the backtest's fold has.

        Returns:
            The training (journaled by the runner), or None when none was due.
        """
        ...

    def scheduled_start_universe(
        self, universe: Universe, features: Sequence[pd.DataFrame]
    ) -> int | None:
        """Return the first clock bar of the latest scheduled fold that starts by the next
        bar (None: none does, too few rows are known)."""
        ...


@runtime_checkable
class LiveAnomalyGate(Protocol):
    """Model layer, paper and live: score one bar's features for anomaly (optional).

    A model whose `fit_predict` fills ``ModelOutput.anomalous`` scores each live bar
    the same way; below 0 is anomalous (no position is opened on it).
    """

    def anomaly_score_row(self, values: npt.NDArray[np.float64]) -> float:
        """Return the score of one feature row; NaN when there is no detector (yet)."""
        ...


@runtime_checkable
class ModelParityNote(Protocol):
    """Model layer, paper and live: say why a run may not journal the backtest's numbers (optional).

    A model whose `LiveModel.predict_row` may differ from what `Model.fit_predict_universe` gives
    the same row (in the last bits: an estimator that is not compiled predicts a batch
    with another order of additions than one row) says so before the run starts;
    ``tradeloom validate`` and a paper or live run print it once.
    """

    @property
    def parity_note(self) -> str | None:
        """Why one bar's probability may differ from the backtest's; None when it cannot."""
        ...


@runtime_checkable
class ModelCalibration(Protocol):
    """Model layer, backtest: how calibrated each fold's probabilities were (optional).

    A model that calibrates its probabilities says, after `Model.fit_predict_universe`, what
    each fold's calibrator did; a backtest writes it to ``metrics.json`` as
    ``calibration_by_fold`` (empty: the key is left out), and the report draws it.
    """

    @property
    def calibration_by_fold(self) -> list[dict[str, Any]]:
        """Per calibrated fold, its figures before and after its calibrator."""
        ...


@runtime_checkable
class DescribedModel(Protocol):
    """Model layer, paper and live: what a model swap compares (optional).

    A running run swaps its model only for one with the same label and, when its sizing
    reads the probability as a probability (`NeedsCalibration`), a calibrated one
    (`tradeloom.live.lifecycle.model_swap`). A model without it is neither swapped out nor in.
    """

    def label_record(self) -> dict[str, Any]:
        """Return the label as a saved model records it: its kind and every key it sets."""
        ...

    @property
    def calibrated(self) -> bool:
        """Whether its probabilities are calibrated (``model.calibration``)."""
        ...


@runtime_checkable
class SavedModelFile(Protocol):
    """Model layer: a model loaded from a file another run saved (optional); a running
    run swaps in only such a model: trained already, its file's hash known."""

    loaded_from: Mapping[str, Any]
    """``{source, sha256}``: the file it was loaded from and that file's SHA-256."""


@runtime_checkable
class LabelHorizon(Protocol):
    """A model whose label looks ``horizon`` bars ahead: a prediction's outcome is known then."""

    horizon: int


@runtime_checkable
class WalkForwardModel(Protocol):
    """A model trained walk-forward, that says where its first fold starts."""

    def first_fold_bar(self) -> tuple[int, str]:
        """Return the first bar the first fold predicts, and the key that sets it."""
        ...


@runtime_checkable
class PerSymbolModels(Protocol):
    """A model that trains each symbol of a universe apart and keeps each one's model (saved
    to the registry); paper and live trade a copy of it per symbol."""

    per_symbol: Mapping[str, Any]


@runtime_checkable
class SymbolIdModel(Protocol):
    """A pooled universe model that may add each row's symbol index as a feature."""

    symbol_id: bool
