"""Calibration of the predictions: rolling Brier score and expected calibration error.

A model can rank bars well (a good AUC) and still be wrong about how likely an up
move is; Kelly sizing trusts the probability itself, so a drifting calibration
costs money before the AUC notices. The monitor keeps the last ``window``
predictions whose outcome is known and reports, at every bar:

* ``brier``: the mean of ``(p - y)^2``, y = 1 for an up move (0 is perfect, 0.25 is
  a constant 0.5);
* ``ece``: the expected calibration error over ``bins`` equal-width bins of p:
  ``sum_b (n_b / n) |mean p_b - mean y_b|`` (p = 1 falls in the last bin);
* ``bias``: ``mean p - mean y``, how far the probabilities sit above the frequency
  of up moves (calibration in the large).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from tradeloom.domain import HealthChange
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.monitoring.params import WindowParams, window_field
from tradeloom.plugins.protocols import MonitorInput
from tradeloom.runtime.lazy import numpy as np

__all__ = ["Calibration", "CalibrationParams", "build"]


class CalibrationParams(WindowParams):
    """Keys of a ``monitoring`` entry with ``kind: calibration``."""

    window: int = window_field(500, "Resolved predictions in the window")
    bins: int = Field(
        default=10, ge=2, le=100, description="Equal-width probability bins of the ECE."
    )


class Calibration:
    """Rolling Brier score, ECE and bias of the last ``window`` resolved predictions.

    Metrics (NaN before ``min_samples`` resolved predictions): ``brier``, ``ece``, ``bias``.
    """

    metric_names: tuple[str, ...] = ("brier", "ece", "bias")

    def __init__(self, params: CalibrationParams, name: str = "calibration") -> None:
        self.name = name
        self.params = params
        self._window: tuple[np.ndarray, np.ndarray] | None = None
        """The window's predictions and outcomes, made at the first one (validate builds a
        monitor it never feeds, and imports no numpy)."""
        self._filled = 0
        self._next = 0
        self._values: dict[str, float] | None = None
        self._resolved = 0
        self._squared_errors = 0.0

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Add the prediction this bar resolves; never reports a status of its own."""
        p = data.resolved_probability
        if math.isnan(p):
            return None
        y = 1.0 if data.resolved_up else 0.0
        if self._window is None:
            self._window = (np.zeros(self.params.window), np.zeros(self.params.window))
        self._window[0][self._next] = p
        self._window[1][self._next] = y
        self._next = (self._next + 1) % self.params.window
        self._filled = min(self._filled + 1, self.params.window)
        self._values = None
        self._resolved += 1
        self._squared_errors += (p - y) ** 2
        return None

    def metrics(self) -> Mapping[str, float]:
        """Return ``brier``, ``ece`` and ``bias`` of the window (NaN before ``min_samples``)."""
        from tradeloom.stats import calibration_error  # numpy's: not at `validate`

        if self._values is None:
            if self._filled < self.params.min_samples:
                self._values = dict.fromkeys(self.metric_names, math.nan)
            else:
                p, y = self._filled_window()
                ece = calibration_error(p, y, self.params.bins)[0]
                self._values = {
                    "brier": float(np.mean((p - y) ** 2)),
                    "ece": ece,
                    "bias": float(np.mean(p) - np.mean(y)),
                }
        return self._values

    def _filled_window(self) -> tuple[np.ndarray, np.ndarray]:
        assert self._window is not None  # filled: a prediction was added
        return self._window[0][: self._filled], self._window[1][: self._filled]

    def summary(self) -> dict[str, Any]:
        """Return the last window's metrics and reliability bins, and the run's Brier score."""
        from tradeloom.stats import calibration_error

        reliability: list[dict[str, float]] = []
        if self._filled:
            p, y = self._filled_window()
            _, counts, predicted, observed = calibration_error(p, y, self.params.bins)
            width = 1.0 / self.params.bins
            reliability = [
                {
                    "from": round(b * width, 10),
                    "to": round((b + 1) * width, 10),
                    "count": int(counts[b]),
                    "predicted": float(predicted[b]),
                    "observed": float(observed[b]),
                }
                for b in np.flatnonzero(counts)
            ]
        resolved = self._resolved
        return {
            **self.metrics(),
            "brier_all": self._squared_errors / resolved if resolved else math.nan,
            "resolved": resolved,
            "reliability": reliability,
        }


def build(params: CalibrationParams, ctx: BuildContext) -> Calibration:
    """Build the monitor."""
    return Calibration(params, params.name or "calibration")
