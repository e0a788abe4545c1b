"""A portfolio file's strategies as sleeves of the allocators: causal, equal until the
allocator's first answer, summing to 1; a flat sleeve refused by name with the weights in
force kept; a schedule asking only at its bars; and the sleeve path giving the very
weights the symbol path gives for the same returns and allocator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.hunting import examples
from tradeloom.engine.allocating import Rebalancer
from tradeloom.engine.allocation import SleeveWeights
from tradeloom.plugins.allocation.closed_form import (
    EqualWeight,
    InverseVolatility,
    InverseVolatilityParams,
    RiskParity,
    RiskParityParams,
)
from tradeloom.plugins.allocation.hrp import HierarchicalRiskParity, HierarchicalRiskParityParams
from tradeloom.plugins.protocols_allocation import Allocator, WeightConstraints
from tradeloom.schemas.allocation import Rebalance

NAMES = ("trend", "reversion", "carry", "basis")

ALLOCATORS: dict[str, Allocator] = {
    "equal_weight": EqualWeight(),
    "inverse_volatility": InverseVolatility(InverseVolatilityParams(covariance="sample")),
    "risk_parity": RiskParity(RiskParityParams(covariance="sample")),
    "hrp": HierarchicalRiskParity(HierarchicalRiskParityParams(covariance="ledoit_wolf")),
}


def _sleeves(
    k: int, window: int, kind: str = "inverse_volatility", rule: Rebalance | None = None
) -> SleeveWeights:
    constraints = WeightConstraints.long_only(k, names=NAMES[:k])
    return SleeveWeights(
        ALLOCATORS[kind], kind=kind, window=window, constraints=constraints, rule=rule
    )


def _history(returns: np.ndarray, window: int) -> np.ndarray:
    """Return the weights in force at each bar (before that bar's returns are pushed)."""
    sleeves = _sleeves(returns.shape[1], window)
    out = np.empty_like(returns)
    for t, row in enumerate(returns):
        out[t] = sleeves.weights
        sleeves.push(row, t)
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


def test_a_calmer_strategy_gets_more_by_the_allocator_s_own_weights() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.01, (30, 2)) * np.array([1.0, 2.0])
    sleeves = _sleeves(2, 30)
    for t, row in enumerate(returns):
        sleeves.push(row, t)

    expected = ALLOCATORS["inverse_volatility"].allocate(
        returns, WeightConstraints.long_only(2, names=NAMES[:2])
    )
    assert sleeves.status == "ok" and expected.weights is not None
    np.testing.assert_array_equal(sleeves.weights, expected.weights)
    assert sleeves.weights[0] > sleeves.weights[1]


@pytest.mark.parametrize("kind", ["inverse_volatility", "risk_parity", "hrp"])
def test_a_strategy_that_never_traded_is_refused_by_name_and_the_weights_stay(kind: str) -> None:
    rng = np.random.default_rng(4)
    moving = rng.normal(0.0, 0.01, (20, 2))
    flat = np.column_stack([moving, np.zeros(20)])  # carry never traded
    sleeves = _sleeves(3, 10, kind)
    for t, row in enumerate(flat[:10]):
        asked = sleeves.push(row, t)

    # the equal start stays: no weight is guessed for a sleeve whose risk is unknown
    assert asked and sleeves.status == "failed"
    assert sleeves.message == f"{kind}: carry has no volatility over the window"
    np.testing.assert_array_equal(sleeves.weights, np.full(3, 1 / 3))

    # once carry trades, the allocator answers; when it goes flat again, its answer stays
    trading = np.column_stack([moving, rng.normal(0.0, 0.02, 20)])
    for t, row in enumerate(trading, start=10):
        sleeves.push(row, t)
    assert sleeves.status == "ok"
    assert not np.allclose(sleeves.weights, 1 / 3)
    for t, row in enumerate(flat[:10], start=30):
        answered = sleeves.weights.copy()
        sleeves.push(row, t)
    # the last push leaves carry flat over the whole window: the last answer stays
    assert sleeves.status == "failed"
    np.testing.assert_array_equal(sleeves.weights, answered)


@pytest.mark.parametrize("rule", [Rebalance(every=5), Rebalance(calendar="weekly")])
def test_a_schedule_asks_the_allocator_only_at_its_bars(rule: Rebalance) -> None:
    rng = np.random.default_rng(2)
    returns = rng.normal(0.0, 0.01, (60, 2)) * np.array([1.0, 3.0])
    hour = 3_600 * 10**9
    scheduled = _sleeves(2, 10, "risk_parity", rule)
    every_bar = _sleeves(2, 10, "risk_parity")
    asked_at = []
    for t, row in enumerate(returns):
        every_bar.push(row, t, t * 24 * hour)
        if scheduled.push(row, t, t * 24 * hour):  # a bar a day from a Thursday
            asked_at.append(t)
            np.testing.assert_array_equal(scheduled.weights, every_bar.weights)
    first = 9  # the tenth return fills the window
    if rule.every is not None:
        assert asked_at == list(range(first, 60, 5))
    else:  # 1970-01-01 was a Thursday: Mondays are bars 4, 11, 18...
        assert asked_at == [first, *range(11, 60, 7)]


_CLOSES = st.integers(2, 4).flatmap(
    lambda k: st.tuples(
        arrays(
            np.float64,
            st.tuples(st.integers(4, 30), st.just(k)),
            elements=st.one_of(st.just(0.0), st.floats(-0.05, 0.05, allow_subnormal=False)),
        ),
        st.sampled_from(sorted(ALLOCATORS)),
        st.integers(2, 6),
        st.integers(1, 4),
    )
)


@settings(max_examples=examples(300), deadline=None)
@given(case=_CLOSES)
def test_sleeves_and_symbols_get_the_same_weights_from_the_same_returns_and_allocator(
    case: tuple[np.ndarray, str, int, int],
) -> None:
    moves, kind, window, every = case
    k = moves.shape[1]
    closes = 100.0 * np.cumprod(1.0 + moves, axis=0)
    returns = closes[1:] / closes[:-1] - 1.0  # as the symbol path reads its window
    constraints = WeightConstraints.long_only(k, names=NAMES[:k])
    rule = Rebalance(every=every)
    sleeves = SleeveWeights(
        ALLOCATORS[kind], kind=kind, window=window, constraints=constraints, rule=rule
    )
    symbols = Rebalancer(
        ALLOCATORS[kind],
        kind=kind,
        window=window,
        constraints=constraints,
        rule=rule,
        min_trade=None,
        horizon=0,
        symbols=NAMES[:k],
    )
    symbols.decide(0, 0, closes[0], np.full(k, np.nan), np.zeros(k))
    decided = 0
    for t in range(1, len(closes)):
        # the symbols held at their last targets, as the sleeves' shares are held
        held = np.zeros(k) if symbols.target is None else symbols.target
        decision = symbols.decide(t, 0, closes[t], np.full(k, np.nan), held)
        asked = sleeves.push(returns[t - 1], t)

        assert asked == (decision is not None)
        if decision is None:
            continue
        decided += 1
        assert (sleeves.status, sleeves.message) == (decision.status, decision.message)
        if decision.status == "ok":
            assert decision.weights is not None
            np.testing.assert_array_equal(sleeves.weights, decision.weights)
    assert decided == (0 if len(returns) < window else 1 + (len(returns) - window) // every)
