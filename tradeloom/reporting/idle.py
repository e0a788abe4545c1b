"""The stretches of a run in which it could not trade: before the model's first
prediction, and after a halt that held to the end.

A month or year of those stretches returns exactly 0, which the report would print as
+0.00% like a month the strategy traded flat; it says why instead (`idle_label`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeloom.reporting.run_data import RunData
from tradeloom.reporting.run_events import final_state

__all__ = ["BEFORE_PREDICTIONS", "HALTED", "Idle", "idle_label", "idle_of"]

BEFORE_PREDICTIONS = "no prediction yet"
HALTED = "halted"


@dataclass(frozen=True)
class Idle:
    """When a run could not trade.

    Attributes:
        first_prediction: The bar of the model's first prediction (None: unknown, or none).
        halted: When the halt it ended in began (None: it did not end halted).
    """

    first_prediction: pd.Timestamp | None = None
    halted: pd.Timestamp | None = None


def idle_of(run: RunData) -> Idle:
    """Return when the run could not trade, from its probabilities and its events."""
    first = None
    features = run.features
    if features is not None and "probability" in features and "timestamp" in features:
        known = features["probability"].to_numpy(np.float64)
        seen = np.flatnonzero(np.isfinite(known))
        if len(seen):
            first = pd.Timestamp(features["timestamp"].iloc[int(seen[0])])
    last = final_state(list(run.events))
    halted = None if last is None or pd.isna(last.timestamp) else pd.Timestamp(last.timestamp)
    return Idle(first, halted)


def idle_label(period: str, value: float | None, idle: Idle) -> str:
    """Return why a month (``2024-03``) or a year (``2024``) returned nothing, or ''.

    Only a return of exactly 0 is explained: a period with a position held (a halt's
    exits, a kill switch that keeps the position) returned what it returned.
    """
    if value is None or value != 0.0:
        return ""
    start = pd.Timestamp(period if len(period) > 4 else f"{period}-01", tz="UTC")
    end = start + (pd.offsets.MonthBegin(1) if len(period) > 4 else pd.offsets.YearBegin(1))
    if idle.first_prediction is not None and end <= _utc(idle.first_prediction):
        return BEFORE_PREDICTIONS
    if idle.halted is not None and start >= _utc(idle.halted):
        return HALTED
    return ""


def _utc(when: pd.Timestamp) -> pd.Timestamp:
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
