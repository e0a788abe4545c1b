"""Built-in plugin: the allocation layer (target weights of the universe).

equal_weight, inverse_volatility and risk_parity are closed forms in numpy
(`tradeloom.plugins.allocation.closed_form`), hrp a tree (scipy) and a bisection
(compiled: `tradeloom.plugins.allocation.hrp`); the others are one convex program over cvxpy
and Clarabel, the ``allocation`` extra (`tradeloom.plugins.allocation.program`,
`tradeloom.plugins.allocation.optimised`, `tradeloom.plugins.allocation.black_litterman`).
"""

from __future__ import annotations

from tradeloom.plugins.component import LazyComponent
from tradeloom.plugins.hookspecs import catalog

__all__ = ["tradeloom_components"]

_CLOSED = "tradeloom.plugins.allocation.closed_form"
_SOLVED = "tradeloom.plugins.allocation.optimised"


tradeloom_components = catalog(
    LazyComponent(
        "allocation",
        "equal_weight",
        _CLOSED,
        "EqualWeightParams",
        "build_equal_weight",
        summary="the net exposure shared equally between the symbols",
    ),
    LazyComponent(
        "allocation",
        "inverse_volatility",
        _CLOSED,
        "InverseVolatilityParams",
        "build_inverse_volatility",
        summary="weights proportional to 1 / each symbol's trailing volatility",
    ),
    LazyComponent(
        "allocation",
        "risk_parity",
        _CLOSED,
        "RiskParityParams",
        "build_risk_parity",
        summary="equal risk contribution (long-only), solved in numpy",
    ),
    LazyComponent(
        "allocation",
        "minimum_variance",
        _SOLVED,
        "MinimumVarianceParams",
        "build_minimum_variance",
        summary="the least variance under the constraints (cvxpy)",
    ),
    LazyComponent(
        "allocation",
        "mean_variance",
        _SOLVED,
        "MeanVarianceParams",
        "build_mean_variance",
        summary="maximum Sharpe ratio or risk-aversion utility (cvxpy)",
    ),
    LazyComponent(
        "allocation",
        "hrp",
        "tradeloom.plugins.allocation.hrp",
        "HierarchicalRiskParityParams",
        "build_hrp",
        summary="hierarchical risk parity (Lopez de Prado), compiled, with scipy's tree",
    ),
    LazyComponent(
        "allocation",
        "maximum_diversification",
        _SOLVED,
        "MaximumDiversificationParams",
        "build_maximum_diversification",
        summary="the largest diversification ratio (cvxpy)",
    ),
    LazyComponent(
        "allocation",
        "black_litterman",
        "tradeloom.plugins.allocation.black_litterman",
        "BlackLittermanParams",
        "build_black_litterman",
        summary="mean-variance on the equilibrium blended with the model's views (cvxpy)",
    ),
)
"""The allocators."""
