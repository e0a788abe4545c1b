"""Cross-sectional features: hand-computed values, and each bar computed from its own row."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.hunting import examples
from tradeloom.plugins.features.cross import cross_mean, cross_rank, cross_zscore

NAN = math.nan

VALUES = np.array(
    [
        [1.0, 3.0, 2.0, 9.0],  # the fourth symbol has no bar
        [5.0, 5.0, NAN, 1.0],  # a tie; a symbol without a value
        [2.0, NAN, NAN, NAN],  # one symbol alone
        [4.0, 4.0, 4.0, 4.0],  # flat
    ]
)
PRESENT = np.array(
    [
        [True, True, True, False],
        [True, True, True, True],
        [True, True, True, True],
        [True, True, True, False],
    ]
)


def test_the_rank_is_the_middle_of_the_symbols_share_of_the_ranks() -> None:
    expected = [
        [0.5 / 3, 2.5 / 3, 1.5 / 3, NAN],
        [2.0 / 3, 2.0 / 3, NAN, 0.5 / 3],  # 5 and 5 share ranks 2 and 3
        [0.5, NAN, NAN, NAN],
        [0.5, 0.5, 0.5, NAN],
    ]
    np.testing.assert_allclose(cross_rank(VALUES, PRESENT), expected, rtol=1e-15)


def test_the_zscore_and_the_mean_are_over_the_symbols_taking_part() -> None:
    std = math.sqrt(2.0 / 3.0)
    mean = 11.0 / 3.0
    spread = math.sqrt(((5 - mean) ** 2 * 2 + (1 - mean) ** 2) / 3)
    np.testing.assert_allclose(
        cross_zscore(VALUES, PRESENT),
        [
            [-1 / std, 1 / std, 0.0, NAN],
            [(5 - mean) / spread, (5 - mean) / spread, NAN, (1 - mean) / spread],
            [0.0, NAN, NAN, NAN],
            [0.0, 0.0, 0.0, NAN],
        ],
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        cross_mean(VALUES, PRESENT),
        [[2.0, 2.0, 2.0, NAN], [mean, mean, NAN, mean], [2.0, NAN, NAN, NAN], [4, 4, 4, NAN]],
        rtol=1e-15,
    )


@settings(max_examples=examples(200), deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.one_of(st.floats(-1e6, 1e6), st.just(NAN)),
    ),
    seed=st.integers(0, 2**32 - 1),
)
@pytest.mark.parametrize("statistic", [cross_rank, cross_zscore, cross_mean])
def test_each_bar_is_computed_from_its_own_row(
    statistic: object, values: np.ndarray, seed: int
) -> None:
    """Row t alone gives the batch's row t bit for bit: causal, and what the per-bar
    driver computes."""
    present = np.random.default_rng(seed).random(values.shape) < 0.8
    batch = statistic(values, present)  # type: ignore[operator]
    for t in range(len(values)):
        row = statistic(values[t : t + 1], present[t : t + 1])  # type: ignore[operator]
        np.testing.assert_array_equal(row[0], batch[t])
    assert np.isnan(batch[~present]).all()
