"""The ``sklearn`` model's YAML keys: the estimator, its label, its walk-forward plan."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tradeloom.bounds import MAX_WINDOW
from tradeloom.plugins.component import Params, bars_key
from tradeloom.plugins.model.anomaly import AnomalyParams
from tradeloom.plugins.model.calibration import CalibrationParams
from tradeloom.plugins.model.declared_estimators import DeclaredEstimator
from tradeloom.plugins.model.labels import BINARY_KINDS, LabelKind

__all__ = [
    "LabelParams",
    "OnSingleClass",
    "Pooling",
    "Scaler",
    "SklearnParams",
    "WalkForwardParams",
]

Scaler = Literal["none", "standard", "minmax", "robust"]

OnSingleClass = Literal["skip", "fail"]

Pooling = Literal["pooled", "per_symbol"]

_LEAST_MODEL_ROWS = 20
"""Fewest rows a calibrated fold's model may be fitted on (the walk-forward's own floor)."""


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
        if self.label.horizon > walk_forward.train_window:
            return self  # no holdout fits; `_horizon_fits_window` names the cause
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
