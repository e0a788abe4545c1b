"""Minimum variance, mean-variance and maximum diversification: what is known before
solving, and what the solver's answer must keep (their numbers against closed forms,
PyPortfolioOpt and an independent program are in test_program.py).

A failure is a status: infeasible bounds, a singular covariance, a solver that finds no
answer are each an `AllocationResult` with a message and no weights, never an exception
and never equal weights.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.plugins.allocation.optimised import (
    SOLVER_TOLERANCE,
    MaximumDiversification,
    MaximumDiversificationParams,
    MeanVariance,
    MeanVarianceParams,
    MinimumVariance,
    MinimumVarianceParams,
    build_minimum_variance,
)
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.protocols_allocation import WeightConstraints, constraint_violation

LONG = WeightConstraints((0.0,) * 6, (0.35,) * 6, 1.0)


def test_the_turnover_limit_binds(windows: list[np.ndarray]) -> None:
    previous = np.full(6, 1 / 6)
    free = MinimumVariance(MinimumVarianceParams()).allocate(windows[1], LONG)
    assert free.weights is not None
    limited = WeightConstraints(LONG.min_weight, LONG.max_weight, 1.0, max_turnover=0.1)
    bound = MinimumVariance(MinimumVarianceParams()).allocate(
        windows[1], limited, previous=previous
    )
    assert np.abs(free.weights - previous).sum() > 0.1
    assert bound.weights is not None
    assert np.abs(bound.weights - previous).sum() == pytest.approx(0.1, abs=SOLVER_TOLERANCE)


def test_infeasible_bounds_are_a_status_naming_the_key(windows: list[np.ndarray]) -> None:
    tight = WeightConstraints((0.0,) * 6, (0.1,) * 6, 1.0)
    for allocator in (
        MinimumVariance(MinimumVarianceParams()),
        MeanVariance(MeanVarianceParams()),
        MaximumDiversification(MaximumDiversificationParams()),
    ):
        result = allocator.allocate(windows[0], tight)
        assert result.status == "infeasible" and result.weights is None
        assert result.message.endswith(
            "max_weight: the largest weights sum to 0.6, below net_exposure 1: no weights "
            "can reach it"
        )


def test_a_singular_covariance_fails_and_never_raises(windows: list[np.ndarray]) -> None:
    twin = windows[0].copy()
    twin[:, 1] = twin[:, 0]  # two symbols that move together
    result = MinimumVariance(MinimumVarianceParams(covariance="sample")).allocate(
        twin, WeightConstraints.long_only(6)
    )
    assert result.status == "failed" and result.weights is None
    assert result.message == (
        "minimum_variance: the sample covariance of the window is singular (rank 5 of 6 "
        "symbols): a symbol without variance, symbols that move together, or too few bars; "
        "lengthen the window or use covariance: ledoit_wolf"
    )
    flat = windows[0].copy()
    flat[:, 3] = 0.0
    result = MinimumVariance(MinimumVarianceParams()).allocate(
        flat, WeightConstraints.long_only(6, names=("A", "B", "C", "D", "E", "F"))
    )
    assert (result.status, result.message) == (
        "failed",
        "minimum_variance: D has no volatility over the window",
    )


def test_without_cvxpy_the_factory_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    ctx = BuildContext("s", strategy_dir=__import__("pathlib").Path("."), seed=0)
    with pytest.raises(ParamError) as caught:
        build_minimum_variance(MinimumVarianceParams(), ctx)
    assert (caught.value.key, caught.value.message) == (
        "kind",
        "allocation kind minimum_variance needs cvxpy: pip install 'tradeloom[allocation]'",
    )


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.floats(min_value=0.2, max_value=1.0),
    st.floats(min_value=0.25, max_value=1.0),
)
def test_minimum_variance_meets_the_exposure_and_the_bounds(
    seed: int, exposure: float, cap: float
) -> None:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, rng.uniform(0.005, 0.03, 5), (80, 5))
    constraints = WeightConstraints((0.0,) * 5, (cap * exposure,) * 5, exposure)
    result = MinimumVariance(MinimumVarianceParams()).allocate(returns, constraints)
    assert result.status == "ok" and result.weights is not None
    assert abs(result.weights.sum() - exposure) <= SOLVER_TOLERANCE
    assert constraint_violation(result.weights, constraints, None, SOLVER_TOLERANCE) is None
