"""Feature drift: the PSI of each feature against the training rows of the fold in effect.

A model is only as good as the resemblance between the bars it predicts and the rows
it was trained on. Each walk-forward fold carries a `FeatureReference`: per feature,
the decile edges of its training rows and the share of rows in each bin. Over the
last ``window`` bars predicted by that fold the monitor counts the bars in the same
bins and reports the population stability index of each feature,

    PSI = sum_b (a_b - e_b) * ln(a_b / e_b)

with ``a_b`` the window's share and ``e_b`` the training share of bin b, each raised
to at least ``epsilon`` so that an empty bin does not make it infinite. Rules of thumb:
below 0.1 stable, 0.1 to 0.25 a shift worth watching, above 0.25 a different market.

When another fold takes over (a scheduled one, or a retrain) the window starts again
against the new fold's reference: the old counts say nothing about the new model.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tradeloom.domain import FeatureReference, HealthChange, ModelTraining
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.monitoring.params import WindowParams, window_field
from tradeloom.plugins.protocols import MonitorInput
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["FeatureDrift", "FeatureDriftParams", "build", "psi"]


class FeatureDriftParams(WindowParams):
    """Keys of a ``monitoring`` entry with ``kind: feature_drift``."""

    window: int = window_field(500, "Bars in the window")
    epsilon: float = Field(
        default=1e-4,
        gt=0,
        lt=0.1,
        description="Smallest share a bin counts with in the PSI (an empty bin's share).",
    )


def psi(
    actual: npt.NDArray[np.float64], expected: npt.NDArray[np.float64], epsilon: float
) -> npt.NDArray[np.float64]:
    """Return the PSI of each row of ``actual`` shares against ``expected`` shares.

    Both are (features x bins); each share is raised to at least ``epsilon``.
    """
    a = np.maximum(actual, epsilon)
    e = np.maximum(expected, epsilon)
    return np.asarray(np.sum((a - e) * np.log(a / e), axis=1), dtype=np.float64)


class FeatureDrift:
    """PSI of each feature over the last ``window`` bars of the fold in effect.

    Metrics: ``psi.<column>`` per feature column and ``psi_max``, the largest of them;
    NaN when no fold with a reference is in effect, and for a column with fewer than
    ``min_samples`` finite values since that fold took over.

    Args:
        params: The monitor's keys.
        columns: The strategy's feature columns (known before any data).
        name: The monitor's name.
    """

    def __init__(
        self, params: FeatureDriftParams, columns: tuple[str, ...], name: str = "feature_drift"
    ) -> None:
        self.name = name
        self.params = params
        self.columns = columns
        self.metric_names: tuple[str, ...] = ("psi_max", *(f"psi.{c}" for c in columns))
        self._training: ModelTraining | None = None
        self._edges: list[list[float]] = []
        self._started = False
        """Whether the window's arrays are made (`_start`: at the first bar or metrics;
        validate builds a monitor it never feeds, and imports no numpy)."""
        self._filled = 0
        self._next = 0
        self._values: dict[str, float] | None = None
        self._peak = math.nan
        self._peak_column = ""
        self._folds = 0

    def _start(self) -> None:
        columns = self.columns
        self._expected = np.zeros((len(columns), 1))
        self._bins = np.full((self.params.window, len(columns)), -1, dtype=np.int64)
        self._counts = np.zeros((len(columns), 1), dtype=np.int64)
        self._n = np.zeros(len(columns), dtype=np.int64)
        self._rows = np.arange(len(columns))
        self._tracked = np.zeros(len(columns), dtype=bool)
        self._started = True

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Bin this bar's features against the reference in effect; never reports a status."""
        if not self._started:
            self._start()
        training = data.training
        if training is not self._training and training != self._training:
            self._reset(training)
        self._values = None
        if training is None or training.reference is None:
            return None
        features = data.features
        row = np.full(len(self.columns), -1, dtype=np.int64)
        for j in np.flatnonzero(self._tracked):
            value = features.get(self.columns[j], math.nan)
            if math.isfinite(value):
                row[j] = bisect_right(self._edges[j], value)
        slot = self._next
        if self._filled == self.params.window:
            self._drop(self._bins[slot])
        self._bins[slot] = row
        counted = row >= 0
        self._counts[self._rows[counted], row[counted]] += 1  # one bin per feature: no repeats
        self._n += counted
        self._next = (slot + 1) % self.params.window
        self._filled = min(self._filled + 1, self.params.window)
        self._track_peak()
        return None

    def metrics(self) -> Mapping[str, float]:
        """Return ``psi_max`` and ``psi.<column>`` for the current window."""
        if not self._started:
            self._start()
        if self._values is None:
            values = np.full(len(self.columns), math.nan)
            ready = self._tracked & (self._n >= self.params.min_samples)
            if ready.any():
                shares = self._counts[ready] / self._n[ready, None]
                values[ready] = psi(shares, self._expected[ready], self.params.epsilon)
            top = float(np.max(values[ready])) if ready.any() else math.nan
            self._values = {"psi_max": top}
            self._values.update(
                (f"psi.{c}", float(v)) for c, v in zip(self.columns, values, strict=True)
            )
        return self._values

    def summary(self) -> dict[str, Any]:
        """Return the current PSI per column, the largest PSI seen and where."""
        current = self.metrics()
        return {
            "psi_max": current["psi_max"],
            "psi_max_peak": self._peak,
            "psi_max_peak_column": self._peak_column,
            "folds": self._folds,
            "psi": {c: current[f"psi.{c}"] for c in self.columns},
        }

    def _reset(self, training: ModelTraining | None) -> None:
        self._training = training
        self._filled = self._next = 0
        self._bins.fill(-1)
        self._n[:] = 0
        reference = None if training is None else training.reference
        self._tracked = np.zeros(len(self.columns), dtype=bool)
        if reference is None:
            return
        self._folds += 1
        self._edges, width = self._align(reference)
        self._counts = np.zeros((len(self.columns), width), dtype=np.int64)

    def _align(self, reference: FeatureReference) -> tuple[list[list[float]], int]:
        # the reference's columns in the strategy's order; a column it lacks is not tracked
        at = {c: j for j, c in enumerate(reference.columns)}
        width = max((len(p) for p in reference.proportions), default=1)
        self._expected = np.zeros((len(self.columns), width))
        edges: list[list[float]] = []
        for i, column in enumerate(self.columns):
            j = at.get(column)
            if j is None:
                edges.append([])
                continue
            self._tracked[i] = True
            shares = reference.proportions[j]
            self._expected[i, : len(shares)] = shares
            edges.append([float(e) for e in reference.edges[j]])
        return edges, width

    def _drop(self, row: npt.NDArray[np.int64]) -> None:
        counted = row >= 0
        self._counts[self._rows[counted], row[counted]] -= 1
        self._n -= counted

    def _track_peak(self) -> None:
        top = self.metrics()["psi_max"]
        if not math.isnan(top) and not top <= self._peak:
            self._peak = top
            values = self.metrics()
            self._peak_column = max(
                self.columns, key=lambda c: -math.inf if math.isnan(v := values[f"psi.{c}"]) else v
            )


def build(params: FeatureDriftParams, ctx: BuildContext) -> FeatureDrift:
    """Build the monitor over the strategy's feature columns."""
    return FeatureDrift(params, ctx.feature_columns, params.name or "feature_drift")
