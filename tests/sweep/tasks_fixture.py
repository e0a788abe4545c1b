"""Toy task functions for the executor tests: module-level, so workers import them by name."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["always_die", "die_once", "fail_on", "score", "skewed", "weighted"]


def score(x: int) -> float:
    """Return a deterministic float of ``x`` whose last bits depend on the arithmetic."""
    return sum(math.sin(x * k) / (k + 1) for k in range(200))


def weighted(values: npt.NDArray[np.float64], x: int) -> float:
    """Return a float of a shared array and ``x``."""
    return float(np.dot(values, np.cos(values * x)))


def skewed(first: npt.NDArray[np.float64], x: int, second: npt.NDArray[np.float64]) -> float:
    """Return a float of two arrays that changes when they trade places."""
    return float(np.dot(first, np.cos(second * x)) + 2.0 * first[0] - second[-1])


def fail_on(bad: int, x: int) -> float:
    """Return `score` of ``x``, or raise when ``x`` is ``bad``."""
    if x == bad:
        raise ValueError(f"no variant {x}")
    return score(x)


def die_once(markers: str, x: int, doomed: tuple[int, ...]) -> float:
    """Kill this process on the first attempt at a doomed ``x``; return `score` after.

    A marker file under ``markers`` records the first attempt, so the retry, in a new
    process, succeeds.
    """
    if x in doomed:
        marker = Path(markers) / f"{x}.died"
        if not marker.exists():
            marker.touch()
            os._exit(1)
    return score(x)


def always_die(x: int) -> float:
    """Kill the process running it, every time."""
    os._exit(1)


def unreachable_on(bad: int, x: int) -> int:
    """Return ``x``; raise `ServiceUnreachable` for ``bad`` (a model server that is down)."""
    from tradeloom.errors import ServiceUnreachable

    if x == bad:
        raise ServiceUnreachable(f"cannot connect to the server of variant {bad}")
    return x
