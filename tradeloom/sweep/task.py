"""A sweep's unit of work: a module-level function, its arguments, and a stable key.

Its own module so that every way of running tasks (`tradeloom.sweep.tasks`, the local
pool, the Dask cluster) names it without importing the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Task"]


@dataclass(frozen=True)
class Task:
    """One unit of a sweep's work.

    Attributes:
        key: Unique in the sweep, stable across runs of the same sweep.
        function: A module-level function (picklable by reference).
        args: Its positional arguments (picklable).
    """

    key: str
    function: Callable[..., Any]
    args: tuple[Any, ...] = field(default=())
