"""Peak memory of a whole ``tradeloom sweep``, its worker processes counted, by stage.

Runs the real command in a subprocess over a sweep of ``--variants`` (1,000 = 10
thresholds x 10 Kelly fractions x 10 position caps) of a one-symbol strategy of
``--bars`` synthetic hourly bars (100,000; a logistic regression trained on 5 folds),
and samples the resident memory of the command and of every process it started every
50 ms (psutil). A first run fills the stage cache (``--cache-dir``, kept between runs),
so the figures after it are the variants' and the results', not the model's training.

Prints, per ``--workers`` value, the peak of the sum of the process tree's RSS, the peak
of the command's own process, and the wall time; with ``--trace``, the command instead
runs in this process under tracemalloc and the largest allocation sites at the peak are
listed (what the sweep holds per variant).

    python scripts/sweep_memory.py [--bars 100000] [--variants 1000] [--workers 1 2]
        [--keep DIR] [--trace]

Measured for issue 67 (the grid's results held in the parent; see the issue's note).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", type=Path, help="a folder to keep the sweeps in")
    parser.add_argument("--trace", action="store_true", help="tracemalloc, in this process")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; cpus {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sweep_file = write_sweep(folder, args.bars, args.variants)
        cache = folder / "cache"
        base = [sys.executable, "-m", "tradeloom.cli.main", "sweep", str(sweep_file)]
        if args.trace:
            trace(base[4:], folder, cache)
            return
        own, total, seconds, code = measured([*base, "--out", str(folder / "warm"),
                                              "--cache-dir", str(cache)])  # fmt: skip
        print(f"first run (stages computed): peak tree {total / 2**30:.2f} GiB, "
              f"own {own / 2**30:.2f} GiB, {seconds:.1f} s, exit {code}")  # fmt: skip
        for workers in args.workers:
            out = folder / f"workers-{workers}"
            own, total, seconds, code = measured(
                [*base, "--out", str(out), "--cache-dir", str(cache), "--workers", str(workers)]
            )
            print(f"{args.variants} variants x {args.bars:,} bars, --workers {workers}: "
                  f"peak tree {total / 2**30:.2f} GiB, own {own / 2**30:.2f} GiB, "
                  f"{seconds:.1f} s, exit {code}")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


def trace(argv: list[str], folder: Path, cache: Path) -> None:
    """Run the sweep here under tracemalloc; print the largest sites at its peak."""
    import tracemalloc

    from tradeloom.cli.main import main as cli

    cli([*argv, "--out", str(folder / "warm"), "--cache-dir", str(cache)])  # stages cached
    tracemalloc.start(8)
    code = cli([*argv, "--out", str(folder / "traced"), "--cache-dir", str(cache)])
    current, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    print(f"exit {code}; traced peak {peak / 2**20:.0f} MiB, at the end {current / 2**20:.0f} MiB")
    for stat in snapshot.statistics("traceback")[:8]:
        print(f"{stat.size / 2**20:8.1f} MiB held at the end")
        for line in stat.traceback.format()[-6:]:
            print("   ", line)


if __name__ == "__main__":
    main()
