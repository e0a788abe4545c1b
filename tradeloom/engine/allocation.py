"""How a portfolio file shares the account between its strategies, bar by bar.

Each strategy sizes against its share of the account's equity: a sizing of ``f``
becomes ``f x weight`` of the account. The weights a decision at bar ``t`` uses are
fixed for the bar and read nothing after bar ``t - 1``'s close:

- ``fixed``: each strategy's ``weight`` (normalized if asked), at every bar.
- ``inverse_volatility`` and ``risk_parity`` (`TrailingWeights`): each strategy's
  return at a bar is its books' P&L over the bar divided by its allocated capital at
  the previous bar (its weight times the account's equity then). Before ``window``
  returns are known every weight is ``1 / K``. Once they are, at every bar (no
  ``rebalance``) or at the bars the schedule asks for
  (`tradeloom.engine.rebalance.rebalance_due`: every N bars from the first, or the
  first bar of a week or month), the weights are recomputed from the last ``window``
  returns and hold until the next rebalance:

  * ``inverse_volatility``: proportional to 1 / the standard deviation (``ddof=1``) of
    each strategy's returns (`inverse_volatility_weights`);
  * ``risk_parity``: equal risk contributions ``w_i (S w)_i`` under the sample
    covariance ``S`` (``ddof=1``) of the returns
    (`tradeloom.plugins.protocols_allocation.erc_weights`; two strategies: the same
    weights as inverse volatility, whatever their correlation).

  A strategy whose returns have no volatility yet (it never traded in the window)
  keeps the equal share ``1 / K``; the others share the rest. The weights sum to 1.

Each recomputation is a decision the engine journals (``allocation_decided``, its
``symbols`` the strategies' names; `tradeloom.engine.account.Ledger`). A parity replay
takes a run's journaled decisions instead of recomputing them (`GivenWeights`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from tradeloom.engine.rebalance import rebalance_due
from tradeloom.plugins.protocols_allocation import erc_weights
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.schemas.allocation import Rebalance

__all__ = [
    "FixedWeights",
    "GivenWeights",
    "StrategyWeights",
    "TrailingWeights",
    "inverse_volatility_weights",
    "risk_parity_weights",
]


class FixedWeights:
    """The same weights at every bar."""

    moves = False
    """Whether the weights depend on the returns (the engine books them as it goes)."""
    calendar = False
    """Whether `push` reads the bar's time (a calendar schedule)."""
    kind = "fixed"
    window = 0

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = np.asarray(weights, np.float64)

    def push(self, returns: npt.NDArray[np.float64], bar: int = -1, time_ns: int = 0) -> bool:
        """Take one bar's returns (ignored: the weights are fixed); return False (no
        decision)."""
        return False

    def inputs(self) -> npt.NDArray[np.float64]:
        """Return no returns: the weights read none."""
        return np.empty((0, len(self.weights)))


class TrailingWeights:
    """Weights from each strategy's trailing returns, recomputed on a schedule (see the
    module).

    Args:
        strategies: How many strategies share the account.
        window: The returns in the trailing window.
        weigh: The weights of a full window (``[window, strategies]``), summing to 1.
        rule: When they are recomputed (None: at every bar).
        kind: The allocation's kind (``allocation.kind``, journaled with each decision).
    """

    moves = True

    def __init__(
        self,
        strategies: int,
        window: int,
        weigh: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
        rule: Rebalance | None = None,
        kind: str = "",
    ) -> None:
        self.kind = kind
        self.window = window
        self.weigh = weigh
        self.rule = rule
        self._ring = np.zeros((window, strategies))
        self._count = 0
        self._last: tuple[int, int] | None = None  # the last rebalance's bar and time
        self.weights = np.full(strategies, 1.0 / strategies)
        self.calendar = rule is not None and rule.calendar is not None

    def push(self, returns: npt.NDArray[np.float64], bar: int = -1, time_ns: int = 0) -> bool:
        """Take bar ``bar``'s returns (one per strategy; ``time_ns`` its open time); the
        weights then apply to the next bar. Return whether they were recomputed."""
        self._ring[self._count % self.window] = returns
        self._count += 1
        if self._count < self.window:
            return False
        rule = self.rule
        if rule is not None:
            last_bar, last_time = self._last if self._last is not None else (None, None)
            if not rebalance_due(
                rule, bar=bar, time_ns=time_ns, last_bar=last_bar, last_time_ns=last_time
            ):
                return False
            self._last = (bar, time_ns)
        self.weights = self.weigh(self._ring)
        return True

    def inputs(self) -> npt.NDArray[np.float64]:
        """Return the returns of the window, oldest first (``[window, strategies]``)."""
        return np.roll(self._ring, -(self._count % self.window), axis=0)


class GivenWeights:
    """The weights a run decided, set at the bars it decided them: neither a window nor
    a schedule is asked (a parity replay of a run's journaled decisions,
    `tradeloom.diagnostics.parity_portfolio`).

    Args:
        start: The weights in force at the first bar (the run's last decision before it).
        given: The weights decided, by the open time (UTC ns) of the bar at whose close
            they were decided; they apply from the next bar.
        window: The run's window, and ``kind`` its allocation's kind (journaled with
            each decision).
    """

    moves = True
    calendar = True  # `push` reads the bar's time: the decisions are keyed by it

    def __init__(
        self,
        start: Sequence[float],
        given: Mapping[int, Sequence[float]],
        window: int = 0,
        kind: str = "",
    ) -> None:
        self.kind = kind
        self.weights = np.asarray(start, np.float64)
        self.given = {t: np.asarray(w, np.float64) for t, w in given.items()}
        self.window = window

    def push(self, returns: npt.NDArray[np.float64], bar: int = -1, time_ns: int = 0) -> bool:
        """Set the weights decided at the bar opened at ``time_ns`` (the returns are not
        read); return whether there were any."""
        weights = self.given.get(time_ns)
        if weights is None:
            return False
        self.weights = weights
        return True

    def inputs(self) -> npt.NDArray[np.float64]:
        """Return no returns: the weights were given."""
        return np.empty((0, len(self.weights)))


StrategyWeights = FixedWeights | TrailingWeights | GivenWeights
"""How a portfolio file's account shares its equity between the strategies."""


def inverse_volatility_weights(returns: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the weights for a full window of returns (``[window, strategies]``).

    A strategy with no volatility (a zero or non-finite standard deviation) gets
    ``1 / K``; the others share what is left in proportion to ``1 / volatility``.
    """
    k = returns.shape[1]
    volatility = returns.std(axis=0, ddof=1)
    known = np.isfinite(volatility) & (volatility > 0.0)
    weights = np.full(k, 1.0 / k)
    if known.any():
        inverse = 1.0 / volatility[known]
        weights[known] = inverse / inverse.sum() * (known.sum() / k)
    return weights


def risk_parity_weights(returns: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the equal-risk-contribution weights for a full window of returns
    (``[window, strategies]``), summing to 1.

    A strategy with no volatility gets ``1 / K``; the others share what is left by the
    equal risk contributions of their own covariance (sample, ``ddof=1``). Should the
    coordinate descent not converge, they share it by inverse volatility.
    """
    k = returns.shape[1]
    volatility = returns.std(axis=0, ddof=1)
    known = np.isfinite(volatility) & (volatility > 0.0)
    weights = np.full(k, 1.0 / k)
    if known.any():
        cov = np.atleast_2d(np.cov(returns[:, known], rowvar=False, ddof=1))
        found = erc_weights(cov)
        if isinstance(found, str):  # not seen: the descent converges on a covariance
            return inverse_volatility_weights(returns)
        weights[known] = found * (known.sum() / k)
    return weights
