"""The carried covariance equals the recomputation: bit for bit where the rule recomputes,
to 1e-13 of its largest entry where it updates, and the weights to 1e-12; the path a
rebalance takes depends on the windows alone, whoever solves them."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.engine.allocating import Rebalancer
from tradeloom.plugins.allocation import rolling
from tradeloom.plugins.allocation.closed_form import RiskParity, RiskParityParams
from tradeloom.plugins.allocation.covariance import covariance
from tradeloom.plugins.allocation.hrp import HierarchicalRiskParity, HierarchicalRiskParityParams
from tradeloom.plugins.allocation.rolling import (
    RECOMPUTE_EVERY,
    CarriedCovariance,
    advance,
    estimate,
    slide,
)
from tradeloom.plugins.protocols_allocation import RollingAllocator, WeightConstraints
from tradeloom.schemas.allocation import Rebalance

KINDS = ("sample", "ledoit_wolf")


@contextmanager
def few_symbols(least: int = 2) -> Iterator[None]:
    """Carry estimates of a few symbols too (the examples stay small and fast)."""
    with mock.patch.object(rolling, "MIN_SYMBOLS", least):
        yield


def market(rng: np.random.Generator, bars: int, symbols: int) -> np.ndarray:
    """One-factor returns with a drift, as a universe's hourly returns look."""
    factor = rng.normal(0.0003, 0.01, (bars, 1))
    return factor * rng.uniform(0.5, 1.5, symbols) + rng.normal(0.0, 0.01, (bars, symbols))


def relative_gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# one step of a run's windows: slide by k bars, or break the slide
STEPS = st.one_of(
    st.tuples(st.just("slide"), st.integers(0, 30)),
    st.tuples(st.just("nan"), st.integers(0, 10_000)),
    st.tuples(st.just("symbol"), st.sampled_from([-1, 1])),
    st.tuples(st.just("gap"), st.integers(1, 30)),
)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bars=st.integers(4, 60),
    symbols=st.integers(2, 7),
    steps=st.lists(STEPS, min_size=1, max_size=40),
    kind=st.sampled_from(KINDS),
)
def test_carried_estimate_equals_the_recomputation(
    seed: int, bars: int, symbols: int, steps: list[tuple[str, int]], kind: str
) -> None:
    rng = np.random.default_rng(seed)
    series = market(rng, bars + 40 * 31, symbols)
    start, state = 0, None
    with few_symbols():
        for step, value in steps:
            window = series[start : start + bars]
            if step == "slide":
                start += value
                window = series[start : start + bars]
            elif step == "gap":  # a bar missing: the window skips it
                start += value
                window = np.delete(series[start : start + bars + 1], bars // 2, axis=0)
            elif step == "nan":
                window = window.copy()
                window.flat[value % window.size] = np.nan
            else:  # a symbol joins or leaves the universe
                symbols = max(2, symbols + value)
                series = market(rng, bars + 40 * 31, symbols)
                window = series[start : start + bars]
            before = state
            state = advance(state, window, kind)  # type: ignore[arg-type]
            if not np.all(np.isfinite(window)):
                assert state is None  # a missing value: nothing carried
                continue
            assert state is not None
            expected = covariance(window, kind)  # type: ignore[arg-type]
            ours = estimate(state, kind)  # type: ignore[arg-type]
            k = None if before is None else slide(before.window, window)
            updated = (
                before is not None
                and k is not None
                and 0 < 2 * k < bars
                and before.updates + 1 < RECOMPUTE_EVERY
            )
            if before is not None and k == 0:
                assert state is before
            elif updated:
                assert state.updates == before.updates + 1  # type: ignore[union-attr]
                assert relative_gap(ours, expected) <= 1e-13
            else:
                assert state.updates == 0
                np.testing.assert_array_equal(ours, expected)  # the very same bits
            np.testing.assert_array_equal(ours, ours.T)  # exactly symmetric


def test_updates_stop_at_the_recomputation_every_m_rebalances() -> None:
    rng = np.random.default_rng(3)
    bars, k = 240, 24
    series = market(rng, bars + 3 * RECOMPUTE_EVERY * k, 60)
    state, seen = None, []
    for j in range(3 * RECOMPUTE_EVERY):
        window = series[j * k : j * k + bars]
        state = advance(state, window, "ledoit_wolf")
        assert state is not None
        seen.append(state.updates)
        ours = estimate(state, "ledoit_wolf")
        assert relative_gap(ours, covariance(window, "ledoit_wolf")) <= 1e-13
    assert seen[: RECOMPUTE_EVERY + 1] == [*range(RECOMPUTE_EVERY), 0]


def test_nothing_is_carried_below_the_least_universe_or_for_exponential() -> None:
    window = market(np.random.default_rng(1), 50, rolling.MIN_SYMBOLS - 1)
    assert advance(None, window, "ledoit_wolf") is None
    carried = CarriedCovariance("exponential", 10.0)
    carried.observe(window)
    np.testing.assert_array_equal(
        carried.covariance(window), covariance(window, "exponential", 10.0)
    )
    assert carried.moments is None


def allocators() -> list[RiskParity | HierarchicalRiskParity]:
    return [RiskParity(RiskParityParams()), HierarchicalRiskParity(HierarchicalRiskParityParams())]


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    slides=st.lists(st.integers(1, 40), min_size=2, max_size=10),
    symbols=st.integers(3, 8),
)
def test_weights_equal_the_recomputation(seed: int, slides: list[int], symbols: int) -> None:
    rng = np.random.default_rng(seed)
    bars = 80
    series = market(rng, bars + sum(slides) + 1, symbols)
    constraints = WeightConstraints.long_only(symbols)
    with few_symbols():
        for carried, fresh in zip(allocators(), allocators(), strict=True):
            start = 0
            for k in [0, *slides]:
                start += k
                window = series[start : start + bars]
                ours = carried.allocate(window, constraints)
                fresh.carried.reset()
                expected = fresh.allocate(window, constraints)
                assert ours.status == expected.status == "ok", (ours, expected)
                assert ours.weights is not None and expected.weights is not None
                assert relative_gap(ours.weights, expected.weights) <= 1e-12


def test_the_path_is_the_windows_whoever_solves_them() -> None:
    """A run that solves every rebalance, one that solves every third (the others late or
    answered from the journal, observed only), and a restart that observes the replayed
    windows and solves the last: the same weights, bit for bit."""
    rng = np.random.default_rng(5)
    bars, k, symbols = 120, 12, 60
    series = market(rng, bars + 40 * k, symbols)
    windows = [series[j * k : j * k + bars] for j in range(40)]
    constraints = WeightConstraints.long_only(symbols)
    every, some, restarted = allocators()[0], allocators()[0], allocators()[0]
    for j, window in enumerate(windows):
        for allocator in (every, some):
            allocator.observe(window)
        expected = every.allocate(window, constraints)
        if j % 3 == 0:
            found = some.allocate(window, constraints)
            np.testing.assert_array_equal(found.weights, expected.weights)  # type: ignore[arg-type]
    for window in windows:  # the restart's replay: observed, answered by the journal
        restarted.observe(window)
    found = restarted.allocate(windows[-1], constraints)
    np.testing.assert_array_equal(found.weights, expected.weights)  # type: ignore[arg-type]
    assert every.carried.moments is not None and every.carried.moments.updates > 0
    # a fresh allocator recomputes: the same weights to 1e-12, not the same bits
    fresh = allocators()[0].allocate(windows[-1], constraints)
    assert relative_gap(fresh.weights, expected.weights) <= 1e-12  # type: ignore[arg-type]


def test_the_rebalancer_shows_every_window_whoever_answers() -> None:
    symbols = [f"S{k}" for k in range(60)]
    allocator = RiskParity(RiskParityParams())
    assert isinstance(allocator, RollingAllocator)
    rebalancer = Rebalancer(
        allocator,
        kind="risk_parity",
        window=30,
        constraints=WeightConstraints.long_only(len(symbols), names=symbols),
        rule=Rebalance(every=5),
        min_trade=None,
        horizon=0,
        symbols=symbols,
    )
    rebalancer.solver = lambda request: ("failed", "answered from the journal", None)
    rng = np.random.default_rng(2)
    closes = 100.0 * np.cumprod(1.0 + market(rng, 80, len(symbols)), axis=0)
    held = np.zeros(len(symbols))
    last = None
    for bar, close in enumerate(closes):
        decision = rebalancer.decide(bar, bar * 3_600_000_000_000, close, held, held)
        if decision is not None:
            last = rebalancer.closes()
    assert last is not None
    moments = allocator.carried.moments
    assert moments is not None  # folded on the bar's path: no solve ever ran
    pending = list(allocator.carried._pending)
    np.testing.assert_array_equal(pending[-1], last[1:] / last[:-1] - 1.0)


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda a: pickle.loads(pickle.dumps(a))])
def test_a_copy_carries_the_moments(clone: object) -> None:
    rng = np.random.default_rng(4)
    series = market(rng, 200, 60)
    allocator = RiskParity(RiskParityParams())
    allocator.allocate(series[:100], WeightConstraints.long_only(60))
    twin = clone(allocator)  # type: ignore[operator]
    for a in (allocator, twin):
        a.allocate(series[10:110], WeightConstraints.long_only(60))
    assert twin.carried.moments.updates == allocator.carried.moments.updates == 1
    np.testing.assert_array_equal(twin.carried.moments.gram, allocator.carried.moments.gram)
