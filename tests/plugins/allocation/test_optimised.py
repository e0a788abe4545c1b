"""Minimum variance, mean-variance, HRP and maximum diversification: equal to a refit
with skfolio under the same constraints, spelt in skfolio's own keys here, to
`SOLVER_TOLERANCE` (1e-6; the two runs are the same Clarabel problem, so they agree far
closer: both use `SOLVER_PARAMS`), and to the textbook closed forms where the
constraints leave one (1e-6 as well: that is what `SOLVER_PARAMS` buys over Clarabel's
defaults, which leave 1e-4).

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
from skfolio.optimization import (
    HierarchicalRiskParity as SkfolioHrp,
)
from skfolio.optimization import (
    MaximumDiversification as SkfolioMaxDiv,
)
from skfolio.optimization import (
    MeanRisk,
    ObjectiveFunction,
)
from skfolio.prior import EmpiricalPrior

from tests.plugins.allocation.conftest import refit
from tradeloom.plugins.allocation.covariance import covariance, skfolio_covariance
from tradeloom.plugins.allocation.optimised import (
    SOLVER_PARAMS,
    SOLVER_TOLERANCE,
    HierarchicalRiskParity,
    HierarchicalRiskParityParams,
    MaximumDiversification,
    MaximumDiversificationParams,
    MeanVariance,
    MeanVarianceParams,
    MinimumVariance,
    MinimumVarianceParams,
    build_minimum_variance,
)
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.protocols_allocation import (
    GroupCap,
    WeightConstraints,
    constraint_violation,
)

# the reference refits run at SOLVER_PARAMS too, where skfolio warns of an "almost solved"
# answer (the allocators filter it, and check their answer against the constraints)
pytestmark = pytest.mark.filterwarnings("ignore:Solution may be inaccurate:UserWarning")

LONG = WeightConstraints((0.0,) * 6, (0.35,) * 6, 1.0)
GROUPED = WeightConstraints((0.0,) * 6, (0.5,) * 6, 1.0, groups=(GroupCap("l1", (0, 1, 2), 0.4),))
SHORT = WeightConstraints((-0.4,) * 6, (0.6,) * 6, 0.5, gross_exposure=1.5)


def _prior() -> EmpiricalPrior:
    return EmpiricalPrior(covariance_estimator=skfolio_covariance("ledoit_wolf"))


def _keys(c: WeightConstraints) -> dict[str, object]:
    """The constraints in skfolio's keys, written out here rather than by the code
    under test."""
    keys: dict[str, object] = {
        "min_weights": np.array(c.min_weight),
        "max_weights": np.array(c.max_weight),
        "budget": c.net_exposure,
        "solver_params": SOLVER_PARAMS,
    }
    if c.gross_exposure is not None:
        keys["max_long"] = (c.gross_exposure + c.net_exposure) / 2
        keys["max_short"] = (c.gross_exposure - c.net_exposure) / 2
    if c.groups:
        keys["groups"] = [["g", "g", "g", "a3", "a4", "a5"]]
        keys["linear_constraints"] = ["g <= 0.4", "g >= -0.4"]
    return keys


CASES = {
    "minimum_variance": (
        MinimumVariance(MinimumVarianceParams()),
        {"objective_function": ObjectiveFunction.MINIMIZE_RISK},
    ),
    "max_sharpe": (
        MeanVariance(MeanVarianceParams()),
        {"objective_function": ObjectiveFunction.MAXIMIZE_RATIO},
    ),
    "utility": (
        MeanVariance(MeanVarianceParams(objective="utility", risk_aversion=5.0)),
        {"objective_function": ObjectiveFunction.MAXIMIZE_UTILITY, "risk_aversion": 5.0},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("constraints", [LONG, GROUPED, SHORT], ids=["long", "grouped", "short"])
def test_mean_risk_allocators_equal_skfolio(
    windows: list[np.ndarray], case: str, constraints: WeightConstraints
) -> None:
    allocator, objective = CASES[case]
    for window in windows:
        ours = allocator.allocate(window, constraints)
        if case == "max_sharpe" and ours.status == "failed":
            continue  # a window whose best Sharpe ratio is not positive: checked below
        assert ours.status == "ok", ours.message
        assert ours.weights is not None
        theirs = refit(
            MeanRisk(prior_estimator=_prior(), **objective, **_keys(constraints)), window
        )  # type: ignore[arg-type]
        np.testing.assert_allclose(ours.weights, theirs, atol=SOLVER_TOLERANCE)
        assert constraint_violation(ours.weights, constraints, None, SOLVER_TOLERANCE) is None


def test_maximum_diversification_equals_skfolio(windows: list[np.ndarray]) -> None:
    for constraints in (LONG, GROUPED):
        for window in windows:
            ours = MaximumDiversification(MaximumDiversificationParams()).allocate(
                window, constraints
            )
            assert ours.weights is not None, ours.message
            theirs = refit(SkfolioMaxDiv(prior_estimator=_prior(), **_keys(constraints)), window)  # type: ignore[arg-type]
            np.testing.assert_allclose(ours.weights, theirs, atol=SOLVER_TOLERANCE)


def test_hrp_equals_skfolio_scaled_to_the_exposure(windows: list[np.ndarray]) -> None:
    for window in windows:
        whole = HierarchicalRiskParity(HierarchicalRiskParityParams()).allocate(
            window, WeightConstraints.long_only(6)
        )
        theirs = refit(SkfolioHrp(prior_estimator=_prior()), window)
        assert whole.weights is not None
        np.testing.assert_allclose(whole.weights, theirs, atol=SOLVER_TOLERANCE)
        half = HierarchicalRiskParity(HierarchicalRiskParityParams()).allocate(
            window, WeightConstraints.long_only(6, net_exposure=0.5)
        )
        assert half.weights is not None
        np.testing.assert_allclose(half.weights, theirs / 2, atol=SOLVER_TOLERANCE)


def test_unconstrained_minimum_variance_is_the_closed_form(windows: list[np.ndarray]) -> None:
    wide = WeightConstraints((-10.0,) * 6, (10.0,) * 6, 1.0)
    for window in windows:
        ours = MinimumVariance(MinimumVarianceParams()).allocate(window, wide)
        inverse = np.linalg.inv(covariance(window, "ledoit_wolf"))
        closed = inverse.sum(axis=1) / inverse.sum()  # S^-1 1 / (1' S^-1 1)
        assert ours.weights is not None
        np.testing.assert_allclose(ours.weights, closed, atol=SOLVER_TOLERANCE)


def test_unconstrained_maximum_sharpe_is_the_closed_form(windows: list[np.ndarray]) -> None:
    wide = WeightConstraints((-10.0,) * 6, (10.0,) * 6, 1.0)
    for window in windows:
        inverse = np.linalg.inv(covariance(window, "ledoit_wolf"))
        direction = inverse @ window.mean(axis=0)  # S^-1 mu, scaled to the budget
        closed = direction / direction.sum()
        if direction.sum() <= 0 or np.abs(closed).max() > 10:
            continue  # the tangency portfolio is short the budget or past the bounds
        ours = MeanVariance(MeanVarianceParams()).allocate(window, wide)
        assert ours.weights is not None
        np.testing.assert_allclose(ours.weights, closed, atol=SOLVER_TOLERANCE)


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
    result = HierarchicalRiskParity(HierarchicalRiskParityParams()).allocate(
        flat, WeightConstraints.long_only(6)
    )
    assert (result.status, result.message) == (
        "failed",
        "hrp: symbol 3 has no volatility over the window",
    )


def test_a_solver_failure_is_a_status(windows: list[np.ndarray]) -> None:
    losing = -np.abs(windows[0])  # every mean negative: no positive Sharpe ratio exists
    result = MeanVariance(MeanVarianceParams()).allocate(losing, WeightConstraints.long_only(6))
    assert result.status == "failed" and result.weights is None
    assert result.message.startswith("mean_variance: the solver failed: ")


def test_without_skfolio_the_factory_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skfolio", None)
    ctx = BuildContext("s", strategy_dir=__import__("pathlib").Path("."), seed=0)
    with pytest.raises(ParamError) as caught:
        build_minimum_variance(MinimumVarianceParams(), ctx)
    assert (caught.value.key, caught.value.message) == (
        "kind",
        "allocation kind minimum_variance needs skfolio: pip install 'tradeloom[allocation]'",
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
