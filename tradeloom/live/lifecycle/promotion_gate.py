"""A challenger's promotion gate: is its book better than the champion's, bar for bar?

``challengers.N.promote_when: {min_bars, min_fills, alpha}`` is evaluated at each bar's
close over the bars both books have (each ``challenger_bar`` row holds the challenger's
and the champion's equity at that close). Their per-bar returns are paired (both books
saw the same bar, so their returns are not independent: a Welch test would count the
market's move as noise), and the test is scipy's one-sample t-test of the differences,
challenger minus champion, against 0 with ``alternative="greater"``: a one-sided paired
t-test that the challenger's mean per-bar return is above the champion's. scipy, not a
hand-written t distribution: it is a dependency already (the deflated Sharpe ratio) and
its tail probabilities are exact.

A gate may also ask that the challenger's own predictions be healthy (``min_auc``,
``max_calibration_error``, over its probabilities whose outcome is known: the rule of
`tradeloom.live.lifecycle.prediction_health`, the one a canary's rollback reads): the gate waits
for ``min_samples`` of them, and holds while one of the two is past its limit.

The verdict is ``waiting`` (fewer bars, fills or resolved predictions than asked),
``hold`` (p >= alpha, no spread to test, or the predictions past a health limit) or
``promote`` (p < alpha, and healthy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tradeloom.live.lifecycle.prediction_health import PredictionHealth
from tradeloom.schemas.strategy import PromoteWhen

__all__ = ["HOLD", "PROMOTE", "WAITING", "GateReading", "healthy", "read_gate"]

WAITING = "waiting"
HOLD = "hold"
PROMOTE = "promote"

NO_HEALTH = PredictionHealth(math.nan, math.nan, 0)
"""The health figures of a gate without a health rule (not read)."""


@dataclass(frozen=True)
class GateReading:
    """A gate's evidence and verdict at one bar's close (a ``challenger_gate`` row's).

    Attributes:
        bars: The bars both books have.
        fills: The challenger's fills.
        mean_difference: The mean per-bar return difference (NaN: fewer than two bars).
        t: The paired t statistic (NaN: fewer than two returns, or no spread).
        p: Its one-sided p-value (NaN with ``t``).
        verdict: ``waiting``, ``hold`` or ``promote``.
        health: The challenger's prediction figures (NaN figures and no samples: the
            gate has no health rule).
    """

    bars: int
    fills: int
    mean_difference: float
    t: float
    p: float
    verdict: str
    health: PredictionHealth = NO_HEALTH


def read_gate(
    gate: PromoteWhen,
    challenger: Sequence[float],
    champion: Sequence[float],
    fills: int,
    health: PredictionHealth | None = None,
) -> GateReading:
    """Return the gate's reading over the equity both books had at the same closes, in
    order (``challenger[i]`` and ``champion[i]`` at one close), with ``fills`` fills and,
    when the gate has a health rule, the challenger's prediction figures ``health``."""
    ours = np.asarray(challenger, dtype=np.float64)
    theirs = np.asarray(champion, dtype=np.float64)
    bars = len(ours)
    differences = (ours[1:] / ours[:-1] - 1.0) - (theirs[1:] / theirs[:-1] - 1.0)
    mean = float(differences.mean()) if len(differences) else math.nan
    t = p = math.nan
    if len(differences) >= 2 and float(np.ptp(differences)) > 0.0:
        result = stats.ttest_1samp(differences, 0.0, alternative="greater")
        t, p = float(result.statistic), float(result.pvalue)
    figures = health if gate.health and health is not None else NO_HEALTH
    few = bars < gate.min_bars or fills < gate.min_fills
    if few or (gate.health and figures.samples < gate.min_samples):
        verdict = WAITING
    elif not math.isnan(p) and p < gate.alpha and healthy(gate, figures):
        verdict = PROMOTE
    else:
        verdict = HOLD
    return GateReading(bars, fills, mean, t, p, verdict, figures)


def healthy(gate: PromoteWhen, figures: PredictionHealth) -> bool:
    """Whether ``figures`` pass the gate's health rules (an AUC of NaN, one class only,
    does not pass ``min_auc``)."""
    if gate.min_auc is not None and not figures.auc >= gate.min_auc:
        return False
    error = gate.max_calibration_error
    return error is None or figures.calibration_error <= error
