"""The allocators solved by skfolio: minimum variance, mean-variance, hierarchical risk
parity and maximum diversification (Black-Litterman: `black_litterman`).

skfolio (scikit-learn's API over cvxpy and the Clarabel interior-point solver) is the
``allocation`` extra, imported when an allocator is built. Every declared constraint maps
to skfolio's own keys (`skfolio_constraints`): the bounds to ``min_weights`` and
``max_weights``, the net exposure to ``budget``, a long-short gross exposure ``G`` with net
``N`` to ``max_long = (G + N) / 2`` and ``max_short = (G - N) / 2`` (with the budget, the
same set as ``sum |w| <= G``), each group cap to two linear constraints on the group's
sum, the turnover limit to a cvxpy constraint ``sum |w - previous| <= limit`` and the
transaction cost to ``transaction_costs``. Clarabel runs to `SOLVER_PARAMS`' tolerances,
and a solution is checked against the constraints to `SOLVER_TOLERANCE` before it is
answered.

Hierarchical risk parity is not a convex program: skfolio honours its bounds, and its
weights that break a group cap or the turnover limit are answered ``infeasible``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from tradeloom.errors import UserError
from tradeloom.plugins.allocation.closed_form import flat_symbol, returns_problem
from tradeloom.plugins.allocation.covariance import (
    CovarianceParams,
    covariance,
    skfolio_covariance,
)
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.protocols_allocation import (
    AllocationResult,
    WeightConstraints,
    constraint_violation,
    infeasibility,
)
from tradeloom.runtime.extras import require, require_installed
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "SOLVER_PARAMS",
    "SOLVER_TOLERANCE",
    "HierarchicalRiskParity",
    "HierarchicalRiskParityParams",
    "MaximumDiversification",
    "MaximumDiversificationParams",
    "MeanVariance",
    "MeanVarianceParams",
    "MinimumVariance",
    "MinimumVarianceParams",
    "asset_names",
    "build_hrp",
    "build_maximum_diversification",
    "build_mean_variance",
    "build_minimum_variance",
    "needs_skfolio",
    "singular_covariance",
    "skfolio_constraints",
    "solve",
]

SOLVER_PARAMS: dict[str, float] = {
    "tol_gap_abs": 1e-12,
    "tol_gap_rel": 1e-12,
    "tol_feas": 1e-12,
    "tol_ktratio": 1e-10,
}
"""Clarabel's tolerances for every convex allocator. Its defaults (1e-8 on the duality
gap) leave weights 1e-4 from the exact optimum: a per-bar variance is of order 1e-4, and a
weight's error grows as the square root of the gap over the curvature. These bring the
weights within 1e-6 of the closed forms (tests/plugins/allocation/test_optimised.py) at
about the same cost (a few tens of milliseconds for 6 symbols)."""

SOLVER_TOLERANCE = 1e-6
"""How far a solver's weights may be from the exact optimum, and may pass a declared
constraint, with `SOLVER_PARAMS`."""

Objective = Literal["max_sharpe", "utility"]


class MinimumVarianceParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: minimum_variance``."""

    allows_short: ClassVar[bool] = True


class MeanVarianceParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: mean_variance``."""

    allows_short: ClassVar[bool] = True

    objective: Objective = Field(
        default="max_sharpe",
        description="max_sharpe: the largest ratio of the expected return to its standard "
        "deviation (the risk-free rate 0); utility: the largest mu'w - risk_aversion * "
        "w'Sw, the window's mean returns mu and covariance S.",
    )
    risk_aversion: float = Field(
        default=1.0,
        gt=0,
        description="objective: utility: the weight of the variance against the expected "
        "return (> 0).",
    )


class HierarchicalRiskParityParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: hrp``."""


class MaximumDiversificationParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: maximum_diversification``."""


def needs_skfolio(kind: str) -> None:
    """Raise `ParamError` (at ``kind``) when skfolio, the ``allocation`` extra, is missing."""
    try:
        require_installed("skfolio", f"allocation kind {kind}")
    except UserError as exc:
        raise ParamError("kind", str(exc)) from None


def asset_names(symbols: int) -> list[str]:
    """Return the names skfolio knows the symbols by (``a0``, ``a1``...): a market symbol
    (``BTC/USDT``) is no name in skfolio's constraint equations."""
    return [f"a{k}" for k in range(symbols)]


def skfolio_constraints(
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
    *,
    budget: bool = True,
) -> dict[str, Any]:
    """Return the keyword arguments of a skfolio convex optimiser for ``constraints``.

    Args:
        constraints: The declared constraints.
        previous: The weights held (turnover and costs), or None.
        budget: Include the budget and exposure keys (hierarchical risk parity takes only
            the bounds and costs; it solves no convex program, so takes no
            `SOLVER_PARAMS` either).
    """
    kwargs: dict[str, Any] = {
        "min_weights": np.asarray(constraints.min_weight, dtype=np.float64),
        "max_weights": np.asarray(constraints.max_weight, dtype=np.float64),
    }
    if previous is not None:
        kwargs["previous_weights"] = np.asarray(previous, dtype=np.float64)
        if constraints.transaction_cost:
            kwargs["transaction_costs"] = constraints.transaction_cost
    if not budget:
        return kwargs
    kwargs["solver_params"] = dict(SOLVER_PARAMS)
    net = constraints.net_exposure
    kwargs["budget"] = net
    if constraints.gross_exposure is not None:
        gross = constraints.gross_exposure
        kwargs["max_long"] = (gross + net) / 2.0
        kwargs["max_short"] = (gross - net) / 2.0
    if constraints.groups:
        names = asset_names(constraints.symbols)
        rows = [[""] * constraints.symbols]
        for g, group in enumerate(constraints.groups):
            for k in group.members:
                rows[0][k] = f"g{g}"
        # skfolio's groups: one row of labels per grouping; a symbol in no group its own
        rows[0] = [label or names[k] for k, label in enumerate(rows[0])]
        kwargs["groups"] = np.asarray(rows)
        kwargs["linear_constraints"] = [
            line
            for g, group in enumerate(constraints.groups)
            for line in (f"g{g} <= {group.cap:.12f}", f"g{g} >= {-group.cap:.12f}")
        ]
    if constraints.max_turnover is not None and previous is not None:
        kwargs["add_constraints"] = _turnover(np.asarray(previous), constraints.max_turnover)
    return kwargs


def _turnover(previous: npt.NDArray[np.float64], limit: float) -> Callable[[Any], Any]:
    def constrain(w: Any) -> Any:
        from cvxpy.atoms.norm1 import norm1

        return [norm1(w - previous) <= limit]

    return constrain


def solve(
    estimator: Any,
    returns: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
    kind: str,
    params: CovarianceParams,
    *,
    scale: float = 1.0,
) -> AllocationResult:
    """Fit the skfolio ``estimator`` on ``returns`` and answer its weights (times
    ``scale``), checked against ``constraints``.

    What is known before solving is answered first: bad returns and a singular
    covariance (skfolio would clip it to the nearest positive definite matrix and solve
    on that) ``failed``, bounds that cannot reach the exposure ``infeasible``. A solver's
    or skfolio's error is a status, never an exception.
    """
    require("skfolio", f"allocation kind {kind}")  # an installed one that cannot import
    import cvxpy
    import pandas as pd
    from skfolio.exceptions import SkfolioError

    returns = np.asarray(returns, dtype=np.float64)
    problem = returns_problem(returns, constraints)
    if problem is not None:
        return AllocationResult.failed(problem)
    flat = flat_symbol(returns)
    if flat is not None:
        return AllocationResult.failed(f"{kind}: {flat}")
    impossible = infeasibility(constraints)
    if impossible:
        key, message = impossible[0]
        return AllocationResult.infeasible(f"{kind}: {key}: {message}")
    singular = singular_covariance(returns, params)
    if singular is not None:
        return AllocationResult.failed(f"{kind}: {singular}")
    frame = pd.DataFrame(returns, columns=asset_names(constraints.symbols))
    try:
        with warnings.catch_warnings():
            # Clarabel's "almost solved" at SOLVER_PARAMS' tolerances: the answer is
            # checked against every constraint below, which is what a warning would ask
            warnings.filterwarnings("ignore", "Solution may be inaccurate", UserWarning)
            estimator.fit(frame)
    except (SkfolioError, cvxpy.error.SolverError, cvxpy.error.DCPError) as exc:
        message = " ".join(str(exc).split())
        if "infeasible" in message.lower():
            return AllocationResult.infeasible(f"{kind}: the solver found no weights: {message}")
        return AllocationResult.failed(f"{kind}: the solver failed: {message}")
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        message = " ".join(str(exc).split())
        return AllocationResult.failed(f"{kind}: {type(exc).__name__}: {message}")
    weights = np.asarray(getattr(estimator, "weights_", None), dtype=np.float64) * scale
    broken = constraint_violation(weights, constraints, previous, SOLVER_TOLERANCE)
    if broken is not None:
        return AllocationResult.infeasible(f"{kind}'s weights break {broken}")
    return AllocationResult.ok(weights)


SINGULAR_CONDITION = 1e12
"""A covariance whose largest eigenvalue is more than this times its smallest is
singular to the solvers (Clarabel works to about 1e-8 of the scaled problem)."""


def singular_covariance(returns: npt.NDArray[np.float64], params: CovarianceParams) -> str | None:
    """Return why the window's covariance estimate is singular, or None."""
    cov = covariance(returns, params.covariance, params.halflife)
    eigen = np.linalg.eigvalsh(cov)
    if eigen[-1] <= 0 or eigen[0] <= eigen[-1] / SINGULAR_CONDITION:
        rank = int(np.sum(eigen > eigen[-1] / SINGULAR_CONDITION)) if eigen[-1] > 0 else 0
        return (
            f"the {params.covariance} covariance of the window is singular (rank {rank} of "
            f"{cov.shape[0]} symbols): a symbol without variance, symbols that move "
            f"together, or too few bars; lengthen the window{_or_shrink(params)}"
        )
    return None


def _or_shrink(params: CovarianceParams) -> str:
    return "" if params.covariance == "ledoit_wolf" else " or use covariance: ledoit_wolf"


def prior(params: CovarianceParams, mu: Any = None) -> Any:
    """Return skfolio's empirical prior with ``params``' covariance estimator."""
    from skfolio.prior import EmpiricalPrior

    cov = skfolio_covariance(params.covariance, params.halflife)
    return EmpiricalPrior(covariance_estimator=cov, mu_estimator=mu)


class MinimumVariance:
    """The weights of least variance under the constraints."""

    def __init__(self, params: MinimumVarianceParams) -> None:
        self.params = params

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the minimum-variance weights."""
        from skfolio.optimization import MeanRisk, ObjectiveFunction

        estimator = MeanRisk(
            objective_function=ObjectiveFunction.MINIMIZE_RISK,
            prior_estimator=prior(self.params),
            **skfolio_constraints(constraints, previous),
        )
        return solve(estimator, returns, constraints, previous, "minimum_variance", self.params)


class MeanVariance:
    """Mean-variance on the window's mean returns: the maximum Sharpe ratio, or the
    largest risk-aversion utility."""

    def __init__(self, params: MeanVarianceParams) -> None:
        self.params = params

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the mean-variance weights."""
        from skfolio.optimization import MeanRisk

        estimator = MeanRisk(
            objective_function=objective_function(self.params.objective),
            risk_aversion=self.params.risk_aversion,
            prior_estimator=prior(self.params),
            **skfolio_constraints(constraints, previous),
        )
        return solve(estimator, returns, constraints, previous, "mean_variance", self.params)


def objective_function(objective: Objective) -> Any:
    """Return skfolio's objective function of ``objective``."""
    from skfolio.optimization import ObjectiveFunction

    if objective == "max_sharpe":
        return ObjectiveFunction.MAXIMIZE_RATIO
    return ObjectiveFunction.MAXIMIZE_UTILITY


class HierarchicalRiskParity:
    """Lopez de Prado's hierarchical risk parity: a tree of the symbols' correlations,
    split top down in inverse proportion to each branch's variance."""

    def __init__(self, params: HierarchicalRiskParityParams) -> None:
        self.params = params

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the hierarchical-risk-parity weights, scaled to the net exposure."""
        from skfolio.optimization import HierarchicalRiskParity as Hrp

        net = constraints.net_exposure
        kwargs = skfolio_constraints(constraints, previous, budget=False)
        # skfolio's weights sum to 1: its bounds are the declared ones over the exposure
        kwargs["min_weights"] = np.maximum(kwargs["min_weights"], 0.0) / net
        kwargs["max_weights"] = kwargs["max_weights"] / net
        kwargs.pop("transaction_costs", None)
        estimator = Hrp(prior_estimator=prior(self.params), **kwargs)
        return solve(estimator, returns, constraints, previous, "hrp", self.params, scale=net)


class MaximumDiversification:
    """The weights of the largest diversification ratio: the weighted average of the
    volatilities over the portfolio's volatility."""

    def __init__(self, params: MaximumDiversificationParams) -> None:
        self.params = params

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the maximum-diversification weights."""
        from skfolio.optimization import MaximumDiversification as MaxDiv

        estimator = MaxDiv(
            prior_estimator=prior(self.params), **skfolio_constraints(constraints, previous)
        )
        return solve(
            estimator, returns, constraints, previous, "maximum_diversification", self.params
        )


def build_minimum_variance(params: MinimumVarianceParams, ctx: BuildContext) -> MinimumVariance:
    """Build the minimum-variance allocator (needs the ``allocation`` extra)."""
    needs_skfolio("minimum_variance")
    return MinimumVariance(params)


def build_mean_variance(params: MeanVarianceParams, ctx: BuildContext) -> MeanVariance:
    """Build the mean-variance allocator (needs the ``allocation`` extra)."""
    needs_skfolio("mean_variance")
    return MeanVariance(params)


def build_hrp(params: HierarchicalRiskParityParams, ctx: BuildContext) -> HierarchicalRiskParity:
    """Build the hierarchical-risk-parity allocator (needs the ``allocation`` extra)."""
    needs_skfolio("hrp")
    return HierarchicalRiskParity(params)


def build_maximum_diversification(
    params: MaximumDiversificationParams, ctx: BuildContext
) -> MaximumDiversification:
    """Build the maximum-diversification allocator (needs the ``allocation`` extra)."""
    needs_skfolio("maximum_diversification")
    return MaximumDiversification(params)
