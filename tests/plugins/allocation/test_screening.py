"""A program solved over working sets (`tradeloom.plugins.allocation.screening`) has the
optimum of the one program over every symbol, within the solver's documented tolerance,
for every objective; screening steps aside where a left-out weight would touch another
constraint."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.plugins.allocation.covariance import covariance
from tradeloom.plugins.allocation.optimised import unconstrained_guess, well_conditioned_factor
from tradeloom.plugins.allocation.program import (
    SOLVER_TOLERANCE,
    Objective,
    full_program,
    screenable,
    screened,
    solve_program,
)
from tradeloom.plugins.protocols_allocation import GroupCap, WeightConstraints


def _market(n: int, seed: int, bars: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factor = rng.normal(0.0, 0.01, (bars, 1))
    beta = rng.uniform(0.5, 1.5, (1, n))
    drift = rng.normal(0.0003, 0.0005, (1, n))
    return np.asarray(factor * beta + drift + rng.normal(0.0, 0.01, (bars, n)))


def _objectives(returns: np.ndarray, cov: np.ndarray) -> list[Objective]:
    mu = returns.mean(axis=0)
    return [
        Objective("variance", costs=False),
        Objective("utility", mu, 3.0),
        Objective("ratio", mu),
        Objective("ratio", np.sqrt(np.diag(cov)), costs=False, what="diversification"),
    ]


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(100, 300),
    seed=st.integers(0, 10_000),
    cap=st.sampled_from([1.0, 0.1, 0.04]),
    net=st.sampled_from([1.0, 0.98]),
    held=st.booleans(),
)
def test_screened_equals_the_program_over_every_symbol(
    n: int, seed: int, cap: float, net: float, held: bool
) -> None:
    returns = _market(n, seed)
    cov = covariance(returns, "ledoit_wolf")
    constraints = WeightConstraints((0.0,) * n, (min(cap, net),) * n, net)
    previous = np.full(n, net / n) if held else None
    factor = well_conditioned_factor(cov)
    assert factor is not None
    for objective in _objectives(returns, cov):
        assert screenable(objective, constraints, previous)
        full = full_program("k", objective, cov, constraints, previous)
        linear = np.ones(n) if objective.mu is None else objective.mu
        start = unconstrained_guess(factor, linear)
        fast = screened("k", objective, cov, constraints, previous, start)
        if full.status != "ok":  # no optimum: screening must not invent one
            assert fast is None
            continue
        assert full.weights is not None
        if fast is not None:  # None: it could not decide (the program then answers)
            assert fast.weights is not None
            np.testing.assert_allclose(fast.weights, full.weights, atol=SOLVER_TOLERANCE)
        answer = solve_program("k", objective, cov, constraints, previous, start)
        assert answer.weights is not None
        np.testing.assert_allclose(answer.weights, full.weights, atol=SOLVER_TOLERANCE)


@pytest.mark.parametrize("cap", [1.0, 0.05])
def test_at_universe_scale_each_objective_is_screened_to_the_same_optimum(cap: float) -> None:
    n = 400
    returns = _market(n, 5, bars=500)
    cov = covariance(returns, "ledoit_wolf")
    constraints = WeightConstraints((0.0,) * n, (cap,) * n, 1.0)
    factor = well_conditioned_factor(cov)
    for objective in _objectives(returns, cov):
        linear = np.ones(n) if objective.mu is None else objective.mu
        start = unconstrained_guess(factor, linear)
        fast = screened("k", objective, cov, constraints, None, start)
        full = full_program("k", objective, cov, constraints, None)
        assert fast is not None and fast.weights is not None, objective
        assert full.weights is not None
        np.testing.assert_allclose(fast.weights, full.weights, atol=SOLVER_TOLERANCE)
        assert (fast.weights > 1e-6).sum() < n / 4  # few symbols held: worth screening


def test_a_working_set_that_misses_the_optimum_grows_until_it_holds_it() -> None:
    n = 400
    returns = _market(n, 3, bars=500)
    cov = covariance(returns, "ledoit_wolf")
    constraints = WeightConstraints.long_only(n)
    objective = Objective("variance", costs=False)
    # the worst start: the symbols of the largest variance first
    fast = screened("k", objective, cov, constraints, None, np.diag(cov))
    full = full_program("k", objective, cov, constraints, None)
    assert fast is not None and fast.weights is not None and full.weights is not None
    np.testing.assert_allclose(fast.weights, full.weights, atol=SOLVER_TOLERANCE)


@pytest.mark.parametrize(
    "constraints",
    [
        WeightConstraints((0.0,) * 200, (1.0,) * 200, groups=(GroupCap("g", (0, 1), 0.2),)),
        WeightConstraints((-0.1,) * 200, (1.0,) * 200),
        WeightConstraints((0.0,) * 200, (1.0,) * 200, gross_exposure=1.0),
        WeightConstraints((0.0,) * 200, (1.0,) * 200, max_turnover=0.5),
        WeightConstraints((0.0,) * 200, (1.0,) * 200, transaction_cost=1e-4),
        WeightConstraints((0.0,) * 99, (1.0,) * 99),
    ],
    ids=["groups", "shorts", "gross", "turnover", "cost", "small"],
)
def test_screening_steps_aside_where_a_left_out_weight_touches_another_constraint(
    constraints: WeightConstraints,
) -> None:
    mu = np.full(constraints.symbols, 1e-4)
    assert not screenable(Objective("utility", mu), constraints, np.zeros(constraints.symbols))
