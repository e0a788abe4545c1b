"""A portfolio file's moving allocations: inverse volatility causal, equal until its window
fills, summing to 1; risk parity equalising the strategies' risk; a schedule recomputing
the weights only at its bars."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.hunting import examples
from tradeloom.engine.allocation import (
    TrailingWeights,
    inverse_volatility_weights,
    risk_parity_weights,
)
from tradeloom.schemas.allocation import Rebalance


def _history(returns: np.ndarray, window: int) -> np.ndarray:
    """Return the weights in force at each bar (before that bar's returns are pushed)."""
    allocator = TrailingWeights(returns.shape[1], window, inverse_volatility_weights)
    out = np.empty_like(returns)
    for t, row in enumerate(returns):
        out[t] = allocator.weights
        allocator.push(row)
    return out


_RETURNS = st.integers(2, 4).flatmap(
    lambda k: arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.just(k)),
        elements=st.one_of(st.just(0.0), st.floats(-0.2, 0.2, allow_subnormal=False)),
    )
)


@settings(max_examples=examples(200), deadline=None)
@given(returns=_RETURNS, window=st.integers(2, 10), cut=st.integers(0, 40), seed=st.integers(0, 99))
def test_the_weights_at_a_bar_read_no_later_return(
    returns: np.ndarray, window: int, cut: int, seed: int
) -> None:
    cut = min(cut, len(returns))
    changed = returns.copy()
    changed[cut:] = np.random.default_rng(seed).normal(0.0, 0.05, changed[cut:].shape)

    # the weights of bars up to cut read only the returns of the bars before them
    np.testing.assert_array_equal(
        _history(returns, window)[: cut + 1], _history(changed, window)[: cut + 1]
    )


@settings(max_examples=examples(200), deadline=None)
@given(returns=_RETURNS, window=st.integers(2, 10))
def test_the_weights_sum_to_one_and_are_equal_until_the_window_fills(
    returns: np.ndarray, window: int
) -> None:
    weights = _history(returns, window)
    k = returns.shape[1]

    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert (weights > 0.0).all()
    np.testing.assert_array_equal(weights[:window], np.full((min(window, len(weights)), k), 1 / k))


def test_a_calmer_strategy_gets_more_and_one_without_volatility_gets_the_equal_share() -> None:
    returns = np.array([[0.01, 0.02, 0.0], [-0.01, -0.02, 0.0], [0.01, 0.02, 0.0]])
    std_a, std_b = returns[:, 0].std(ddof=1), returns[:, 1].std(ddof=1)

    weights = inverse_volatility_weights(returns)

    # c never moved: 1/3; a and b share 2/3 in proportion to 1/std (a's is half b's)
    inverse = np.array([1 / std_a, 1 / std_b])
    np.testing.assert_allclose(weights, [*(inverse / inverse.sum() * 2 / 3), 1 / 3], rtol=1e-12)
    assert weights[0] == pytest.approx(2 * weights[1], rel=1e-12)


def test_risk_parity_gives_each_strategy_the_same_risk_and_a_flat_one_the_equal_share() -> None:
    rng = np.random.default_rng(4)
    common = rng.normal(0.0, 0.01, 200)
    returns = np.column_stack(
        [
            common + rng.normal(0.0, 0.005, 200),
            0.5 * common + rng.normal(0.0, 0.02, 200),
            rng.normal(0.0, 0.003, 200),
            np.zeros(200),  # never traded
        ]
    )

    weights = risk_parity_weights(returns)

    assert weights[3] == 0.25 and weights.sum() == pytest.approx(1.0, rel=1e-12)
    moving = weights[:3]
    contributions = moving * (np.cov(returns[:, :3], rowvar=False, ddof=1) @ moving)
    np.testing.assert_allclose(contributions, contributions.mean(), rtol=1e-9)
    # two strategies: their risk parity is their inverse volatility, whatever the correlation
    two = returns[:, :2]
    np.testing.assert_allclose(risk_parity_weights(two), inverse_volatility_weights(two), rtol=1e-9)


@pytest.mark.parametrize("rule", [Rebalance(every=5), Rebalance(calendar="weekly")])
def test_a_schedule_recomputes_the_weights_only_at_its_bars(rule: Rebalance) -> None:
    rng = np.random.default_rng(2)
    returns = rng.normal(0.0, 0.01, (60, 2)) * np.array([1.0, 3.0])
    hour = 3_600 * 10**9
    scheduled = TrailingWeights(2, 10, risk_parity_weights, rule)
    every_bar = TrailingWeights(2, 10, risk_parity_weights)
    changed_at = []
    for t, row in enumerate(returns):
        before = scheduled.weights.copy()
        scheduled.push(row, t, t * 24 * hour)  # a bar a day from a Thursday
        every_bar.push(row, t, t * 24 * hour)
        if not np.array_equal(before, scheduled.weights):
            changed_at.append(t)
            np.testing.assert_array_equal(scheduled.weights, every_bar.weights)
    first = 9  # the tenth return fills the window
    if rule.every is not None:
        assert changed_at == list(range(first, 60, 5))
    else:  # 1970-01-01 was a Thursday: Mondays are bars 4, 11, 18...
        assert changed_at == [first, *range(11, 60, 7)]
