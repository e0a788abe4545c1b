"""Running a sweep's tasks: each once, wherever they run, results handed back here.

A task is a module-level function and its arguments (both picklable), under a key that
is unique in the sweep and stable across runs (a content hash), so that a resumed sweep
can skip the keys it already holds. `execute` calls ``on_result`` in the calling process
as each task finishes, in any order; a caller that needs an order sorts by key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Task", "execute"]


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


def execute(
    tasks: Sequence[Task],
    *,
    on_result: Callable[[Task, Any], None],
    workers: int = 1,
    scheduler: str | None = None,
) -> None:
    """Run every task once and hand each result to ``on_result`` in this process.

    Args:
        tasks: The tasks; keys must be unique.
        on_result: Called with the task and its result as each finishes.
        workers: Processes to run on (1: in this process, in order).
        scheduler: A Dask distributed scheduler's address (``tcp://HOST:PORT``).
    """
    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    if workers != 1 or scheduler is not None:
        raise NotImplementedError("only the serial executor is built so far")
    for task in tasks:
        on_result(task, task.function(*task.args))
