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

Inverse volatility and risk parity take the window through the prologue every allocator
of the window shares (`tradeloom.plugins.allocation.window`: a flat series refused by
name). They are long-only by construction. Declared bounds are met by one documented projection
(`within_bounds`): when the weights above break a bound, each becomes
``min(max(t * w_i, lower_i), upper_i)`` with the one ``t`` that makes them sum to ``E``
(the weights clipped at their bounds, the rest keeping their proportions; risk parity's
risk contributions are then no longer equal). Group caps, a turnover limit and a
transaction cost they cannot honour (their params' ``honours`` is empty): validation
refuses them, and a minimum variance or a mean-variance allocator solves under them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from tradeloom.plugins.allocation.covariance import CovarianceParams, covariance_diagonal
from tradeloom.plugins.allocation.window import Window, WindowAllocator, window_problem
from tradeloom.plugins.component import BuildContext, Params
from tradeloom.plugins.protocols_allocation import (
    ERC_MAX_SWEEPS,
    ERC_TOLERANCE,
    AllocationResult,
    WeightConstraints,
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
    "within_bounds",
]


class EqualWeightParams(Params):
    """Keys of ``allocation`` with ``kind: equal_weight`` (none)."""

    honours: ClassVar[frozenset[str]] = frozenset()


class InverseVolatilityParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: inverse_volatility``."""

    honours: ClassVar[frozenset[str]] = frozenset()


class RiskParityParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: risk_parity``."""

    honours: ClassVar[frozenset[str]] = frozenset()


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
        return AllocationResult.ok(within_bounds(weights, constraints))


class InverseVolatility(WindowAllocator):
    """Weights proportional to ``1 / volatility`` of each symbol's trailing returns."""

    kind = "inverse_volatility"

    def allocate(
        self,
        returns: npt.NDArray[np.float64],
        constraints: WeightConstraints,
        probabilities: npt.NDArray[np.float64] | None = None,
        horizon: int = 0,
        previous: npt.NDArray[np.float64] | None = None,
    ) -> AllocationResult:
        """Return inverse-volatility weights after the prologue, from the estimator's
        variances alone (`tradeloom.plugins.allocation.covariance.covariance_diagonal`:
        no ``[symbols, symbols]`` matrix)."""
        returns = np.asarray(returns, dtype=np.float64)
        known = window_problem(self.kind, returns, constraints)
        if known is not None:
            return known
        params = self.params
        variance = covariance_diagonal(returns, params.covariance, params.halflife)
        return self._weights(variance, constraints)

    def observe(self, returns: npt.NDArray[np.float64]) -> None:
        """Carry nothing: the variances alone are ``O(bars symbols)`` from the window."""

    def weigh(self, window: Window) -> AllocationResult:
        """Return inverse-volatility weights summing to the net exposure."""
        return self._weights(np.diag(window.cov), window.constraints)

    def _weights(
        self, variance: npt.NDArray[np.float64], constraints: WeightConstraints
    ) -> AllocationResult:
        if not np.all(variance > 0):
            k = int(np.flatnonzero(~(variance > 0))[0])
            return AllocationResult.failed(
                f"{self.kind}: {constraints.name(k)} has no volatility over the window"
            )
        inverse = 1.0 / np.sqrt(variance)
        weights = constraints.net_exposure * inverse / inverse.sum()
        return AllocationResult.ok(within_bounds(weights, constraints))


class RiskParity(WindowAllocator):
    """Equal risk contribution: every symbol adds the same share of the portfolio's
    variance."""

    kind = "risk_parity"

    def weigh(self, window: Window) -> AllocationResult:
        """Return the equal-risk-contribution weights summing to the net exposure."""
        constraints = window.constraints
        found = erc_weights(window.cov)
        if isinstance(found, str):
            return AllocationResult.failed(f"{self.kind}: {found}")
        return AllocationResult.ok(within_bounds(constraints.net_exposure * found, constraints))


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
