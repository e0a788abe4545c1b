"""The one-symbol per-bar driver against other checkouts of tradeloom, in the same run.

Times, on strategies/btc_rf.yaml (the model's output replaced by seeded uniform
probabilities, the monitors left out, so the driver alone is timed):

- ``run_backtest(..., driver="per_bar")``: the whole backtest one bar per call of the
  compiled step (data, features, the features stepped and checked bar by bar, the
  engine journaling each event as it comes, the equity), in microseconds per bar;
- the engine's call for one bar (`Engine.run`, what a paper or live tick calls), and
  that call with the stepped features before it, p50 over the bars after a warm-up,
  the journal committed every 1000 bars.

Each checkout runs in its own process (``--against NAME=PYTHON``: a Python whose
``tradeloom`` is that checkout, e.g. the venv of a worktree of the commit before
universes) and the rounds interleave the checkouts, so that every column sees the
same load; the medians over the rounds and their ratios to this checkout are printed.
A checkout whose Python does not exist is skipped with a message.

    python benchmarks/bench_per_bar.py [--bars 20000] [--rounds 5] [--smoke]
        [--against before-universes=/work/venvs/old/bin/python]

Wall clock on a shared machine moves by more than the differences; the instructions
of one per-bar backtest do not. Under callgrind, ``--instructions`` runs the
synthetic strategy of benchmarks/bench_backtest.py (one feature, a 0.9 threshold: most
bars have no event, so the driver's own work shows) once untimed, then once with
callgrind's instrumentation on, in whichever checkout the Python imports:

    valgrind --tool=callgrind --instr-atstart=no PYTHON benchmarks/bench_per_bar.py \
        --instructions --bars 20000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from smoke import add_smoke, parse_args
from threshold_market import write_threshold_market

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "btc_rf.yaml"
WARM = 2_000
"""Bars run before the per-bar latencies are taken."""
KEEP_TRADING = ("risk.rules.0.max_drawdown=0.9",)
"""The drawdown rule kept but out of reach: uniform probabilities halt at 15% by bar
8,107, and a halted engine has nothing to do for the rest of the bars."""
DEFAULT_AGAINST = ("before-universes=/work/venvs/old/bin/python",)
"""The parent of 8af030d (the first universe commit) in its own worktree and venv."""


# -- one measurement, in whichever tradeloom this Python imports -----------------------------


def _modules() -> dict[str, Any]:
    """Return the names a measurement needs, from this layout or the older one."""
    try:
        from tradeloom.backtest.pipeline import run_backtest
        from tradeloom.engine.driver import Engine
        from tradeloom.engine.events import Recorder
        from tradeloom.engine.logs import configure_logging
        from tradeloom.engine.wiring import build_pipeline
    except ImportError:  # before the runner package was split (engine/, backtest/)
        from tradeloom.runner.backtest import run_backtest  # type: ignore[no-redef]
        from tradeloom.runner.engine import Engine  # type: ignore[no-redef]
        from tradeloom.runner.events import Recorder  # type: ignore[no-redef]
        from tradeloom.runner.logs import configure_logging  # type: ignore[no-redef]
        from tradeloom.runner.wiring import build_pipeline  # type: ignore[no-redef]
    return {
        "run_backtest": run_backtest,
        "Engine": Engine,
        "Recorder": Recorder,
        "configure_logging": configure_logging,
        "build_pipeline": build_pipeline,
    }


class _Fixed:
    """A model that returns seeded uniform probabilities (the engine alone is timed)."""

    horizon = 4

    def fit_predict_universe(self, universe: Any, features: Any) -> Any:
        from tradeloom.domain import ModelOutput

        p = np.random.default_rng(11).random(len(universe))  # the universe of one
        return (ModelOutput(pd.Series(p, index=universe.index, name="probability_up")),)


def _pipeline(m: dict[str, Any], bars: int) -> tuple[Any, Any]:
    from tradeloom.schemas import load_strategy

    # the model is not trained (uniform probabilities), but its first fold must fit the bars
    window = f"model.walk_forward.train_window={min(3000, bars // 2)}"
    config, plugins = load_strategy(STRATEGY, [f"data.bars={bars}", window, *KEEP_TRADING])
    pipeline = m["build_pipeline"](config)
    return replace(pipeline, model=_Fixed(), monitors=()), plugins


def backtest_us(m: dict[str, Any], bars: int, folder: Path) -> float:
    """Return the microseconds per bar of one per-bar backtest."""
    from tradeloom.domain import RunInfo
    from tradeloom.journal import RunIdentity, open_journal

    pipeline, plugins = _pipeline(m, bars)
    journal = open_journal(
        folder / f"b{time.perf_counter_ns()}.sqlite", RunIdentity("bench", "bench", "backtest")
    )
    recorder = m["Recorder"](journal, plugins.hook, RunInfo("bench", "bench", "backtest", "."))
    start = time.perf_counter()
    m["run_backtest"](pipeline, recorder, "bench", driver="per_bar")
    seconds = time.perf_counter() - start
    journal.close()
    return seconds / bars * 1e6


def tick_us(m: dict[str, Any], bars: int, folder: Path) -> tuple[float, float]:
    """Return the p50 microseconds of the engine's call for one bar, and of the stepped
    features and that call, over the bars after the warm-up."""
    from tradeloom.core.state import BarInputs
    from tradeloom.domain import OHLCV, Bar, RunInfo
    from tradeloom.journal import RunIdentity, open_journal
    from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext

    pipeline, plugins = _pipeline(m, WARM + bars)
    data = pipeline.data.load()
    stepper = FeatureStepper(pipeline.features, StepContext.of(data))
    values = [np.empty(len(stepper.columns))]
    p = np.random.default_rng(11).random(len(data))
    frame = data.frame
    o, h, lo, c, v = (frame[k].to_numpy(np.float64) for k in OHLCV)
    times = list(frame.index)
    inputs = BarInputs.of([o, h, lo, c, v], p, frame.index.asi8)
    journal = open_journal(
        folder / f"t{time.perf_counter_ns()}.sqlite", RunIdentity("bench", "bench", "paper")
    )
    engine = m["Engine"](
        pipeline,
        m["Recorder"](journal, plugins.hook, RunInfo("bench", "bench", "paper", ".")),
        lambda n: f"bench-{n:06d}",
        times=times.__getitem__,
        timeframe_seconds=data.timeframe_seconds,
        calendar=data.calendar,
        features=lambda i: values[0],
        columns=tuple(stepper.columns),
    )
    ns = np.empty((len(data), 3), np.int64)
    clock = time.perf_counter_ns
    for t in range(len(data)):
        bar = Bar(t, times[t], float(o[t]), float(h[t]), float(lo[t]), float(c[t]), float(v[t]))
        ns[t, 0] = clock()
        values[0] = stepper.step(bar)
        ns[t, 1] = clock()
        engine.run(inputs, t + 1)
        ns[t, 2] = clock()
        if (t + 1) % 1000 == 0:
            journal.flush()
    journal.close()
    us = ns[WARM:] / 1e3
    return float(np.median(us[:, 2] - us[:, 1])), float(np.median(us[:, 2] - us[:, 0]))


def worker(bars: int) -> dict[str, float]:
    """Measure once, after one untimed run of each (kernels loaded, caches warm)."""
    m = _modules()
    m["configure_logging"]("error")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        backtest_us(m, 4_000, folder)  # the model's walk-forward needs 3,004 bars
        tick_us(m, 2_000, folder)
        engine, tick = tick_us(m, bars, folder)
        return {"backtest": backtest_us(m, bars, folder), "engine": engine, "tick": tick}


def instructions(bars: int) -> None:
    """Run one per-bar backtest of a synthetic strategy with callgrind instrumenting it."""
    from tradeloom.domain import RunInfo
    from tradeloom.journal import RunIdentity, open_journal
    from tradeloom.schemas import load_strategy

    m = _modules()
    m["configure_logging"]("error")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, strategy = write_threshold_market(folder, bars)
        config, plugins = load_strategy(strategy)

        def one() -> None:
            journal = open_journal(
                folder / f"j{time.perf_counter_ns()}.sqlite",
                RunIdentity("bench", "bench", "backtest"),
            )
            recorder = m["Recorder"](
                journal, plugins.hook, RunInfo("bench", "bench", "backtest", tmp)
            )
            m["run_backtest"](m["build_pipeline"](config), recorder, "bench", driver="per_bar")
            journal.close()

        one()
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
        one()
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


# -- the comparison ------------------------------------------------------------------------


def measure(python: str, bars: int) -> dict[str, float]:
    """Run one measurement in ``python``'s tradeloom (its own process)."""
    out = subprocess.run(
        [python, str(Path(__file__).resolve()), "--worker", "--bars", str(bars)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", action="append", metavar="NAME=PYTHON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instructions", action="store_true", help="under callgrind: see above")
    add_smoke(parser, bars=2_300, rounds=1)
    args = parse_args(parser)
    if args.instructions:
        instructions(args.bars)
        return
    if args.worker:
        print(json.dumps(worker(args.bars)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe

    print("machine:", describe("numpy", "numba", "pandas", "tradeloom"))
    columns = {"this checkout": sys.executable}
    for item in args.against or DEFAULT_AGAINST:
        name, _, python = item.partition("=")
        if Path(python).exists():
            columns[name] = python
        else:
            print(f"  ({name}: {python} does not exist; that column is skipped)")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in columns}
    for _ in range(args.rounds):
        for name, python in columns.items():
            results[name].append(measure(python, args.bars))
    print(
        f"one-symbol per-bar driver, {STRATEGY.relative_to(ROOT)}, {args.bars:,} bars "
        f"(uniform probabilities, no monitors); medians of {args.rounds} rounds, the "
        f"checkouts interleaved; microseconds per bar (ratio to this checkout)"
    )
    print(f"  {'':26} {'backtest':>16} {'engine p50':>16} {'tick p50':>16}")
    mine = {
        k: statistics.median(r[k] for r in results["this checkout"])
        for k in results["this checkout"][0]
    }
    for name, runs in results.items():
        cells = []
        for key in ("backtest", "engine", "tick"):
            value = statistics.median(r[key] for r in runs)
            cells.append(f"{value:8.2f} ({value / mine[key]:4.2f})")
        print(f"  {name:26} " + " ".join(f"{c:>16}" for c in cells))
    print(
        "  backtest: run_backtest(driver='per_bar') whole; engine: Engine.run for one bar "
        "(a tick's engine call), journal committed every 1000 bars; tick: the stepped "
        f"features and that call; p50 over the bars after {WARM:,}"
    )


if __name__ == "__main__":
    main()
