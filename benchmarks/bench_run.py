"""A whole ``tradeloom run`` as a user waits for it, beside backtesting.py and vectorbt.

The market and strategy of benchmarks/bench_core.py: one-minute random-walk bars, the
SMA(10)/SMA(50) cross as precomputed probabilities (1.0 at an entry, 0.0 at an exit),
long-only, all-in, 0.1% fees, fills at the close. For each size (``--bars``):

  a. ``run_strategy`` in this process with the bars already in memory: features, the
     precomputed model, the core, the journal, the equity curve, the metrics, every
     run-folder file and the report (``outputs`` as the strategy file leaves them: all
     on; ``tables: auto``, so CSV tables up to 250k bars and Parquet above), with the
     time of each stage (`tradeloom.runtime.stage_times`) of the median run and the run
     folder's size;
  b. the same run reading its data from the Parquet file (the ``data`` stage is the read
     and validation);
  c. ``tradeloom run`` through the CLI on the CSV file and on the Parquet file: a cold
     process (imports, plugins, the strategy file, the data, every output), the kernel
     cache warm; its peak RSS and the run folder's size;
  d. backtesting.py's ``run()`` (stats, equity curve and trades) and vectorbt's
     ``Portfolio.from_signals`` followed by ``stats()`` on the same bars and signals.

Every engine (a., b., each c., each d.) runs once untimed, then ``--runs`` rounds of one
timed run of each, the order reversed every other round, so that a machine's slow minute
falls on every engine alike (the peers were once timed in a block after tradeloom).
Medians of ``--runs``, with min and max; ratios are against the references timed in
the same rounds; the load average is printed before and after. Every timed call in this
process starts with the garbage of the calls before it collected (`collected`):
vectorbt's 1M-bar ``stats()`` took 85-100 ms when its memory was recycled and 220-250 ms
when earlier calls' cycles still held theirs, so its median of 3 landed on either. The
1M-bar run's cost is compared with the 100k-bar run's (linear: 10x).

``--symbols 50,100,500`` runs a universe instead: ``--symbol-bars`` bars of each symbol
in one long Parquet file through the CLI (``--monitor``: with a rolling AUC monitor per
symbol, which runs in Python at each bar and which the report draws), each size's wall
time, peak RSS, run-folder size and exit code, and how each grows with the symbols.

    python benchmarks/bench_run.py [--bars 10000,100000,1000000] [--runs 3]
        [--skip-peers] [--skip-cli] [--cpu] [--smoke]
    python benchmarks/bench_run.py --symbols 50,100,500 [--symbol-bars 10000] [--runs 1]
        [--monitor]

Run by another checkout's interpreter from outside any checkout (``cd /tmp &&
OTHER/.venv/bin/python /path/to/benchmarks/bench_run.py``), it measures that checkout
(without the breakdown where it has no `tradeloom.runtime.stage_times`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import math
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
from smoke import VECTORBT_SKIPPED, add_smoke, parse_args

from tradeloom.backtest.run import run_strategy
from tradeloom.engine.logs import configure_logging
from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.schemas import load_strategy

try:
    from tradeloom.runtime.stage_times import recording
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

CLI_KINDS = ("csv", "parquet")
"""The data files ``tradeloom run`` reads through the command line (c.)."""

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


@dataclasses.dataclass
class Sample:
    """One timed run of an engine: its wall and CPU seconds and what else it reports."""

    seconds: float
    cpu: float = math.nan
    stages: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    size: int = 0
    code: int = 0
    rss: int = 0


def in_process(
    strategy: Path, scratch: Path, *, in_memory: bool, thread_cpu: bool = False
) -> Callable[[int], Sample]:
    """Return a timed ``run_strategy`` of ``strategy`` (run ``k`` writes ``run-k``): its
    wall and CPU seconds (this process's own work: what a shared machine's load does not
    add), its stages (``thread_cpu``: each stage's CPU time in its thread) and the run
    folder's bytes."""
    config, plugins = load_strategy(strategy, [])
    pipeline: Pipeline = build_pipeline(config)
    if in_memory:
        pipeline = dataclasses.replace(pipeline, data=LoadedData(pipeline.data))

    def run(k: int) -> Sample:
        out = scratch / f"run-{k}"
        collected()
        with recorded(thread_cpu) as times:
            start, start_cpu = time.perf_counter(), time.process_time()
            run_strategy(pipeline, plugins, out=out)
            elapsed, used = time.perf_counter() - start, time.process_time() - start_cpu
        size = folder_bytes(out)
        shutil.rmtree(out)
        return Sample(elapsed, used, list(times), size)

    return run


def cli(strategy: Path, scratch: Path) -> Callable[[int], Sample]:
    """Return a timed ``tradeloom run`` of ``strategy`` in a fresh process (run ``k``
    writes ``cli-k``): its seconds, exit code, peak RSS (KiB) and run folder's bytes."""

    def run(k: int) -> Sample:
        out = scratch / f"cli-{k}"
        command = [sys.executable, "-m", "tradeloom.cli", "run", str(strategy), "--out", str(out)]
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", RSS_OF_CHILD, *command, "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        code, rss = (int(x) for x in proc.stdout.split())
        size = folder_bytes(out) if out.exists() else 0
        shutil.rmtree(out, ignore_errors=True)
        if code != 0:
            print(f"    exit {code}: {proc.stderr.strip().splitlines()[-1:]}")
        return Sample(seconds, code=code, rss=rss, size=size)

    return run


def peers(
    frame: pd.DataFrame, entries: np.ndarray, exits: np.ndarray, *, vectorbt: bool = True
) -> dict[str, Callable[[int], Sample]]:
    """Return timed calls of backtesting.py's ``run()`` and (``vectorbt``) vectorbt's
    ``from_signals`` + ``stats()`` on the same bars and signals."""
    bt = backtesting_py(frame, entries, exits)
    engines: dict[str, Callable[[], object]] = {"backtesting.py run()": bt.run}
    if vectorbt:
        import vectorbt as vbt

        index = frame.index.tz_localize(None)  # see bench_core.throughput: pandas 3, vectorbt
        close = pd.Series(frame["close"].to_numpy(), index=index)
        entry_s, exit_s = pd.Series(entries, index=index), pd.Series(exits, index=index)

        def from_signals() -> object:
            portfolio = vbt.Portfolio.from_signals(
                close, entry_s, exit_s, size=np.inf, fees=FEE, init_cash=100_000.0, min_size=0.0
            )
            return portfolio.stats()

        engines["vectorbt from_signals + stats()"] = from_signals

    def timed(fn: Callable[[], object]) -> Callable[[int], Sample]:
        def run(k: int) -> Sample:
            collected()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                fn()
                return Sample(time.perf_counter() - start)

        return run

    return {name: timed(fn) for name, fn in engines.items()}


def alternated(
    engines: dict[str, Callable[[int], Sample]], runs: int, *, warm_up: bool = True
) -> dict[str, list[Sample]]:
    """Run each engine once untimed (``warm_up``), then ``runs`` rounds of one timed run of
    each, the order reversed every other round: every engine meets the machine as the
    others do."""
    for k, run in enumerate(engines.values() if warm_up else ()):
        run(-1 - k)  # warm-up: imports, kernels, the first run's pages
    samples: dict[str, list[Sample]] = {name: [] for name in engines}
    order = list(engines)
    for r in range(runs):
        for name in order if r % 2 == 0 else order[::-1]:
            samples[name].append(engines[name](r))
    return samples


def median_sample(samples: list[Sample]) -> Sample:
    """Return the sample of the median wall time (the lower middle of an even count)."""
    return sorted(samples, key=lambda x: x.seconds)[(len(samples) - 1) // 2]


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
            f"; every engine once, then {args.runs} rounds of each, the order alternating"
        )
        engines = {
            "a": in_process(folder / "parquet.yaml", scratch, in_memory=True, thread_cpu=args.cpu),
            "b": in_process(folder / "parquet.yaml", scratch, in_memory=False),
        }
        if not args.skip_cli:
            engines |= {f"c {kind}": cli(folder / f"{kind}.yaml", scratch) for kind in CLI_KINDS}
        if not args.skip_peers:
            if args.smoke:
                print(VECTORBT_SKIPPED)
            engines |= peers(frame, entries, exits, vectorbt=not args.smoke)
        samples = alternated(engines, args.runs, warm_up=not args.smoke)

        taken = samples.pop("a")
        seconds = [x.seconds for x in taken]
        med = statistics.median(seconds)
        medians[n] = med
        cpu = statistics.median(x.cpu for x in taken)
        print(
            f"  a. run_strategy, bars in memory   {summary(seconds)}  {n / med / 1e6:.3f} M bars/s"
            f"; CPU median {cpu:.3f} s; run folder {taken[-1].size / 1e6:.1f} MB"
        )
        print_stages(median_sample(taken).stages, cpu if args.cpu else med, cpu=args.cpu)
        taken = samples.pop("b")
        data = dict(median_sample(taken).stages).get("data", float("nan"))
        print(
            f"  b. run_strategy, Parquet read     {summary([x.seconds for x in taken])}  (data "
            f"stage {data:.3f} s); CPU median {statistics.median(x.cpu for x in taken):.3f} s"
        )
        for kind in CLI_KINDS if not args.skip_cli else ():
            taken = samples.pop(f"c {kind}")
            print(
                f"  c. tradeloom run ({kind:<7})       {summary([x.seconds for x in taken])}  "
                f"exit {taken[-1].code}, peak RSS {max(x.rss for x in taken) / 1024:.0f} MiB, "
                f"run folder {taken[-1].size / 1e6:.1f} MB"
            )
        for name, taken in samples.items():
            times = [x.seconds for x in taken]
            ratio = statistics.median(times) / med
            print(f"  d. {name:<31} {summary(times)}  = {ratio:.2f}x run_strategy's time")
        shutil.rmtree(folder)
    if 100_000 in medians and 1_000_000 in medians:
        ratio = medians[1_000_000] / medians[100_000]
        print(f"\n1M bars cost {ratio:.1f}x the 100k-bar run (linear: 10x)")


def universes(args: argparse.Namespace, scratch: Path) -> None:
    print(f"\nuniverses of {args.symbol_bars:,} bars per symbol through the CLI")
    first: tuple[int, float, int, int] | None = None
    for m in args.symbols:
        strategy = write_universe(scratch, m, args.symbol_bars, monitor=args.monitor)
        run = cli(strategy, scratch)
        done: list[Sample] = []
        for k in range(args.runs):
            done.append(run(k))
            if done[-1].code != 0:
                break
        taken = [x.seconds for x in done]
        code, rss, size = done[-1].code, max(x.rss for x in done), done[-1].size
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
    add_smoke(parser, bars="1000", runs=1)
    args = parse_args(parser)
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
