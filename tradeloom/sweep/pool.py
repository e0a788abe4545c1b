"""Run a sweep's tasks on a local pool of processes, rebuilt when a worker dies.

The pool is a `concurrent.futures.ProcessPoolExecutor` started with ``forkserver`` where
the platform has it and ``spawn`` elsewhere, never ``fork``: a forked child inherits the
locks of the threads numba, BLAS or a logging handler had started, and can hang on one.
The forkserver imports the task functions' modules once and starts numba's compiler
(`tradeloom.sweep.warm_compiler`), so each worker starts with them loaded and the
compiler ready (a second or more per worker otherwise). An argument object several tasks
share is sent to each worker once, when it starts (`tradeloom.sweep.shared_args`).

A worker process that dies (killed, out of memory, a crash in compiled code) breaks the
whole pool: every task not finished gets `BrokenProcessPool`, and which one killed it is
not known. The tasks not yet handed over are then run again on a new pool, up to
``retries`` times; a result is handed over once, when its future completes, so none is
handed twice and none is dropped.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from tradeloom.errors import ServiceUnreachable
from tradeloom.runtime.lazy import logger
from tradeloom.sweep.shared_args import SharedRef, shared_arguments
from tradeloom.sweep.task_errors import TaskFailed, WorkersDied, times
from tradeloom.sweep.task_threads import call_single_threaded

if TYPE_CHECKING:
    from tradeloom.sweep.task import Task

__all__ = ["LocalPool", "default_start_method", "run_on_pool"]

_log = logger("tradeloom.sweep")


def default_start_method() -> str:
    """Return how pool processes start here: ``forkserver`` if the platform has it."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def run_on_pool(
    tasks: Sequence[Task],
    on_result: Callable[[Task, Any], None],
    workers: int,
    retries: int,
    start_method: str | None = None,
) -> None:
    """Run ``tasks`` on ``workers`` processes; hand each result to ``on_result`` here.

    A pool is started for these tasks and stopped after them (`LocalPool` keeps one
    between rounds of tasks).

    Args:
        tasks: The tasks, keys unique.
        on_result: Called in this process with each task and its result as it finishes.
        workers: Processes in the pool.
        retries: Times the pool is rebuilt after a worker process died.
        start_method: ``forkserver`` or ``spawn`` (default: `default_start_method`).

    Raises:
        TaskFailed: A task's function raised (the tasks not started are cancelled).
        WorkersDied: The pool broke more than ``retries`` times.
    """
    with LocalPool(workers, start_method) as pool:
        pool.run(tasks, on_result, retries)


class LocalPool:
    """A local pool of worker processes kept between rounds of tasks.

    A sweep runs its tasks in rounds (the stages, then the batches; optuna's trials in
    rounds of ``workers``): one pool for them all starts each process, imports
    tradeloom and loads the kernels once, not once per round. Tasks that share an
    argument object (`tradeloom.sweep.shared_args`) run on a pool of their own, started
    with it. A pool a dead worker broke is replaced (up to ``retries`` times per round).

    Args:
        workers: Processes in the pool.
        start_method: ``forkserver`` or ``spawn`` (default: `default_start_method`).
    """

    def __init__(self, workers: int, start_method: str | None = None) -> None:
        self.workers = workers
        self.context = multiprocessing.get_context(start_method or default_start_method())
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pool's processes (they finish the task they run)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def warm(self, modules: Sequence[str] = ("tradeloom.sweep.engine",)) -> None:
        """Start every worker process now, with ``modules`` imported (a benchmark's
        warm-up, or a sweep's before its first round)."""
        executor = self._pool(modules, [])
        for future in [executor.submit(_warm) for _ in range(self.workers)]:
            future.result()

    def run(
        self, tasks: Sequence[Task], on_result: Callable[[Task, Any], None], retries: int
    ) -> None:
        """Run ``tasks`` (as `run_on_pool` does) on the kept processes."""
        shared = list(shared_arguments(tasks).values())
        modules = sorted({task.function.__module__ for task in tasks} - {"__main__"})
        if shared:  # the shared objects go to each worker as it starts: a pool of their own
            self.close()
        left = list(tasks)
        for rebuilds in range(retries + 1):
            executor = self._pool(modules, shared)
            try:
                left = _run_until_broken(left, on_result, executor, shared)
            except BaseException:
                self._executor = None  # stopped by `_run_until_broken`
                raise
            if shared or left:
                self.close()  # broken, or holding this round's shared objects
            if not left:
                return
            _log.warning(
                "sweep_worker_died", tasks_left=len(left), rebuilds_left=retries - rebuilds
            )
        raise WorkersDied(
            f"a worker process of the local pool died {times(retries + 1)} (killed, out of "
            f"memory, or a crash in compiled code); {len(left)} tasks not run, the first "
            f"{left[0].key}",
            [task.key for task in left],
        )

    def _pool(self, modules: Sequence[str], shared: list[Any]) -> ProcessPoolExecutor:
        if self._executor is None:
            if self.context.get_start_method() == "forkserver":
                helpers = {__name__, "threadpoolctl", "tradeloom.sweep.warm_compiler"}
                self.context.set_forkserver_preload(sorted(set(modules) | helpers))
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=self.context,
                initializer=_keep,
                initargs=(shared,),
            )
        return self._executor


def _warm() -> None:
    # the modules whose kernels a sweep's tasks run, loaded (not the engine: it runs this)
    import tradeloom.sweep.batch
    import tradeloom.sweep.full_run
    import tradeloom.sweep.stages  # noqa: F401


def _run_until_broken(
    tasks: list[Task],
    on_result: Callable[[Task, Any], None],
    executor: ProcessPoolExecutor,
    shared: list[Any],
) -> list[Task]:
    """Run ``tasks`` on ``executor``; return those not run because the pool broke.

    Any exception stops the pool (the running tasks finish, the queued are cancelled;
    Ctrl-C stops its processes at once).
    """
    refs = {id(value): SharedRef(n) for n, value in enumerate(shared)}
    futures: dict[Future[Any], int] = {}
    lost: list[int] = []
    try:
        for index, task in enumerate(tasks):
            args = [refs.get(id(arg), arg) for arg in task.args]
            try:
                futures[executor.submit(_call, task.function, *args)] = index
            except BrokenProcessPool:
                lost.extend(range(index, len(tasks)))
                break
        for future in as_completed(futures):
            # let go of the future once its result is handed over: the dict would
            # otherwise hold every task's result (the whole grid's returns) to the end
            index = futures.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool:
                lost.append(index)
                continue
            except ServiceUnreachable:  # one line that says what to do, as it is
                raise
            except Exception as exc:
                raise TaskFailed(tasks[index].key, exc) from exc
            on_result(tasks[index], result)
    except (KeyboardInterrupt, SystemExit):
        _stop_now(executor)
        raise
    except BaseException:
        # The running tasks finish (at most one per worker) so that nothing they write
        # is cut halfway; the queued ones are cancelled.
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    return [tasks[index] for index in sorted(lost)]


_shared: list[Any] = []  # in a worker: the sweep's shared arguments


def _keep(shared: list[Any]) -> None:
    global _shared
    _shared = shared


def _call(function: Callable[..., Any], *args: Any) -> Any:
    resolved = [_shared[arg.ident] if isinstance(arg, SharedRef) else arg for arg in args]
    return call_single_threaded(function, *resolved)


def _stop_now(executor: ProcessPoolExecutor) -> None:
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    # Before 3.14 the executor has no public way to stop its processes, and its shutdown
    # forgets them: take them first.
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
