"""Peak memory of a whole ``tradeloom sweep``, its worker processes counted.

`write_sweep` writes a sweep of ``variants`` (1,000 = 10 thresholds x 10 Kelly
fractions x 10 position caps) of a one-symbol strategy of ``bars`` synthetic hourly
bars (a logistic regression trained on 5 folds); `measured` runs a command in a
subprocess and samples the resident memory of it and of every process it started every
50 ms (psutil): the peak of their sum is what the machine had to hold.

Benchmarks are run as scripts (``python benchmarks/bench_sweep.py``), so this module is
imported by name from the benchmarks folder.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["Cpu", "CpuCount", "PeakTree", "measured", "write_sweep"]

ROOT = Path(__file__).resolve().parents[1]

STRATEGY = """\
name: memory
seed: 7
data:
  kind: synthetic
  symbol: BTC/USDT
  timeframe: 1h
  bars: {bars}
  start: "2000-01-01T00:00:00Z"
features:
  - kind: log_return
    period: 1
  - kind: rsi
    window: 14
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label:
    horizon: 4
  walk_forward:
    train_window: {train}
    retrain_every: {every}
signal:
  kind: threshold
  threshold: 0.05
  min_interval: 2
risk:
  sizing:
    kind: kelly
    fraction: 0.25
    avg_win: 0.02
    avg_loss: 0.02
    max_position: 0.10
execution:
  kind: simulated
  initial_cash: 100000
  fill: next_open
  slippage_bps: 5
  fee_bps: 10
"""


def write_sweep(folder: Path, bars: int, variants: int) -> Path:
    """Write the strategy and its sweep file (the grid's first ``variants``) into ``folder``."""
    train = max(200, bars // 50)
    every = max(100, (bars - train) // 5)
    (folder / "memory.yaml").write_text(STRATEGY.format(bars=bars, train=train, every=every))
    side = 10
    while side**3 < variants:
        side += 1
    thresholds = [round(0.02 + 0.02 * k, 6) for k in range(side)]
    fractions = [round(0.1 * (k + 1), 6) for k in range(side)]
    caps = [round(0.05 + 0.05 * k, 6) for k in range(side)]
    count = side**3
    text = (
        "strategy: memory.yaml\n"
        "grid:\n"
        f"  signal.threshold: {thresholds}\n"
        f"  risk.sizing.fraction: {fractions}\n"
        f"  risk.sizing.max_position: {caps}\n"
    )
    if count != variants:
        text += f"random: {variants}\n"
    path = folder / "memory.sweep.yaml"
    path.write_text(text)
    return path


def tree_rss(process: psutil.Process) -> tuple[int, int]:
    """Return the RSS of ``process`` and of it with every descendant."""
    try:
        own = process.memory_info().rss
    except psutil.Error:
        return 0, 0
    total = own
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        children = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return own, total


def measured(command: list[str]) -> tuple[int, int, float, int]:
    """Run ``command``; return its peak own RSS, peak tree RSS, wall seconds, exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    handle = psutil.Process(proc.pid)
    peaks = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            own, total = tree_rss(handle)
            peaks[0], peaks[1] = max(peaks[0], own), max(peaks[1], total)
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.stderr.write(err.decode()[-3000:])
    return peaks[0], peaks[1], seconds, proc.returncode


class PeakTree:
    """Sample this process's tree RSS (itself and every child: the pool's or the
    cluster's workers) every 50 ms while the block runs; ``peak`` is the largest sum."""

    def __init__(self) -> None:
        self.peak = 0
        self.cpu = 0.0
        """CPU seconds the sampling took (this process's, not the block's)."""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss(me)[1])
            self._done.wait(0.05)
        self.cpu = time.thread_time()

    def __enter__(self) -> PeakTree:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


@dataclass(frozen=True)
class Cpu:
    """CPU seconds (user and system) a process tree spent over a stretch of time.

    Attributes:
        parent: This process's (the command's: it submits the tasks, takes their results
            and, on a LocalCluster, runs the scheduler and the nannies).
        workers: Each worker process's, the busiest first.
        other: The rest's (the pool's forkserver, resource trackers).
    """

    parent: float
    workers: tuple[float, ...]
    other: float
    wall: float = 0.0
    """The wall seconds the figures span."""

    @property
    def total(self) -> float:
        """The whole tree's CPU seconds."""
        return self.parent + sum(self.workers) + self.other

    def per_run(self, runs: float) -> Cpu:
        """Return the figures over ``runs`` runs (or seconds: a rate)."""
        workers = tuple(w / runs for w in self.workers)
        return Cpu(self.parent / runs, workers, self.other / runs, self.wall / runs)

    def bound(self, serial: float, upkeep: Cpu | None = None, cores: int = 2) -> float:
        """Return the most this tree's CPU allows over ``serial`` CPU seconds on ``cores``
        idle cores: its work spread over them, and no faster than its busiest process.

        ``upkeep``: what the tree spends idle, per second of wall time (timers,
        heartbeats), counted in this CPU at the wall time it ran: the shorter wall time
        of idle cores costs less of it.
        """
        if upkeep is None:
            return serial / max(self.total / cores, self.parent, *self.workers)
        rate = upkeep.total
        if rate >= cores:
            return 0.0
        # the wall W of idle cores: W = (work + rate * W) / cores, and at least each
        # process's own work and upkeep
        walls = [(self.total - rate * self.wall) / (cores - rate)]
        walls.append((self.parent - upkeep.parent * self.wall) / max(1e-9, 1 - upkeep.parent))
        busiest = max(upkeep.workers, default=0.0)
        walls += [(w - busiest * self.wall) / max(1e-9, 1 - busiest) for w in self.workers]
        return serial / max(walls)

    def line(self) -> str:
        """Return the figures in words (seconds, the parent's share of the tree's)."""
        workers = " + ".join(f"{w:.2f}" for w in self.workers) or "none"
        share = self.parent / self.total if self.total > 0 else 0.0
        return (
            f"parent {self.parent:.2f} s ({share:.1%} of the tree's: the serial fraction), "
            f"workers {workers} s, others {self.other:.2f} s; tree {self.total:.2f} s"
        )


class CpuCount:
    """Count the CPU time of this process and each descendant from now to `stop`.

    A worker is a descendant that is not a process's launcher: not the forkserver (a
    child of this process whose command line names it) nor a resource tracker.
    """

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._start = self._snapshot()
        self._started = time.perf_counter()

    def _snapshot(self) -> dict[int, tuple[psutil.Process, float]]:
        found = {}
        for process in [self._me, *self._me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # one that ended since it was listed
                times = process.cpu_times()
                found[process.pid] = (process, times.user + times.system)
        return found

    def _is_worker(self, process: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.cmdline())
            launcher = process.ppid() == self._me.pid and "forkserver" in command
            return not launcher and "resource_tracker" not in command
        return False

    def stop(self, sampler: PeakTree | None = None, less: float = 0.0) -> Cpu:
        """Return the CPU seconds since the count started (less ``sampler``'s thread's,
        which ran in this process to sample its memory, and ``less`` seconds more of
        this process's, spent on something else)."""
        end = self._snapshot()
        parent = 0.0
        workers = []
        other = 0.0
        for pid, (process, seconds) in end.items():
            spent = seconds - self._start.get(pid, (process, 0.0))[1]
            if pid == self._me.pid:
                parent = spent - (sampler.cpu if sampler is not None else 0.0) - less
            elif spent > 0.001 and self._is_worker(process):
                workers.append(spent)
            else:
                other += spent
        wall = time.perf_counter() - self._started
        return Cpu(parent, tuple(sorted(workers, reverse=True)), other, wall)
