"""Toy task functions for bench_tasks.py: module-level, so pool and Dask workers import them.

Benchmarks run as scripts, so workers find this module by name on the benchmarks folder,
which a spawned process inherits on its ``sys.path``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["crunch", "nothing"]


@njit(cache=True)
def _ewma_drawdown(values: npt.NDArray[np.float64], alpha: float) -> float:
    level = 0.0
    peak = 0.0
    worst = 0.0
    for value in values:
        level = alpha * value + (1.0 - alpha) * level
        peak = max(peak, level)
        worst = min(worst, level - peak)
    return worst


def crunch(seed: int, size: int) -> float:
    """Return the worst drawdown of an EWMA over ``size`` seeded normal values."""
    values = np.random.default_rng(seed).normal(0.0, 1.0, size).cumsum()
    return float(_ewma_drawdown(values, 0.05))


def nothing(seed: int) -> int:
    """Return ``seed``: a task with no work, to time the executor alone."""
    return seed
