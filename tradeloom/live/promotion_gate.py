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

The verdict is ``waiting`` (fewer bars or fills than asked), ``hold`` (p >= alpha, or
no spread to test) or ``promote`` (p < alpha).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tradeloom.schemas.strategy import PromoteWhen

__all__ = ["HOLD", "PROMOTE", "WAITING", "GateReading", "read_gate"]

WAITING = "waiting"
HOLD = "hold"
PROMOTE = "promote"


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
    """

    bars: int
    fills: int
    mean_difference: float
    t: float
    p: float
    verdict: str


def read_gate(
    gate: PromoteWhen, challenger: Sequence[float], champion: Sequence[float], fills: int
) -> GateReading:
    """Return the gate's reading over the equity both books had at the same closes, in
    order (``challenger[i]`` and ``champion[i]`` at one close), with ``fills`` fills."""
    ours = np.asarray(challenger, dtype=np.float64)
    theirs = np.asarray(champion, dtype=np.float64)
    bars = len(ours)
    differences = (ours[1:] / ours[:-1] - 1.0) - (theirs[1:] / theirs[:-1] - 1.0)
    mean = float(differences.mean()) if len(differences) else math.nan
    t = p = math.nan
    if len(differences) >= 2 and float(np.ptp(differences)) > 0.0:
        result = stats.ttest_1samp(differences, 0.0, alternative="greater")
        t, p = float(result.statistic), float(result.pvalue)
    if bars < gate.min_bars or fills < gate.min_fills:
        verdict = WAITING
    elif not math.isnan(p) and p < gate.alpha:
        verdict = PROMOTE
    else:
        verdict = HOLD
    return GateReading(bars, fills, mean, t, p, verdict)
