"""The notebook pattern against vectorbt, in memory against in memory.

What a notebook user waits for: ``tradeloom.load(FILE).with_data(frame).backtest()``
and the run's ``stats``, the run held in memory (no file written: no journal, no
table, no report), against vectorbt's ``Portfolio.from_signals(...)`` followed by
``stats()``, on the same bars and the same signals. The market and the strategy are
benchmarks/bench_core.py's: one-minute random-walk bars, the SMA(10)/SMA(50) cross
computed once, long-only, all-in, 0.1% fees, fills at the close, 100,000 cash;
tradeloom reads the cross from the frame as precomputed probabilities (a ``p_up``
column, 1.0 at an entry, 0.0 at an exit, 0.5 elsewhere), vectorbt as its entry and
exit Series. The strategy file names a synthetic market: the frame replaces it.

Both engines run once in this process first (vectorbt's numba functions compiled,
tradeloom's kernels loaded), then alternate round by round, ``--runs`` rounds, each
call timed after the garbage of the calls before it was collected (outside the timing,
as bench_run.py does). Printed: the machine, the load average before and after, each
engine's median with min and max, the ratio (vectorbt's median over tradeloom's: 1.0
or more means tradeloom is at least as fast), each one's CPU time (every thread's: what
a busy machine's load does not add), the median of tradeloom's parts (load, with_data,
backtest, stats), and how far apart the engines' equity curves (bar by bar) and trades
are: they must agree. Last, ``Run.save`` of a held run into a new folder: what the folder
``tradeloom run`` writes costs when a user asks for it (files against files is
bench_run.py's comparison).

    python benchmarks/bench_notebook.py [--bars 1000000] [--runs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_core import FEE, market, sma_cross
from machine import describe
from smoke import VECTORBT_SKIPPED, add_smoke, parse_args

import tradeloom
from tradeloom.engine.logs import configure_logging

STRATEGY = """\
name: bench_notebook
data: {kind: synthetic, bars: 1000}
features: [{kind: log_return, period: 1}]
model: {kind: precomputed, column: p_up}
signal: {kind: threshold, threshold: 1.0, min_interval: 1}
risk: {sizing: {kind: fixed_fraction, fraction: 1.0}}
execution: {kind: simulated, initial_cash: 100000, fill: close, fee_bps: 10, allow_short: false,
  min_notional: 1.0e-12}
"""
"""bench_core's strategy; its data section is replaced by the frame (``with_data``)."""

CASH = 100_000.0


def collected() -> None:
    """Collect the garbage of the calls before, outside the timing (as bench_run.py)."""
    gc.collect()


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def summary(seconds: list[float]) -> str:
    med = statistics.median(seconds)
    return (
        f"median {med:8.3f} s  (min {min(seconds):.3f}, max {max(seconds):.3f}, n={len(seconds)})"
    )


class Notebook:
    """tradeloom's notebook pattern over ``bars``, each part of the last call timed."""

    def __init__(self, file: Path, bars: pd.DataFrame) -> None:
        self.file = file
        self.bars = bars
        self.parts: dict[str, list[float]] = {}

    def __call__(self) -> pd.Series:
        start = time.perf_counter()
        strategy = tradeloom.load(self.file)
        loaded = time.perf_counter()
        framed = strategy.with_data(self.bars)
        given = time.perf_counter()
        run = framed.backtest(quiet=True)
        ran = time.perf_counter()
        stats = run.stats
        end = time.perf_counter()
        for name, seconds in (
            ("load", loaded - start),
            ("with_data", given - loaded),
            ("backtest", ran - given),
            ("stats", end - ran),
        ):
            self.parts.setdefault(name, []).append(seconds)
        return stats


def vectorbt_of(
    frame: pd.DataFrame, entries: np.ndarray, exits: np.ndarray
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Return vectorbt's ``from_signals`` + ``stats()`` of the same signals (bench_run.py's),
    and a function that returns its portfolio (for the agreement check)."""
    import vectorbt as vbt

    index = frame.index.tz_localize(None)  # see bench_core.throughput: pandas 3 and vectorbt
    close = pd.Series(frame["close"].to_numpy(), index=index)
    entry_s, exit_s = pd.Series(entries, index=index), pd.Series(exits, index=index)

    def portfolio() -> Any:
        return vbt.Portfolio.from_signals(
            close, entry_s, exit_s, size=np.inf, fees=FEE, init_cash=CASH, min_size=0.0
        )

    def vectorbt() -> Any:
        return portfolio().stats()

    return vectorbt, portfolio


def agreement(run: Any, portfolio: Any) -> str:
    """Return how far tradeloom's equity curve and trades are from vectorbt's."""
    ours = run.equity["equity"].to_numpy()
    theirs = portfolio.value().to_numpy()
    worst = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    trades = portfolio.trades.records_readable
    return (
        f"equity curves within {worst:.1e} relative, bar by bar; trades: tradeloom "
        f"{len(run.trades):,}, vectorbt {len(trades):,} (its open one included)"
    )


def alternated(
    engines: dict[str, Callable[[], Any]], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time each engine once per round, ``runs`` rounds, after one call of each; return
    each one's wall seconds and CPU seconds (this process's, every thread's)."""
    for fn in engines.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in engines}
    cpu: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):
        for name, fn in engines.items():
            collected()
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return times, cpu


def saves(notebook: Notebook, runs: int, scratch: Path) -> list[float]:
    """Time ``Run.save`` of a held run into a new folder, ``runs`` times."""
    run = tradeloom.load(notebook.file).with_data(notebook.bars).backtest(quiet=True)
    seconds = []
    for k in range(runs):
        out = scratch / f"saved-{k}"
        collected()
        start = time.perf_counter()
        run.save(out)
        seconds.append(time.perf_counter() - start)
        shutil.rmtree(out)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    add_smoke(parser, bars=2_000, runs=1)
    args = parse_args(parser)
    configure_logging("warning")
    print(describe("numpy", "pandas", "pyarrow", "numba", "vectorbt"))
    print(load())
    frame = market(args.bars)
    entries, exits = sma_cross(frame["close"].to_numpy())
    bars = frame.assign(p_up=np.where(entries, 1.0, np.where(exits, 0.0, 0.5)))
    print(
        f"\n{args.bars:,} one-minute bars, {int(entries.sum()):,} entries, "
        f"{int(exits.sum()):,} exits; {args.runs} alternated rounds"
    )
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "strategy.yaml").write_text(STRATEGY)
        notebook = Notebook(scratch / "strategy.yaml", bars)
        engines: dict[str, Callable[[], Any]] = {"tradeloom in memory": notebook}
        if not args.smoke:
            vectorbt, portfolio = vectorbt_of(frame, entries, exits)
            engines["vectorbt from_signals + stats()"] = vectorbt
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times, cpu = alternated(engines, args.runs)
        parts = ", ".join(  # the timed calls' (the first was the warm-up)
            f"{name} {statistics.median(s[1 : args.runs + 1]):.3f} s"
            for name, s in notebook.parts.items()
        )
        for name, seconds in times.items():
            print(
                f"  {name:<33} {summary(seconds)}; CPU median {statistics.median(cpu[name]):.3f} s"
            )
        print(f"  tradeloom's parts (medians): {parts}")
        if args.smoke:
            print(VECTORBT_SKIPPED)
        else:
            mine, other = (statistics.median(t) for t in times.values())
            print(f"  ratio (vectorbt / tradeloom)      {other / mine:.2f}x")
            run = tradeloom.load(notebook.file).with_data(bars).backtest(quiet=True)
            print(f"  the same run: {agreement(run, portfolio())}")
        saved = saves(notebook, args.runs, scratch)
        print(f"  Run.save of a held run            {summary(saved)}")
    print(load())


if __name__ == "__main__":
    main()
