"""How well a model's probabilities did on a live run's bars whose outcome is known.

One rule, read by a canary's rollback rules (`tradeloom.live.canary`) and by a promotion
gate's ``health`` (`tradeloom.live.promotion_gate`): a probability given at bar ``t`` for
a symbol is resolved once the close ``horizon`` bars later is known, and its outcome is
the label's direction, ``close[t + horizon] > close[t]``. Over the resolved pairs, the
AUC is `tradeloom.stats.auc` (the backtest's figure) and the expected calibration error
is `tradeloom.stats.calibration_error` over ten equal-width bins (the calibration
monitor's). A symbol without a bar (NaN probability or close) gives no pair.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloom.plugins.protocols import LabelHorizon
from tradeloom.stats import auc, calibration_error

__all__ = [
    "CALIBRATION_BINS",
    "PredictionHealth",
    "health_json",
    "horizon_of",
    "prediction_health",
]

CALIBRATION_BINS = 10
"""The equal-width probability bins of the calibration error."""


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
    against ``closes`` (``[bars, symbols]``, indexed like the probabilities' bars): the
    pairs whose close ``horizon`` bars on is in ``closes``; NaN figures with fewer than
    ``min_samples`` pairs."""
    bars = sorted(t for t in probabilities if t >= 0 and t + horizon < len(closes))
    if not bars:
        return PredictionHealth(math.nan, math.nan, 0)
    index = np.asarray(bars)
    asked = np.vstack([np.asarray(probabilities[t], np.float64) for t in bars])
    now = closes[index]
    later = closes[index + horizon]
    known = ~(np.isnan(asked) | np.isnan(now) | np.isnan(later))
    samples = int(known.sum())
    if samples < min_samples:
        return PredictionHealth(math.nan, math.nan, samples)
    p = asked[known]
    up = later[known] > now[known]
    ece = calibration_error(p, up.astype(np.float64), CALIBRATION_BINS)[0]
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
