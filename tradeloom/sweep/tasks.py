"""Running a sweep's tasks: each once, wherever they run, results handed back here.

A task is a module-level function and its arguments (both picklable), under a key that
is unique in the sweep and stable across runs (a content hash), so that a resumed sweep
can skip the keys it already holds. `execute` calls ``on_result`` in the calling process
as each task finishes, in any order; a caller that needs an order sorts by key. A result
is what the function returned, whichever process ran it, so a sweep's results are the
same with one worker, a local pool or a Dask cluster (the functions must be pure): every
mode runs its tasks with one BLAS and OpenMP thread (`tradeloom.sweep.task_threads`), as
a threaded reduction's last bits depend on its thread count.

Three ways to run, one contract:

- ``workers=1`` (no ``scheduler``): in this process, in the tasks' order.
- ``workers=N``: a local pool of N processes (`tradeloom.sweep.pool`), started with
  ``forkserver`` where the platform has it (``spawn`` elsewhere): forking a process
  that has started numba's or BLAS's threads can deadlock the child. ``pool=`` keeps
  one between calls (a sweep's rounds), started once.
- ``scheduler="tcp://HOST:PORT"``: an existing Dask distributed cluster
  (`tradeloom.sweep.distributed_tasks`); ``workers`` is then not used, the cluster's
  workers run the tasks. Every worker needs tradeloom (the same version) and whatever
  the task functions import.

Failures, the same in every mode:

- A task whose function raises stops the sweep: the tasks not yet started are
  cancelled and `TaskFailed` is raised, naming the task's key, with the function's
  exception as its ``__cause__``. Results already handed to ``on_result`` stay handed,
  so a caller that records them as they come can resume the sweep after a fix. No
  variant is recorded as failed: a function that raises is a bug or bad input, and
  the same input would raise again.
- A worker process that dies (killed, out of memory, a crash in compiled code) has its
  tasks run again elsewhere, never dropped and never handed over twice. The local pool
  is rebuilt up to ``retries`` times; a Dask scheduler reschedules a dead worker's
  tasks itself, up to its ``distributed.scheduler.allowed-failures`` setting (3 by
  default) per task. Past that, `WorkersDied` is raised.
- A scheduler that cannot be reached within ``connect_timeout`` seconds, or that has no
  worker within that time, raises `SchedulerUnavailable` (a `UserError`: one line that
  names the address and the timeout).
- KeyboardInterrupt (Ctrl-C) cancels the outstanding tasks, stops the pool's processes
  and propagates. Any other exception (from ``on_result`` too) cancels them as well.

The progress line (`tradeloom.sweep.sweep_progress.SweepProgress`) is driven from
``on_result``, which knows each variant's objective.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tradeloom.errors import ServiceUnreachable, UserError
from tradeloom.runtime.extras import require
from tradeloom.sweep.task import Task
from tradeloom.sweep.task_errors import SchedulerUnavailable, TaskFailed, WorkersDied
from tradeloom.sweep.task_threads import single_threaded

if TYPE_CHECKING:
    from tradeloom.sweep.pool import LocalPool

__all__ = ["SchedulerUnavailable", "Task", "TaskFailed", "WorkersDied", "execute"]


def execute(
    tasks: Sequence[Task],
    *,
    on_result: Callable[[Task, Any], None],
    workers: int = 1,
    scheduler: str | None = None,
    retries: int = 3,
    connect_timeout: float = 10.0,
    pool: LocalPool | None = None,
) -> None:
    """Run every task once and hand each result to ``on_result`` in this process.

    Args:
        tasks: The tasks; keys must be unique.
        on_result: Called with the task and its result as each finishes.
        workers: Processes to run on (1: in this process, in order).
        scheduler: A Dask distributed scheduler's address (``tcp://HOST:PORT``).
        retries: Times the local pool is rebuilt after a worker process died.
        connect_timeout: Seconds to wait for the scheduler, and for its first worker.
        pool: A local pool kept between calls (`tradeloom.sweep.pool.LocalPool`), used
            instead of starting one when ``workers`` is more than 1.

    Raises:
        TaskFailed: A task's function raised.
        WorkersDied: Worker processes kept dying.
        SchedulerUnavailable: The scheduler cannot be reached or has no worker.
        UserError: ``workers``, ``retries`` or ``connect_timeout`` out of range.
    """
    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    if workers < 1:
        raise UserError(f"workers: must be at least 1, was {workers}")
    if retries < 0:
        raise UserError(f"retries: must be at least 0, was {retries}")
    if not connect_timeout > 0:
        raise UserError(f"connect timeout: must be more than 0 s, was {connect_timeout:g}")
    if scheduler is not None:
        require("distributed", f"--scheduler {scheduler} (a Dask cluster)")
        from tradeloom.sweep.distributed_tasks import run_on_cluster

        run_on_cluster(tasks, on_result, scheduler, connect_timeout)
    elif workers > 1 and len(tasks) > 1 and pool is not None:
        pool.run(tasks, on_result, retries)
    elif workers > 1 and len(tasks) > 1:
        from tradeloom.sweep.pool import run_on_pool

        run_on_pool(tasks, on_result, min(workers, len(tasks)), retries)
    else:
        with single_threaded():
            for task in tasks:
                on_result(task, run_one(task))


def run_one(task: Task) -> Any:
    """Return what ``task``'s function returns; raise `TaskFailed` if it raises (a
    `ServiceUnreachable` as it is: its one line says what to do)."""
    try:
        return task.function(*task.args)
    except ServiceUnreachable:
        raise
    except Exception as exc:
        raise TaskFailed(task.key, exc) from exc
