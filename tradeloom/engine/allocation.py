"""How a portfolio file shares the account between its strategies, bar by bar: the
strategies are a universe of **sleeves**, weighed by the same allocators as a strategy's
symbols (`tradeloom.plugins.protocols_allocation.Allocator`); this module computes no
weight of its own. It is the adapter: each sleeve's returns in, the allocator's weights
out.

Each strategy sizes against its share of the account's equity: a sizing of ``f``
becomes ``f x weight`` of the account. The weights a decision at bar ``t`` uses are
fixed for the bar and read nothing after bar ``t - 1``'s close:

- ``fixed``: each strategy's ``weight`` (normalized if asked), at every bar
  (`FixedWeights`).
- any allocator kind (`SleeveWeights`): each strategy's return at a bar is its books'
  P&L over the bar divided by its allocated capital at the previous bar (its weight times
  the account's equity then). Before ``window`` returns are known every weight is
  ``1 / K``. Once they are, at every bar (no ``rebalance``) or at the bars the schedule
  asks for (`tradeloom.engine.rebalance.rebalance_due`: every N bars from the first, or
  the first bar of a week or month), the allocator is asked for the weights of the last
  ``window`` returns, under ``allocation.constraints`` resolved over the strategies'
  names, the weights in force given as the held ones (None before a first answer). Its
  answer is checked once, as a strategy's is
  (`tradeloom.engine.allocating.allocate_checked`); when it is not ``ok`` the weights in
  force stay (equal until a first answer): a strategy whose returns never varied over
  the window (it did not trade) is a flat series, which the allocators that weigh by
  risk refuse naming it (`tradeloom.plugins.allocation.window`), as they refuse a flat
  symbol.

Each answer is a decision the engine journals (``allocation_decided``, its ``symbols``
the strategies' names, its ``weights`` those in force after it;
`tradeloom.engine.account.Ledger`). A parity replay takes a run's journaled decisions
instead of asking again (`GivenWeights`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tradeloom.engine.allocating import allocate_checked
from tradeloom.engine.rebalance import rebalance_due
from tradeloom.plugins.protocols_allocation import Allocator, WeightConstraints
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.schemas.allocation import Rebalance

__all__ = [
    "FixedWeights",
    "GivenWeights",
    "SleeveWeights",
    "StrategyWeights",
]


class FixedWeights:
    """The same weights at every bar."""

    moves = False
    """Whether the weights depend on the returns (the engine books them as it goes)."""
    calendar = False
    """Whether `push` reads the bar's time (a calendar schedule)."""
    kind = "fixed"
    window = 0
    status = "ok"
    message = ""

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = np.asarray(weights, np.float64)

    def push(self, returns: npt.NDArray[np.float64], bar: int = -1, time_ns: int = 0) -> bool:
        """Take one bar's returns (ignored: the weights are fixed); return False (no
        decision)."""
        return False

    def inputs(self) -> npt.NDArray[np.float64]:
        """Return no returns: the weights read none."""
        return np.empty((0, len(self.weights)))


class SleeveWeights:
    """The strategies' weights from an allocator over their trailing returns, asked on a
    schedule (see the module).

    Args:
        allocator: The built allocator of ``allocation.kind``.
        kind: Its kind (journaled with each decision).
        window: The returns in the trailing window.
        constraints: ``allocation.constraints`` resolved over the strategies' names.
        rule: When the allocator is asked (None: at every bar once the window is full).
    """

    moves = True

    def __init__(
        self,
        allocator: Allocator,
        *,
        kind: str,
        window: int,
        constraints: WeightConstraints,
        rule: Rebalance | None = None,
    ) -> None:
        strategies = constraints.symbols
        self.allocator = allocator
        self.kind = kind
        self.window = window
        self.constraints = constraints
        self.rule = rule
        self._ring = np.zeros((window, strategies))
        self._count = 0
        self._last: tuple[int, int] | None = None  # the last decision's bar and time
        self.weights = np.full(strategies, 1.0 / strategies)
        self.answered = False
        """Whether the allocator has answered ``ok`` once (the held weights it is given)."""
        self.status = "ok"
        """The last decision's status (`tradeloom.engine.allocating.allocate_checked`)."""
        self.message = ""
        """Why the last decision is not ``ok`` ('' when it is)."""
        self.calendar = rule is not None and rule.calendar is not None

    def push(self, returns: npt.NDArray[np.float64], bar: int = -1, time_ns: int = 0) -> bool:
        """Take bar ``bar``'s returns (one per strategy; ``time_ns`` its open time); the
        weights then apply to the next bar. Return whether the allocator was asked (its
        answer: `status`, `message`, and `weights` when ``ok``)."""
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
        previous = self.weights.copy() if self.answered else None
        status, message, weights = allocate_checked(
            self.allocator, self.kind, self.inputs(), self.constraints, None, 0, previous
        )
        self.status, self.message = status, message
        if weights is not None:
            self.weights = weights
            self.answered = True
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
        given: The decisions ``(status, message, weights)``, by the open time (UTC ns)
            of the bar at whose close they were made: ``ok`` ones' weights apply from
            the next bar; for another answer (``weights`` None) the weights in force
            stay, and the decision is journaled as the run journaled it.
        window: The run's window, and ``kind`` its allocation's kind (journaled with
            each decision).
    """

    moves = True
    calendar = True  # `push` reads the bar's time: the decisions are keyed by it

    def __init__(
        self,
        start: Sequence[float],
        given: Mapping[int, tuple[str, str, Sequence[float] | None]],
        window: int = 0,
        kind: str = "",
    ) -> None:
        self.kind = kind
        self.weights = np.asarray(start, np.float64)
        self.given = dict(given)
        self.window = window
        self.status = "ok"
        self.message = ""

    def push(self, returns: npt.NDArray[np.float64], bar: int = -1, time_ns: int = 0) -> bool:
        """Take the decision made at the bar opened at ``time_ns`` (the returns are not
        read); return whether there was one."""
        decision = self.given.get(time_ns)
        if decision is None:
            return False
        self.status, self.message, weights = decision
        if weights is not None:
            self.weights = np.asarray(weights, np.float64)
        return True

    def inputs(self) -> npt.NDArray[np.float64]:
        """Return no returns: the weights were given."""
        return np.empty((0, len(self.weights)))


StrategyWeights = FixedWeights | SleeveWeights | GivenWeights
"""How a portfolio file's account shares its equity between the strategies."""
