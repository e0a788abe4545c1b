"""The inverse-volatility allocation: causal, equal until its window fills, summing to 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.hunting import examples
from tradeloom.engine.allocation import InverseVolatility, inverse_volatility_weights


def _history(returns: np.ndarray, window: int) -> np.ndarray:
    """Return the weights in force at each bar (before that bar's returns are pushed)."""
    allocator = InverseVolatility(returns.shape[1], window)
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
