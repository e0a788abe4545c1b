"""What ``tradeloom parity RUN_DIR`` and a live parity check cost as a run grows.

For each ``--bars N``, a strategy on the synthetic market (2N one-hour bars, a logistic
regression trained once on the history, a threshold signal that trades often) is run on
paper on the simulated clock (``--mode paper --clock simulated --speed max``, in this
process): it starts with the first N bars as its history and plays the other N. Then,
each as a command in a process of its own (what a user runs, its imports included):

- ``tradeloom run FILE``: the plain backtest of the same 2N bars, the reference;
- ``tradeloom parity RUN_DIR`` on that paper run (no difference: the replay and the
  comparison of every bar);
- ``tradeloom parity RUN_DIR`` on a paper run whose venue charged twice the file's fee
  from its first bar, unjournaled (the engine reconfigured with ``fee_bps`` doubled
  right after the start, as tests/live/test_parity_monitor.py changes a run's sizing):
  every fill's fee differs with nothing to explain it, its sizes and orders follow, so
  the differences number in thousands; the quadratic term of a knock-on rule that scans
  every earlier difference shows here. That rule (the scan it replaced) and the running
  state (`tradeloom.diagnostics.parity_knock_on`) are also timed on that run's
  differences, in this process;
- a check of the live monitor (``live.parity``) at the paper run's last bar, its window
  fixed (``--window`` bars): `tradeloom.diagnostics.live_parity.check_apart`, the process
  the monitor starts. A check replays the run from its first live bar, so its cost
  grows with the run, not with its window.

Each figure is the median of ``--runs``, wall time and the command's CPU time (its
process's, steadier than the wall on a shared machine), each with its ratio to the
backtest's.

The run folders are written under /dev/shm where it exists (a paper run commits, with
fsync, at every bar: a shared disk would time the disk).

    python benchmarks/bench_parity.py [--bars 2000 10000] [--runs 3] [--window 500]
                                      [--keep DIR] [--smoke]

``--keep DIR`` makes the paper runs in DIR once (a later call reuses them): the
commands timed again without the minutes the runs take, or by hand under another
checkout (``PYTHONPATH=OTHER python -m tradeloom.cli parity DIR/10000/fee``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.cli.main import main
from tradeloom.diagnostics.live_parity import check_apart
from tradeloom.diagnostics.parity_knock_on import ExplainedSoFar
from tradeloom.engine.wiring import build_pipeline
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.schemas import load_strategy

STRATEGY = """\
name: bench_parity
seed: 3
data: {{kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: {bars}, start: "2024-01-01"}}
features:
  - {{kind: log_return, period: 1}}
  - {{kind: rsi, window: 14}}
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  params: {{max_iter: 200}}
  label: {{horizon: 3}}
  walk_forward: {{train_window: 300, retrain_every: 1000000}}
signal: {{kind: threshold, threshold: 0.01, min_interval: 1}}
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.5}}
execution: {{kind: simulated, fee_bps: {fee}, initial_cash: 50000}}
"""
FEE_BPS = 10


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def unjournaled_fee(file: Path) -> Iterator[None]:
    """Make every paper run started inside trade ``file``'s settings from its first bar,
    without journaling them (its journal keeps the file it started with)."""
    config, _ = load_strategy(file, ())
    start = LiveRunner.start

    def started(runner: LiveRunner) -> None:
        start(runner)
        runner.session_or_fail.engine.reconfigure(build_pipeline(config))

    LiveRunner.start = started  # type: ignore[method-assign]
    try:
        yield
    finally:
        LiveRunner.start = start  # type: ignore[method-assign]


def paper_run(file: Path, out: Path) -> None:
    words = ["--log-level", "error", "-q", "run", str(file), "--mode", "paper"]
    words += ["--clock", "simulated", "--speed", "max", "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):
        if main(words) != 0:
            raise SystemExit(f"the paper run of {file} failed")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_child(fn: Callable[[], Any]) -> tuple[float, float]:
    """Call ``fn`` (that waits for a process of its own); return its wall time and the
    CPU time of that process (on a shared machine, the steadier of the two)."""
    cpu = children_cpu()
    wall = timed(fn)[0]
    return wall, children_cpu() - cpu


def command(words: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``tradeloom WORDS`` in a process of its own; return its wall and CPU time."""
    return in_child(lambda: tradeloom(words, cwd))


def tradeloom(words: list[str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tradeloom.cli", "--log-level", "error", "-q", *words],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):  # parity exits 1 on unexplained differences
        raise SystemExit(f"tradeloom {' '.join(words)} failed:\n{done.stderr[-2000:]}")


def median(fn: Callable[[int], tuple[float, float]], runs: int) -> tuple[float, float]:
    """The median wall time and the median CPU time of ``runs`` calls."""
    times = [fn(i) for i in range(runs)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def scanned(differences: list[tuple[int, str, str]]) -> int:
    """The knock-on rule as parity had it: each difference scans every earlier one."""
    seen: list[tuple[int, str, str]] = []
    found = 0
    for bar, field, cause in differences:
        found += any(c != "unexplained" and b < bar for b, _, c in seen)
        seen.append((bar, field, cause))
    return found


def running(differences: list[tuple[int, str, str]]) -> int:
    """The same answers from the running state (`ExplainedSoFar`)."""
    state = ExplainedSoFar()
    found = 0
    for bar, field, cause in differences:
        found += state.before(bar)
        state.add(bar, field, cause)
    return found


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def size(bars: int, runs: int, window: int, runs_root: Path, scratch: Path) -> None:
    folder, out = runs_root / str(bars), scratch / str(bars)
    out.mkdir()
    file, fee_file = folder / "strategy.yaml", folder / "fee.yaml"
    start = time.perf_counter()
    if not (folder / "fee" / "equity.csv").is_file():  # --keep: made by an earlier call
        folder.mkdir(exist_ok=True)
        file.write_text(STRATEGY.format(bars=2 * bars, fee=FEE_BPS))
        fee_file.write_text(STRATEGY.format(bars=2 * bars, fee=2 * FEE_BPS))
        paper_run(file, folder / "paper")
        with unjournaled_fee(fee_file):
            paper_run(file, folder / "fee")
    made = time.perf_counter() - start

    backtest = median(
        lambda i: command(["run", str(file), "--out", str(out / f"bt{i}")], out), runs
    )
    plain = median(
        lambda i: command(["parity", str(folder / "paper"), "--out", str(out / f"p{i}")], out),
        runs,
    )
    fee = median(
        lambda i: command(["parity", str(folder / "fee"), "--out", str(out / f"f{i}")], out),
        runs,
    )
    summary = json.loads((out / "f0" / "parity.json").read_text())
    differences = [
        (int(d["bar"]), str(d["field"]), str(d["cause"])) for d in summary["differences_by_bar"]
    ]
    clean = json.loads((out / "p0" / "parity.json").read_text())["differences"]
    rows = [
        (f"tradeloom run (the backtest of {2 * bars:,} bars)", backtest),
        (f"tradeloom parity ({clean:,} differences)", plain),
        (f"tradeloom parity ({len(differences):,} differences)", fee),
    ]
    how = f"made in {made:.1f} s" if made > 1.0 else "kept from an earlier call"
    print(f"{bars:>7,} bars played (paper runs {how}); {load()}")
    for label, seconds in rows:
        line(label, seconds, backtest)
    scan_s, by_scan = timed(lambda: scanned(differences))
    state_s, by_state = timed(lambda: running(differences))
    assert by_scan == by_state, (by_scan, by_state)
    print(
        f"  knock-on rule over those {len(differences):,} differences: scan {scan_s * 1e3:9.2f} ms,"
        f" running state {state_s * 1e3:7.3f} ms ({scan_s / max(state_s, 1e-9):,.0f}x)",
        flush=True,
    )
    last = 2 * bars - 1  # the paper run's last bar: the first N bars are its history
    check = median(
        lambda _: in_child(lambda: check_apart(folder / "paper", last, window, 0.0)), runs
    )
    line(f"a live check at its last bar (window {window} bars)", check, backtest)


def line(label: str, seconds: tuple[float, float], reference: tuple[float, float]) -> None:
    wall, cpu = seconds
    print(
        f"  {label:<50}{wall:7.2f} s wall {wall / reference[0]:5.2f}x  "
        f"{cpu:7.2f} s CPU {cpu / reference[1]:5.2f}x",
        flush=True,
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="make the paper runs here once and reuse them")
    add_smoke(parser, bars=[160], runs=1, window=50)
    args = parse_args(parser)
    print(describe("numpy", "pandas", "scikit-learn"))
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-parity-", dir=base) as scratch:
        runs_root = Path(scratch) / "runs" if args.keep is None else args.keep
        runs_root.mkdir(parents=True, exist_ok=True)
        for bars in args.bars:
            size(bars, args.runs, args.window, runs_root, Path(scratch))


if __name__ == "__main__":
    run()
