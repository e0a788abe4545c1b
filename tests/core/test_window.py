"""The rolling-window kernels: the ring buffer, and the per-window mean and std computed
bar by bar and in blocks with the same bits."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core.kernels.window import (
    BLOCK,
    new_ring,
    ring_back,
    ring_full,
    ring_get,
    ring_max,
    ring_mean,
    ring_mean_std,
    ring_min,
    ring_push,
    rolling_mean_std,
    rolling_std,
)

SPECIAL = st.sampled_from([math.nan, 0.0, -0.0, 1e300, -1e300, 5e-324, 1e-8, 1e12, 7.0])


@st.composite
def series_with_specials(draw: st.DrawFn) -> np.ndarray:
    """A random series of one scale, some stretches flat, some values special."""
    n = draw(st.integers(0, BLOCK * 2 + 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = 10.0 ** draw(st.integers(-8, 12))
    values = scale * (1 + rng.standard_normal(n))
    for _ in range(draw(st.integers(0, 4))):
        if n:
            start = draw(st.integers(0, n - 1))
            values[start : start + draw(st.integers(1, 60))] = draw(SPECIAL)
    return values


def stepped_mean_std(values: np.ndarray, window: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    ring = new_ring(window)
    mean = np.full(len(values), np.nan)
    std = np.full(len(values), np.nan)
    for t, value in enumerate(values):
        ring_push(ring, value)
        if ring_full(ring):
            mean[t], std[t] = ring_mean_std(ring, ddof)
    return mean, std


@settings(max_examples=examples(60), deadline=None)
@given(values=series_with_specials(), window=st.integers(2, 40), ddof=st.sampled_from([0, 1]))
def test_blocks_of_windows_equal_the_ring_bit_for_bit(
    values: np.ndarray, window: int, ddof: int
) -> None:
    mean, std = rolling_mean_std(values, window, ddof)
    ring_mean_values, ring_std = stepped_mean_std(values, window, ddof)
    assert mean.tobytes() == ring_mean_values.tobytes()
    assert std.tobytes() == ring_std.tobytes()
    assert rolling_std(values, window, ddof).tobytes() == std.tobytes()


@settings(max_examples=examples(60), deadline=None)
@given(values=series_with_specials(), window=st.integers(2, 40))
def test_each_value_depends_on_its_window_only(values: np.ndarray, window: int) -> None:
    mean, std = rolling_mean_std(values, window, 0)
    for t in range(window - 1, len(values), 37):
        alone = values[t - window + 1 : t + 1].copy()
        m, s = rolling_mean_std(alone, window, 0)
        assert np.array([m[-1], s[-1]]).tobytes() == np.array([mean[t], std[t]]).tobytes()


@settings(max_examples=examples(60), deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False),
    window=st.integers(2, 40),
    ddof=st.sampled_from([0, 1]),
)
def test_a_flat_window_has_its_value_as_mean_and_std_zero(
    value: float, window: int, ddof: int
) -> None:
    mean, std = rolling_mean_std(np.r_[1e300, np.full(window, value)], window, ddof)
    assert mean[-1] == value and std[-1] == 0.0


def test_a_nan_makes_exactly_the_windows_that_hold_it_nan() -> None:
    values = np.arange(20.0)
    values[10] = np.nan
    mean, std = rolling_mean_std(values, 4, 1)
    assert np.flatnonzero(np.isnan(mean)).tolist() == [0, 1, 2, 10, 11, 12, 13]
    assert np.flatnonzero(np.isnan(std)).tolist() == [0, 1, 2, 10, 11, 12, 13]


def test_a_series_shorter_than_the_window_is_all_nan() -> None:
    mean, std = rolling_mean_std(np.array([1.0, 2.0]), 3, 0)
    assert np.isnan(mean).all() and np.isnan(std).all()
    assert rolling_std(np.array([]), 3, 0).size == 0


def test_the_ring_reads_in_chronological_order() -> None:
    ring = new_ring(3)
    assert not ring_full(ring) and math.isnan(ring_back(ring, 1))
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):
        ring_push(ring, value)
    assert ring_full(ring)
    assert [ring_get(ring, k) for k in range(3)] == [3.0, 4.0, 5.0]
    assert [ring_back(ring, k) for k in (1, 2, 3)] == [5.0, 4.0, 3.0]
    assert (ring_min(ring), ring_max(ring), ring_mean(ring)) == (3.0, 5.0, 4.0)
    assert ring_mean_std(ring, 1) == (4.0, 1.0)
