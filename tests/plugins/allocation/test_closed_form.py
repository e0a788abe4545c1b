"""Equal weight, inverse volatility and risk parity: their closed forms, skfolio's refit,
the projection that meets declared bounds (on real S&P 500 prices), and the invariances a
weighting rule must keep.

Tolerances: equal weight and inverse volatility are the same arithmetic as skfolio's
(1e-12); risk parity's coordinate descent converges to 1e-12 of each weight, and
skfolio's RiskBudgeting (Clarabel on skfolio's scaled log-barrier problem) to about 1e-5:
they must agree to 1e-4, and ours must equalise the risk contributions to 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skfolio.optimization import EqualWeighted, RiskBudgeting
from skfolio.optimization import InverseVolatility as SkfolioInverseVolatility
from skfolio.prior import EmpiricalPrior

from tests.plugins.allocation.conftest import refit, skfolio_covariance
from tradeloom.engine.allocating import allocate_checked
from tradeloom.plugins.allocation.closed_form import (
    EqualWeight,
    InverseVolatility,
    InverseVolatilityParams,
    RiskParity,
    RiskParityParams,
    erc_weights,
)
from tradeloom.plugins.allocation.covariance import covariance
from tradeloom.plugins.protocols_allocation import GroupCap, WeightConstraints

ERC_AGREEMENT = 1e-4


def _prior(kind: str = "ledoit_wolf") -> EmpiricalPrior:
    return EmpiricalPrior(covariance_estimator=skfolio_covariance(kind))  # type: ignore[arg-type]


def test_equal_weight_equals_skfolio(windows: list[np.ndarray]) -> None:
    for window in windows:
        ours = EqualWeight().allocate(window, WeightConstraints.long_only(6))
        assert ours.status == "ok" and ours.weights is not None
        np.testing.assert_allclose(ours.weights, refit(EqualWeighted(), window), atol=1e-12)
        np.testing.assert_allclose(ours.weights, np.full(6, 1 / 6), atol=1e-15)


@pytest.mark.parametrize("kind", ["sample", "ledoit_wolf"])
def test_inverse_volatility_equals_skfolio(windows: list[np.ndarray], kind: str) -> None:
    allocator = InverseVolatility(InverseVolatilityParams(covariance=kind))  # type: ignore[arg-type]
    for window in windows:
        ours = allocator.allocate(window, WeightConstraints.long_only(6))
        theirs = refit(SkfolioInverseVolatility(prior_estimator=_prior(kind)), window)
        assert ours.weights is not None
        np.testing.assert_allclose(ours.weights, theirs, atol=1e-12)
        inverse = 1 / np.sqrt(np.diag(covariance(window, kind)))  # type: ignore[arg-type]
        np.testing.assert_allclose(ours.weights, inverse / inverse.sum(), atol=1e-15)


@pytest.mark.parametrize("kind", ["sample", "ledoit_wolf"])
def test_risk_parity_equals_skfolio_and_equalises_risk(
    windows: list[np.ndarray], kind: str
) -> None:
    allocator = RiskParity(RiskParityParams(covariance=kind))  # type: ignore[arg-type]
    for window in windows:
        ours = allocator.allocate(window, WeightConstraints.long_only(6))
        assert ours.status == "ok" and ours.weights is not None
        theirs = refit(RiskBudgeting(prior_estimator=_prior(kind)), window)
        np.testing.assert_allclose(ours.weights, theirs, atol=ERC_AGREEMENT)
        cov = covariance(window, kind)  # type: ignore[arg-type]
        contributions = ours.weights * (cov @ ours.weights)
        np.testing.assert_allclose(contributions, contributions.mean(), rtol=1e-9)


def test_risk_parity_of_uncorrelated_symbols_is_inverse_volatility() -> None:
    cov = np.diag([0.04, 0.01, 0.0025])
    weights = erc_weights(cov)
    assert not isinstance(weights, str)
    np.testing.assert_allclose(weights, np.array([1, 2, 4]) / 7, rtol=1e-12)


def test_the_net_exposure_scales_every_closed_form(windows: list[np.ndarray]) -> None:
    half = WeightConstraints.long_only(6, net_exposure=0.5)
    whole = WeightConstraints.long_only(6)
    for allocator in (
        EqualWeight(),
        InverseVolatility(InverseVolatilityParams()),
        RiskParity(RiskParityParams()),
    ):
        a = allocator.allocate(windows[0], half).weights
        b = allocator.allocate(windows[0], whole).weights
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b / 2, rtol=1e-12)


def test_a_bound_is_met_by_clipping_and_sharing_the_rest_in_proportion() -> None:
    capped = WeightConstraints((0.0,) * 6, (0.15,) * 4 + (1.0, 1.0), 1.0)
    result = EqualWeight().allocate(np.zeros((3, 6)), capped)
    assert result.status == "ok" and result.weights is not None
    # four capped at 0.15, the other two share the remaining 0.4 equally
    np.testing.assert_allclose(result.weights, [0.15] * 4 + [0.2, 0.2], atol=1e-15)


@pytest.mark.parametrize("allocator", ["inverse_volatility", "risk_parity"])
def test_bounds_on_real_prices_are_the_documented_projection(
    sp500_windows: list[np.ndarray], allocator: str
) -> None:
    """w_i = min(max(t * u_i, lower_i), upper_i), u the unbounded weights, with the t that
    sums them to the exposure: found here by scipy's brentq, independently of the knots
    the allocator walks."""
    from scipy.optimize import brentq

    lower, upper, net = (0.03,) * 20, (0.065,) * 20, 0.98
    bounded = WeightConstraints(lower, upper, net)
    built = (
        InverseVolatility(InverseVolatilityParams())
        if allocator == "inverse_volatility"
        else RiskParity(RiskParityParams())
    )
    moved = 0
    for window in sp500_windows:
        free = built.allocate(window, WeightConstraints((0.0,) * 20, (net,) * 20, net)).weights
        ours = built.allocate(window, bounded)
        assert free is not None and ours.status == "ok" and ours.weights is not None
        t = brentq(lambda t, u=free: np.clip(t * u, lower, upper).sum() - net, 0, 100, xtol=1e-15)
        np.testing.assert_allclose(ours.weights, np.clip(t * free, lower, upper), atol=1e-12)
        assert abs(ours.weights.sum() - net) < 1e-12
        moved += int(np.any(free > 0.065) or np.any(free < 0.03))
    assert moved == len(
        sp500_windows
    )  # the bounds bind on real prices: the projection is exercised


def test_a_group_cap_a_closed_form_breaks_is_refused_named_by_the_one_check(
    windows: list[np.ndarray],
) -> None:
    """Validation refuses group caps for a closed form; a caller that gives them anyway
    gets the breach named by the engine's one check of every answer, never weights that
    break it."""
    grouped = WeightConstraints.long_only(6)
    grouped = WeightConstraints(
        grouped.min_weight, grouped.max_weight, 1.0, groups=(GroupCap("l1", (0, 1, 2), 0.4),)
    )
    allocator = RiskParity(RiskParityParams())
    status, message, weights = allocate_checked(
        allocator, "risk_parity", windows[0], grouped, None, 0, None
    )
    assert (status, weights) == ("error", None)
    assert message.startswith(
        "risk_parity answered weights that break group_caps.l1: the group's weight is "
    )


def test_turnover_beyond_the_limit_is_refused_by_the_one_check(
    windows: list[np.ndarray],
) -> None:
    limited = WeightConstraints((0.0,) * 6, (1.0,) * 6, 1.0, max_turnover=0.1)
    previous = np.array([1.0, 0, 0, 0, 0, 0])
    checked = allocate_checked(
        EqualWeight(), "equal_weight", windows[0], limited, None, 0, previous
    )
    assert checked[:2] == (
        "error",
        "equal_weight answered weights that break max_turnover: the rebalance trades 1.66667 "
        "of equity, the limit 0.1",
    )
    first = allocate_checked(EqualWeight(), "equal_weight", windows[0], limited, None, 0, None)
    assert first[0] == "ok"  # the first rebalance: no held weights to turn over


def test_a_symbol_without_variance_fails_and_never_weighs_equally() -> None:
    flat = np.zeros((50, 3))
    flat[:, 1:] = np.random.default_rng(1).normal(0, 0.01, (50, 2))
    for allocator in (InverseVolatility(InverseVolatilityParams()), RiskParity(RiskParityParams())):
        result = allocator.allocate(flat, WeightConstraints.long_only(3))
        assert result.status == "failed" and result.weights is None
        assert result.message == f"{allocator.kind}: symbol 0 has no volatility over the window"
        told = WeightConstraints.long_only(3, names=("AAPL", "KO", "XOM"))
        assert allocator.allocate(flat, told).message == (
            f"{allocator.kind}: AAPL has no volatility over the window"
        )


def test_bad_returns_fail_with_the_cause() -> None:
    allocator = RiskParity(RiskParityParams())
    gap = np.random.default_rng(2).normal(0, 0.01, (30, 3))
    gap[7, 2] = np.nan
    assert allocator.allocate(gap, WeightConstraints.long_only(3)).message == (
        "returns: bar 7 of the window has no return for symbol 2"
    )
    assert allocator.allocate(gap[:1], WeightConstraints.long_only(3)).message == (
        "returns: a covariance needs at least 2 bars, the window has 1"
    )
    assert allocator.allocate(gap[:, :2], WeightConstraints.long_only(3)).message == (
        "returns: expected [bars, 3] for 3 symbols, was [30, 2]"
    )


_returns = st.integers(min_value=2, max_value=8).flatmap(
    lambda n: st.tuples(
        st.integers(min_value=n + 2, max_value=60),
        st.just(n),
        st.integers(min_value=0, max_value=2**32 - 1),
        st.floats(min_value=0.1, max_value=3.0),
    )
)


def _draw(bars: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, rng.uniform(0.002, 0.05, n), (bars, n))


@settings(max_examples=60, deadline=None)
@given(_returns)
def test_closed_forms_sum_to_the_exposure_and_keep_their_invariances(
    drawn: tuple[int, int, int, float],
) -> None:
    bars, n, seed, exposure = drawn
    returns = _draw(bars, n, seed)
    constraints = WeightConstraints.long_only(n, net_exposure=exposure)
    order = np.random.default_rng(seed).permutation(n)
    for allocator in (
        EqualWeight(),
        InverseVolatility(InverseVolatilityParams(covariance="sample")),
        RiskParity(RiskParityParams(covariance="sample")),
    ):
        weights = allocator.allocate(returns, constraints).weights
        assert weights is not None
        assert abs(weights.sum() - exposure) < 1e-9 * max(1.0, exposure)
        assert np.all(weights >= 0) and np.all(weights <= exposure + 1e-12)
        # relabelling the symbols relabels the weights
        shuffled = allocator.allocate(returns[:, order], constraints).weights
        assert shuffled is not None
        np.testing.assert_allclose(shuffled, weights[order], rtol=1e-7, atol=1e-12)
        # the weights do not depend on the unit of the returns
        scaled = allocator.allocate(returns * 7.0, constraints).weights
        assert scaled is not None
        np.testing.assert_allclose(scaled, weights, rtol=1e-7, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(_returns, st.floats(min_value=0.05, max_value=20.0))
def test_inverse_volatility_moves_with_one_symbol_s_volatility(
    drawn: tuple[int, int, int, float], factor: float
) -> None:
    bars, n, seed, _ = drawn
    returns = _draw(bars, n, seed)
    allocator = InverseVolatility(InverseVolatilityParams(covariance="sample"))
    before = allocator.allocate(returns, WeightConstraints.long_only(n)).weights
    louder = returns.copy()
    louder[:, 0] *= factor
    after = allocator.allocate(louder, WeightConstraints.long_only(n)).weights
    assert before is not None and after is not None
    # symbol 0's weight relative to each other symbol's falls by the factor
    np.testing.assert_allclose(after[0] / after[1:], before[0] / before[1:] / factor, rtol=1e-9)
    # equal weight ignores the returns altogether
    assert EqualWeight().allocate(louder, WeightConstraints.long_only(n)).weights == pytest.approx(
        np.full(n, 1 / n)
    )
