"""`tradeloom.core.prefetch`: a hint that changes no value, typed like an index."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba.core.errors import TypingError

from tradeloom.core.prefetch import prefetch


@numba.njit
def _sum_fetching_ahead(values: np.ndarray, ahead: int) -> float:
    total = 0.0
    n = values.shape[0]
    for i in range(n):
        prefetch(values, min(i + ahead, n - 1))
        total += values[i]
    return total


@numba.njit
def _cell_fetched(cube: np.ndarray, i: int, j: int) -> float:
    prefetch(cube, (1, i, j))
    return cube[1, i, j]


@numba.njit
def _wrong_arity(cube: np.ndarray) -> None:
    prefetch(cube, (0, 0))


@numba.njit
def _float_index(values: np.ndarray) -> None:
    prefetch(values, 1.5)


def test_a_loop_that_fetches_ahead_computes_what_it_would_without() -> None:
    values = np.random.default_rng(3).random(1000)
    assert _sum_fetching_ahead(values, 64) == pytest.approx(values.sum(), rel=1e-12)
    cube = np.arange(24.0).reshape(2, 3, 4)
    assert _cell_fetched(cube, 2, 3) == cube[1, 2, 3]


@pytest.mark.parametrize(
    ("kernel", "argument"),
    [(_wrong_arity, np.zeros((2, 2, 2))), (_float_index, np.zeros(4))],
)
def test_an_index_that_does_not_fit_the_array_does_not_compile(
    kernel: numba.core.registry.CPUDispatcher, argument: np.ndarray
) -> None:
    with pytest.raises(TypingError):
        kernel(argument)
