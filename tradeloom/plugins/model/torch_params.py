"""The ``torch`` model's YAML keys: the network, its window, its training, its walk-forward plan.

The label, walk-forward plan and calibration are the ``sklearn`` model's own keys
(`tradeloom.plugins.model.sklearn_params`), with the same meaning and checks: a deep
model is trained on the same folds, labels, purging and embargo as the trees.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tradeloom.plugins.component import Params
from tradeloom.plugins.model.calibration import CalibrationParams
from tradeloom.plugins.model.labels import BINARY_KINDS
from tradeloom.plugins.model.sklearn_params import LabelParams, WalkForwardParams

__all__ = ["MAX_NETWORK_WINDOW", "Device", "TorchParams", "TorchScaler", "TrainingParams"]

MAX_NETWORK_WINDOW = 4096
"""Most rows a network's window may hold."""

Device = Literal["auto", "cpu", "cuda"]

TorchScaler = Literal["none", "standard"]

_LEAST_MODEL_ROWS = 20
"""Fewest rows a fold's network may be fitted on, after its calibration and validation rows."""


class TrainingParams(Params):
    """How each fold's network is trained: Adam on mini-batches, early stopping on the
    fold's own last rows."""

    epochs: int = Field(
        default=20, ge=1, le=10_000, description="Most passes over a fold's rows (1 .. 10,000)."
    )
    batch_size: int = Field(
        default=128, ge=1, le=65_536, description="Windows per gradient step (1 .. 65,536)."
    )
    learning_rate: float = Field(
        default=1e-3, gt=0.0, le=1.0, description="Adam's learning rate (> 0 .. 1)."
    )
    weight_decay: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Adam's L2 penalty (0 .. 1)."
    )
    validation: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Share of a fold's training rows, its last ones, kept out to stop on "
        "(purged by label.horizon and walk_forward.embargo); 0: no early stopping, every "
        "epoch runs.",
    )
    patience: int = Field(
        default=3,
        ge=1,
        le=10_000,
        description="Epochs without a lower validation loss before training stops; the "
        "epoch with the lowest is kept (1 .. 10,000).",
    )
    max_grad_norm: float | None = Field(
        default=1.0,
        gt=0.0,
        description="Clip each step's gradient to this norm; null: no clipping.",
    )


class TorchParams(Params):
    """YAML keys of the ``torch`` model (pip install 'tradeloom[torch]')."""

    network: str = Field(
        min_length=1,
        description="A built-in network: mlp, lstm, gru, tcn or transformer; or a "
        "torch.nn.Module subclass by import path, built as Class(n_features, window, "
        "outputs, **params).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The network's parameters (mlp: hidden, layers, dropout, activation; "
        "lstm and gru: hidden, layers, dropout; tcn: channels, kernel_size, levels, "
        "dropout; transformer: d_model, heads, layers, feedforward, dropout; a user's "
        "module: its constructor's).",
    )
    window: int = Field(
        default=32,
        ge=1,
        le=MAX_NETWORK_WINDOW,
        description="Rows of features each prediction reads: the bar's and the window - 1 "
        f"before it, of the same symbol (1 .. {MAX_NETWORK_WINDOW:,}).",
    )
    training: TrainingParams = Field(default_factory=TrainingParams)
    scaler: TorchScaler = Field(
        default="standard",
        description="standard: each feature scaled by its mean and standard deviation over "
        "the fold's training rows; none: fed as they are.",
    )
    device: Device = Field(
        default="cpu",
        description="cpu; cuda (refused where torch sees no GPU); auto: cuda when torch "
        "sees a GPU, else cpu.",
    )
    label: LabelParams = Field(default_factory=LabelParams)
    walk_forward: WalkForwardParams
    calibration: CalibrationParams | None = Field(
        default=None,
        description="Calibrate each fold's probabilities on its last training rows "
        "(method: isotonic | sigmoid, holdout: rows); null: the network's own.",
    )
    pooling: Literal["per_symbol"] = Field(
        default="per_symbol",
        description="Over several symbols (data.symbols): one network per symbol, trained "
        "on its own bars' windows.",
    )

    @model_validator(mode="after")
    def _one_job(self) -> TorchParams:
        if self.walk_forward.n_jobs != 1:
            raise ValueError(
                "walk_forward.n_jobs must be 1 for the torch model (its folds train one "
                f"after another, each on --threads threads), was {self.walk_forward.n_jobs}"
            )
        return self

    @model_validator(mode="after")
    def _horizon_fits_window(self) -> TorchParams:
        if self.label.horizon > self.walk_forward.train_window:
            raise ValueError(
                f"label.horizon must be <= walk_forward.train_window "
                f"({self.walk_forward.train_window}), was {self.label.horizon}"
            )
        return self

    @model_validator(mode="after")
    def _rows_left_to_fit(self) -> TorchParams:
        calibration = self.calibration
        if calibration is not None and self.label.kind not in BINARY_KINDS:
            raise ValueError(
                f"calibration needs label kind direction or triple_barrier; kind is "
                f"{self.label.kind}"
            )
        walk_forward = self.walk_forward
        least = walk_forward.min_train_rows or walk_forward.train_window
        purged = self.label.horizon + walk_forward.embargo
        held = 0 if calibration is None else calibration.holdout + purged
        left = least - held
        validation = int(left * self.training.validation)
        kept = left - (validation + purged if validation else 0)
        if kept < _LEAST_MODEL_ROWS:
            raise ValueError(
                f"the first fold's {least} rows leave {max(kept, 0)} to fit the network on "
                f"(at least {_LEAST_MODEL_ROWS}) after calibration.holdout and "
                "training.validation, each purged by label.horizon + walk_forward.embargo; "
                "lengthen walk_forward.min_train_rows or shorten them"
            )
        return self
