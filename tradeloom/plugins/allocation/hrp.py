"""Hierarchical risk parity (Lopez de Prado, "Building diversified portfolios that
outperform out of sample", 2016), compiled (numba) and scipy: it needs no extra.

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

The distance (`condensed_distance`) and the bisection (`bisect`) are compiled kernels,
one pass each; the tree and its leaves are scipy's (compiled already: single linkage is
its minimum spanning tree). tests/plugins/allocation/test_hrp.py holds both kernels to
the numpy they replaced (kept there as the reference) to 1e-12 on generated
covariances.

The weights sum to 1 and are then scaled to the net exposure. Declared bounds are met
in the bisection (as skfolio's ``HierarchicalRiskParity``): each split is clipped so that
each half's weight stays within the sum of its members' bounds (over the net exposure).
Group caps, a turnover limit and a transaction cost it cannot honour: validation refuses
them (``honours`` is empty).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field

from tradeloom.kernels.jit import kernel
from tradeloom.plugins.allocation.covariance import CovarianceParams
from tradeloom.plugins.allocation.window import Window, WindowAllocator
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols_allocation import AllocationResult

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "HierarchicalRiskParity",
    "HierarchicalRiskParityParams",
    "Linkage",
    "bisect",
    "build_hrp",
    "condensed_distance",
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

    n = cov.shape[0]
    if n < 2:
        return np.arange(n)
    condensed = condensed_distance(np.ascontiguousarray(cov, dtype=np.float64))
    return np.asarray(
        leaves_list(tree(condensed, method=linkage, optimal_ordering=optimal_ordering)),
        dtype=np.intp,
    )


@kernel
def condensed_distance(cov: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Return the condensed (scipy's ``squareform``) distances ``sqrt((1 - rho_ij) / 2)``
    of ``cov``'s correlation, each pair's the mean of its two triangles' (``rho``
    clipped to ``[-1, 1]``), in one pass."""
    n = cov.shape[0]
    volatility = np.sqrt(np.diag(cov))
    out = np.empty(n * (n - 1) // 2)
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            upper = min(max(cov[i, j] / (volatility[i] * volatility[j]), -1.0), 1.0)
            lower = min(max(cov[j, i] / (volatility[j] * volatility[i]), -1.0), 1.0)
            upper = np.sqrt(min(max((1.0 - upper) / 2.0, 0.0), 1.0))
            lower = np.sqrt(min(max((1.0 - lower) / 2.0, 0.0), 1.0))
            out[k] = (upper + lower) / 2.0
            k += 1
    return out


def hrp_weights(
    cov: npt.NDArray[np.float64],
    order: npt.NDArray[np.intp],
    lower: npt.NDArray[np.float64] | None = None,
    upper: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Return the recursive bisection's weights of ``order`` (summing to 1), each split
    clipped to the halves' bounds when ``lower`` and ``upper`` are given."""
    n = cov.shape[0]
    bounded = lower is not None and upper is not None
    low = np.zeros(n) if lower is None else np.asarray(lower, dtype=np.float64)
    high = np.ones(n) if upper is None else np.asarray(upper, dtype=np.float64)
    return np.asarray(
        bisect(
            np.ascontiguousarray(cov, dtype=np.float64),
            np.asarray(order, dtype=np.int64),
            np.ascontiguousarray(low),
            np.ascontiguousarray(high),
            bounded,
        ),
        dtype=np.float64,
    )


@kernel
def bisect(
    cov: npt.NDArray[np.float64],
    order: npt.NDArray[np.int64],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    bounded: bool,
) -> npt.NDArray[np.float64]:
    """Return the recursive bisection's weights (see `hrp_weights`): the ordered symbols
    split top down, a parent before its halves (a stack of ``[start, stop)`` runs of
    ``order``)."""
    n = cov.shape[0]
    weights = np.ones(n)
    stack = np.empty((2 * n + 2, 2), dtype=np.int64)
    stack[0, 0], stack[0, 1] = 0, n
    top = 1
    while top > 0:
        top -= 1
        start, stop = stack[top, 0], stack[top, 1]
        if stop - start < 2:
            continue
        middle = start + (stop - start) // 2
        left = _ivp_variance(cov, order, start, middle)
        right = _ivp_variance(cov, order, middle, stop)
        alpha = 1.0 - left / (left + right)
        if bounded:
            parent = weights[order[start]]
            low_left = 0.0
            high_left = 0.0
            for k in range(start, middle):
                low_left += lower[order[k]]
                high_left += upper[order[k]]
            low_right = 0.0
            high_right = 0.0
            for k in range(middle, stop):
                low_right += lower[order[k]]
                high_right += upper[order[k]]
            alpha = min(high_left / parent, max(low_left / parent, alpha))
            alpha = 1.0 - min(high_right / parent, max(low_right / parent, 1.0 - alpha))
        for k in range(start, middle):
            weights[order[k]] *= alpha
        for k in range(middle, stop):
            weights[order[k]] *= 1.0 - alpha
        stack[top, 0], stack[top, 1] = middle, stop
        stack[top + 1, 0], stack[top + 1, 1] = start, middle
        top += 2
    return weights


@kernel
def _ivp_variance(
    cov: npt.NDArray[np.float64], order: npt.NDArray[np.int64], start: int, stop: int
) -> float:
    # the variance of the inverse-variance portfolio of order[start:stop]
    total = 0.0
    for k in range(start, stop):
        total += 1.0 / cov[order[k], order[k]]
    variance = 0.0
    for a in range(start, stop):
        i = order[a]
        row = 0.0
        for b in range(start, stop):
            j = order[b]
            row += cov[i, j] / cov[j, j]
        variance += row / cov[i, i]
    return variance / (total * total)


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
