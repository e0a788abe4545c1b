"""Rolling AUC of predictions against realized direction, and the health it implies."""

from __future__ import annotations

import math
from collections import deque
from typing import Self

import numpy as np
from pydantic import Field, model_validator

from tradeloom.domain import HealthChange, HealthStatus
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols import MonitorInput
from tradeloom.stats import auc

__all__ = ["RollingAuc", "RollingAucParams"]

_RANKS: tuple[HealthStatus, ...] = ("HEALTHY", "WARNING", "CRITICAL")


class RollingAucParams(Params):
    """Keys of a ``monitoring`` entry with ``kind: rolling_auc``."""

    window: int = Field(default=500, ge=10, description="Resolved predictions in the window.")
    min_samples: int = Field(default=100, ge=10, description="Samples before health is judged.")
    warning_below: float = Field(default=0.52, ge=0, le=1, description="WARNING below this.")
    critical_below: float = Field(default=0.48, ge=0, le=1, description="CRITICAL below this.")
    hysteresis: float = Field(
        default=0.01,
        ge=0,
        le=0.5,
        description="To recover to a better status the AUC must clear its threshold by this.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.critical_below > self.warning_below:
            raise ValueError(
                f"critical_below must be <= warning_below, was {self.critical_below} > "
                f"{self.warning_below}"
            )
        if self.min_samples > self.window:
            raise ValueError(
                f"min_samples must be <= window, was {self.min_samples} > {self.window}"
            )
        return self


class RollingAuc:
    """Judge health from the AUC of the last ``window`` resolved predictions."""

    def __init__(self, params: RollingAucParams, name: str = "rolling_auc") -> None:
        self.name = name
        self.params = params
        self._scores: deque[float] = deque(maxlen=params.window)
        self._ups: deque[bool] = deque(maxlen=params.window)
        self.status: HealthStatus = "HEALTHY"
        self.last_auc = math.nan
        self._history: list[float] = []
        self._changes = 0

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Add the newly resolved prediction, recompute the AUC, report a status change."""
        if math.isnan(data.resolved_probability):
            return None
        self._scores.append(data.resolved_probability)
        self._ups.append(data.resolved_up)
        if len(self._scores) < self.params.min_samples:
            return None
        value = auc(np.fromiter(self._scores, float), np.fromiter(self._ups, bool))
        if math.isnan(value):
            return None
        self.last_auc = value
        self._history.append(value)
        status = self._judge(value)
        if status == self.status:
            return None
        change = HealthChange(
            bar=data.bar.index,
            timestamp=data.bar.timestamp,
            monitor=self.name,
            status=status,
            previous=self.status,
            metric="auc",
            value=value,
        )
        self.status = status
        self._changes += 1
        return change

    def _judge(self, value: float) -> HealthStatus:
        # worse at once; better only once the AUC clears the threshold by the hysteresis
        raw = self._status(value)
        if _RANKS.index(raw) >= _RANKS.index(self.status):
            return raw
        return self._status(value - self.params.hysteresis)

    def _status(self, value: float) -> HealthStatus:
        if value < self.params.critical_below:
            return "CRITICAL"
        return "WARNING" if value < self.params.warning_below else "HEALTHY"

    def summary(self) -> dict[str, float | str]:
        """Return the last, mean and minimum rolling AUC and the final status."""
        history = np.asarray(self._history)
        return {
            "status": self.status,
            "rolling_auc_last": self.last_auc,
            "rolling_auc_mean": float(history.mean()) if history.size else math.nan,
            "rolling_auc_min": float(history.min()) if history.size else math.nan,
            "health_changes": float(self._changes),
        }


def build(params: RollingAucParams, ctx: BuildContext) -> RollingAuc:
    """Build the monitor."""
    return RollingAuc(params)
