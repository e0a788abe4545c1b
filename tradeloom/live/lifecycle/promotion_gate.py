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

A gate read at every bar's close keeps a `GateTally`: the differences' count, running
mean and squared deviations (Welford's) and their range, fed the closes since its last
reading, give the verdict in O(1) a bar; the whole `read_gate` runs again only where the
running p-value is too near ``alpha`` for its rounding to be trusted, and for the row a
changed verdict journals (its figures are `read_gate`'s, to the bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from tradeloom.live.lifecycle.prediction_health import PredictionHealth
from tradeloom.schemas.strategy import PromoteWhen

__all__ = ["HOLD", "PROMOTE", "WAITING", "GateReading", "GateTally", "healthy", "read_gate"]

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
    # a book at zero equity gives inf/NaN returns: no t-test is read from them (ptp is NaN),
    # so the verdict never promotes on them; numpy's warnings would only say so again
    with np.errstate(divide="ignore", invalid="ignore"):
        differences = (ours[1:] / ours[:-1] - 1.0) - (theirs[1:] / theirs[:-1] - 1.0)
        mean = float(differences.mean()) if len(differences) else math.nan
        t = p = math.nan
        finite = len(differences) >= 2 and bool(np.isfinite(differences).all())
        if finite and float(np.ptp(differences)) > 0.0:
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


_NEAR = 1e-6
"""How near ``alpha`` (relatively) a running p-value sends `GateTally.verdict` to the whole
`read_gate`. The running t differs from scipy's by rounding only: a relative error of a
few ``n * 2**-52`` at most (under 1e-9 for a million bars), which moves a p-value near any
``alpha`` above 1e-300 by far less than this."""


class GateTally:
    """`read_gate`'s verdict over a book whose equity grows a close at a time.

    Fed each close of ``challenger`` and ``champion`` (the same lists `read_gate` takes;
    a pair with a non-finite equity is left out, as the caller's filter leaves it out)
    since the last reading: each new close adds its return difference, computed as
    `read_gate` computes it, to a count, Welford's running mean and sum of squared
    deviations, and the range. The verdict is `read_gate`'s: the bars, fills and health
    decide ``waiting`` and a health limit ``hold`` as there; the t-test's ``p < alpha`` is
    read from the running t (`scipy.special.stdtr`, the tail scipy's t-test takes), and
    where that p is within `_NEAR` of ``alpha``, or a difference is not finite, the whole
    `read_gate` decides. `reading` is the whole `read_gate` (a journal row's figures).
    """

    def __init__(self) -> None:
        self.ours: list[float] = []
        self.theirs: list[float] = []
        self._fed = 0  # closes of the caller's lists fed
        self._n = 0  # differences
        self._mean = 0.0
        self._m2 = 0.0
        self._low = math.inf
        self._high = -math.inf
        self._odd = False  # a non-finite difference: the whole `read_gate` decides

    def feed(self, challenger: Sequence[float], champion: Sequence[float]) -> None:
        """Add the closes of ``challenger`` and ``champion`` after those fed already."""
        for e, c in zip(challenger[self._fed :], champion[self._fed :], strict=True):
            if not (math.isfinite(e) and math.isfinite(c)):
                continue
            if self.ours and not (self.ours[-1] and self.theirs[-1]):
                self._odd = True  # a return from 0: numpy's inf or NaN, read by `read_gate`
            elif self.ours:  # as `read_gate`'s arrays compute it, element by element
                d = (e / self.ours[-1] - 1.0) - (c / self.theirs[-1] - 1.0)
                if not math.isfinite(d):
                    self._odd = True
                self._n += 1
                delta = d - self._mean
                self._mean += delta / self._n
                self._m2 += delta * (d - self._mean)
                self._low = min(self._low, d)
                self._high = max(self._high, d)
            self.ours.append(e)
            self.theirs.append(c)
        self._fed = len(challenger)

    def verdict(self, gate: PromoteWhen, fills: int, health: PredictionHealth | None) -> str:
        """Return `read_gate`'s verdict over the closes fed, ``fills`` and ``health``."""
        figures = health if gate.health and health is not None else NO_HEALTH
        few = len(self.ours) < gate.min_bars or fills < gate.min_fills
        if few or (gate.health and figures.samples < gate.min_samples):
            return WAITING
        if not healthy(gate, figures):
            return HOLD  # whatever the test says
        if self._odd or (self._n >= 2 and self._high > self._low and not self._m2 > 0.0):
            return self.reading(gate, fills, health).verdict
        if self._n < 2 or not self._high > self._low:
            return HOLD  # no test: p is NaN
        n = self._n
        t = self._mean / math.sqrt(self._m2 / (n - 1) / n)
        p = float(special.stdtr(n - 1, -t))
        if not math.isfinite(p) or abs(p - gate.alpha) <= _NEAR * gate.alpha:
            return self.reading(gate, fills, health).verdict
        return PROMOTE if p < gate.alpha else HOLD

    def reading(
        self, gate: PromoteWhen, fills: int, health: PredictionHealth | None
    ) -> GateReading:
        """Return the whole `read_gate` over the closes fed."""
        return read_gate(gate, self.ours, self.theirs, fills, health)


def healthy(gate: PromoteWhen, figures: PredictionHealth) -> bool:
    """Whether ``figures`` pass the gate's health rules (an AUC of NaN, one class only,
    does not pass ``min_auc``)."""
    if gate.min_auc is not None and not figures.auc >= gate.min_auc:
        return False
    error = gate.max_calibration_error
    return error is None or figures.calibration_error <= error
