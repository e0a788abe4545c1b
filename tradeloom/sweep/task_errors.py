"""What stops a sweep's tasks, the same whichever way they run.

A task that raises stops the sweep (`TaskFailed`, naming its key); a task whose worker
process keeps dying stops it too (`WorkersDied`). A Dask scheduler that cannot be used
is the user's to fix (`SchedulerUnavailable`, a `UserError`: one line, exit code 2).
"""

from __future__ import annotations

from tradeloom.errors import UserError

__all__ = ["SchedulerUnavailable", "TaskFailed", "WorkersDied", "times"]


class TaskFailed(Exception):
    """A task's function raised; the original exception is the ``__cause__``.

    Attributes:
        key: The task's key.
    """

    def __init__(self, key: str, error: BaseException) -> None:
        self.key = key
        super().__init__(f"task {key} failed: {type(error).__name__}: {error}")


class WorkersDied(Exception):
    """Worker processes died running tasks more often than the retry budget allows.

    Attributes:
        keys: The keys of the tasks that were not completed, in the sweep's order.
    """

    def __init__(self, message: str, keys: list[str]) -> None:
        self.keys = keys
        super().__init__(message)


class SchedulerUnavailable(UserError):
    """The Dask scheduler cannot be reached, or has no worker to run the tasks."""


def times(count: int) -> str:
    """Return ``count`` as the messages say it: ``once``, ``2 times``."""
    return "once" if count == 1 else f"{count} times"
