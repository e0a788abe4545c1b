"""Monitoring and models: health changes and actions, trainings, skipped retrainings, the
models saved.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tradeloom.domain import (
    HealthAction,
    HealthChange,
    ModelTraining,
)
from tradeloom.journal.events.base import Event, kind

_NAN = math.nan

__all__ = [
    "HealthActionFired",
    "HealthChanged",
    "ModelTrained",
    "ModelsSaved",
    "RetrainSkipped",
]


@kind("health", read_by=("replayed", "status", "timeline"))
@dataclass(frozen=True, kw_only=True)
class HealthChanged(HealthChange, Event):
    """A monitor's health status changed (`tradeloom.domain.HealthChange`)."""


@kind("health_action", read_by=("replayed", "timeline"))
@dataclass(frozen=True, kw_only=True)
class HealthActionFired(HealthAction, Event):
    """A health rule fired (`tradeloom.domain.HealthAction`; ``reason`` is derived)."""


@kind("model_trained", read_by=("restart", "timeline"))
@dataclass(frozen=True, kw_only=True)
class ModelTrained(ModelTraining, Event):
    """A walk-forward fold, journaled at the first bar it predicts (its feature
    reference is not journaled)."""


@kind("retrain_skipped")
@dataclass(frozen=True, kw_only=True)
class RetrainSkipped(Event):
    """A health rule asked for a retraining the model could not do."""

    reason: str
    why: str


@kind("models_saved")
@dataclass(frozen=True, kw_only=True)
class ModelsSaved(Event):
    """The run's trained folds were saved (folder relative to the run, the latest fold)."""

    dir: str
    count: int
    latest: str
    sha256: str
