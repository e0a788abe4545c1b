"""``tradeloom sweep --scheduler tcp://HOST:PORT`` against a cluster a user starts by hand.

A ``dask scheduler`` and a ``dask worker`` (two worker processes) run as processes of their
own on 127.0.0.1, started in another folder than the sweep's, as an operator would start
them (with this checkout's tradeloom on their path, and the worker settings the guide
gives); the sweep is the real command, a process of its own too, given the strategy file
by a path relative to its own folder. Its results equal the same sweep's run serially
(every file but the rows' timings), and the workers, not the command, ran the variants,
keeping no stage cache of their own (their parts they write into the sweep directory,
which they share on this machine).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from distributed import Client

from tests import forkserver
from tradeloom.cli.main import main
from tradeloom.sweep.dask_settings import environment

STRATEGY = Path(__file__).resolve().parent / "small_strategy.yaml"
CHECKOUT = Path(__file__).resolve().parents[2]
"""This checkout: the command and the workers both run its tradeloom (the one under
test; the installed one may be another checkout's, whose tasks differ)."""
GRIDS = ("--grid", "signal.threshold=0.02,0.06", "--grid", "risk.stop_loss=0.01,0.2")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def started(
    argv: list[str], cwd: Path, log: Path, settings: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m argv`` as a process group of its own, its output in ``log``,
    with ``settings`` more in its environment.

    Its path has this checkout's tradeloom (the one under test), not the folder the
    test runs in.
    """
    env = {**os.environ, **(settings or {}), "PYTHONPATH": str(CHECKOUT)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def stopped(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` and its children (a worker's nannies start processes of their own)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def workers_joined(log: Path, count: int, within: float = 120.0) -> bool:
    """Return whether the scheduler's log says ``count`` workers registered in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("Register worker") >= count:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A scheduler and a worker of two processes, one thread each, with the sweep's worker
    settings (`tradeloom.sweep.dask_settings`): (address, scheduler log)."""
    home = tmp_path / "cluster"
    home.mkdir()
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    log = home / "scheduler.log"
    scheduler = started(
        ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", port,
         "--dashboard-address", ":0"],
        home, log,
    )  # fmt: skip
    # started as the guide says: one thread each, the sweep's worker settings set
    worker = started(
        ["distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads", "1",
         "--dashboard-address", ":0", "--local-directory", str(home / "workers")],
        home, home / "worker.log", environment(),
    )  # fmt: skip
    try:
        assert workers_joined(log, 2), log.read_text(errors="replace")[-2000:]
        yield address, log
    finally:
        stopped(worker)
        stopped(scheduler)


def test_a_sweep_on_a_separately_started_cluster_gives_the_serial_results(
    cluster: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address, log = cluster
    home = tmp_path / "research"
    strategy = home / "strategies" / "small.yaml"
    strategy.parent.mkdir(parents=True)
    strategy.write_bytes(STRATEGY.read_bytes())
    serial = tmp_path / "serial"
    assert main(["sweep", str(strategy), *GRIDS, "--out", str(serial)]) == 0
    capsys.readouterr()
    on_cluster = tmp_path / "cluster-sweep"
    done = forkserver.tradeloom(
        "sweep", "strategies/small.yaml", *GRIDS, "--out", on_cluster, "--scheduler", address,
        cwd=home, pythonpath=CHECKOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best 4 of 4" in done.stdout
    expected = pd.read_parquet(serial / "results.parquet")
    got = pd.read_parquet(on_cluster / "results.parquet")
    assert list(got.columns) == list(expected.columns)
    timings = ["seconds"]  # each row's share of its task's wall time
    pd.testing.assert_frame_equal(expected.drop(columns=timings), got.drop(columns=timings))
    for name in ("returns.npy", "overfitting.json"):
        assert (serial / name).read_bytes() == (on_cluster / name).read_bytes(), name
    # the variants ran in the worker processes: the scheduler handed them tasks
    assert "Receive client connection" in log.read_text(errors="replace")
    # the command cached the series the workers sent; the workers wrote none of it
    assert len(list((on_cluster / "cache" / "inputs").glob("*.npz"))) == 1
    assert not list((log.parent).rglob("*.npz"))
    # the worker processes run with the settings the guide gives (no profiler)
    with Client(address, set_as_default=False) as client:
        assert client.run(profiling) == dict.fromkeys(client.scheduler_info()["workers"], False)


def profiling(dask_worker: Any) -> bool:
    """Return whether a worker runs its statistical profiler (run on each worker)."""
    return "profile" in dask_worker.periodic_callbacks


def test_a_scheduler_with_no_worker_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "cluster"
    home.mkdir()
    port = str(free_port())
    scheduler = started(
        ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", port,
         "--dashboard-address", ":0"],
        home, home / "scheduler.log",
    )  # fmt: skip
    try:
        address = f"tcp://127.0.0.1:{port}"
        done = None
        for _ in range(60):  # the scheduler listens after its imports: a few seconds
            done = forkserver.tradeloom(
                "sweep", STRATEGY, *GRIDS, "--out", tmp_path / "s", "--scheduler", address,
                "--scheduler-timeout", "2", cwd=tmp_path,
            )  # fmt: skip
            if "has no worker" in done.stderr:
                break
            time.sleep(1)
        assert done is not None and done.returncode == 2
        assert done.stderr.splitlines() == [
            f"the Dask scheduler at {address} has no worker after 2 s"
            f" (start some with `dask worker {address}`)"
        ]
    finally:
        stopped(scheduler)
