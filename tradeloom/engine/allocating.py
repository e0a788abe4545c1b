"""The allocation layer's stage of a bar: trailing closes in, rebalance targets out.

With ``allocation:``, the compiled step stops after the halts of every bar
(`tradeloom.core.layout.NEED_ALLOCATE`) and runs no signal: the allocator decides the
positions. `Rebalancer` is what the driver answers with; it is the same in every mode
and reads nothing but what it was given, bar by bar:

1. every bar's closes enter its own ring of the last ``window + 1`` closes (the
   trailing window ends at the decision bar, never after it: a later bar is not yet
   known to it);
2. once the ring is full, at a bar the schedule asks for
   (`tradeloom.engine.rebalance.rebalance_due`; not while trading is halted), the
   allocator is called with the window's close-to-close simple returns, the model's
   probabilities of the decision bar, the label's horizon and the weights held at the
   bar's close;
3. its answer is an `AllocationDecision`: when ``ok``, the targets and the changes to
   trade, ``target - held`` with each change below ``min_trade`` left at 0 unless its
   target is zero (`tradeloom.engine.rebalance.trades_after_min`), a target within
   `TOLERANCE` of zero being zero (`tradeloom.engine.rebalance.tradable`); otherwise
   (the allocator's ``infeasible`` or ``failed``, a symbol without a bar in the window,
   an exception, weights that are not finite or break a constraint, a solve past its
   deadline) no trade, and the last feasible targets stay in force (never an equal
   weight in their place).

Every decision's window, solved or not, is shown to an allocator that carries its
estimate from one rebalance to the next (`tradeloom.plugins.protocols_allocation.RollingAllocator`)
on the bar's path, before the solve: what it carries, and with it every weight, is the
same in every mode.

Who solves is the one thing a mode changes (`Rebalancer.solver`): a backtest calls
`Rebalancer.solve` on the bar's path; a paper or live run solves in a worker thread
with a deadline (`tradeloom.live.tick.allocation_solver.DeadlineSolver`: past it the
decision is ``late``); a restart's replay takes each decision the journal holds
(`tradeloom.live.tick.allocation_solver.JournaledSolver`), never solving again. A parity
replay gives the run's decisions by time (`Rebalancer.given`): it decides at exactly
those bars with those answers, neither the window nor the schedule asked (its bars start
at the run's first live bar, the run's window reached into the history before it); a
``late`` one it solves itself once its window is full (what a backtest would have
traded: the run's own solve was dropped past its deadline).

Every rebalance is journaled (`tradeloom.journal.AllocationDecided`) before its orders.
A symbol whose bar already holds an exit (a halt's, the holding limit's, a stop at the
close) keeps that exit; a symbol without a bar at the decision is not traded. A target
whose position would be below the venue's minimum is a target of zero too: the core
closes the position (`tradeloom.core.dust`), in every mode.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloom.engine.rebalance import ZERO_WEIGHT, rebalance_due, tradable, trades_after_min
from tradeloom.plugins.protocols import LabelHorizon
from tradeloom.plugins.protocols_allocation import (
    Allocator,
    RollingAllocator,
    WeightConstraints,
    constraint_violation,
)
from tradeloom.runtime.lazy import numpy as np
from tradeloom.schemas.allocation import Rebalance, weight_constraints

if TYPE_CHECKING:
    import numpy.typing as npt

    from tradeloom.engine.wiring import Pipeline

__all__ = [
    "LATE",
    "TOLERANCE",
    "AllocationDecision",
    "AllocationRequest",
    "Rebalancer",
    "Solution",
    "Solver",
    "allocate_checked",
    "rebalancer_of",
]

LATE = "late"
"""The status of a rebalance whose solve passed its deadline (paper and live): its
targets are the last ones, and nothing is traded."""

TOLERANCE = ZERO_WEIGHT
"""How far an allocator's weights may break a constraint before the answer is refused,
the one tolerance of the one check (`allocate_checked`: the convex solvers run to gaps of
1e-12 and stay within `tradeloom.plugins.allocation.program.SOLVER_TOLERANCE`, the same
1e-6, of the optimum; the closed forms are exact); a weight within it of zero is traded
as zero (`tradeloom.engine.rebalance.tradable`)."""


@dataclass(frozen=True)
class AllocationRequest:
    """What one rebalance's allocator is given (copies: a worker thread may read them).

    Attributes:
        bar: The decision bar.
        closes: The last ``window + 1`` closes, oldest first (``[window + 1, symbols]``).
        returns: Their close-to-close simple returns.
        probabilities: The model's probability per symbol at the bar (NaN: none).
        held: The weights held at the bar's close.
        previous: What the allocator is given as the weights held (None at the first
            rebalance).
        inputs_hash: The hash of the returns, the probabilities and the held weights.
    """

    bar: int
    closes: npt.NDArray[np.float64]
    returns: npt.NDArray[np.float64]
    probabilities: npt.NDArray[np.float64]
    held: npt.NDArray[np.float64]
    previous: npt.NDArray[np.float64] | None
    inputs_hash: str


Solution = tuple[str, str, "npt.NDArray[np.float64] | None"]
"""A solve's ``(status, message, weights)``: the weights when ``ok``, else None."""

Solver = Callable[[AllocationRequest], Solution]
"""Who answers a rebalance (`Rebalancer.solver`)."""


@dataclass(frozen=True)
class AllocationDecision:
    """One rebalance's outcome.

    Attributes:
        status: ``ok``, the allocator's ``infeasible`` or ``failed``, ``too_few_bars``,
            ``error`` or ``late`` (`tradeloom.journal.AllocationDecided`).
        message: Why it is not ok ('' when ok).
        weights: The targets in force after it (None: none yet).
        held: The weights held at the decision bar's close.
        trades: The weight changes to trade (None: nothing is traded).
        inputs_hash: The hash of what the allocator was given.
        window: The returns it was given.
        orders: The weights the orders aim at (`tradeloom.engine.rebalance.tradable`:
            the targets, each within `TOLERANCE` of zero made 0; None: nothing is traded).
    """

    status: str
    message: str
    weights: npt.NDArray[np.float64] | None
    held: npt.NDArray[np.float64]
    trades: npt.NDArray[np.float64] | None
    inputs_hash: str
    window: int
    orders: npt.NDArray[np.float64] | None = None


class Rebalancer:
    """Decide the rebalances of one allocation, bar by bar (see the module).

    Args:
        allocator: The built allocator.
        kind: Its kind (journaled).
        window: The trailing returns of each rebalance (``allocation.window``).
        constraints: The constraints, resolved over the symbols.
        rule: The schedule.
        min_trade: ``constraints.min_trade`` (None: every change is traded).
        horizon: The label's horizon in bars (0: unknown).
        symbols: The universe's symbols.
        given: Decisions given by their bar's open time (UTC ns), ``(status, message,
            weights)``: decide at those bars only, with those answers (a parity replay).
    """

    def __init__(
        self,
        allocator: Allocator,
        *,
        kind: str,
        window: int,
        constraints: WeightConstraints,
        rule: Rebalance,
        min_trade: float | None,
        horizon: int,
        symbols: Sequence[str],
        given: Mapping[int, tuple[str, str, Sequence[float] | None]] | None = None,
    ) -> None:
        self.allocator = allocator
        self.kind = kind
        self.window = window
        self.constraints = constraints
        self.rule = rule
        self.min_trade = min_trade
        self.horizon = horizon
        self.symbols = tuple(symbols)
        self._ring = np.full((window + 1, len(symbols)), np.nan)
        self._count = 0
        self.last_bar: int | None = None
        self.last_time_ns: int | None = None
        self.target: npt.NDArray[np.float64] | None = None
        """The last feasible targets (None: none yet)."""
        self.solver: Solver = self.solve
        """Who answers a rebalance: `solve` on the bar's path (a backtest), a worker with
        a deadline (paper and live), the journal (a restart's replay)."""
        self.given = given

    def closes(self) -> npt.NDArray[np.float64]:
        """Return the last ``window + 1`` closes, oldest first (NaN before they are known)."""
        start = self._count % self._ring.shape[0]
        return np.concatenate((self._ring[start:], self._ring[:start]))

    def decide(
        self,
        bar: int,
        time_ns: int,
        close: npt.NDArray[np.float64],
        probabilities: npt.NDArray[np.float64],
        held: npt.NDArray[np.float64],
        *,
        trading: bool = True,
    ) -> AllocationDecision | None:
        """Take bar ``bar``'s closes; return its rebalance, or None when none is due.

        Args:
            bar: The decision bar.
            time_ns: Its open time (UTC ns): the calendar schedules read it.
            close: Its close per symbol (NaN: the symbol has no bar).
            probabilities: The model's probability per symbol at the bar (NaN: none).
            held: The weights held at its close.
            trading: False while trading is halted: the closes are taken, nothing is
                decided.
        """
        self._ring[self._count % self._ring.shape[0]] = close
        self._count += 1
        full = self._count >= self._ring.shape[0]
        given = None if self.given is None else self.given.get(time_ns)
        if not trading or (self.given is not None and given is None):
            return None
        if given is None and (not full or not self._due(bar, time_ns, held)):
            return None
        self.last_bar, self.last_time_ns = bar, time_ns
        closes = self.closes()
        returns = closes[1:] / closes[:-1] - 1.0
        p = np.array(probabilities, dtype=np.float64)
        previous = np.array(held, dtype=np.float64)
        digest = hashlib.sha256()
        for part in (returns, p, previous):
            digest.update(np.ascontiguousarray(part).tobytes())
        if isinstance(self.allocator, RollingAllocator):  # every window, in every mode
            self.allocator.observe(returns)
        prior = previous if self.target is not None else None  # None at the first
        request = AllocationRequest(
            bar, closes, returns, p, previous, prior, digest.hexdigest()[:16]
        )
        if given is None:
            status, message, weights = self.solver(request)
        elif given[0] == LATE and full:  # the backtest's answer: the run's was dropped
            status, message, weights = self.solve(request)
        else:
            status, message = given[:2]
            weights = None if given[2] is None else np.array(given[2], dtype=np.float64)
        trades = orders = None
        if weights is not None:
            self.target = np.array(weights, dtype=np.float64)
            orders = tradable(self.target)
            trades = trades_after_min(orders, previous, self.min_trade)
        return AllocationDecision(
            status,
            message,
            self.target,
            previous,
            trades,
            request.inputs_hash,
            self.window,
            orders,
        )

    def _due(self, bar: int, time_ns: int, held: npt.NDArray[np.float64]) -> bool:
        if self.rule.drift is not None and self.target is None:
            return True  # no feasible target yet to drift from: try again
        return rebalance_due(
            self.rule,
            bar=bar,
            time_ns=time_ns,
            last_bar=self.last_bar,
            last_time_ns=self.last_time_ns,
            target=self.target,
            held=held,
        )

    def solve(self, request: AllocationRequest) -> Solution:
        """Return the allocator's answer to ``request``, checked: a symbol without a bar in
        the window, an exception, or weights that break a constraint are no weights."""
        closes = request.closes
        missing = ~np.isfinite(closes) | (closes <= 0.0)
        if missing.any():
            k = int(np.flatnonzero(missing.any(axis=0))[0])
            gaps = int(missing[:, k].sum())
            return (
                "too_few_bars",
                f"{self.symbols[k]} has no bar (or no price) at {gaps} of the "
                f"{closes.shape[0]} closes a window of {self.window} returns needs",
                None,
            )
        return allocate_checked(
            self.allocator,
            self.kind,
            request.returns,
            self.constraints,
            request.probabilities,
            self.horizon,
            request.previous,
        )


def allocate_checked(
    allocator: Allocator,
    kind: str,
    returns: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    probabilities: npt.NDArray[np.float64] | None,
    horizon: int,
    previous: npt.NDArray[np.float64] | None,
) -> Solution:
    """Return ``allocator``'s answer, checked: the one place an allocation's answer is held
    to its constraints, for every allocator and both universes (a strategy's symbols, a
    portfolio's strategies: `tradeloom.engine.allocation.SleeveWeights`).

    An exception is ``error`` (an allocator's bug is journaled, never a crash); weights
    that are not finite or break a constraint by more than `TOLERANCE` are ``error``
    (``KIND answered weights that break max_weight: ...``); ``infeasible`` and ``failed``
    are the allocator's own, with its message.

    Args:
        allocator: The built allocator.
        kind: Its kind (the messages start with it).
        returns: The window's returns, ``[bars, columns]``, oldest first.
        constraints: The constraints, resolved over the columns.
        probabilities: The model's probability per column at the decision (None: none).
        horizon: The label's horizon in bars (0: unknown).
        previous: The weights held before this rebalance (None at the first).
    """
    try:
        result = allocator.allocate(returns, constraints, probabilities, horizon, previous)
    except Exception as exc:  # an allocator's bug is journaled, never a crash
        text = " ".join(str(exc).split()) or type(exc).__name__
        return "error", f"{kind} raised {type(exc).__name__}: {text}", None
    if result.status != "ok" or result.weights is None:
        return result.status, result.message or f"{kind} gave no weights", None
    weights = np.asarray(result.weights, dtype=np.float64)
    broken = constraint_violation(weights, constraints, previous, TOLERANCE)
    if broken is not None:
        return "error", f"{kind} answered weights that break {broken}", None
    return "ok", "", weights.copy()


def rebalancer_of(
    pipeline: Pipeline, symbols: Sequence[str], *, periods_per_year: float
) -> Rebalancer | None:
    """Return the `Rebalancer` of ``pipeline``'s ``allocation:`` over ``symbols``, or None
    without one.

    Args:
        pipeline: The built strategy.
        symbols: The universe's symbols, in the inputs' order (the allocator is told
            them: `tradeloom.plugins.protocols_allocation.WeightConstraints.names`).
        periods_per_year: Bars in a year of the data's calendar and timeframe
            (`tradeloom.engine.core_spec.sizing_year`): the declared transaction cost
            is charged against a year's expected return.
    """
    config = pipeline.config
    allocator = pipeline.allocator
    if allocator is None or config.allocation is None:
        return None
    declared = config.allocation_constraints
    rule = config.allocation_rebalance
    assert declared is not None and rule is not None  # with the section (the loader's)
    groups = config.risk_portfolio.groups
    model = pipeline.model
    horizon = int(model.horizon or 0) if isinstance(model, LabelHorizon) else 0
    return Rebalancer(
        allocator,
        kind=config.allocation.kind,
        window=config.allocation_window,
        constraints=weight_constraints(
            declared,
            symbols,
            groups,
            periods_per_year=periods_per_year,
            sides=config.signal_sides,
        ),
        rule=rule,
        min_trade=declared.min_trade,
        horizon=horizon,
        symbols=symbols,
        given=pipeline.rebalances,
    )
