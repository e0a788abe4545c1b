"""What running a sweep's tasks costs: serial, on a local pool, on a 2-worker Dask cluster.

Two workloads, each run by every executor in one process, interleaved round by round,
medians of ``--runs`` quoted:

  - **cpu**: ``--tasks`` tasks, each a numba kernel (an EWMA and its worst drawdown)
    over ``--size`` seeded values, about a millisecond of work;
  - **empty**: the same number of tasks that return their argument, so that the time is
    the executor's own: the overhead per task.

Executors: serial (`execute`, ``workers=1``), the local pool with 2 processes started
by ``forkserver`` and by ``spawn`` (each `execute` starts its pool, and that start is
timed: it is what a sweep pays), and a ``distributed.LocalCluster`` of 2 worker
processes with one thread each, started once before timing (an existing cluster), the
client's connection timed. Every executor's results are checked equal to the serial
ones. Printed: seconds, tasks per second and the ratio of tasks per second to serial.

    python benchmarks/bench_tasks.py [--tasks 400] [--size 100000] [--runs 3] [--smoke]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from machine import describe
from smoke import add_smoke, parse_args
from task_kernels import crunch, nothing

from tradeloom.sweep.pool import run_on_pool
from tradeloom.sweep.tasks import Task, execute

Executor = Callable[[list[Task], Callable[[Task, Any], None]], None]


def executors(address: str) -> dict[str, Executor]:
    """Return each way to run the tasks, by name."""
    return {
        "serial": lambda tasks, on_result: execute(tasks, on_result=on_result),
        "pool, 2 forkserver": lambda tasks, on_result: run_on_pool(
            tasks, on_result, 2, 0, start_method="forkserver"
        ),
        "pool, 2 spawn": lambda tasks, on_result: run_on_pool(
            tasks, on_result, 2, 0, start_method="spawn"
        ),
        "dask, 2 workers": lambda tasks, on_result: execute(
            tasks, on_result=on_result, scheduler=address
        ),
    }


def timed(executor: Executor, tasks: list[Task]) -> tuple[float, dict[str, Any]]:
    """Return the seconds ``executor`` takes over ``tasks`` and the results by key."""
    results: dict[str, Any] = {}
    start = time.perf_counter()
    executor(tasks, lambda task, result: results.__setitem__(task.key, result))
    return time.perf_counter() - start, results


def main() -> None:
    """Time every executor on both workloads and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    add_smoke(parser, tasks=4, size=1_000, runs=1)
    args = parse_args(parser)
    from distributed import LocalCluster

    # after the import, which sets distributed's own levels: the nannies' shutdown
    # warnings are not the benchmark's business
    logging.getLogger("distributed").setLevel(logging.ERROR)

    print("machine:", describe("numpy", "numba", "dask", "distributed", "tradeloom"))
    print("load average (1, 5, 15 min):", ", ".join(f"{load:.2f}" for load in os.getloadavg()))
    workloads = {
        "cpu": [Task(f"c{n}", crunch, (n, args.size)) for n in range(args.tasks)],
        "empty": [Task(f"e{n}", nothing, (n,)) for n in range(args.tasks)],
    }
    if args.smoke:  # every executor once: each pool's start is seconds of imports
        del workloads["empty"]
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        ways = executors(cluster.scheduler_address)
        for workload, tasks in workloads.items():
            reference = timed(ways["serial"], tasks)[1]
            for executor in ways.values() if not args.smoke else ():
                timed(executor, tasks[:8])  # warm up: numba's cache, imports, the forkserver
            seconds: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(args.runs):
                for name, executor in ways.items():
                    elapsed, results = timed(executor, tasks)
                    if results != reference:
                        raise SystemExit(f"{name} gave other results than serial ({workload})")
                    seconds[name].append(elapsed)
            serial_rate = len(tasks) / statistics.median(seconds["serial"])
            print(f"\n{workload}: {len(tasks)} tasks, median of {args.runs} runs")
            print(
                f"  {'executor':<20} {'seconds':>8} {'tasks/s':>10} {'ms/task':>8} {'vs serial':>9}"
            )
            for name, times in seconds.items():
                median = statistics.median(times)
                rate = len(tasks) / median
                print(
                    f"  {name:<20} {median:8.3f} {rate:10.0f} {1000 * median / len(tasks):8.3f}"
                    f" {rate / serial_rate:9.2f}"
                )


if __name__ == "__main__":
    main()
