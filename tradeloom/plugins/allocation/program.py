"""The convex allocators' one program: the declared constraints written once in cvxpy,
each allocator only its objective.

Over the weights ``w`` (signed fractions of equity), with the window's covariance ``S``:

* ``variance``: the least ``w'Sw`` (minimum variance);
* ``utility``: the largest ``mu'w - c |w - held|_1 - risk_aversion w'Sw`` (mean-variance's
  utility, Black-Litterman on its posterior);
* ``ratio``: the largest ``(a'w - c |w - held|_1) / sqrt(w'Sw)``: the Sharpe ratio with
  ``a = mu`` (the risk-free rate 0), the diversification ratio with ``a`` the
  volatilities. Solved homogeneously (Cornuejols and Tutuncu, 2007): ``y = k w``,
  ``k > 0``, the least ``y'Sy`` with ``a'y - c |y - k held|_1 >= 1`` and every
  constraint below scaled by ``k``; then ``w = y / k``.

The constraints (`constraint_rows`): each weight within its bounds, the weights summing to
the net exposure, ``sum |w|`` at most the gross exposure, each group's sum within
``[-cap, cap]``, and ``sum |w - held|`` at most the turnover limit (when the held weights
are given). The cost ``c`` is `WeightConstraints.transaction_cost`, per bar, charged
when the held weights are given.

Every program is a quadratic program (the variance as ``quad_form``, which Clarabel
takes as its quadratic cost; a second-order cone would cost six digits), solved with
the covariance and the expected returns divided by the mean variance (a per-bar variance
is of order 1e-4: unscaled, Clarabel's gap tolerance would leave the weights 1e-6 off).
On 20 S&P 500 stocks, unconstrained optima agree with their closed forms to 4e-15 (the
maximum Sharpe ratio to 3e-10), constrained ones with PyPortfolioOpt's and with an
independent program to 5e-9 (tests/plugins/allocation/test_program.py, which holds them
to the documented `SOLVER_TOLERANCE`); the answer is checked against every constraint once,
by the engine, as every allocator's is (`tradeloom.engine.allocating.allocate_checked`).

At universe scale (`tradeloom.plugins.allocation.screening`: 100 symbols or more,
long-only, no group caps, no gross cap, no turnover limit or transaction cost in force)
the program is solved over a working set of symbols, every other weight 0, and the answer
is proven the whole problem's optimum by its optimality conditions, else the set grows:
a long-only optimum holds few symbols, and the solver's cost grows with the cube of those
it is given (minimum variance on 2,000 assets: 5.7 s of CPU over every symbol, 0.66 s
screened, the same weights to 5e-9). Whatever screening cannot decide the program over
every symbol answers.

A program without an answer is a value, never an exception: ``infeasible`` with the
cause in the words of the file (`infeasible_cause`: no weights with a positive expected
return, held weights a turnover limit cannot reach, constraints that admit no weights
together), ``failed`` when the solver stops on numerical trouble.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tradeloom.plugins.allocation.screening import (
    MAX_ROUNDS,
    MIN_SYMBOLS,
    first_working_set,
    violators,
)
from tradeloom.plugins.protocols_allocation import AllocationResult, WeightConstraints
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "SOLVER",
    "SOLVER_PARAMS",
    "SOLVER_TOLERANCE",
    "Objective",
    "constraint_rows",
    "full_program",
    "infeasible_cause",
    "screenable",
    "screened",
    "solve_program",
]

SOLVER = "CLARABEL"
"""The interior-point solver of every convex allocator (cvxpy's name for it)."""

SOLVER_PARAMS: dict[str, float] = {
    "tol_gap_abs": 1e-12,
    "tol_gap_rel": 1e-12,
    "tol_feas": 1e-12,
    "tol_ktratio": 1e-10,
}
"""Clarabel's tolerances: its defaults (1e-8 on the duality gap) leave weights about 1e-5
from the optimum of a scaled problem."""

SOLVER_TOLERANCE = 1e-6
"""The documented bound of a program's weights' distance to the exact optimum (the tests
hold them to it); the engine's one check of every answer allows the same
(`tradeloom.engine.allocating.TOLERANCE`)."""

_SOLVED = ("optimal", "optimal_inaccurate")
_INFEASIBLE = ("infeasible", "infeasible_inaccurate")


@dataclass(frozen=True)
class Objective:
    """What a convex allocator optimises under the constraints.

    Attributes:
        goal: ``variance`` (the least ``w'Sw``), ``utility`` (the largest
            ``mu'w - cost - risk_aversion w'Sw``) or ``ratio`` (the largest
            ``(mu'w - cost) / sqrt(w'Sw)``).
        mu: The expected return per bar of each symbol (``utility``; ``ratio``: the
            numerator's coefficients, the volatilities for maximum diversification).
        risk_aversion: ``utility``'s weight of the variance.
        costs: Whether the transaction cost is charged (the allocators whose ``mu`` is an
            expected return).
        what: What ``mu'w`` is, in a message (``expected return``).
    """

    goal: Literal["variance", "utility", "ratio"]
    mu: npt.NDArray[np.float64] | None = None
    risk_aversion: float = 1.0
    costs: bool = True
    what: str = "expected return"


def constraint_rows(
    w: Any,
    k: Any,
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
    *,
    turnover: bool = True,
) -> list[Any]:
    """Return the cvxpy constraints on ``w`` (``k`` times the weights: 1 but for a ratio).

    Args:
        w: The cvxpy variable.
        k: The homogenising scale (1.0, or a non-negative cvxpy variable).
        constraints: The declared constraints.
        previous: The held weights (the turnover limit applies only with them).
        turnover: Include the turnover limit.
    """
    import cvxpy as cp

    low = np.asarray(constraints.min_weight, dtype=np.float64)
    high = np.asarray(constraints.max_weight, dtype=np.float64)
    rows = [w >= k * low, w <= k * high, cp.sum(w) == constraints.net_exposure * k]
    if constraints.gross_exposure is not None:
        rows.append(cp.norm1(w) <= constraints.gross_exposure * k)
    for group in constraints.groups:
        total = cp.sum(w[list(group.members)])
        rows += [total <= group.cap * k, total >= -group.cap * k]
    if turnover and constraints.max_turnover is not None and previous is not None:
        rows.append(cp.norm1(w - k * previous) <= constraints.max_turnover * k)
    return rows


def screenable(
    objective: Objective,
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
) -> bool:
    """Return whether the program may be solved over a working set
    (`tradeloom.plugins.allocation.screening`): enough symbols, every lower bound at
    least 0, no group caps or gross exposure cap, and no turnover limit or transaction
    cost in force."""
    if constraints.symbols < MIN_SYMBOLS or constraints.groups or constraints.shorts:
        return False
    if constraints.gross_exposure is not None:
        return False
    if previous is None:
        return True
    charged = objective.costs and constraints.transaction_cost > 0.0
    return constraints.max_turnover is None and not charged


def screened(
    kind: str,
    objective: Objective,
    cov: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
    start: npt.NDArray[np.float64] | None,
) -> AllocationResult | None:
    """Return the program's optimum found over working sets and proven over every
    symbol, or None when screening cannot decide (`tradeloom.plugins.allocation.screening`)."""
    n = constraints.symbols
    lower = np.asarray(constraints.min_weight, dtype=np.float64)
    upper = np.asarray(constraints.max_weight, dtype=np.float64)
    net = constraints.net_exposure
    mu = np.zeros(n) if objective.mu is None else np.asarray(objective.mu, dtype=np.float64)
    diagonal = np.diag(cov)
    linear = mu if objective.goal != "variance" else np.ones(n)
    guess = start if start is not None else linear / diagonal
    inside = np.zeros(n, dtype=bool)
    inside[first_working_set(guess, upper, lower, net, previous)] = True
    factor = 2.0 * (objective.risk_aversion if objective.goal == "utility" else 1.0)
    margin = 1e-9 * max(net, 1.0)
    for _ in range(MAX_ROUNDS):
        members = np.flatnonzero(inside)
        if members.size * 2 > n:
            return None  # most symbols are held: the whole program is as cheap
        sub = WeightConstraints(
            tuple(lower[members]),
            tuple(upper[members]),
            net,
            names=tuple(constraints.names[k] for k in members) if constraints.names else (),
        )
        part = Objective(
            objective.goal,
            None if objective.mu is None else mu[members],
            objective.risk_aversion,
            objective.costs,
            objective.what,
        )
        held = None if previous is None else np.asarray(previous)[members]
        found = full_program(kind, part, cov[np.ix_(members, members)], sub, held)
        if found.status != "ok" or found.weights is None:
            return None
        weights = np.zeros(n)
        weights[members] = found.weights
        gradient = factor * (cov[:, members] @ found.weights)
        if objective.goal == "utility":
            gradient = gradient - mu
        ratio = mu if objective.goal == "ratio" else None
        out = violators(gradient, weights, inside, lower, upper, factor * diagonal, ratio, margin)
        if out is None:
            return None
        if not out.size:
            return AllocationResult.ok(weights)
        inside[out[: max(10, members.size // 2)]] = True
    return None


def solve_program(
    kind: str,
    objective: Objective,
    cov: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
    start: npt.NDArray[np.float64] | None = None,
) -> AllocationResult:
    """Return the weights that optimise ``objective`` under ``constraints``, or why there
    are none (see the module).

    Solved over a working set and proven over every symbol where the constraints allow
    it (`screened`), else by the one program over every symbol (`full_program`).

    Args:
        kind: The allocator's kind (the messages start with it).
        objective: What is optimised.
        cov: The window's covariance (symmetric, positive definite: the callers refuse a
            singular one first).
        constraints: The declared constraints (feasible on their own: the callers check
            `tradeloom.plugins.protocols_allocation.infeasibility` first).
        previous: The held weights, or None at the first rebalance.
        start: A guess of each symbol's standing, larger first (the unconstrained
            optimum, `tradeloom.plugins.allocation.optimised.unconstrained_guess`), from
            which a screened solve picks its first working set; None: ``a_i / S_ii``.
    """
    if screenable(objective, constraints, previous):
        found = screened(kind, objective, cov, constraints, previous, start)
        if found is not None:
            return found
    return full_program(kind, objective, cov, constraints, previous)


def full_program(
    kind: str,
    objective: Objective,
    cov: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
) -> AllocationResult:
    """Return `solve_program`'s answer from the one program over every symbol."""
    import cvxpy as cp

    n = constraints.symbols
    scale = float(np.mean(np.diag(cov)))
    s = (cov + cov.T) / (2.0 * scale)
    held = None if previous is None else np.asarray(previous, dtype=np.float64)
    cost = constraints.transaction_cost if objective.costs and held is not None else 0.0
    w = cp.Variable(n)
    ratio = objective.goal == "ratio"
    k: Any = cp.Variable(nonneg=True) if ratio else 1.0
    rows = constraint_rows(w, k, constraints, held)
    risk = cp.quad_form(w, cp.psd_wrap(s))
    mu = np.zeros(n) if objective.mu is None else np.asarray(objective.mu, dtype=np.float64)
    if objective.goal == "variance":
        problem = cp.Problem(cp.Minimize(risk), rows)
    elif objective.goal == "utility":
        gain: Any = w @ (mu / scale)
        if cost:
            gain = gain - (cost / scale) * cp.norm1(w - held)
        problem = cp.Problem(cp.Maximize(gain - objective.risk_aversion * risk), rows)
    else:
        top = float(np.max(np.abs(mu))) or 1.0  # the ratio does not move with a's scale
        gain = w @ (mu / top)
        if cost:
            gain = gain - (cost / top) * cp.norm1(w - k * held)
        problem = cp.Problem(cp.Minimize(risk), [*rows, gain >= 1.0])
    status = _solve(problem)
    if status in _INFEASIBLE or (ratio and status in _SOLVED and not _positive(k)):
        return AllocationResult.infeasible(
            f"{kind}: {infeasible_cause(objective, constraints, held, cost)}"
        )
    if status not in _SOLVED or w.value is None:
        return AllocationResult.failed(
            f"{kind}: the solver stopped without weights ({status}): the window's "
            "covariance is too ill-conditioned to solve; lengthen the window or use "
            "covariance: ledoit_wolf"
        )
    weights = np.asarray(w.value, dtype=np.float64)
    if ratio:
        weights = weights / float(k.value)
    return AllocationResult.ok(weights)


def _positive(k: Any) -> bool:
    return k.value is not None and float(k.value) > 0.0


def _solve(problem: Any) -> str:
    """Return the problem's status after solving it; a solver error is a status too."""
    import cvxpy as cp

    try:
        with warnings.catch_warnings():
            # Clarabel's "almost solved" at SOLVER_PARAMS: the answer is checked against
            # every constraint, which is what the warning asks
            warnings.filterwarnings("ignore", "Solution may be inaccurate", UserWarning)
            problem.solve(solver=SOLVER, **SOLVER_PARAMS)
    except cp.error.SolverError:
        return "solver_error"
    return str(problem.status)


def infeasible_cause(
    objective: Objective,
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
    cost: float,
) -> str:
    """Return why no weights answer ``objective`` under ``constraints``, in the file's
    words and with the remedy: found by small linear programs over the same constraints.

    In order: constraints that admit no weights together (the bounds, exposures and caps
    alone; with the held weights, the turnover limit: how far the nearest admissible
    weights are from them), then a ratio whose numerator is never positive (the largest
    ``a'w - cost`` under the constraints).
    """
    import cvxpy as cp

    n = constraints.symbols
    w = cp.Variable(n)
    alone = constraint_rows(w, 1.0, constraints, None, turnover=False)
    if _solve(cp.Problem(cp.Minimize(0), alone)) in _INFEASIBLE:
        return (
            "the bounds, exposures and group caps admit no weights together: widen "
            "max_weight, bounds or group_caps"
        )
    limit = constraints.max_turnover
    if limit is not None and previous is not None:
        nearest = cp.Problem(cp.Minimize(cp.norm1(w - previous)), alone)
        if _solve(nearest) in _SOLVED and float(nearest.value) > limit:
            return (
                f"max_turnover: the weights held are {float(nearest.value):.4g} of turnover "
                f"from the nearest weights the other constraints admit, above the limit "
                f"{limit:g}: no rebalance within it meets them; raise max_turnover"
            )
    if objective.goal == "ratio":
        mu = np.zeros(n) if objective.mu is None else np.asarray(objective.mu)
        gain: Any = w @ mu
        if cost and previous is not None:
            gain = gain - cost * cp.norm1(w - previous)
        best = cp.Problem(cp.Maximize(gain), constraint_rows(w, 1.0, constraints, previous))
        if _solve(best) in _SOLVED and float(best.value) <= 0.0:
            after = " after the transaction cost" if cost else ""
            return (
                f"no weights the constraints admit have a positive {objective.what} over "
                f"the window{after} (the best: {float(best.value):.3g} a bar), so the ratio "
                "has no maximum; use objective: utility, or a longer window"
            )
    return "the solver found no weights the constraints admit on this window"
