"""The allocators with a closed form, in numpy: equal weight, inverse volatility and
risk parity (equal risk contribution). They need no extra.

With ``n`` symbols, a net exposure ``E`` and the covariance ``S`` of the trailing window:

* equal weight: ``w_i = E / n``;
* inverse volatility: ``w_i = E * (1 / s_i) / sum_j (1 / s_j)``, ``s_i = sqrt(S_ii)``;
* risk parity: the long-only ``w`` whose risk contributions ``w_i (S w)_i`` are all equal,
  ``w = E * y / sum(y)`` where ``y`` solves ``y_i (S y)_i = 1`` for every ``i`` (the
  minimiser of the strictly convex ``y'Sy / 2 - sum(log y_i)``, Maillard, Roncalli and
  Teiletche 2010), found by cyclical coordinate descent (Griveau-Billion, Richard and
  Roncalli 2013): each step sets ``y_i`` to the positive root of
  ``S_ii y_i^2 + c_i y_i - 1 = 0``, ``c_i = sum_{j != i} S_ij y_j``, until no ``y_i``
  moves by more than `ERC_TOLERANCE` of itself.

They are long-only by construction. Declared bounds are met by one documented projection
(`within_bounds`): when the weights above break a bound, each becomes
``min(max(t * w_i, lower_i), upper_i)`` with the one ``t`` that makes them sum to ``E``
(the weights clipped at their bounds, the rest keeping their proportions; risk parity's
risk contributions are then no longer equal). Group caps, a turnover limit and a
transaction cost they cannot honour (their params' ``honours`` is empty): validation
refuses them, and a minimum variance or a mean-variance allocator solves under them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from tradeloom.plugins.allocation.covariance import CovarianceParams, covariance
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols_allocation import (
    ERC_MAX_SWEEPS,
    ERC_TOLERANCE,
    AllocationResult,
    WeightConstraints,
    constraint_violation,
    erc_weights,
)
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ERC_MAX_SWEEPS",
    "ERC_TOLERANCE",
    "EqualWeight",
    "EqualWeightParams",
    "InverseVolatility",
    "InverseVolatilityParams",
    "RiskParity",
    "RiskParityParams",
    "build_equal_weight",
    "build_inverse_volatility",
    "build_risk_parity",
    "erc_weights",
    "flat_symbol",
    "returns_problem",
    "within_bounds",
]


VERIFY_TOLERANCE = 1e-9
"""How far a closed form's weights may pass a declared bound (rounding only)."""


class EqualWeightParams(Params):
    """Keys of ``allocation`` with ``kind: equal_weight`` (none)."""

    honours: ClassVar[frozenset[str]] = frozenset()


class InverseVolatilityParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: inverse_volatility``."""

    honours: ClassVar[frozenset[str]] = frozenset()


class RiskParityParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: risk_parity``."""

    honours: ClassVar[frozenset[str]] = frozenset()


def returns_problem(returns: npt.NDArray[np.float64], constraints: WeightConstraints) -> str | None:
    """Return why ``returns`` cannot be allocated over (shape, too few rows, NaN), or None."""
    if returns.ndim != 2 or returns.shape[1] != constraints.symbols:
        return (
            f"returns: expected [bars, {constraints.symbols}] for {constraints.symbols} "
            f"symbols, was {list(returns.shape)}"
        )
    if returns.shape[0] < 2:
        return f"returns: a covariance needs at least 2 bars, the window has {returns.shape[0]}"
    if not np.all(np.isfinite(returns)):
        bad = np.argwhere(~np.isfinite(returns))[0]
        return f"returns: bar {int(bad[0])} of the window has no return for symbol {int(bad[1])}"
    return None


def flat_symbol(
    returns: npt.NDArray[np.float64], constraints: WeightConstraints | None = None
) -> str | None:
    """Return why a symbol whose returns never vary over the window cannot be weighed by
    its risk (a shrunk covariance would give it a variance it does not have), or None."""
    flat = np.flatnonzero(np.ptp(returns, axis=0) == 0)
    if not flat.size:
        return None
    k = int(flat[0])
    who = constraints.name(k) if constraints is not None else f"symbol {k}"
    return f"{who} has no volatility over the window"


def within_bounds(
    weights: npt.NDArray[np.float64], constraints: WeightConstraints
) -> npt.NDArray[np.float64]:
    """Return ``weights`` (positive, summing to the net exposure) when they lie within
    the bounds; otherwise their projection ``min(max(t * w_i, lower_i), upper_i)`` with
    the one ``t`` that makes the weights sum to the net exposure.

    ``f(t) = sum_i min(max(t w_i, lower_i), upper_i)`` is continuous, non-decreasing and
    linear between the knots ``lower_i / w_i`` and ``upper_i / w_i``: ``t`` is found on
    the segment where ``f`` reaches the net exposure, exactly. Bounds that cannot reach
    it (validation refuses them) leave the weights at the nearer end.
    """
    lower = np.asarray(constraints.min_weight, dtype=np.float64)
    upper = np.asarray(constraints.max_weight, dtype=np.float64)
    if np.all(weights >= lower) and np.all(weights <= upper):
        return weights
    net = constraints.net_exposure
    knots = np.unique(np.concatenate(([0.0], lower / weights, upper / weights)))
    knots = knots[knots >= 0.0]
    totals = np.array([np.clip(t * weights, lower, upper).sum() for t in knots])
    j = int(np.searchsorted(totals, net))
    if j == 0 or j == knots.size:
        end = knots[min(j, knots.size - 1)]
        return np.asarray(np.clip(end * weights, lower, upper), dtype=np.float64)
    a, b = knots[j - 1], knots[j]  # f is linear on [a, b], f(a) < net <= f(b)
    t = a + (net - totals[j - 1]) * (b - a) / (totals[j] - totals[j - 1])
    return np.asarray(np.clip(t * weights, lower, upper), dtype=np.float64)


def _verified(
    weights: npt.NDArray[np.float64],
    constraints: WeightConstraints,
    previous: npt.NDArray[np.float64] | None,
    kind: str,
) -> AllocationResult:
    broken = constraint_violation(weights, constraints, previous, VERIFY_TOLERANCE)
    if broken is not None:
        return AllocationResult.infeasible(f"{kind}'s weights break {broken}")
    return AllocationResult.ok(weights)


class EqualWeight:
    """``net_exposure / n`` on every symbol."""

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return equal weights summing to the net exposure."""
        n = constraints.symbols
        weights = np.full(n, constraints.net_exposure / n, dtype=np.float64)
        return _verified(within_bounds(weights, constraints), constraints, previous, "equal_weight")


class InverseVolatility:
    """Weights proportional to ``1 / volatility`` of each symbol's trailing returns."""

    def __init__(self, params: InverseVolatilityParams) -> None:
        self.params = params

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return inverse-volatility weights summing to the net exposure."""
        returns = np.asarray(returns, dtype=np.float64)
        problem = returns_problem(returns, constraints) or flat_symbol(returns, constraints)
        if problem is not None:
            return AllocationResult.failed(problem)
        variance = np.diag(covariance(returns, self.params.covariance, self.params.halflife))
        if not np.all(variance > 0):
            k = int(np.flatnonzero(~(variance > 0))[0])
            return AllocationResult.failed(
                f"{constraints.name(k)} has no volatility over the window"
            )
        inverse = 1.0 / np.sqrt(variance)
        weights = constraints.net_exposure * inverse / inverse.sum()
        return _verified(
            within_bounds(weights, constraints), constraints, previous, "inverse_volatility"
        )


class RiskParity:
    """Equal risk contribution: every symbol adds the same share of the portfolio's
    variance."""

    def __init__(self, params: RiskParityParams) -> None:
        self.params = params

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return the equal-risk-contribution weights summing to the net exposure."""
        returns = np.asarray(returns, dtype=np.float64)
        problem = returns_problem(returns, constraints) or flat_symbol(returns, constraints)
        if problem is not None:
            return AllocationResult.failed(problem)
        found = erc_weights(covariance(returns, self.params.covariance, self.params.halflife))
        if isinstance(found, str):
            return AllocationResult.failed(found)
        weights = within_bounds(constraints.net_exposure * found, constraints)
        return _verified(weights, constraints, previous, "risk_parity")


def build_equal_weight(params: EqualWeightParams, ctx: BuildContext) -> EqualWeight:
    """Build the equal-weight allocator."""
    return EqualWeight()


def build_inverse_volatility(
    params: InverseVolatilityParams, ctx: BuildContext
) -> InverseVolatility:
    """Build the inverse-volatility allocator."""
    return InverseVolatility(params)


def build_risk_parity(params: RiskParityParams, ctx: BuildContext) -> RiskParity:
    """Build the risk-parity allocator."""
    return RiskParity(params)
