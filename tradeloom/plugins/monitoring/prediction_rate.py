"""Prediction rate: how often the model gives a prediction, and how often it says up.

A model that silently stops predicting (a feature gone NaN, a fold skipped for a
single class) trades nothing and loses nothing, which no performance figure shows;
one that says up on nearly every bar has usually learned the trend of its training
window rather than anything about the next bars. Over the last ``window`` bars:

* ``rate``: the share of bars with a finite prediction;
* ``up_share``: the share of those predictions above 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tradeloom.domain import HealthChange
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.monitoring.params import WindowParams, window_field
from tradeloom.plugins.protocols import MonitorInput

__all__ = ["PredictionRate", "PredictionRateParams", "build"]

_NONE, _DOWN, _UP = 0, 1, 2


class PredictionRateParams(WindowParams):
    """Keys of a ``monitoring`` entry with ``kind: prediction_rate``."""

    window: int = window_field(500, "Bars in the window")


class PredictionRate:
    """Share of bars with a prediction, and of predictions above 0.5, over ``window`` bars.

    Metrics: ``rate`` and ``up_share`` (NaN before ``min_samples`` bars; ``up_share``
    also while the window holds no prediction).
    """

    metric_names: tuple[str, ...] = ("rate", "up_share")

    def __init__(self, params: PredictionRateParams, name: str = "prediction_rate") -> None:
        self.name = name
        self.params = params
        self._kinds = bytearray(params.window)  # each bar's kind: _NONE, _DOWN or _UP
        self._counts = [0, 0, 0]  # bars with no prediction, a prediction <= 0.5, above
        self._filled = 0
        self._next = 0
        self._bars = 0
        self._predicted = 0

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Count this bar's prediction; never reports a status of its own."""
        p = data.probability
        kind = _NONE if not math.isfinite(p) else (_UP if p > 0.5 else _DOWN)
        slot = self._next
        if self._filled == self.params.window:
            self._counts[self._kinds[slot]] -= 1
        self._kinds[slot] = kind
        self._counts[kind] += 1
        self._next = (slot + 1) % self.params.window
        self._filled = min(self._filled + 1, self.params.window)
        self._bars += 1
        self._predicted += kind != _NONE
        return None

    def metrics(self) -> Mapping[str, float]:
        """Return ``rate`` and ``up_share`` of the window."""
        if self._filled < self.params.min_samples:
            return {"rate": math.nan, "up_share": math.nan}
        _, down, up = self._counts
        predicted = down + up
        return {
            "rate": predicted / self._filled,
            "up_share": up / predicted if predicted else math.nan,
        }

    def summary(self) -> dict[str, Any]:
        """Return the current window's figures and the run's share of predicted bars."""
        return {
            **self.metrics(),
            "rate_all": self._predicted / self._bars if self._bars else math.nan,
        }


def build(params: PredictionRateParams, ctx: BuildContext) -> PredictionRate:
    """Build the monitor."""
    return PredictionRate(params, params.name or "prediction_rate")
