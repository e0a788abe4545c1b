"""The convex allocators: minimum variance, mean-variance and maximum diversification
(Black-Litterman: `black_litterman`; hierarchical risk parity: `hrp`).

Each is one objective of the one program (`tradeloom.plugins.allocation.program`), over
cvxpy and the Clarabel interior-point solver, the ``allocation`` extra, imported when an
allocator runs. The covariance is the declared estimator's
(`tradeloom.plugins.allocation.covariance`), the expected returns the window's mean
returns per bar. What is known before solving is answered first (`prepared`): bad
returns, a symbol without variance and a singular covariance ``failed``, bounds that
cannot reach the exposure ``infeasible``.

Which declared constraints each honours is its params' ``honours``: all three solve
under the bounds, exposures, group caps and a turnover limit; only mean-variance (and
Black-Litterman) maximises an expected return to charge a transaction cost against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from tradeloom.errors import UserError
from tradeloom.plugins.allocation.closed_form import flat_symbol, returns_problem
from tradeloom.plugins.allocation.covariance import CovarianceParams, covariance
from tradeloom.plugins.allocation.program import (
    SOLVER_PARAMS,
    SOLVER_TOLERANCE,
    Objective,
    solve_program,
)
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.protocols_allocation import (
    HONOURABLE,
    AllocationResult,
    WeightConstraints,
    infeasibility,
)
from tradeloom.runtime.extras import require, require_installed
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "SOLVER_PARAMS",
    "SOLVER_TOLERANCE",
    "MaximumDiversification",
    "MaximumDiversificationParams",
    "MeanVariance",
    "MeanVarianceGoal",
    "MeanVarianceParams",
    "MinimumVariance",
    "MinimumVarianceParams",
    "build_maximum_diversification",
    "build_mean_variance",
    "build_minimum_variance",
    "mean_variance_objective",
    "needs_solver",
    "prepared",
    "singular_covariance",
]

MeanVarianceGoal = Literal["max_sharpe", "utility"]

_SOLVES_UNDER = frozenset({"group_caps", "max_turnover"})
"""What a program honours whose objective is no expected return (no transaction cost)."""


class MinimumVarianceParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: minimum_variance``."""

    allows_short: ClassVar[bool] = True
    honours: ClassVar[frozenset[str]] = _SOLVES_UNDER


class MeanVarianceParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: mean_variance``."""

    allows_short: ClassVar[bool] = True
    honours: ClassVar[frozenset[str]] = HONOURABLE

    objective: MeanVarianceGoal = Field(
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


class MaximumDiversificationParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: maximum_diversification``."""

    honours: ClassVar[frozenset[str]] = _SOLVES_UNDER


def needs_solver(kind: str) -> None:
    """Raise `ParamError` (at ``kind``) when cvxpy, the ``allocation`` extra, is missing."""
    try:
        require_installed("cvxpy", f"allocation kind {kind}")
    except UserError as exc:
        raise ParamError("kind", str(exc)) from None


def prepared(
    kind: str,
    returns: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    params: CovarianceParams,
) -> npt.NDArray[np.float64] | AllocationResult:
    """Return the window's covariance, or the answer when one is known before solving:
    bad returns, a symbol without variance or a singular covariance ``failed``, bounds
    that cannot reach the exposure ``infeasible``."""
    require("cvxpy", f"allocation kind {kind}")  # an installed one that cannot import
    problem = returns_problem(returns, constraints)
    if problem is not None:
        return AllocationResult.failed(problem)
    flat = flat_symbol(returns, constraints)
    if flat is not None:
        return AllocationResult.failed(f"{kind}: {flat}")
    impossible = infeasibility(constraints)
    if impossible:
        key, message = impossible[0]
        return AllocationResult.infeasible(f"{kind}: {key}: {message}")
    cov = covariance(returns, params.covariance, params.halflife)
    singular = singular_covariance(cov, params)
    if singular is not None:
        return AllocationResult.failed(f"{kind}: {singular}")
    return cov


SINGULAR_CONDITION = 1e12
"""A covariance whose largest eigenvalue is more than this times its smallest is
singular to the solver (Clarabel works to about 1e-8 of the scaled problem)."""


def singular_covariance(cov: npt.NDArray[np.float64], params: CovarianceParams) -> str | None:
    """Return why the window's covariance estimate ``cov`` is singular, or None."""
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


def mean_variance_objective(params: MeanVarianceParams, mu: npt.NDArray[np.float64]) -> Objective:
    """Return the program's objective of ``params`` over the expected returns ``mu``."""
    if params.objective == "max_sharpe":
        return Objective("ratio", mu)
    return Objective("utility", mu, params.risk_aversion)


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
        returns = np.asarray(returns, dtype=np.float64)
        cov = prepared("minimum_variance", returns, constraints, self.params)
        if isinstance(cov, AllocationResult):
            return cov
        objective = Objective("variance", costs=False)
        return solve_program("minimum_variance", objective, cov, constraints, previous)


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
        returns = np.asarray(returns, dtype=np.float64)
        cov = prepared("mean_variance", returns, constraints, self.params)
        if isinstance(cov, AllocationResult):
            return cov
        objective = mean_variance_objective(self.params, returns.mean(axis=0))
        return solve_program("mean_variance", objective, cov, constraints, previous)


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
        returns = np.asarray(returns, dtype=np.float64)
        kind = "maximum_diversification"
        cov = prepared(kind, returns, constraints, self.params)
        if isinstance(cov, AllocationResult):
            return cov
        volatility = np.sqrt(np.diag(cov))
        objective = Objective("ratio", volatility, costs=False, what="diversification")
        return solve_program(kind, objective, cov, constraints, previous)


def build_minimum_variance(params: MinimumVarianceParams, ctx: BuildContext) -> MinimumVariance:
    """Build the minimum-variance allocator (needs the ``allocation`` extra)."""
    needs_solver("minimum_variance")
    return MinimumVariance(params)


def build_mean_variance(params: MeanVarianceParams, ctx: BuildContext) -> MeanVariance:
    """Build the mean-variance allocator (needs the ``allocation`` extra)."""
    needs_solver("mean_variance")
    return MeanVariance(params)


def build_maximum_diversification(
    params: MaximumDiversificationParams, ctx: BuildContext
) -> MaximumDiversification:
    """Build the maximum-diversification allocator (needs the ``allocation`` extra)."""
    needs_solver("maximum_diversification")
    return MaximumDiversification(params)
