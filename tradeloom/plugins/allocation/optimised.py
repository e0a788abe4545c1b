"""The convex allocators: minimum variance, mean-variance and maximum diversification
(Black-Litterman: `black_litterman`; hierarchical risk parity: `hrp`).

Each is one objective of the one program (`tradeloom.plugins.allocation.program`), over
cvxpy and the Clarabel interior-point solver, the ``allocation`` extra, imported when an
allocator runs. The covariance is the declared estimator's
(`tradeloom.plugins.allocation.covariance`), the expected returns the window's mean
returns per bar. What is known before solving is answered first: the prologue every
allocator of the window shares (`tradeloom.plugins.allocation.window`: bad returns and a
flat series ``failed``, bounds that cannot reach the exposure ``infeasible``), then a
singular covariance ``failed`` (`ConvexAllocator`).

Which declared constraints each honours is its params' ``honours``: all three solve
under the bounds, exposures, group caps and a turnover limit; only mean-variance (and
Black-Litterman) maximises an expected return to charge a transaction cost against.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from tradeloom.errors import UserError
from tradeloom.plugins.allocation.covariance import CovarianceParams
from tradeloom.plugins.allocation.program import (
    SOLVER_PARAMS,
    SOLVER_TOLERANCE,
    Objective,
    solve_program,
)
from tradeloom.plugins.allocation.window import Window, WindowAllocator
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.protocols_allocation import (
    HONOURABLE,
    AllocationResult,
)
from tradeloom.runtime.extras import require, require_installed
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "SOLVER_PARAMS",
    "SOLVER_TOLERANCE",
    "ConvexAllocator",
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
    "singular_covariance",
    "unconstrained_guess",
    "well_conditioned_factor",
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


SINGULAR_CONDITION = 1e12
"""A covariance whose largest eigenvalue is more than this times its smallest is
singular to the solver (Clarabel works to about 1e-8 of the scaled problem)."""


def singular_covariance(cov: npt.NDArray[np.float64], params: CovarianceParams) -> str | None:
    """Return why the window's covariance estimate ``cov`` is singular, or None."""
    if well_conditioned_factor(cov) is not None:
        return None
    eigen = np.linalg.eigvalsh(cov)
    if eigen[-1] <= 0 or eigen[0] <= eigen[-1] / SINGULAR_CONDITION:
        rank = int(np.sum(eigen > eigen[-1] / SINGULAR_CONDITION)) if eigen[-1] > 0 else 0
        return (
            f"the {params.covariance} covariance of the window is singular (rank {rank} of "
            f"{cov.shape[0]} symbols): a symbol without variance, symbols that move "
            f"together, or too few bars; lengthen the window{_or_shrink(params)}"
        )
    return None


def well_conditioned_factor(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    """Return the lower Cholesky factor of ``cov - e I``, ``e`` its largest absolute
    column sum over `SINGULAR_CONDITION`, or None when that is not positive definite.

    A factor proves ``cov`` far from singular at a sixth of an eigen-decomposition's
    cost: the column sum bounds the largest eigenvalue, so every eigenvalue above ``e``
    is above the largest over `SINGULAR_CONDITION`. None decides nothing
    (`singular_covariance` then reads the eigenvalues). The factor is also where a
    screened solve starts (`tradeloom.plugins.allocation.screening`).
    """
    n = cov.shape[0]
    floor = float(np.abs(cov).sum(axis=0).max()) / SINGULAR_CONDITION
    try:
        return np.asarray(np.linalg.cholesky(cov - floor * np.eye(n)), dtype=np.float64)
    except np.linalg.LinAlgError:
        return None


def unconstrained_guess(
    factor: npt.NDArray[np.float64] | None, linear: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64] | None:
    """Return ``S^-1 linear`` from the covariance's factor (None without one): where a
    screened solve starts (the unconstrained optimum's direction)."""
    if factor is None:
        return None
    from scipy.linalg import cho_solve

    return np.asarray(cho_solve((factor, True), linear), dtype=np.float64)


def _or_shrink(params: CovarianceParams) -> str:
    return "" if params.covariance == "ledoit_wolf" else " or use covariance: ledoit_wolf"


def mean_variance_objective(params: MeanVarianceParams, mu: npt.NDArray[np.float64]) -> Objective:
    """Return the program's objective of ``params`` over the expected returns ``mu``."""
    if params.objective == "max_sharpe":
        return Objective("ratio", mu)
    return Objective("utility", mu, params.risk_aversion)


class ConvexAllocator(WindowAllocator):
    """An allocator solved by the one program: after the shared prologue, cvxpy imported
    and a singular covariance ``failed``, then its own `solve`."""

    def weigh(self, window: Window) -> AllocationResult:
        """Return `solve`'s weights of a covariance the solver can use."""
        require("cvxpy", f"allocation kind {self.kind}")  # an installed one that cannot import
        factor = well_conditioned_factor(window.cov)
        if factor is None:
            singular = singular_covariance(window.cov, self.params)
            if singular is not None:
                return AllocationResult.failed(f"{self.kind}: {singular}")
        return self.solve(replace(window, factor=factor))

    @abstractmethod
    def solve(self, window: Window) -> AllocationResult:
        """Return the program's answer for its objective."""


class MinimumVariance(ConvexAllocator):
    """The weights of least variance under the constraints."""

    kind = "minimum_variance"

    def solve(self, window: Window) -> AllocationResult:
        """Return the minimum-variance weights."""
        objective = Objective("variance", costs=False)
        return _solved(self.kind, objective, window)


class MeanVariance(ConvexAllocator):
    """Mean-variance on the window's mean returns: the maximum Sharpe ratio, or the
    largest risk-aversion utility."""

    kind = "mean_variance"
    params: MeanVarianceParams

    def solve(self, window: Window) -> AllocationResult:
        """Return the mean-variance weights."""
        objective = mean_variance_objective(self.params, window.returns.mean(axis=0))
        return _solved(self.kind, objective, window)


class MaximumDiversification(ConvexAllocator):
    """The weights of the largest diversification ratio: the weighted average of the
    volatilities over the portfolio's volatility."""

    kind = "maximum_diversification"

    def solve(self, window: Window) -> AllocationResult:
        """Return the maximum-diversification weights."""
        volatility = np.sqrt(np.diag(window.cov))
        objective = Objective("ratio", volatility, costs=False, what="diversification")
        return _solved(self.kind, objective, window)


def _solved(kind: str, objective: Objective, window: Window) -> AllocationResult:
    linear = np.ones(window.cov.shape[0]) if objective.mu is None else objective.mu
    start = unconstrained_guess(window.factor, linear)
    return solve_program(kind, objective, window.cov, window.constraints, window.previous, start)


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
