"""How well a model's probabilities did on a live run's bars whose outcome is known.

Read by a canary's and a watch's rollback rules (`tradeloom.live.canary`) and by a
promotion gate's health (`tradeloom.live.promotion_gate`), by the rule status, the
console and the report pair a book's predictions with (`tradeloom.stats.resolved_pairs`:
each symbol's probability at its k-th own bar against its close ``horizon`` own bars
later). Over the resolved pairs, the AUC is `tradeloom.stats.auc` (the backtest's figure)
and the expected calibration error is `tradeloom.stats.calibration_error` over the
reliability bins (the calibration monitor's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloom.plugins.protocols import LabelHorizon
from tradeloom.stats import RELIABILITY_BINS, auc, calibration_error, resolved_pairs

__all__ = ["PredictionHealth", "health_json", "horizon_of", "prediction_health"]


@dataclass(frozen=True)
class PredictionHealth:
    """A model's figures over its resolved predictions.

    Attributes:
        auc: The AUC of the probabilities against the outcomes (NaN: fewer than the
            samples asked, or one class only).
        calibration_error: Their expected calibration error (NaN: fewer than the
            samples asked).
        samples: The resolved predictions (bars and symbols whose outcome is known).
    """

    auc: float
    calibration_error: float
    samples: int


def prediction_health(
    probabilities: Mapping[int, npt.ArrayLike],
    closes: npt.NDArray[np.float64],
    horizon: int,
    min_samples: int,
) -> PredictionHealth:
    """Return the figures of ``probabilities`` (bar index -> one probability per symbol)
    against ``closes`` (``[bars, symbols]``, indexed like the probabilities' bars; NaN: the
    symbol had no bar), over the bars from the first prediction on; NaN figures with fewer
    than ``min_samples`` resolved pairs."""
    bars = sorted(t for t in probabilities if 0 <= t < len(closes))
    if not bars:
        return PredictionHealth(math.nan, math.nan, 0)
    start = bars[0]  # the book's bars: from its first prediction to the last close
    asked = np.full(closes[start:].shape, np.nan)
    for t in bars:
        asked[t - start] = probabilities[t]
    p, up = resolved_pairs(asked, closes[start:], horizon)
    samples = len(p)
    if samples < min_samples:
        return PredictionHealth(math.nan, math.nan, samples)
    ece = calibration_error(p, up.astype(np.float64), RELIABILITY_BINS)[0]
    return PredictionHealth(auc(p, up), ece, samples)


def horizon_of(model: object) -> int:
    """Return the bars after which ``model``'s prediction is resolved: its label's
    horizon (at least 1 bar)."""
    return max(int(model.horizon or 0) if isinstance(model, LabelHorizon) else 0, 1)


def health_json(health: PredictionHealth) -> str:
    """Return ``health`` as a journal row holds it: JSON, keys sorted, a NaN as null."""
    figures = {
        "auc": None if math.isnan(health.auc) else health.auc,
        "calibration_error": (
            None if math.isnan(health.calibration_error) else health.calibration_error
        ),
        "samples": health.samples,
    }
    return json.dumps(figures, sort_keys=True)
