"""The sweep's executor on a real Dask cluster: serial results, each task handed over once."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import LocalCluster
from distributed.core import Status

import tradeloom.version
from tests.sweep import tasks_fixture as toy
from tradeloom.errors import UserError
from tradeloom.sweep.distributed_tasks import pack, run_packed
from tradeloom.sweep.shared_args import SharedRef
from tradeloom.sweep.tasks import SchedulerUnavailable, Task, TaskFailed, WorkersDied, execute


@pytest.fixture(scope="module")
def two_workers() -> Iterator[LocalCluster]:
    """Two worker processes, one thread each, for the whole module."""
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as running:
        yield running


@pytest.fixture
def cluster(two_workers: LocalCluster) -> Iterator[LocalCluster]:
    """The module's cluster, left with both workers running again after each test.

    A test that kills workers leaves their nannies starting new processes; closing the
    cluster (or starting the next test) in the middle of that start failed the
    teardown with distributed's "can only join a started process".
    """
    yield two_workers
    assert eventually(lambda: both_running(two_workers)), "the workers did not come back"


def both_running(cluster: LocalCluster) -> bool:
    """Return whether both nannies' worker processes run and the scheduler knows both."""
    processes = [getattr(nanny, "process", None) for nanny in cluster.workers.values()]
    return (
        len(cluster.scheduler.workers) == 2
        and len(processes) == 2
        and all(p is not None and p.status == Status.running for p in processes)
    )


def collect(tasks: list[Task], **how: Any) -> tuple[dict[str, Any], Counter[str]]:
    """Run ``tasks``; return the results by key and how often each key was handed over."""
    results: dict[str, Any] = {}
    seen: Counter[str] = Counter()

    def on_result(task: Task, result: Any) -> None:
        results[task.key] = result
        seen[task.key] += 1

    execute(tasks, on_result=on_result, **how)
    return results, seen


def sweep_keys(cluster: LocalCluster) -> list[str]:
    """Return the keys of this module's tasks the scheduler still holds."""
    return [key for key in cluster.scheduler.tasks if str(key).startswith("tradeloom-")]


def eventually(condition: Callable[[], bool]) -> bool:
    """Return whether ``condition`` holds within 30 s.

    A client's cancel and close reach the scheduler as messages it handles later, on
    its own thread of this process, so this polls the scheduler's state.
    """
    deadline = time.monotonic() + 30.0
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_the_cluster_gives_the_serial_results(cluster: LocalCluster) -> None:
    tasks = [Task(f"t{x}", toy.score, (x,)) for x in range(20)]
    serial, _ = collect(tasks)
    distributed, seen = collect(tasks, scheduler=cluster.scheduler_address)
    assert set(distributed.items()) == set(serial.items())
    assert set(seen.values()) == {1}


@pytest.mark.slow
def test_a_shared_argument_gives_the_serial_results(cluster: LocalCluster) -> None:
    values = np.linspace(0.0, 1.0, 50_000)
    tasks = [Task(f"w{x}", toy.weighted, (values, x)) for x in range(6)]
    serial, _ = collect(tasks)
    distributed, _ = collect(tasks, scheduler=cluster.scheduler_address)
    assert distributed == serial


def test_shared_arguments_come_back_in_their_places(cluster: LocalCluster) -> None:
    # tasks go packed (pickled once here, the shared ones as references): two shared
    # arrays in either order, beside one a single task passes, give the serial results
    one = np.linspace(0.0, 1.0, 20_000)
    other = np.linspace(-2.0, 3.0, 20_000)
    alone = np.linspace(5.0, 6.0, 20_000)
    tasks = [
        *(Task(f"a{x}", toy.skewed, (one, x, other)) for x in range(3)),
        *(Task(f"b{x}", toy.skewed, (other, x, one)) for x in range(3)),
        Task("c", toy.skewed, (alone, 7, other)),
    ]
    serial, _ = collect(tasks)
    distributed, _ = collect(tasks, scheduler=cluster.scheduler_address)
    assert distributed == serial
    assert len(set(serial.values())) == len(tasks)


def test_a_packed_task_runs_with_its_shared_arguments_put_back() -> None:
    # a task is bytes to the scheduler (in the command's process on a LocalCluster),
    # which passes them on; the worker puts the shared arguments it was given in place
    task = Task("t", toy.skewed, (np.arange(3.0), 2, np.arange(3.0)))
    payload, used = pack(task, {})
    assert isinstance(payload, bytes) and used == ()
    assert run_packed(payload, used) == toy.skewed(*task.args)
    shared = task.args[2]
    payload, used = pack(task, {id(shared): SharedRef(4)})
    assert used == (4,)
    assert run_packed(payload, used, shared + 1.0) == toy.skewed(task.args[0], 2, shared + 1.0)


@pytest.mark.slow
def test_a_raising_task_stops_the_sweep_naming_its_key(cluster: LocalCluster) -> None:
    tasks = [Task(f"t{x}", toy.fail_on, (4, x)) for x in range(10)]
    before = set(cluster.scheduler.clients)  # a previous test's may still be leaving
    with pytest.raises(TaskFailed, match=r"^task t4 failed: ValueError: no variant 4$") as info:
        collect(tasks, scheduler=cluster.scheduler_address)
    assert isinstance(info.value.__cause__, ValueError)
    assert eventually(lambda: set(cluster.scheduler.clients) <= before)  # ours closed
    assert eventually(lambda: not sweep_keys(cluster))


@pytest.mark.slow
def test_an_interrupt_cancels_the_outstanding_tasks(cluster: LocalCluster) -> None:
    tasks = [Task(f"t{x}", toy.score, (x,)) for x in range(200)]
    handed: list[str] = []

    def on_result(task: Task, result: Any) -> None:
        handed.append(task.key)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(tasks, on_result=on_result, scheduler=cluster.scheduler_address)
    assert len(handed) == 1
    assert eventually(lambda: not sweep_keys(cluster))


@pytest.mark.slow
def test_workers_of_another_version_are_refused(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tradeloom.version, "__version__", "9.9.9")
    before = set(cluster.scheduler.clients)  # a previous test's may still be leaving
    message = (
        r"^the Dask worker tcp://127\.0\.0\.1:\d+ has tradeloom \S+ and this machine 9\.9\.9:"
        r" install the same version on every worker$"
    )
    with pytest.raises(UserError, match=message):
        collect([Task("t0", toy.score, (0,))], scheduler=cluster.scheduler_address)
    assert eventually(lambda: set(cluster.scheduler.clients) <= before)  # ours closed


@pytest.mark.slow
def test_a_dead_worker_has_its_tasks_rerun_each_handed_over_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    doomed = (3, 11)
    tasks = [Task(f"t{x}", toy.die_once, (str(tmp_path), x, doomed)) for x in range(16)]
    results, seen = collect(tasks, scheduler=cluster.scheduler_address)
    assert results == collect([Task(f"t{x}", toy.score, (x,)) for x in range(16)])[0]
    assert seen == Counter({f"t{x}": 1 for x in range(16)})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["11.died", "3.died"]


@pytest.mark.slow
def test_a_task_that_keeps_killing_workers_stops_the_sweep(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scheduler runs in this process: let a task see one worker die, not three.
    monkeypatch.setattr(cluster.scheduler, "allowed_failures", 1)
    message = (
        r"^task t0: the Dask workers running it died 2 times \(killed, out of memory, or a"
        r" crash in compiled code\)$"
    )
    with pytest.raises(WorkersDied, match=message):
        collect([Task("t0", toy.always_die, (0,))], scheduler=cluster.scheduler_address)


def test_an_unreachable_scheduler_is_named_with_the_timeout() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    message = (
        rf"^no Dask scheduler answered at {address} within 0\.5 s \(start one with"
        r" `dask scheduler`, or wait longer with --scheduler-timeout\)$"
    )
    with pytest.raises(SchedulerUnavailable, match=message):
        collect([Task("t0", toy.score, (0,))], scheduler=address, connect_timeout=0.5)


def test_a_malformed_address_is_named() -> None:
    with pytest.raises(
        SchedulerUnavailable,
        match=r"^--scheduler 127\.0\.0\.1: missing port number in address '127\.0\.0\.1'$",
    ):
        collect([Task("t0", toy.score, (0,))], scheduler="127.0.0.1")


@pytest.mark.slow
def test_a_scheduler_without_workers_is_named() -> None:
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        address = empty.scheduler_address
        message = (
            rf"^the Dask scheduler at {address} has no worker after 0\.5 s"
            rf" \(start some with `dask worker {address}`\)$"
        )
        with pytest.raises(SchedulerUnavailable, match=message):
            collect([Task("t0", toy.score, (0,))], scheduler=address, connect_timeout=0.5)
