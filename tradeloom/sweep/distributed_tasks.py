"""Run a sweep's tasks on an existing Dask distributed cluster.

The client connects to the scheduler at ``address`` (``tcp://HOST:PORT``), checks within
``connect_timeout`` that it answers and has a worker, and that every worker runs the
same tradeloom version as this process, then submits each task under a key made of the
task's key and a token of this run (two sweeps sharing a cluster never share a future).
Results come back as they complete (`distributed.as_completed`) and are released on the
cluster once handed to ``on_result``.

An argument object that several tasks share (the same object, e.g. one array of model
predictions for many variants) is sent to the cluster once, as a task of its own that the
others depend on, rather than with each task; the scheduler keeps it, so it is computed
again if every worker holding it dies (scattered data would be lost).

A task goes to the cluster pickled here, once, as bytes (`pack`): the scheduler, which
runs in this process on a LocalCluster, then passes the bytes on to a worker, which
unpickles them once, as a pool's worker does. Submitted as objects, a task was
unpickled by the scheduler too and pickled again for the worker: a batch task's 250
variants' parameters (180 KB) took the scheduler 6 ms to unpickle, and with pickling them
again more than half the command's CPU in a 2-worker sweep of 1,000 variants of 2,000
bars (docs/performance.md).

A worker that dies has its tasks rescheduled by the scheduler on the others; a task that
was running on more than ``distributed.scheduler.allowed-failures`` (3 by default) dying
workers is marked failed by the scheduler (`distributed.KilledWorker`) and raises
`WorkersDied` here. ``retries=`` of ``Client.submit`` is not used: it re-runs a task that
*raised*, and a pure function raises again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any

from tradeloom.errors import ServiceUnreachable, UserError
from tradeloom.sweep.shared_args import SharedRef, shared_arguments
from tradeloom.sweep.task_errors import SchedulerUnavailable, TaskFailed, WorkersDied, times
from tradeloom.sweep.task_threads import call_single_threaded

if TYPE_CHECKING:
    from distributed import Client, Future

    from tradeloom.sweep.task import Task

__all__ = ["connect", "pack", "run_on_cluster", "run_packed"]


def run_on_cluster(
    tasks: Sequence[Task],
    on_result: Callable[[Task, Any], None],
    address: str,
    connect_timeout: float,
) -> None:
    """Run ``tasks`` on the cluster at ``address``; hand each result to ``on_result`` here.

    Args:
        tasks: The tasks, keys unique.
        on_result: Called in this process with each task and its result as it finishes.
        address: The scheduler's address, ``tcp://HOST:PORT``.
        connect_timeout: Seconds to wait for the scheduler, then for its first worker.

    Raises:
        SchedulerUnavailable: No scheduler answered, it has no worker, or it was lost.
        TaskFailed: A task's function raised (the outstanding tasks are cancelled).
        WorkersDied: A task's workers kept dying.
    """
    from distributed import as_completed

    client = connect(address, connect_timeout)
    shared: dict[int, Future[Any]] = {}
    futures: dict[Future[Any], Task] = {}
    try:
        _check_versions(client, address)
        token = uuid.uuid4().hex[:12]
        shared = _shared_arguments(client, tasks, token)
        refs = {ident: SharedRef(n) for n, ident in enumerate(shared)}
        order = list(shared.values())
        for task in tasks:
            payload, used = pack(task, refs)
            future = client.submit(
                run_packed,
                payload,
                used,
                *(order[n] for n in used),
                key=f"tradeloom-{token}-{task.key}",
            )
            futures[future] = task
        # In batches: one gather per batch of finished futures, not a round trip each.
        completed = as_completed(futures, loop=client.loop)
        for batch in completed.batches():
            finished = [future for future in batch if future.status == "finished"]
            failed = [future for future in batch if future.status in ("error", "cancelled")]
            for future in batch:
                if future.status not in ("finished", "error", "cancelled"):
                    # "lost": its worker died before the result was fetched, and the
                    # scheduler computes it again; wait for it once more
                    completed.add(future)
            results = _gather(client, finished, futures, address)
            for future, result in zip(finished, results, strict=True):
                on_result(futures[future], result)
                future.release()
            for future in failed:
                _raise_for(future, futures[future], address)
    except BaseException:
        # Cancelling the finished futures too releases their results on the workers; a
        # scheduler that is gone has nothing to cancel, and its error is the one to see.
        with contextlib.suppress(Exception):
            client.cancel([*futures, *shared.values()])
        raise
    finally:
        client.close()


def pack(task: Task, refs: dict[int, SharedRef]) -> tuple[bytes, tuple[int, ...]]:
    """Return ``task``'s function and arguments pickled, a shared argument (by ``id``,
    in ``refs``) as its `SharedRef`, and the shared arguments' indices it refers to."""
    # Dask's own choice between pickle and cloudpickle (a function of __main__ by value)
    from distributed.protocol.pickle import dumps

    args = tuple(refs.get(id(arg), arg) for arg in task.args)
    used = tuple(sorted({arg.ident for arg in args if isinstance(arg, SharedRef)}))
    return dumps((task.function, args)), used


def run_packed(payload: bytes, used: tuple[int, ...], *shared: Any) -> Any:
    """Return what a packed task's function returns (`pack`), run on a worker with the
    shared arguments ``used`` (their values, in that order) put back in place."""
    from distributed.protocol.pickle import loads

    function, args = loads(payload)
    values = dict(zip(used, shared, strict=True))
    resolved = [values[arg.ident] if isinstance(arg, SharedRef) else arg for arg in args]
    return call_single_threaded(function, *resolved)


def connect(address: str, timeout: float) -> Client:
    """Return a client of the scheduler at ``address`` that has at least one worker.

    Raises:
        SchedulerUnavailable: No scheduler answered within ``timeout`` seconds, or it had
            no worker within ``timeout`` seconds more.
    """
    from distributed import Client

    from tradeloom.engine.logs import route_library_logs

    route_library_logs("distributed")  # its warnings as the command's JSON lines
    # A bare handshake first: a Client that fails to connect leaves a closing task that
    # prints a traceback when it is collected, and this one can say what went wrong.
    try:
        asyncio.run(_handshake(address, timeout))
    except ValueError as exc:
        raise SchedulerUnavailable(f"--scheduler {address}: {exc}") from None
    except (TimeoutError, OSError):
        raise SchedulerUnavailable(
            f"no Dask scheduler answered at {address} within {timeout:g} s"
            " (start one with `dask scheduler`, or wait longer with --scheduler-timeout)"
        ) from None
    except Exception as exc:  # something answered, but not in Dask's protocol
        raise SchedulerUnavailable(
            f"{address} did not answer as a Dask scheduler: {type(exc).__name__}: {exc}"
        ) from None
    client = Client(address, timeout=timeout, set_as_default=False)
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        client.close()
        raise SchedulerUnavailable(
            f"the Dask scheduler at {address} has no worker after {timeout:g} s"
            f" (start some with `dask worker {address}`)"
        ) from None
    except BaseException:
        client.close()
        raise
    return client


async def _handshake(address: str, timeout: float) -> None:
    from distributed.comm.core import connect as open_comm

    comm = await open_comm(address, timeout=timeout)
    await comm.close()


def _check_versions(client: Client, address: str) -> None:
    from tradeloom.version import __version__ as here

    # A worker that died since it registered answers with an OSError: skip it, the
    # scheduler will not give it a task.
    there = client.run(_tradeloom_version, on_error="return")
    for worker, version in sorted(there.items()):
        if isinstance(version, ModuleNotFoundError):
            raise UserError(
                f"the Dask worker {worker} cannot import {version.name}:"
                f" install tradeloom {here} on every worker"
            )
        if isinstance(version, BaseException) and not isinstance(version, OSError):
            raise version
        if isinstance(version, str) and version != here:
            raise UserError(
                f"the Dask worker {worker} has tradeloom {version} and this machine {here}:"
                " install the same version on every worker"
            )


def _tradeloom_version() -> str:
    from tradeloom.version import __version__

    return __version__


def _shared_arguments(client: Client, tasks: Sequence[Task], token: str) -> dict[int, Future[Any]]:
    # A task that returns the object, rather than `Client.scatter`: the scheduler keeps
    # the task, so it can compute the object again if every worker holding it dies. The
    # object goes pickled, as bytes the scheduler passes on (`pack`).
    from distributed.protocol.pickle import dumps

    return {
        ident: client.submit(_unpickled, dumps(value), key=f"tradeloom-shared-{token}-{n}")
        for n, (ident, value) in enumerate(shared_arguments(tasks).items())
    }


def _unpickled(payload: bytes) -> Any:
    from distributed.protocol.pickle import loads

    return loads(payload)


def _gather(
    client: Client, finished: list[Future[Any]], futures: dict[Future[Any], Task], address: str
) -> list[Any]:
    try:
        return list(client.gather(finished))
    except CancelledError:
        lost = next(future for future in finished if future.cancelled())
        raise _cancelled(futures[lost], address) from None


def _raise_for(future: Future[Any], task: Task, address: str) -> None:
    from distributed import KilledWorker

    if future.status != "error":
        raise _cancelled(task, address)
    error = future.exception()
    if isinstance(error, KilledWorker):
        raise WorkersDied(
            f"task {task.key}: the Dask workers running it died"
            f" {times(error.allowed_failures + 1)} (killed, out of memory, or a crash in"
            " compiled code)",
            [task.key],
        ) from error
    if isinstance(error, ServiceUnreachable):  # one line that says what to do, as it is
        raise error
    raise TaskFailed(task.key, error) from error


def _cancelled(task: Task, address: str) -> SchedulerUnavailable:
    return SchedulerUnavailable(
        f"the Dask scheduler at {address} cancelled task {task.key}"
        " (lost, or the cluster was restarted)"
    )
