"""Hierarchical risk parity (Lopez de Prado, "Building diversified portfolios that
outperform out of sample", 2016), in numpy and scipy: it needs no extra.

On the declared covariance ``S`` of the window (its correlation ``rho`` for the tree, its
variances for the split):

1. the distance of two symbols is ``sqrt((1 - rho_ij) / 2)``;
2. scipy's ``linkage`` of those distances by the declared method (``linkage``, default
   ``single``: the paper's) builds the tree, its leaves ordered left to right
   (``leaves_list``; with ``optimal_ordering: true``, reordered so that neighbours are as
   close as the tree allows, Bar-Joseph et al. 2001);
3. the ordered symbols are bisected top down: each half is valued at the variance of its
   own inverse-variance portfolio, ``V``, and the left half gets ``1 - V_l / (V_l + V_r)``
   of the parent's weight, the right half the rest, until every half is one symbol.

The weights sum to 1 and are then scaled to the net exposure. Declared bounds are met
in the bisection (as skfolio's ``HierarchicalRiskParity``): each split is clipped so that
each half's weight stays within the sum of its members' bounds (over the net exposure).
Group caps, a turnover limit and a transaction cost it cannot honour: validation refuses
them (``honours`` is empty).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from tradeloom.plugins.allocation.covariance import CovarianceParams
from tradeloom.plugins.allocation.window import Window, WindowAllocator
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols_allocation import AllocationResult
from tradeloom.runtime.lazy import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "HierarchicalRiskParity",
    "HierarchicalRiskParityParams",
    "Linkage",
    "build_hrp",
    "hrp_order",
    "hrp_weights",
]

Linkage = Literal["single", "complete", "average", "weighted", "centroid", "median", "ward"]


class HierarchicalRiskParityParams(CovarianceParams):
    """Keys of ``allocation`` with ``kind: hrp``."""

    honours: ClassVar[frozenset[str]] = frozenset()

    linkage: Linkage = Field(
        default="single",
        description="How the tree joins clusters (scipy's linkage methods): single "
        "(Lopez de Prado's: the nearest members), complete, average, weighted, centroid, "
        "median or ward.",
    )
    optimal_ordering: bool = Field(
        default=False,
        description="Reorder the tree's leaves so that neighbours are as close as the "
        "tree allows (scipy's optimal leaf ordering) before the bisection.",
    )


def hrp_order(
    cov: npt.NDArray[np.float64], linkage: Linkage, optimal_ordering: bool
) -> npt.NDArray[np.intp]:
    """Return the symbols in the order of the leaves of the tree of ``cov``'s correlation."""
    from scipy.cluster.hierarchy import leaves_list
    from scipy.cluster.hierarchy import linkage as tree
    from scipy.spatial.distance import squareform

    n = cov.shape[0]
    if n < 2:
        return np.arange(n)
    volatility = np.sqrt(np.diag(cov))
    rho = np.clip(cov / np.outer(volatility, volatility), -1.0, 1.0)
    distance = np.sqrt(np.clip((1.0 - rho) / 2.0, 0.0, 1.0))
    np.fill_diagonal(distance, 0.0)
    condensed = squareform((distance + distance.T) / 2.0, checks=False)
    return np.asarray(
        leaves_list(tree(condensed, method=linkage, optimal_ordering=optimal_ordering)),
        dtype=np.intp,
    )


def hrp_weights(
    cov: npt.NDArray[np.float64],
    order: npt.NDArray[np.intp],
    lower: npt.NDArray[np.float64] | None = None,
    upper: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Return the recursive bisection's weights of ``order`` (summing to 1), each split
    clipped to the halves' bounds when ``lower`` and ``upper`` are given."""
    n = cov.shape[0]
    weights = np.ones(n)
    inverse = 1.0 / np.diag(cov)
    clusters = [np.asarray(order)]
    while clusters:
        halves = [(c[: len(c) // 2], c[len(c) // 2 :]) for c in clusters if len(c) > 1]
        for left, right in halves:
            variance = []
            for half in (left, right):
                ivp = inverse[half] / inverse[half].sum()
                variance.append(float(ivp @ cov[np.ix_(half, half)] @ ivp))
            alpha = 1.0 - variance[0] / (variance[0] + variance[1])
            if lower is not None and upper is not None:
                alpha = _bounded(alpha, weights, lower, upper, left, right)
            weights[left] *= alpha
            weights[right] *= 1.0 - alpha
        clusters = [half for pair in halves for half in pair]
    return weights


def _bounded(
    alpha: float,
    weights: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    left: npt.NDArray[np.intp],
    right: npt.NDArray[np.intp],
) -> float:
    # skfolio's split under bounds: the left half's share within its members' bounds over
    # the parent's weight, then the right half's
    parent = float(weights[left[0]])
    alpha = min(float(upper[left].sum()) / parent, max(float(lower[left].sum()) / parent, alpha))
    low, high = float(lower[right].sum()) / parent, float(upper[right].sum()) / parent
    return 1.0 - min(high, max(low, 1.0 - alpha))


class HierarchicalRiskParity(WindowAllocator):
    """Lopez de Prado's hierarchical risk parity: a tree of the symbols' correlations,
    split top down in inverse proportion to each branch's variance."""

    kind = "hrp"
    params: HierarchicalRiskParityParams

    def weigh(self, window: Window) -> AllocationResult:
        """Return the hierarchical-risk-parity weights, scaled to the net exposure."""
        cov, constraints = window.cov, window.constraints
        order = hrp_order(cov, self.params.linkage, self.params.optimal_ordering)
        net = constraints.net_exposure
        # the bisection's weights sum to 1: its bounds are the declared ones over the exposure
        lower = np.maximum(np.asarray(constraints.min_weight), 0.0) / net
        upper = np.asarray(constraints.max_weight) / net
        return AllocationResult.ok(net * hrp_weights(cov, order, lower, upper))


def build_hrp(params: HierarchicalRiskParityParams, ctx: BuildContext) -> HierarchicalRiskParity:
    """Build the hierarchical-risk-parity allocator."""
    return HierarchicalRiskParity(params)
