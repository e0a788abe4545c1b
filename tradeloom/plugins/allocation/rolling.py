"""A covariance carried from one rebalance to the next: the window's Gram matrix updated
by the bars that entered and left it instead of recomputed from the whole window.

Between two rebalances a window of ``T`` bars of ``N`` symbols slides by ``k`` bars. The
Gram matrix of the returns about a fixed shift ``c``, ``G = (X - c)'(X - c)``, then
changes by the ``k`` rows that entered less the ``k`` that left, ``O(k N^2)`` where a
recomputation is ``O(T N^2)``; the centred Gram matrix the estimators read is
``G - T (m - c)(m - c)'`` for the window's mean ``m`` (the shift keeps ``m - c`` small:
no cancellation of large raw moments). What else Ledoit-Wolf reads is ``O(T N)`` from
the window (the variances, the sum over bars of each bar's squared norm, squared: the
sum of ``(X**2)'(X**2)`` without making it) or ``O(N^2)`` from the Gram matrix (the sum
of its squares).

The rule, written once (`advance`), for which estimate a rebalance gets:

- **recomputed** from the window, exactly as `tradeloom.plugins.allocation.covariance`
  does (the same bits), when there is no carried state, when the window is not the
  previous one slid by ``k`` bars (a new symbol, a missing value, a gap, a window of
  another length: any window whose first ``T - k`` rows are not bit for bit the previous
  one's last), when ``2k >= T`` (the update would cost more than the recomputation),
  when the universe has fewer than `MIN_SYMBOLS` symbols (the recomputation is cheaper
  than the update's bookkeeping), or when the carried Gram matrix has been updated
  `RECOMPUTE_EVERY` - 1 times in a row (the updates' rounding is bounded: see there);
- **updated** otherwise.

The path a rebalance takes depends on the sequence of windows only, never on who asked:
the engine shows the allocator every rebalance's window in bar order, in every mode
(`observe`, from `tradeloom.engine.allocating.Rebalancer.decide`), whether it is then
solved, answered from the journal (a restart's replay) or given (a parity replay), or
dropped past its deadline. A restart's replay thus rebuilds the very state the run had,
bit for bit, and a backtest, a paper run and its restart give the same weights. A parity
replay's bars start at the run's first live bar: it carries its own state from its first
full window, so a ``late`` rebalance it solves itself may take the other path than the
run would have (the same weights to the tolerance of `RECOMPUTE_EVERY`).

Sample and Ledoit-Wolf covariances are carried; the exponential one is recomputed (it
is naturally a recursion, but over a finite window its weights renormalise at every
slide; not done yet).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloom.plugins.allocation.covariance import (
    CovarianceKind,
    covariance,
    ledoit_wolf_of,
    shrinkage_of,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "MIN_SYMBOLS",
    "RECOMPUTE_EVERY",
    "CarriedCovariance",
    "Moments",
    "advance",
    "estimate",
    "slide",
]

RECOMPUTE_EVERY = 16
"""A carried Gram matrix is recomputed from the window at least every this many
rebalances (1: always recomputed, the estimate of `tradeloom.plugins.allocation.covariance`
at every rebalance). Each update adds the rounding of ``2k`` rows' products, about
``2k * eps`` of the squared returns per entry; fifteen of them stay below 1e-13 of the
covariance's largest entry on the windows the tests draw (tests/plugins/allocation/
test_rolling.py measures it against the recomputation), and the weights computed from
either agree to 1e-12."""

MIN_SYMBOLS = 48
"""Below this many symbols a window's covariance is always recomputed: the update saves
less than a tenth of a millisecond a rebalance there (0.08 ms measured at 32 symbols and
240 bars, the update's ``O(T N)`` bookkeeping against a Gram matrix of a few columns),
not worth an estimate that differs from the recomputation's in its last digits."""


@dataclass(frozen=True)
class Moments:
    """What one rebalance's estimate was made from, carried to the next.

    Attributes:
        window: The window's returns, ``[bars, symbols]`` (a private copy).
        shift: The shift ``c`` the Gram matrix is taken about (the mean of the window it
            was last recomputed from).
        gram: ``(window - shift)'(window - shift)``.
        updates: The updates since it was recomputed (0: recomputed from this window).
    """

    window: npt.NDArray[np.float64]
    shift: npt.NDArray[np.float64]
    gram: npt.NDArray[np.float64]
    updates: int


def slide(before: npt.NDArray[np.float64], after: npt.NDArray[np.float64]) -> int | None:
    """Return the smallest ``k`` such that ``after`` is ``before`` slid by ``k`` rows
    (``after[:T - k]`` is ``before[k:]`` bit for bit), 0 for the same window, or None."""
    if before.shape != after.shape:
        return None
    bars = after.shape[0]
    starts = np.flatnonzero(np.all(before == after[0], axis=1))
    for k in starts.tolist():
        if np.array_equal(before[k:], after[: bars - k]):
            return int(k)
    return None


def advance(
    state: Moments | None,
    returns: npt.NDArray[np.float64],
    kind: CovarianceKind,
    every: int = RECOMPUTE_EVERY,
    *,
    owned: bool = False,
) -> Moments | None:
    """Return the moments of ``returns``: ``state`` updated when ``returns`` is its window
    slid, recomputed otherwise (the module's rule); None for a window no estimate is
    carried for (an exponential covariance, a missing value, too few symbols or bars).
    ``owned``: ``returns`` is the caller's to give (not copied)."""
    x = np.asarray(returns, dtype=np.float64)
    if kind == "exponential" or x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < MIN_SYMBOLS:
        return None
    if not np.all(np.isfinite(x)):
        return None
    bars = x.shape[0]
    k = None if state is None else slide(state.window, x)
    if state is not None and k == 0:
        return state
    if not owned:
        x = x.copy()
    if state is None or k is None or 2 * k >= bars or state.updates + 1 >= every:
        return _recomputed(x, kind)
    entered = x[bars - k :] - state.shift
    left = state.window[:k] - state.shift
    gram = np.dot(entered.T, entered)
    gram -= np.dot(left.T, left)
    gram += state.gram
    return Moments(x, state.shift, gram, state.updates + 1)


def _recomputed(x: npt.NDArray[np.float64], kind: CovarianceKind) -> Moments:
    # the Gram matrix each estimator makes, the same way (`estimate` then gives its bits)
    if kind == "sample":  # numpy's cov: the transposed copy, its mean, X X'
        columns = np.array(x.T, dtype=np.float64)
        shift = columns.mean(axis=1)
        columns -= shift[:, None]
        return Moments(x, shift, np.dot(columns, columns.T), 0)
    shift = x.mean(axis=0)
    centred = x - shift
    return Moments(x, shift, np.dot(centred.T, centred), 0)


def estimate(moments: Moments, kind: CovarianceKind) -> npt.NDArray[np.float64]:
    """Return the ``kind`` covariance of ``moments.window`` from its moments: the very
    estimate of `tradeloom.plugins.allocation.covariance.covariance` when they were just
    recomputed, the updated one otherwise."""
    x = moments.window
    bars = x.shape[0]
    if moments.updates == 0:
        if kind == "ledoit_wolf":
            return ledoit_wolf_of(x - moments.shift, moments.gram)
        return np.asarray(moments.gram * np.true_divide(1, bars - 1), dtype=np.float64)
    mean = x.mean(axis=0)
    drift = mean - moments.shift
    scaled = np.sqrt(bars) * drift  # the centred Gram matrix G - T d d', symmetric
    gram = np.subtract(moments.gram, np.outer(scaled, scaled))
    if kind == "sample":
        gram /= bars - 1
        return gram
    # Ledoit-Wolf in O(T N + N^2): the variances are the Gram matrix's diagonal, the sum of
    # (X**2)'(X**2) the sum over bars of each bar's squared norm, squared
    n = x.shape[1]
    centred = x - mean
    norms = np.einsum("ij,ij->i", centred, centred)
    variances = np.diag(gram) / bars
    shrinkage, mu = shrinkage_of(variances, float(np.vdot(gram, gram)), float(norms @ norms), bars)
    gram *= (1.0 - shrinkage) / bars
    gram.flat[:: n + 1] += shrinkage * mu
    return gram


class CarriedCovariance:
    """One allocator's carried covariance over a run (see the module): the windows the
    engine shows it (`observe`), folded in order into its moments, and the estimate of
    the window it is asked for (`covariance`).

    The engine may observe a window on the bar's thread while the allocator solves the
    previous one in a worker (paper and live): the windows wait in order and are folded
    under a lock, by the next solve or by the next observation, so the moments never
    depend on which thread folded them.

    Args:
        kind: The estimator.
        halflife: Its halflife (``exponential``).
    """

    def __init__(self, kind: CovarianceKind, halflife: float | None = None) -> None:
        self.kind = kind
        self.halflife = halflife
        self.every = RECOMPUTE_EVERY
        self._moments: Moments | None = None
        self._pending: deque[npt.NDArray[np.float64]] = deque()
        self._lock = threading.Lock()

    @property
    def moments(self) -> Moments | None:
        """The moments of the last window folded (None: none carried)."""
        return self._moments

    def observe(self, returns: npt.NDArray[np.float64]) -> None:
        """Take a rebalance's window, in bar order (solved or not)."""
        if self.kind == "exponential":
            return
        self._pending.append(np.array(returns, dtype=np.float64))
        # fold what waits before it on this thread when no solve is folding: a restart's
        # replay answers every rebalance from the journal, and nothing else would
        if len(self._pending) > 1 and self._lock.acquire(blocking=False):
            try:
                self._fold(keep=1)
            finally:
                self._lock.release()

    def reset(self) -> None:
        """Forget the carried moments and every window observed."""
        with self._lock:
            self._moments = None
            self._pending.clear()

    def covariance(self, returns: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Return the estimate of ``returns``: from the moments when it is the window last
        observed (or the next slide of it: a caller that does not observe), recomputed
        otherwise."""
        x = np.asarray(returns, dtype=np.float64)
        if self.kind == "exponential":
            return covariance(x, self.kind, self.halflife)
        with self._lock:
            self._fold(keep=0)
            moments = self._moments
            if moments is None or not np.array_equal(moments.window, x):
                moments = self._moments = advance(moments, x, self.kind, self.every)
        if moments is None:
            return covariance(x, self.kind, self.halflife)
        return estimate(moments, self.kind)

    def __getstate__(self) -> dict[str, object]:
        # a copy (a challenger's allocator, a process pool's) carries the moments, not the lock
        state = dict(self.__dict__)
        del state["_lock"]
        state["_pending"] = deque(self._pending)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _fold(self, keep: int) -> None:
        while len(self._pending) > keep:
            window = self._pending.popleft()
            self._moments = advance(self._moments, window, self.kind, self.every, owned=True)
