"""Rolling AUC of predictions against realized direction, and the health it implies."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Mapping
from typing import Self

from pydantic import Field, model_validator

from tradeloom.domain import HealthChange, HealthStatus
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.monitoring.params import WindowParams, min_samples_field, window_field
from tradeloom.plugins.protocols import MonitorInput

__all__ = ["RollingAuc", "RollingAucParams", "WindowAuc"]

_RANKS: tuple[HealthStatus, ...] = ("HEALTHY", "WARNING", "CRITICAL")


class RollingAucParams(WindowParams):
    """Keys of a ``monitoring`` entry with ``kind: rolling_auc``."""

    window: int = window_field(500, "Resolved predictions in the window")
    min_samples: int = min_samples_field(100, "Samples before health is judged", least=10)
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
        return self


class WindowAuc:
    """The ROC AUC of a sliding window of (score, label) pairs, updated per pair.

    Keeps the window's positive and negative scores sorted and ``2 U``, twice the
    Mann-Whitney statistic (pairs a positive outranks, ties counting a half), as an
    integer: adding or dropping a pair changes it by that pair's count against the
    other class, two binary searches. The AUC is ``U / (positives * negatives)``, the
    value `tradeloom.stats.auc` (and ``sklearn.metrics.roc_auc_score``) gives for the
    same window, bit for bit, without sorting the window at every bar.

    Args:
        window: Pairs kept; the oldest is dropped when a new one exceeds it.
    """

    def __init__(self, window: int) -> None:
        self._pairs: deque[tuple[float, bool]] = deque()
        self._window = window
        self._positive: list[float] = []
        self._negative: list[float] = []
        self._u2 = 0

    def __len__(self) -> int:
        return len(self._pairs)

    def add(self, score: float, up: bool) -> None:
        """Add a pair, dropping the oldest once the window is full."""
        if len(self._pairs) == self._window:
            old_score, old_up = self._pairs.popleft()
            own = self._positive if old_up else self._negative
            del own[bisect_left(own, old_score)]
            self._u2 -= self._pairs_of(old_score, old_up)
        self._pairs.append((score, up))
        self._u2 += self._pairs_of(score, up)
        insort(self._positive if up else self._negative, score)

    def value(self) -> float:
        """Return the AUC of the window (NaN while it holds one class only)."""
        n_pos, n_neg = len(self._positive), len(self._negative)
        if n_pos == 0 or n_neg == 0:
            return math.nan
        return self._u2 / (2 * n_pos * n_neg)

    def _pairs_of(self, score: float, up: bool) -> int:
        # twice the pairs a score wins against the other class, plus its ties
        other = self._negative if up else self._positive
        below, above = bisect_left(other, score), bisect_right(other, score)
        wins = below if up else len(other) - above
        return 2 * wins + (above - below)


class RollingAuc:
    """Judge health from the AUC of the last ``window`` resolved predictions.

    Its metric for health rules is ``auc``: the AUC of the window, NaN before
    ``min_samples`` resolved predictions or while they are all one class.
    """

    metric_names: tuple[str, ...] = ("auc",)

    def __init__(self, params: RollingAucParams, name: str = "rolling_auc") -> None:
        self.name = name
        self.params = params
        self._window = WindowAuc(params.window)
        self.status: HealthStatus = "HEALTHY"
        self.last_auc = math.nan
        self._current = math.nan
        self._judged = 0
        self._sum = 0.0
        self._min = math.inf
        self._changes = 0

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Add the newly resolved prediction, update the AUC, report a status change."""
        if math.isnan(data.resolved_probability):
            return None
        self._window.add(data.resolved_probability, data.resolved_up)
        if len(self._window) < self.params.min_samples:
            return None
        value = self._window.value()
        self._current = value
        if math.isnan(value):
            return None
        self.last_auc = value
        self._judged += 1
        self._sum += value
        self._min = min(self._min, value)
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

    def metrics(self) -> Mapping[str, float]:
        """Return the AUC of the current window (NaN before ``min_samples``)."""
        return {"auc": self._current}

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

    def summary(self) -> dict[str, float | int | str]:
        """Return the last, mean and minimum rolling AUC and the final status."""
        judged = self._judged
        return {
            "status": self.status,
            "rolling_auc_last": self.last_auc,
            "rolling_auc_mean": self._sum / judged if judged else math.nan,
            "rolling_auc_min": self._min if judged else math.nan,
            "health_changes": self._changes,
        }


def build(params: RollingAucParams, ctx: BuildContext) -> RollingAuc:
    """Build the monitor."""
    return RollingAuc(params, params.name or "rolling_auc")
