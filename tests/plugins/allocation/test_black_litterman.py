"""Black-Litterman: the probability-to-view mapping; the equilibrium prior, the posterior
and the weights on real prices (20 S&P 500 stocks, daily) equal PyPortfolioOpt's
``market_implied_prior_returns``, ``BlackLittermanModel`` (Idzorek's confidences) and
``EfficientFrontier`` built on the DECLARED covariance, not the sample one."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from pypfopt import EfficientFrontier
from pypfopt.black_litterman import BlackLittermanModel, market_implied_prior_returns

from tradeloom.plugins.allocation.black_litterman import (
    BlackLitterman,
    BlackLittermanParams,
    equilibrium,
    posterior,
    probability_views,
)
from tradeloom.plugins.allocation.covariance import covariance
from tradeloom.plugins.allocation.program import SOLVER_TOLERANCE
from tradeloom.plugins.protocols_allocation import WeightConstraints

# PyPortfolioOpt warns that plain arrays carry no ticker to align; these are aligned
pytestmark = pytest.mark.filterwarnings("ignore:If cov_matrix is not a dataframe:RuntimeWarning")

N = 20
RISK_AVERSION = 3.0
# the model's probabilities of an up move over 4 days: none for two stocks, 0.5 for one
PROBABILITIES = np.array(
    [0.62, 0.41, np.nan, 0.55, 0.5, 0.7, 0.45, 0.58, 0.35, 0.52,
     0.66, np.nan, 0.48, 0.6, 0.39, 0.57, 0.71, 0.44, 0.53, 0.61]
)  # fmt: skip
CAPPED = WeightConstraints((0.0,) * N, (0.15,) * N, 1.0)
TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}


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


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_a_view_s_sign_follows_the_probability(p: float) -> None:
    _, expected, _ = probability_views(np.array([p]), np.array([0.01]), 10, 0.95)
    assert np.sign(expected[0]) == np.sign(p - 0.5)


def _pyportfolioopt(
    window: np.ndarray, kind: str, probabilities: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyPortfolioOpt's prior, posterior and utility optimum on ``kind``'s covariance."""
    cov = covariance(window, kind)  # type: ignore[arg-type]
    # delta = 2 risk_aversion: PyPortfolioOpt's utility is mu'w - delta/2 w'Sw
    prior = market_implied_prior_returns(np.ones(N), 2 * RISK_AVERSION, cov, risk_free_rate=0.0)
    symbols, views, confidence = probability_views(probabilities, np.sqrt(np.diag(cov)), 4, 0.95)
    keep = confidence > 0  # p = 0.5: no view (PyPortfolioOpt would give it omega 1e6)
    pick = np.eye(N)[symbols[keep]]
    model = BlackLittermanModel(
        cov,
        pi=np.asarray(prior),
        Q=views[keep],
        P=pick,
        omega="idzorek",
        view_confidences=confidence[keep],
        tau=0.05,
    )
    mu, sigma = np.asarray(model.bl_returns()), np.asarray(model.bl_cov())
    scale = float(np.mean(np.diag(sigma)))  # moves no optimum; lets Clarabel reach it
    frontier = EfficientFrontier(
        mu / scale,
        sigma / scale,
        weight_bounds=(0.0, 0.15),
        solver="CLARABEL",
        solver_options=TIGHT,
    )
    frontier.max_quadratic_utility(risk_aversion=2 * RISK_AVERSION)
    return np.asarray(prior), mu, np.asarray(frontier.weights)


def test_prior_posterior_and_weights_equal_pyportfolioopt_on_the_declared_covariance(
    sp500_windows: list[np.ndarray],
) -> None:
    params = BlackLittermanParams(objective="utility", risk_aversion=RISK_AVERSION)
    moved = []
    for window in sp500_windows:
        prior, mu, weights = _pyportfolioopt(window, "ledoit_wolf", PROBABILITIES)
        cov = covariance(window, "ledoit_wolf")
        np.testing.assert_allclose(equilibrium(cov, RISK_AVERSION), prior, rtol=1e-12)
        symbols, views, confidence = probability_views(
            PROBABILITIES, np.sqrt(np.diag(cov)), 4, 0.95
        )
        keep = confidence > 0
        ours_mu, _ = posterior(prior, cov, symbols[keep], views[keep], confidence[keep], 0.05)
        np.testing.assert_allclose(ours_mu, mu, rtol=1e-10, atol=1e-16)
        ours = BlackLitterman(params).allocate(window, CAPPED, PROBABILITIES, 4)
        assert ours.status == "ok" and ours.weights is not None, ours.message
        np.testing.assert_allclose(ours.weights, weights, atol=SOLVER_TOLERANCE)
        # the equilibrium of the sample covariance (skfolio's EquilibriumMu default, what
        # tradeloom used before) is another rule: the test tells them apart
        _, _, sampled = _pyportfolioopt(window, "sample", PROBABILITIES)
        moved.append(float(np.abs(sampled - weights).max()))
    assert max(moved) > 0.01


def test_the_sample_covariance_declared_is_the_one_used(sp500_windows: list[np.ndarray]) -> None:
    params = BlackLittermanParams(
        objective="utility", risk_aversion=RISK_AVERSION, covariance="sample"
    )
    window = sp500_windows[3]
    ours = BlackLitterman(params).allocate(window, CAPPED, PROBABILITIES, 4)
    assert ours.weights is not None, ours.message
    _, _, theirs = _pyportfolioopt(window, "sample", PROBABILITIES)
    np.testing.assert_allclose(ours.weights, theirs, atol=SOLVER_TOLERANCE)


def test_without_a_view_the_posterior_is_the_prior(sp500_windows: list[np.ndarray]) -> None:
    allocator = BlackLitterman(
        BlackLittermanParams(objective="utility", risk_aversion=RISK_AVERSION)
    )
    window = sp500_windows[1]
    none = allocator.allocate(window, CAPPED, np.full(N, np.nan), 4)
    coin = allocator.allocate(window, CAPPED, np.full(N, 0.5), 4)  # confidence 0: no view
    absent = allocator.allocate(window, CAPPED)
    assert none.weights is not None and absent.weights is not None and coin.weights is not None
    np.testing.assert_allclose(none.weights, absent.weights, atol=0)
    np.testing.assert_allclose(coin.weights, absent.weights, atol=0)
    # the documented rule: the equilibrium makes equal weights the utility's optimum
    np.testing.assert_allclose(absent.weights, np.full(N, 1 / N), atol=SOLVER_TOLERANCE)


def test_the_views_move_the_weights_their_way(sp500_windows: list[np.ndarray]) -> None:
    allocator = BlackLitterman(
        BlackLittermanParams(objective="utility", risk_aversion=RISK_AVERSION)
    )
    prior = allocator.allocate(sp500_windows[2], CAPPED).weights
    bullish = np.full(N, np.nan)
    bullish[5] = 0.8
    posterior_weights = allocator.allocate(sp500_windows[2], CAPPED, bullish, 4).weights
    assert prior is not None and posterior_weights is not None
    assert posterior_weights[5] > prior[5] + 0.01
