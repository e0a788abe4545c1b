"""Black-Litterman: the probability-to-view mapping, and the weights equal to skfolio's
BlackLitterman prior under MeanRisk with the same views, to `SOLVER_TOLERANCE`."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from skfolio.moments import EquilibriumMu
from skfolio.optimization import MeanRisk, ObjectiveFunction
from skfolio.prior import BlackLitterman as SkfolioBlackLitterman
from skfolio.prior import EmpiricalPrior

from tests.plugins.allocation.conftest import refit
from tradeloom.plugins.allocation.black_litterman import (
    BlackLitterman,
    BlackLittermanParams,
    probability_views,
    view_equations,
)
from tradeloom.plugins.allocation.covariance import covariance, skfolio_covariance
from tradeloom.plugins.allocation.optimised import SOLVER_PARAMS, SOLVER_TOLERANCE
from tradeloom.plugins.protocols_allocation import WeightConstraints

# the reference refits run at SOLVER_PARAMS too, where skfolio warns of an "almost solved"
# answer (the allocators filter it, and check their answer against the constraints)
pytestmark = pytest.mark.filterwarnings("ignore:Solution may be inaccurate:UserWarning")

PROBABILITIES = np.array([0.62, 0.41, np.nan, 0.55, 0.5, 0.7])


def test_a_probability_maps_to_a_return_over_the_horizon_and_a_confidence() -> None:
    up = NormalDist().cdf(1.0)  # p = Phi(1): the horizon's mean is one of its deviations
    symbols, expected, confidence = probability_views(
        np.array([up, 0.5, np.nan, 1 - up]), np.array([0.02, 0.03, 0.04, 0.01]), 4, 0.95
    )
    assert symbols.tolist() == [0, 1, 3]
    # per bar: s * Phi^-1(p) / sqrt(h)
    np.testing.assert_allclose(expected, [0.02 / 2, 0.0, -0.01 / 2], atol=1e-15)
    np.testing.assert_allclose(confidence, [2 * up - 1, 0.0, 2 * up - 1], rtol=1e-12)


def test_certainty_is_clipped() -> None:
    _, expected, confidence = probability_views(np.array([1.0, 0.0]), np.ones(2), 1, 0.9)
    quantile = NormalDist().inv_cdf(0.999)
    np.testing.assert_allclose(expected, [quantile, -quantile], rtol=1e-12)
    np.testing.assert_allclose(confidence, [0.9, 0.9])


def _reference(window: np.ndarray, views: list[str], confidences: list[float]) -> np.ndarray:
    equilibrium = EmpiricalPrior(
        mu_estimator=EquilibriumMu(risk_aversion=3.0),
        covariance_estimator=skfolio_covariance("ledoit_wolf"),
    )
    prior = (
        SkfolioBlackLitterman(
            views=views, prior_estimator=equilibrium, tau=0.05, view_confidences=confidences
        )
        if views
        else equilibrium
    )
    estimator = MeanRisk(
        objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
        risk_aversion=3.0,
        prior_estimator=prior,
        max_weights=0.5,
        solver_params=SOLVER_PARAMS,
    )
    return refit(estimator, window)


def test_black_litterman_with_given_views_equals_skfolio(windows: list[np.ndarray]) -> None:
    allocator = BlackLitterman(BlackLittermanParams(objective="utility", risk_aversion=3.0))
    constraints = WeightConstraints((0.0,) * 6, (0.5,) * 6, 1.0)
    for window in windows:
        volatility = np.sqrt(np.diag(covariance(window, "ledoit_wolf")))
        symbols, expected, confidence = probability_views(PROBABILITIES, volatility, 4, 0.95)
        views = [f"a{k} == {mu:.15f}" for k, mu in zip(symbols, expected, strict=True)]
        assert view_equations(symbols, expected) == views
        ours = allocator.allocate(window, constraints, PROBABILITIES, 4)
        assert ours.status == "ok" and ours.weights is not None, ours.message
        theirs = _reference(window, views, confidence.tolist())
        np.testing.assert_allclose(ours.weights, theirs, atol=SOLVER_TOLERANCE)


def test_the_views_move_the_weights_their_way(windows: list[np.ndarray]) -> None:
    allocator = BlackLitterman(BlackLittermanParams(objective="utility", risk_aversion=3.0))
    constraints = WeightConstraints((0.0,) * 6, (0.5,) * 6, 1.0)
    prior = allocator.allocate(windows[2], constraints).weights
    bullish = np.full(6, np.nan)
    bullish[5] = 0.8
    posterior = allocator.allocate(windows[2], constraints, bullish, 4).weights
    assert prior is not None and posterior is not None
    assert posterior[5] > prior[5] + 0.01


def test_without_a_view_the_posterior_is_the_prior(windows: list[np.ndarray]) -> None:
    allocator = BlackLitterman(BlackLittermanParams(objective="utility", risk_aversion=3.0))
    constraints = WeightConstraints((0.0,) * 6, (0.5,) * 6, 1.0)
    none = allocator.allocate(windows[0], constraints, np.full(6, np.nan), 4)
    absent = allocator.allocate(windows[0], constraints)
    assert none.weights is not None and absent.weights is not None
    np.testing.assert_allclose(none.weights, absent.weights, atol=0)
    np.testing.assert_allclose(
        absent.weights, _reference(windows[0], [], []), atol=SOLVER_TOLERANCE
    )


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_a_view_s_sign_follows_the_probability(p: float) -> None:
    _, expected, _ = probability_views(np.array([p]), np.array([0.01]), 10, 0.95)
    assert np.sign(expected[0]) == np.sign(p - 0.5)
