"""How well a model's probabilities did on a live run's bars whose outcome is known.

Read by a canary's and a watch's rollback rules (`tradeloom.live.lifecycle.canary`) and by a
promotion gate's health (`tradeloom.live.lifecycle.promotion_gate`), by the rule status, the
console and the report pair a book's predictions with (`tradeloom.stats.resolved_pairs`:
each symbol's probability at its k-th own bar against its close ``horizon`` own bars
later). Over the resolved pairs, the AUC is `tradeloom.stats.auc` (the backtest's figure)
and the expected calibration error is `tradeloom.stats.calibration_error` over the
reliability bins (the calibration monitor's).

A rule read at every bar's close keeps a `HealthBook`: the same figures, to the bit,
brought up to date with the bars closed since it was last read instead of recomputed
over the whole book (a pair's AUC share is counted against the sorted scores of the
other class as it resolves, the ECE's bins are running sums). A rule that only compares
the ECE with its limit reads `HealthBook.judged`: a universe's ECE from the running bins,
the whole figure only where they are within their rounding of the limit.
"""

from __future__ import annotations

import bisect
import json
import math
from array import array
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloom.plugins.protocols import LabelHorizon
from tradeloom.stats import (
    RELIABILITY_BINS,
    auc,
    binned_calibration_error,
    calibration_error,
    resolved_pairs,
)

__all__ = [
    "HealthBook",
    "PredictionHealth",
    "ece_rounding",
    "health_json",
    "horizon_of",
    "prediction_health",
]


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


class HealthBook:
    """`prediction_health` of a book that grows a bar at a time, kept up to date.

    Each reading feeds only the bars closed since the last one: a symbol's bar resolves
    its prediction ``horizon`` own bars back, whose label adds to twice Mann-Whitney's U
    against the other class's sorted scores (a count of halves: the same integer
    `tradeloom.stats.auc` counts, so the same AUC) and to its reliability bin's sums. The
    bins' probability sums are added in `tradeloom.stats.resolved_pairs`' order, hence the
    same ECE: on one market that is the order they resolve in; a universe's pairs are
    pooled symbol by symbol, so its ECE adds each symbol's resolved probabilities up
    again when read (O(pairs), one vectorised pass). A pair's AUC term is counted against
    its other class's scores kept by rank (`_Ranked`: equal-width buckets of the score
    counted in a Fenwick tree, each bucket's scores sorted), O(log buckets) steps and a
    search of one bucket a pair however long the book (a sorted list of every score,
    `sortedcontainers`' included, costs O(log pairs) steps and more cache misses as the
    book grows).

    `judged` is what a rule comparing the figures with its limits reads at each close:
    the AUC and the samples as `health` gives them, a universe's ECE from the bins' running
    sums in the order the pairs resolved (O(bins)), which differs from the pooled figure
    by rounding only (`ece_rounding`); where it is that near the ECE's limit, `judged`
    reads the pooled figure. On either side of the limit, the verdict is the pooled one's;
    a journal row takes `health`'s figures.

    The rows of ``probabilities`` are taken as they come, never changed once their bar's
    close was read: a row that turns up for a bar already read (a restart's book filled
    from the journal) starts the book again from its first bar.

    Args:
        horizon: The label's horizon, in each symbol's own bars.
        start: The book's first bar (None: its first bar with a row of probabilities).
    """

    def __init__(self, horizon: int, start: int | None = None) -> None:
        self.horizon = horizon
        self.fixed = start
        self._reset()

    def _reset(self) -> None:
        self.start: int | None = self.fixed
        self.read = -1  # the last bar fed
        self.rows = 0  # rows of probabilities fed
        self.outside = 0  # rows not fed (before the book's first bar, after its last)
        self.pending: list[deque[tuple[float, float]]] = []
        self.resolved: list[_Pairs] = []  # per symbol, its resolved pairs in order
        self.hits = _Ranked()  # the scores of the pairs labelled up
        self.misses = _Ranked()
        self.twice_u = 0
        self.counts = np.zeros(RELIABILITY_BINS, np.int64)
        self.p_sums = [0.0] * RELIABILITY_BINS
        self.y_sums = [0.0] * RELIABILITY_BINS
        self.unit = True  # every resolved probability in [0, 1] (`ece_rounding`'s bound)

    @property
    def samples(self) -> int:
        """Return the resolved predictions so far."""
        return len(self.hits) + len(self.misses)

    def health(
        self,
        probabilities: Mapping[int, npt.ArrayLike],
        closes: npt.NDArray[np.float64],
        min_samples: int,
    ) -> PredictionHealth:
        """Return `prediction_health` of ``probabilities`` against ``closes`` (the book's
        rows and the run's closes so far; with a fixed start, a bar with no row is a row
        of NaN), feeding the bars closed since the last reading."""
        return self._read(probabilities, closes, min_samples, exact=True)

    def _read(
        self,
        probabilities: Mapping[int, npt.ArrayLike],
        closes: npt.NDArray[np.float64],
        min_samples: int,
        *,
        exact: bool,
    ) -> PredictionHealth:
        self._feed(probabilities, closes)
        if len(probabilities) - self.rows != self.outside:  # rows the book did not read
            lowest = 0 if self.fixed is None else self.fixed
            if sum(1 for t in probabilities if lowest <= t <= self.read) != self.rows:
                self._reset()  # a row came for a bar already read: read the book again
                self._feed(probabilities, closes)
            self.outside = len(probabilities) - self.rows
        samples = self.samples
        if (self.fixed is None and self.start is None) or samples < min_samples or not samples:
            return PredictionHealth(math.nan, math.nan, samples)
        return PredictionHealth(self._auc(), self._calibration_error(exact), samples)

    def judged(
        self,
        probabilities: Mapping[int, npt.ArrayLike],
        closes: npt.NDArray[np.float64],
        min_samples: int,
        limit: float | None,
    ) -> PredictionHealth:
        """Return `health`'s figures as a rule with the ECE limit ``limit`` reads them
        (None: no rule reads the ECE): the AUC and samples the same, the ECE on the same
        side of ``limit`` as `health`'s (equal to it where it is within its rounding of
        ``limit``, or the book is one market's). Not a journal row's figures."""
        figures = self._read(probabilities, closes, min_samples, exact=False)
        ece = figures.calibration_error
        if limit is None or ece != ece:  # no rule reads it; NaN: no figure to pool
            return figures
        if self.unit and abs(ece - limit) > ece_rounding(figures.samples):
            return figures
        return self._read(probabilities, closes, min_samples, exact=True)

    def _feed(
        self, probabilities: Mapping[int, npt.ArrayLike], closes: npt.NDArray[np.float64]
    ) -> None:
        if self.start is None:
            bars = [t for t in probabilities if 0 <= t < len(closes)]
            if not bars:
                return
            self.start = min(bars)
        m = closes.shape[1]
        if not self.pending:
            self.pending = [deque() for _ in range(m)]
            self.resolved = [_Pairs() for _ in range(m)]
        asked = np.empty(m)
        for t in range(max(self.read + 1, self.start), len(closes)):
            row = probabilities.get(t)
            if row is None:
                asked[:] = np.nan
            else:
                asked[:] = row  # as `prediction_health` writes a row
                self.rows += 1
            for s, close in enumerate(closes[t].tolist()):
                if close != close:  # NaN: the symbol had no bar
                    continue
                waiting = self.pending[s]
                waiting.append((float(asked[s]), close))
                if len(waiting) > self.horizon:
                    p, before = waiting.popleft()
                    if p == p:
                        self._add(s, p, close > before)
            self.read = t

    def _add(self, s: int, p: float, up: bool) -> None:
        self.resolved[s].add(p, up)
        if up:  # the misses below it count twice, those level with it once
            below, level = self.misses.rank(p)
            self.twice_u += 2 * below + level
            self.hits.add(p)
        else:  # each hit above it counts twice, each level with it once
            below, level = self.hits.rank(p)
            self.twice_u += 2 * (len(self.hits) - below - level) + level
            self.misses.add(p)
        if not 0.0 <= p <= 1.0:
            self.unit = False
        b = min(int(p * RELIABILITY_BINS), RELIABILITY_BINS - 1)
        self.counts[b] += 1
        self.p_sums[b] += p
        self.y_sums[b] += float(up)

    def _auc(self) -> float:
        hits, misses = len(self.hits), len(self.misses)
        if hits == 0 or misses == 0:
            return math.nan
        return float(self.twice_u / 2.0 / (hits * misses))

    def _calibration_error(self, exact: bool) -> float:
        # one market's pairs are pooled in the order they resolved: the running sums are
        # the pooled ones; a universe's, symbol by symbol: summed again when exact
        if not exact or sum(1 for pairs in self.resolved if pairs.n) <= 1:
            p_sums = np.array(self.p_sums)
            return binned_calibration_error(self.counts, p_sums, np.array(self.y_sums))[0]
        p = np.concatenate([pairs.p[: pairs.n] for pairs in self.resolved])
        up = np.concatenate([pairs.up[: pairs.n] for pairs in self.resolved])
        return calibration_error(p, up, RELIABILITY_BINS)[0]


def ece_rounding(samples: int) -> float:
    """Return how far apart two ECEs of the same ``samples`` pairs can be when their
    bins' probabilities were added in different orders (`HealthBook.judged`).

    A bin's sum of n probabilities in [0, 1] added in any order is within
    ``(n - 1) u`` of its real sum relatively (u = 2**-53, recursive summation), so two
    orders' means differ by at most ``2 n u`` of a mean at most 1, plus their own
    division's rounding; their gaps to the (exact, integer) share of ups by as much plus
    a subtraction's; weighted by ``n / samples`` and summed, at most ``(2 samples + 4) u``
    apart before the final sum's and division's rounding (a few u of an ECE <= 1). Four
    times that, plus 64 u, is a bound with room to spare (under 1e-9 at a million pairs).
    """
    return 4.0 * (2.0 * samples + 4.0) * 2.0**-53 + 64.0 * 2.0**-53


class _Ranked:
    """Scores kept by rank: how many are below a score, and level with it, in O(1) of
    their number (`HealthBook`'s AUC).

    A score's bucket is its equal-width bucket of [0, 1] (a score outside falls in the
    first or the last: the buckets stay in the scores' order, and equal scores share
    one). A Fenwick tree counts the scores of the buckets before a bucket (log2 of the
    buckets' number of steps, not of the scores'), and each bucket keeps its scores
    sorted in a packed array (neighbours in memory: a long book's search does not chase
    pointers across the heap).
    """

    BUCKETS = 4096

    def __init__(self) -> None:
        self.n = 0
        self.tree = [0] * (self.BUCKETS + 1)  # Fenwick's, 1-based
        self.buckets = [array("d") for _ in range(self.BUCKETS)]

    def __len__(self) -> int:
        return self.n

    def _bucket(self, p: float) -> int:
        return min(max(int(p * self.BUCKETS), 0), self.BUCKETS - 1)

    def add(self, p: float) -> None:
        b = self._bucket(p)
        scores = self.buckets[b]
        scores.insert(bisect.bisect_left(scores, p), p)
        tree, i = self.tree, b + 1
        while i <= self.BUCKETS:
            tree[i] += 1
            i += i & -i
        self.n += 1

    def rank(self, p: float) -> tuple[int, int]:
        """Return how many scores are below ``p`` and how many equal it."""
        b = self._bucket(p)
        scores = self.buckets[b]
        left = bisect.bisect_left(scores, p)
        below, tree, i = left, self.tree, b
        while i:
            below += tree[i]
            i -= i & -i
        return below, bisect.bisect_right(scores, p) - left


class _Pairs:
    """One symbol's resolved pairs, in order, in arrays that double when full."""

    def __init__(self) -> None:
        self.n = 0
        self.p = np.empty(64)
        self.up = np.empty(64)

    def add(self, p: float, up: bool) -> None:
        if self.n == len(self.p):
            self.p = np.concatenate((self.p, np.empty(self.n)))
            self.up = np.concatenate((self.up, np.empty(self.n)))
        self.p[self.n] = p
        self.up[self.n] = float(up)
        self.n += 1


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
