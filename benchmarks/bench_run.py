"""A whole ``tradeloom run`` as a user waits for it, beside backtesting.py and vectorbt.

The market and strategy of benchmarks/bench_core.py: one-minute random-walk bars, the
SMA(10)/SMA(50) cross as precomputed probabilities (1.0 at an entry, 0.0 at an exit),
long-only, all-in, 0.1% fees, fills at the close. For each size (``--bars``):

  a. ``run_strategy`` in this process with the bars already in memory: features, the
     precomputed model, the core, the journal, the equity curve, the metrics, every
     run-folder file and the report (``outputs`` as the strategy file leaves them: all
     on; ``tables: auto``, so CSV tables up to 250k bars and Parquet above), with the
     time of each stage (`tradeloom.stage_times`) of the median run and the run
     folder's size;
  b. the same run reading its data from the Parquet file (the ``data`` stage is the read
     and validation);
  c. ``tradeloom run`` through the CLI on the CSV file and on the Parquet file: a cold
     process (imports, plugins, the strategy file, the data, every output), the kernel
     cache warm; its peak RSS and the run folder's size;
  d. backtesting.py's ``run()`` (stats, equity curve and trades) and vectorbt's
     ``Portfolio.from_signals`` followed by ``stats()`` on the same bars and signals.

Medians of ``--runs``, with min and max; ratios are against the references timed in
the same run; the load average is printed before and after. Every timed call in this
process starts with the garbage of the calls before it collected (`collected`):
vectorbt's 1M-bar ``stats()`` took 85-100 ms when its memory was recycled and 220-250 ms
when earlier calls' cycles still held theirs, so its median of 3 landed on either. The
1M-bar run's cost is compared with the 100k-bar run's (linear: 10x).

``--symbols 50,100,500`` runs a universe instead: ``--symbol-bars`` bars of each symbol
in one long Parquet file through the CLI (``--monitor``: with a rolling AUC monitor per
symbol, which runs in Python at each bar and which the report draws), each size's wall
time, peak RSS, run-folder size and exit code, and how each grows with the symbols.

    python benchmarks/bench_run.py [--bars 10000,100000,1000000] [--runs 3]
        [--skip-peers] [--skip-cli] [--cpu]
    python benchmarks/bench_run.py --symbols 50,100,500 [--symbol-bars 10000] [--runs 1]
        [--monitor]

Run by another checkout's interpreter from outside any checkout (``cd /tmp &&
OTHER/.venv/bin/python /path/to/benchmarks/bench_run.py``), it measures that checkout
(without the breakdown where it has no `tradeloom.stage_times`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar

import numpy as np
import pandas as pd
from bench_core import FEE, backtesting_py, market, sma_cross
from machine import describe

from tradeloom.backtest.run import run_strategy
from tradeloom.engine.logs import configure_logging
from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.schemas import load_strategy

try:
    from tradeloom.stage_times import recording
except ImportError:  # a checkout from before stages were timed: the totals alone

    @contextlib.contextmanager
    def recording(
        clock: Callable[[], float] = time.perf_counter,
    ) -> Iterator[list[tuple[str, float]]]:
        yield []


def recorded(cpu: bool) -> contextlib.AbstractContextManager[list[tuple[str, float]]]:
    """Record the stages by the wall clock, or (``cpu``) by their thread's CPU time."""
    if not cpu:
        return recording()
    try:
        return recording(time.thread_time)
    except TypeError:  # a checkout whose stages are timed by the wall clock alone
        return contextlib.nullcontext([])


STRATEGY = """\
name: bench_run
data: {{kind: {kind}, path: {path}{more}}}
features: [{{kind: log_return, period: 1}}]
model: {{kind: precomputed, column: p_up}}
signal: {{kind: threshold, threshold: 1.0, min_interval: 1}}
risk: {{sizing: {{kind: fixed_fraction, fraction: {fraction}}}}}
execution: {{kind: simulated, initial_cash: 100000, fill: close, fee_bps: 10, allow_short: false,
  min_notional: 1.0e-12}}
"""

RSS_OF_CHILD = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
"""A parent that runs one command and prints its exit code and peak RSS (KiB)."""


# -- the data ------------------------------------------------------------------------------


def write_market(folder: Path, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Write ``n`` bars with their probabilities as CSV and Parquet, and a strategy file
    for each; return the bars, entries and exits."""
    frame = market(n)
    entries, exits = sma_cross(frame["close"].to_numpy())
    table = frame.assign(p_up=np.where(entries, 1.0, np.where(exits, 0.0, 0.5)))
    table.reset_index().to_csv(folder / "bars.csv", index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    table.reset_index().to_parquet(folder / "bars.parquet")
    for kind in ("csv", "parquet"):
        text = STRATEGY.format(kind=kind, path=f"bars.{kind}", more="", fraction=1.0)
        (folder / f"{kind}.yaml").write_text(text)
    return frame, entries, exits


def write_universe(folder: Path, symbols: int, n: int, *, monitor: bool) -> Path:
    """Write a universe of ``symbols`` markets of ``n`` bars in one long Parquet file and
    its strategy file (each symbol sized at a fraction of the equity; with ``monitor``, a
    rolling AUC per symbol, which the report draws); return the file."""
    parts = []
    names = [f"S{k:03d}/USDT" for k in range(symbols)]
    for k, name in enumerate(names):
        frame = market(n, seed=100 + k)
        entries, exits = sma_cross(frame["close"].to_numpy())
        parts.append(
            frame.assign(symbol=name, p_up=np.where(entries, 1.0, np.where(exits, 0.0, 0.5)))
        )
    pd.concat(parts).reset_index().to_parquet(folder / "universe.parquet")
    listed = ", ".join(f'"{s}"' for s in names)
    more = f", symbol_column: symbol, symbols: [{listed}]"
    text = STRATEGY.format(kind="parquet", path="universe.parquet", more=more, fraction=0.01)
    if monitor:
        text += "monitoring: [{kind: rolling_auc, window: 500, min_samples: 100}]\n"
    path = folder / f"universe-{symbols}.yaml"
    path.write_text(text)
    return path


# -- timing ---------------------------------------------------------------------------------


def collected() -> None:
    """Collect the garbage of the calls before (outside the timing), so that each timed
    call starts as the first would: the same for every engine."""
    gc.collect()


def summary(seconds: list[float]) -> str:
    med = statistics.median(seconds)
    return (
        f"median {med:8.3f} s  (min {min(seconds):.3f}, max {max(seconds):.3f}, n={len(seconds)})"
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class LoadedData:
    """A data source whose bars were read once: `run_strategy` with the bars in memory."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._universe = source.load_universe()

    def load(self) -> Any:
        return self._universe.bars[0]

    def load_universe(self) -> Any:
        return self._universe

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def in_process(
    strategy: Path, runs: int, scratch: Path, *, in_memory: bool, thread_cpu: bool = False
) -> tuple[list[float], list[float], list[tuple[str, float]], int]:
    """Time ``run_strategy`` ``runs`` times after a warm-up; return the wall seconds, the
    CPU seconds (this process's own work: what a shared machine's load does not add),
    the stages of the median run (``thread_cpu``: each stage's CPU time in its thread)
    and the run folder's bytes."""
    config, plugins = load_strategy(strategy, [])
    pipeline: Pipeline = build_pipeline(config)
    if in_memory:
        pipeline = dataclasses.replace(pipeline, data=LoadedData(pipeline.data))
    seconds, cpu, stages = [], [], []
    for k in range(runs + 1):
        out = scratch / f"run-{k}"
        collected()
        with recorded(thread_cpu) as times:
            start, start_cpu = time.perf_counter(), time.process_time()
            run_strategy(pipeline, plugins, out=out)
            elapsed, used = time.perf_counter() - start, time.process_time() - start_cpu
        size = folder_bytes(out)
        shutil.rmtree(out)
        if k:  # the first is the warm-up
            seconds.append(elapsed)
            cpu.append(used)
            stages.append(times)
    median = sorted(range(runs), key=seconds.__getitem__)[runs // 2]
    return seconds, cpu, stages[median], size


def cli(strategy: Path, runs: int, scratch: Path) -> tuple[list[float], int, int, int]:
    """Time ``tradeloom run`` in a fresh process ``runs`` times; return the seconds, the
    last exit code, the peak RSS (KiB) and the run folder's bytes."""
    seconds: list[float] = []
    code = rss = size = 0
    for k in range(runs):
        out = scratch / f"cli-{k}"
        command = [sys.executable, "-m", "tradeloom.cli", "run", str(strategy), "--out", str(out)]
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", RSS_OF_CHILD, *command, "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds.append(time.perf_counter() - start)
        code, rss = (int(x) for x in proc.stdout.split())
        size = folder_bytes(out) if out.exists() else 0
        shutil.rmtree(out, ignore_errors=True)
        if code != 0:
            print(f"    exit {code}: {proc.stderr.strip().splitlines()[-1:]}")
            break
    return seconds, code, rss, size


def peers(
    frame: pd.DataFrame, entries: np.ndarray, exits: np.ndarray, runs: int
) -> dict[str, list[float]]:
    """Time backtesting.py's ``run()`` and vectorbt's ``from_signals`` + ``stats()``."""
    import vectorbt as vbt

    index = frame.index.tz_localize(None)  # see bench_core.throughput: pandas 3 and vectorbt
    close = pd.Series(frame["close"].to_numpy(), index=index)
    entry_s, exit_s = pd.Series(entries, index=index), pd.Series(exits, index=index)

    def vectorbt() -> object:
        portfolio = vbt.Portfolio.from_signals(
            close, entry_s, exit_s, size=np.inf, fees=FEE, init_cash=100_000.0, min_size=0.0
        )
        return portfolio.stats()

    bt = backtesting_py(frame, entries, exits)
    engines: dict[str, Callable[[], object]] = {
        "backtesting.py run()": bt.run,
        "vectorbt from_signals + stats()": vectorbt,
    }
    times: dict[str, list[float]] = {name: [] for name in engines}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in engines.items():
            fn()  # warm-up
            for _ in range(runs):
                collected()
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def print_stages(stages: list[tuple[str, float]], total: float, *, cpu: bool = False) -> None:
    if not stages:
        return
    clock = "CPU time of its thread" if cpu else "wall time"
    print(f"    where the time goes (the median run, each stage's {clock}):")
    for name, seconds in stages:
        print(f"      {name:<22} {seconds * 1e3:10.1f} ms  {seconds / total:6.1%}")
    # a worker's stages ran beside the others (``worker: ``): their time is not added
    mine = [s for n, s in stages if n != "journal closed" and not n.startswith("worker: ")]
    if cpu:  # the two threads' shares: the wall time is at least the larger
        worker = sum(s for n, s in stages if n.startswith("worker: "))
        print(
            f"      {'(run thread, worker)':<22} {sum(mine) * 1e3:7.0f} ms, {worker * 1e3:.0f} ms"
        )
    else:
        print(f"      {'(outside these)':<22} {(total - sum(mine)) * 1e3:10.1f} ms")


# -- the sections ---------------------------------------------------------------------------


def sizes(args: argparse.Namespace, scratch: Path) -> None:
    medians: dict[int, float] = {}
    for n in args.bars:
        folder = scratch / f"bars-{n}"
        folder.mkdir()
        frame, entries, exits = write_market(folder, n)
        print(
            f"\n{n:,} one-minute bars, {int(entries.sum()):,} entries, {int(exits.sum()):,} exits"
        )
        seconds, cpu, stages, size = in_process(
            folder / "parquet.yaml", args.runs, scratch, in_memory=True, thread_cpu=args.cpu
        )
        med = statistics.median(seconds)
        medians[n] = med
        print(
            f"  a. run_strategy, bars in memory   {summary(seconds)}  {n / med / 1e6:.3f} M bars/s"
            f"; CPU median {statistics.median(cpu):.3f} s; run folder {size / 1e6:.1f} MB"
        )
        print_stages(stages, statistics.median(cpu) if args.cpu else med, cpu=args.cpu)
        seconds, cpu, stages, _ = in_process(
            folder / "parquet.yaml", args.runs, scratch, in_memory=False
        )
        data = dict(stages).get("data", float("nan"))
        print(
            f"  b. run_strategy, Parquet read     {summary(seconds)}  (data stage {data:.3f} s)"
            f"; CPU median {statistics.median(cpu):.3f} s"
        )
        if not args.skip_cli:
            for kind in ("csv", "parquet"):
                taken, code, rss, size = cli(folder / f"{kind}.yaml", args.runs, scratch)
                print(
                    f"  c. tradeloom run ({kind:<7})       {summary(taken)}  exit {code}, "
                    f"peak RSS {rss / 1024:.0f} MiB, run folder {size / 1e6:.1f} MB"
                )
        if not args.skip_peers:
            for name, taken in peers(frame, entries, exits, args.runs).items():
                ratio = statistics.median(taken) / med
                print(f"  d. {name:<31} {summary(taken)}  = {ratio:.2f}x run_strategy's time")
        shutil.rmtree(folder)
    if 100_000 in medians and 1_000_000 in medians:
        ratio = medians[1_000_000] / medians[100_000]
        print(f"\n1M bars cost {ratio:.1f}x the 100k-bar run (linear: 10x)")


def universes(args: argparse.Namespace, scratch: Path) -> None:
    print(f"\nuniverses of {args.symbol_bars:,} bars per symbol through the CLI")
    first: tuple[int, float, int, int] | None = None
    for m in args.symbols:
        strategy = write_universe(scratch, m, args.symbol_bars, monitor=args.monitor)
        taken, code, rss, size = cli(strategy, args.runs, scratch)
        med = statistics.median(taken)
        line = (
            f"  {m:4d} symbols: {summary(taken)}  exit {code}, peak RSS {rss / 1024:.0f} MiB, "
            f"run folder {size / 1e6:.1f} MB"
        )
        if first is None:
            first = (m, med, rss, size)
        else:
            k = m / first[0]
            line += (
                f"  | x{k:g} symbols: time x{med / first[1]:.2f}, RSS x{rss / first[2]:.2f}, "
                f"folder x{size / max(first[3], 1):.2f}"
            )
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--symbols", default="", help="universe sizes, e.g. 50,100,500")
    parser.add_argument("--symbol-bars", type=int, default=10_000)
    parser.add_argument(
        "--monitor", action="store_true", help="universes: a rolling AUC monitor per symbol"
    )
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="the breakdown in each stage's CPU time in its thread (a shared machine)",
    )
    args = parser.parse_args()
    args.bars = [int(x) for x in args.bars.split(",") if x]
    args.symbols = [int(x) for x in args.symbols.split(",") if x]
    configure_logging("warning")
    print(describe("numpy", "pandas", "pyarrow", "numba", "backtesting", "vectorbt"))
    print(load())
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.symbols:
            universes(args, scratch)
        else:
            sizes(args, scratch)
    print(load())


if __name__ == "__main__":
    main()
