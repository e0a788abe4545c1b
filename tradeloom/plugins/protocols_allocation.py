"""The allocation layer's protocol: trailing returns (and the model's views) in, target
weights and the solver's status out.

An allocator is optional in a strategy (``allocation:``). Given the universe's trailing
returns, a ``[bars, symbols]`` float64 array of close-to-close simple returns that ends at
the decision bar (never a later one), and, when the engine has them, the model's
per-symbol probabilities of an up move over the label's horizon, it returns the target
weights: signed fractions of equity, one per symbol, in the data section's order. What
it may not do is raise for a market it cannot solve: a singular covariance or a solver
that fails is an `AllocationResult` with status ``infeasible`` or ``failed`` and a
message, which the engine journals before it keeps the last feasible weights. A series
whose returns never vary over the window (a flat symbol, or a portfolio's strategy that
did not trade) is ``failed``, named, for every built-in allocator that weighs by risk
(`tradeloom.plugins.allocation.window`): the one convention for a flat series.

The same protocol weighs a portfolio file's strategies as a universe of sleeves
(`tradeloom.engine.allocation.SleeveWeights`): their names are `WeightConstraints.names`,
their returns the books' P&L over their capital, and no probabilities are given.

An allocator that can sell short says so on its params model, ``allows_short:
ClassVar[bool] = True``; validation refuses ``constraints.side: long_short`` for any
other. An allocator that cannot honour a constraint says so too, ``honours:
ClassVar[frozenset[str]]`` naming the ones it does among `HONOURABLE` (without it: all):
validation refuses a declared one it leaves out, rather than answering ``infeasible``
rebalance after rebalance.

The allocator knows its symbols by `WeightConstraints.names` (the data section's, in the
columns' order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ERC_MAX_SWEEPS",
    "ERC_TOLERANCE",
    "HONOURABLE",
    "AllocationResult",
    "AllocationStatus",
    "Allocator",
    "GroupCap",
    "RollingAllocator",
    "WeightConstraints",
    "constraint_violation",
    "erc_weights",
    "infeasibility",
]

AllocationStatus = Literal["ok", "infeasible", "failed"]
"""``ok``: weights found; ``infeasible``: the constraints cannot all hold on this window
(the solver proved it, or the bounds cannot reach the exposure); ``failed``: no answer (a
flat series, a singular covariance, NaN returns, a solver error). Whether ``ok`` weights
meet the constraints is checked once, by the engine
(`tradeloom.engine.allocating.allocate_checked`)."""


HONOURABLE = frozenset({"group_caps", "max_turnover", "transaction_cost"})
"""The constraints an allocator may declare it cannot honour (its params model's
``honours`` leaves them out). The bounds and the net exposure every allocator meets."""


ERC_TOLERANCE = 1e-12
"""Risk parity's coordinate descent stops when no weight moves by more than this fraction
of itself in a sweep: the risk contributions are then equal to about 1e-10 of each other."""

ERC_MAX_SWEEPS = 10_000
"""Sweeps of the coordinate descent before risk parity answers ``failed``."""


@dataclass(frozen=True)
class GroupCap:
    """A cap on one group of symbols: the group's net weight lies in ``[-cap, cap]``.

    Attributes:
        name: The group's name (``risk.portfolio.groups``).
        members: The members' indices among the symbols.
        cap: The largest net weight of the group (long-only: its total weight).
    """

    name: str
    members: tuple[int, ...]
    cap: float


@dataclass(frozen=True)
class WeightConstraints:
    """The constraints of ``allocation.constraints``, resolved over the universe's symbols.

    Attributes:
        min_weight: Each symbol's least weight (negative: it may be short).
        max_weight: Each symbol's largest weight.
        net_exposure: The weights' sum (longs minus shorts), which every allocator meets.
        gross_exposure: The largest sum of ``|weight|`` (long-short only; None: no cap
            beyond the bounds).
        groups: The group caps.
        max_turnover: The largest ``sum(|weight - previous|)`` of one rebalance (None: no
            limit; applies when the previous weights are given).
        transaction_cost: A cost per unit of turnover in the returns' own units (per
            bar), subtracted from the expected return per bar of the allocators that
            maximise one (0: none): the declared ``transaction_cost`` spread over a
            year of bars (`tradeloom.schemas.allocation.weight_constraints`).
        names: The symbols, in the order of the returns' columns (empty: not told; a
            caller that builds constraints by hand may leave them out).
    """

    min_weight: tuple[float, ...]
    max_weight: tuple[float, ...]
    net_exposure: float = 1.0
    gross_exposure: float | None = None
    groups: tuple[GroupCap, ...] = ()
    max_turnover: float | None = None
    transaction_cost: float = 0.0
    names: tuple[str, ...] = ()

    @classmethod
    def long_only(
        cls, symbols: int, *, net_exposure: float = 1.0, names: Sequence[str] = ()
    ) -> WeightConstraints:
        """Return the default: every weight in ``[0, net_exposure]``, summing to it."""
        return cls((0.0,) * symbols, (net_exposure,) * symbols, net_exposure, names=tuple(names))

    def name(self, k: int) -> str:
        """Return how a message names symbol ``k``: its name, or ``symbol k`` untold."""
        return self.names[k] if k < len(self.names) else f"symbol {k}"

    @property
    def symbols(self) -> int:
        """The number of symbols."""
        return len(self.min_weight)

    @property
    def shorts(self) -> bool:
        """Whether any weight may be negative."""
        return min(self.min_weight, default=0.0) < 0.0


@dataclass(frozen=True)
class AllocationResult:
    """An allocator's answer for one rebalance.

    Attributes:
        status: ``ok``, ``infeasible`` or ``failed`` (`AllocationStatus`).
        weights: The target weights, one per symbol, when ``ok``; None otherwise (the
            engine then keeps the last feasible weights: never a silent equal weight).
        message: Why it is not ``ok``, in one line naming the cause; empty when ok.
    """

    status: AllocationStatus
    weights: npt.NDArray[np.float64] | None = field(default=None, compare=False)
    message: str = ""

    @classmethod
    def ok(cls, weights: npt.NDArray[np.float64]) -> AllocationResult:
        """Return a result holding ``weights``."""
        return cls("ok", np.asarray(weights, dtype=np.float64))

    @classmethod
    def infeasible(cls, message: str) -> AllocationResult:
        """Return a result saying the constraints cannot all hold, and which."""
        return cls("infeasible", None, message)

    @classmethod
    def failed(cls, message: str) -> AllocationResult:
        """Return a result saying no answer was found, and why."""
        return cls("failed", None, message)


@runtime_checkable
class Allocator(Protocol):
    """Allocation layer: target weights from the universe's trailing returns.

    Called at each rebalance the schedule (``allocation.rebalance``) asks for, with the
    returns of the trailing window only; the engine turns the weights into orders.
    """

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the target weights, or why there are none.

        Args:
            returns: ``[bars, symbols]`` float64 simple returns, oldest first, the last
                row the decision bar's.
            constraints: The declared constraints, resolved over the symbols (their
                names: ``constraints.names``, in the order of the returns' columns).
            probabilities: The model's probability of an up move over ``horizon`` bars
                per symbol at the decision bar (NaN: no prediction), or None.
            horizon: The label's horizon in bars (0: unknown).
            previous: The weights held before this rebalance (for turnover and costs),
                or None at the first.

        Returns:
            An `AllocationResult`; never raises for a market it cannot solve.
        """
        ...


@runtime_checkable
class RollingAllocator(Protocol):
    """An allocator that carries an estimate from one rebalance to the next (the built-in
    ones that weigh by risk: `tradeloom.plugins.allocation.rolling`).

    The engine shows it every rebalance's window, in bar order and in every mode, before
    the rebalance is solved, answered from the journal (a restart's replay), given (a
    parity replay), or dropped past its deadline: what it carries is then a function of
    the windows alone, the same in a backtest, a paper run, its restart and its parity
    replay. It is called on the bar's thread, possibly while the allocator solves the
    previous window in a worker: it must be cheap and may not block on that solve.
    """

    def observe(self, returns: npt.NDArray[np.float64]) -> None:
        """Take one rebalance's window (``[bars, symbols]`` returns, possibly with NaN
        where a symbol had no bar)."""
        ...


def erc_weights(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | str:
    """Return the long-only equal-risk-contribution weights of ``cov``, summing to 1, or
    why there are none (a symbol without variance, no convergence)."""
    diag = np.diag(cov).copy()
    if not np.all(diag > 0):
        k = int(np.flatnonzero(~(diag > 0))[0])
        return f"symbol {k} has no volatility over the window"
    y = 1.0 / np.sqrt(diag)  # the inverse-volatility start, exact for uncorrelated symbols
    y /= np.sqrt(y @ cov @ y)
    for _ in range(ERC_MAX_SWEEPS):
        largest = 0.0
        for i in range(y.size):
            c = float(cov[i] @ y - diag[i] * y[i])
            new = (-c + np.sqrt(c * c + 4.0 * diag[i])) / (2.0 * diag[i])
            largest = max(largest, abs(new - y[i]) / new)
            y[i] = new
        if largest <= ERC_TOLERANCE:
            return np.asarray(y / y.sum(), dtype=np.float64)
    return f"risk parity did not converge in {ERC_MAX_SWEEPS:,} sweeps"


def constraint_violation(
    weights: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None = None,
    tolerance: float = 1e-6,
) -> str | None:
    """Return the first constraint ``weights`` break by more than ``tolerance``, or None.

    The message names the constraint and the values (``max_weight: weight 2 is 0.41, the
    bound 0.3``). The engine checks every allocator's answer with it, once
    (`tradeloom.engine.allocating.allocate_checked`, to its one tolerance); tests use it
    on the solvers' answers.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (constraints.symbols,) or not np.all(np.isfinite(w)):
        return f"weights: expected {constraints.symbols} finite values, was {w.tolist()}"
    net = float(w.sum())
    if abs(net - constraints.net_exposure) > tolerance:
        return f"net_exposure: the weights sum to {net:.6g}, not {constraints.net_exposure:g}"
    checks: Sequence[tuple[str, npt.NDArray[np.bool_], tuple[float, ...]]] = (
        ("min_weight", w < np.asarray(constraints.min_weight) - tolerance, constraints.min_weight),
        ("max_weight", w > np.asarray(constraints.max_weight) + tolerance, constraints.max_weight),
    )
    for key, broken, bound in checks:
        if broken.any():
            k = int(np.flatnonzero(broken)[0])
            who = f"{constraints.names[k]}'s weight" if constraints.names else f"weight {k}"
            return f"{key}: {who} is {w[k]:.6g}, the bound {bound[k]:g}"
    gross = float(np.abs(w).sum())
    if constraints.gross_exposure is not None and gross > constraints.gross_exposure + tolerance:
        cap = constraints.gross_exposure
        return f"gross_exposure: sum of |weight| is {gross:.6g}, the cap {cap:g}"
    for group in constraints.groups:
        total = float(w[list(group.members)].sum())
        if abs(total) > group.cap + tolerance:
            return (
                f"group_caps.{group.name}: the group's weight is {total:.6g}, the cap {group.cap:g}"
            )
    if constraints.max_turnover is not None and previous is not None:
        turnover = float(np.abs(w - previous).sum())
        if turnover > constraints.max_turnover + tolerance:
            return (
                f"max_turnover: the rebalance trades {turnover:.6g} of equity, the limit "
                f"{constraints.max_turnover:g}"
            )
    return None


def infeasibility(c: WeightConstraints) -> list[tuple[str, str]]:
    """Return ``(key, message)`` for each way ``c`` cannot be met by any weights, found
    from the bounds alone (before a solver runs): the bounds' sums against the net
    exposure, the gross exposure the bounds force, a group's bounds against its cap, the
    room the caps and bounds leave. Keys are below ``allocation.constraints``."""
    found: list[tuple[str, str]] = []
    for k, (low, high) in enumerate(zip(c.min_weight, c.max_weight, strict=True)):
        if low > high:
            found.append(("bounds", f"symbol {k}'s min {low:g} is above its max {high:g}"))
            return found
    lowest, highest = sum(c.min_weight), sum(c.max_weight)
    if highest < c.net_exposure:
        found.append(
            (
                "max_weight",
                f"the largest weights sum to {highest:g}, below net_exposure "
                f"{c.net_exposure:g}: no weights can reach it",
            )
        )
    if lowest > c.net_exposure:
        found.append(
            (
                "min_weight",
                f"the least weights sum to {lowest:g}, above net_exposure {c.net_exposure:g}",
            )
        )
    if c.gross_exposure is not None:
        forced = sum(max(low, 0.0) for low in c.min_weight) + sum(
            max(-high, 0.0) for high in c.max_weight
        )
        if forced > c.gross_exposure:
            found.append(
                (
                    "gross_exposure",
                    f"the bounds force a gross exposure of {forced:g}, above the cap "
                    f"{c.gross_exposure:g}",
                )
            )
    grouped: set[int] = set()
    for group in c.groups:
        grouped.update(group.members)
        low = sum(c.min_weight[k] for k in group.members)
        high = sum(c.max_weight[k] for k in group.members)
        if low > group.cap or high < -group.cap:
            found.append(
                (
                    f"group_caps.{group.name}",
                    f"the members' bounds force the group's weight to "
                    f"{low if low > group.cap else high:g}, past the cap {group.cap:g}",
                )
            )
    if c.groups and c.net_exposure > 0:
        room = sum(min(g.cap, sum(c.max_weight[k] for k in g.members)) for g in c.groups)
        room += sum(high for k, high in enumerate(c.max_weight) if k not in grouped)
        if room < c.net_exposure:
            found.append(
                (
                    "group_caps",
                    f"the caps and bounds let the weights reach {room:g} at most, below "
                    f"net_exposure {c.net_exposure:g}",
                )
            )
    return found
