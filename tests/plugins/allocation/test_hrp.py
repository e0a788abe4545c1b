"""Hierarchical risk parity on real prices (20 S&P 500 stocks, daily) against two
implementations it shares no code with:

- PyPortfolioOpt's ``HRPOpt`` given the declared covariance: Lopez de Prado's algorithm
  (scipy's linkage of ``sqrt((1 - rho) / 2)``, the leaves left to right, the bisection
  by inverse-variance cluster variances), for every linkage method, to 1e-9;
- skfolio's ``HierarchicalRiskParity`` on the same covariance (its distance from the
  prior's covariance, its seriation with optimal leaf ordering, its bounded split), for
  what PyPortfolioOpt has no key for: optimal leaf ordering and bounds.

The default is the documented one, single linkage without reordering: the docs name
Lopez de Prado's HRP, whose paper clusters by single linkage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypfopt import HRPOpt
from skfolio.cluster import HierarchicalClustering, LinkageMethod
from skfolio.distance import CovarianceDistance
from skfolio.moments import LedoitWolf
from skfolio.optimization import HierarchicalRiskParity as SkfolioHrp
from skfolio.prior import EmpiricalPrior
from skfolio.seriation import HierarchicalSeriation

from tests.plugins.allocation.conftest import refit
from tradeloom.plugins.allocation.covariance import covariance
from tradeloom.plugins.allocation.hrp import (
    HierarchicalRiskParity,
    HierarchicalRiskParityParams,
    hrp_order,
    hrp_weights,
)
from tradeloom.plugins.protocols_allocation import WeightConstraints

N = 20
EXACT = 1e-9
METHODS = ["single", "complete", "average", "weighted", "centroid", "median", "ward"]


def _pyportfolioopt(window: np.ndarray, method: str) -> np.ndarray:
    names = [f"a{k:02d}" for k in range(N)]
    cov = pd.DataFrame(covariance(window, "ledoit_wolf"), index=names, columns=names)
    weights = HRPOpt(cov_matrix=cov).optimize(linkage_method=method)
    return np.array([weights[name] for name in names])


@pytest.mark.parametrize("method", METHODS)
def test_each_linkage_equals_pyportfolioopt(sp500_windows: list[np.ndarray], method: str) -> None:
    allocator = HierarchicalRiskParity(HierarchicalRiskParityParams(linkage=method))  # type: ignore[arg-type]
    for window in sp500_windows[::2]:  # 1995, 2008, 2021
        ours = allocator.allocate(window, WeightConstraints.long_only(N))
        assert ours.status == "ok" and ours.weights is not None, ours.message
        np.testing.assert_allclose(ours.weights, _pyportfolioopt(window, method), atol=EXACT)
        half = allocator.allocate(window, WeightConstraints.long_only(N, net_exposure=0.5))
        assert half.weights is not None
        np.testing.assert_allclose(half.weights, ours.weights / 2, rtol=1e-14)


def test_the_default_is_lopez_de_prado_s_single_linkage(sp500_windows: list[np.ndarray]) -> None:
    params = HierarchicalRiskParityParams()
    assert (params.linkage, params.optimal_ordering) == ("single", False)
    ward = HierarchicalRiskParity(
        HierarchicalRiskParityParams(linkage="ward", optimal_ordering=True)
    )
    apart = 0.0
    for window in sp500_windows:
        ours = HierarchicalRiskParity(params).allocate(window, WeightConstraints.long_only(N))
        assert ours.weights is not None
        np.testing.assert_allclose(ours.weights, _pyportfolioopt(window, "single"), atol=EXACT)
        other = ward.allocate(window, WeightConstraints.long_only(N)).weights
        assert other is not None
        apart = max(apart, float(np.abs(other - ours.weights).max()))
    assert apart > 0.01  # the linkage moves real weights: it is a declared choice


def _skfolio(
    window: np.ndarray, method: LinkageMethod, ordering: bool, high: float = 1.0
) -> np.ndarray:
    estimator = SkfolioHrp(
        prior_estimator=EmpiricalPrior(covariance_estimator=LedoitWolf()),
        distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=method),
            optimal_ordering=ordering,
        ),
        max_weights=high,
    )
    estimator.set_params(distance_estimator__covariance_estimator="precomputed")
    return refit(estimator, window)


@pytest.mark.parametrize(
    ("method", "linkage"), [(LinkageMethod.WARD, "ward"), (LinkageMethod.SINGLE, "single")]
)
def test_optimal_leaf_ordering_equals_skfolio(
    sp500_windows: list[np.ndarray], method: LinkageMethod, linkage: str
) -> None:
    allocator = HierarchicalRiskParity(
        HierarchicalRiskParityParams(linkage=linkage, optimal_ordering=True)  # type: ignore[arg-type]
    )
    for window in sp500_windows:
        ours = allocator.allocate(window, WeightConstraints.long_only(N))
        assert ours.weights is not None
        np.testing.assert_allclose(ours.weights, _skfolio(window, method, True), atol=EXACT)


def test_bounds_are_met_in_the_split_as_skfolio_meets_them(
    sp500_windows: list[np.ndarray],
) -> None:
    capped = WeightConstraints((0.0,) * N, (0.08,) * N, 0.98)
    allocator = HierarchicalRiskParity(HierarchicalRiskParityParams(linkage="ward"))
    binding = 0
    for window in sp500_windows:
        ours = allocator.allocate(window, capped)
        assert ours.status == "ok" and ours.weights is not None, ours.message
        theirs = _skfolio(window, LinkageMethod.WARD, False, high=0.08 / 0.98)
        np.testing.assert_allclose(ours.weights, 0.98 * theirs, atol=EXACT)
        assert ours.weights.max() <= 0.08 + 1e-12
        free = allocator.allocate(window, WeightConstraints.long_only(N, net_exposure=0.98))
        binding += int(free.weights is not None and free.weights.max() > 0.08)
    assert binding >= 3


def test_a_textbook_case_by_hand() -> None:
    """Two uncorrelated pairs: the tree pairs the correlated symbols, the top split gives
    each pair 1 - V / (V_a + V_b) of the weight, each pair splits by inverse variance."""
    vol = np.array([0.01, 0.02, 0.03, 0.04])
    rho = np.array([[1, 0.8, 0, 0], [0.8, 1, 0, 0], [0, 0, 1, 0.6], [0, 0, 0.6, 1.0]])
    cov = rho * np.outer(vol, vol)
    order = hrp_order(cov, "single", False)
    assert sorted(order[:2].tolist()) in ([0, 1], [2, 3])

    def ivp_variance(members: list[int]) -> float:
        w = 1 / vol[members] ** 2
        w /= w.sum()
        return float(w @ cov[np.ix_(members, members)] @ w)

    va, vb = ivp_variance([0, 1]), ivp_variance([2, 3])
    expected = np.array(
        [
            (1 - va / (va + vb)) * (1 - vol[0] ** 2 / (vol[0] ** 2 + vol[1] ** 2)),
            (1 - va / (va + vb)) * (vol[0] ** 2 / (vol[0] ** 2 + vol[1] ** 2)),
            (va / (va + vb)) * (1 - vol[2] ** 2 / (vol[2] ** 2 + vol[3] ** 2)),
            (va / (va + vb)) * (vol[2] ** 2 / (vol[2] ** 2 + vol[3] ** 2)),
        ]
    )
    np.testing.assert_allclose(hrp_weights(cov, order), expected, rtol=1e-12)


def test_a_symbol_without_variance_fails_named() -> None:
    flat = np.random.default_rng(3).normal(0, 0.01, (60, 3))
    flat[:, 1] = 0.0
    result = HierarchicalRiskParity(HierarchicalRiskParityParams()).allocate(
        flat, WeightConstraints.long_only(3, names=("AAPL", "KO", "XOM"))
    )
    assert (result.status, result.message) == (
        "failed",
        "hrp: KO has no volatility over the window",
    )


# -- the compiled kernels against the numpy they replaced (issue 85) ---------------------


def _order_numpy(cov: np.ndarray, linkage: str) -> np.ndarray:
    from scipy.cluster.hierarchy import leaves_list
    from scipy.cluster.hierarchy import linkage as tree
    from scipy.spatial.distance import squareform

    volatility = np.sqrt(np.diag(cov))
    rho = np.clip(cov / np.outer(volatility, volatility), -1.0, 1.0)
    distance = np.sqrt(np.clip((1.0 - rho) / 2.0, 0.0, 1.0))
    np.fill_diagonal(distance, 0.0)
    condensed = squareform((distance + distance.T) / 2.0, checks=False)
    return np.asarray(leaves_list(tree(condensed, method=linkage)), dtype=np.intp)


def _weights_numpy(
    cov: np.ndarray, order: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
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
            parent = float(weights[left[0]])
            alpha = min(upper[left].sum() / parent, max(lower[left].sum() / parent, alpha))
            low, high = lower[right].sum() / parent, upper[right].sum() / parent
            alpha = 1.0 - min(high, max(low, 1.0 - alpha))
            weights[left] *= alpha
            weights[right] *= 1.0 - alpha
        clusters = [half for pair in halves for half in pair]
    return weights


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 90),
    bars=st.integers(3, 200),
    seed=st.integers(0, 2**32 - 1),
    cap=st.sampled_from([1.0, 0.3, 0.1]),
    linkage=st.sampled_from(["single", "ward", "average"]),
)
def test_the_compiled_distance_and_bisection_equal_the_numpy_they_replaced(
    n: int, bars: int, seed: int, cap: float, linkage: str
) -> None:
    rng = np.random.default_rng(seed)
    factor = rng.normal(0.0, 0.01, (bars, 1)) * rng.uniform(-1.0, 2.0, (1, n))
    window = factor + rng.normal(0.0, 0.01, (bars, n)) * rng.uniform(0.1, 3.0, (1, n))
    cov = covariance(window, "ledoit_wolf")
    order = hrp_order(cov, linkage, False)  # type: ignore[arg-type]
    np.testing.assert_array_equal(order, _order_numpy(cov, linkage))
    lower, upper = np.zeros(n), np.full(n, max(cap, 1.0 / n))
    ours = hrp_weights(cov, order, lower, upper)
    np.testing.assert_allclose(ours, _weights_numpy(cov, order, lower, upper), rtol=0, atol=1e-12)
    free = hrp_weights(cov, order)
    np.testing.assert_allclose(free, _weights_numpy(cov, order, lower, np.ones(n)), atol=1e-12)
