"""The notebook's doors against the file's: a DataFrame's backtest against the same file's.

A daily GOOG strategy with a HistGradientBoosting walk-forward (`STRATEGY`: six features,
folds of 500 bars retrained every 250, a 5-day label) over backtesting.py's GOOG daily
bars (2,148 bars, 2004-2013, the NYSE calendar; without backtesting.py, a random walk of
as many business days), written as a CSV file the strategy reads. Two doors into the same
backtest, each held in memory (``backtest()`` with no folder):

- **file**: ``tradeloom.load(FILE).backtest()``;
- **frame**: ``strategy.with_data(frame).backtest()``, the frame being the CSV file read
  by pandas (a DatetimeIndex, the OHLCV columns), ``strategy`` loaded once.

Two measurements, each in processes started as a notebook's kernel starts (the
environment as it is: no ``OMP_NUM_THREADS``, ``TRADELOOM_FIRST_RUN`` unset):

- **warm**: one process runs each door once untimed, then ``--rounds`` rounds of both,
  the order alternating from round to round; each call's CPU time (every thread's) and
  wall time are taken. Printed: each door's median with min and max, and the frame's
  over the file's as the median of the rounds' ratios (paired: both ran in the same
  minute), the target being <= ``--target`` (1.1) by CPU.
- **first call**: ``--first`` fresh processes, each with an empty kernel cache of its
  own (``TRADELOOM_KERNEL_CACHE``), time ``tradeloom.load(FILE).with_data(frame)
  .backtest()`` once (the first call: what the API imports, validates and runs for the
  first time) and then again (warm). Printed: the medians of both and of their
  difference, the target being <= ``--first-target`` (10 s) of CPU. A background
  compile a first call starts (`tradeloom.kernels.first_run`) is said and ended.

Both doors must give the same run: the final equity and the trades of every call are
compared, and a difference fails the script. The load average is printed before and
after; the last line is every median as JSON.

    python benchmarks/bench_doors.py [--rounds 5] [--first 3] [--smoke]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from machine import describe
from smoke import add_smoke, parse_args

STRATEGY = """\
name: goog_hgb
description: Daily GOOG, indicators into gradient boosting, walk-forward.
seed: 7
data: {kind: csv, path: goog.csv, symbol: GOOG/USD, timeframe: 1d, calendar: XNYS}
features:
  - {kind: returns, period: 1}
  - {kind: ema, period: 20}
  - {kind: macd, fast: 12, slow: 26, signal: 9}
  - {kind: atr, window: 14}
  - {kind: rsi, window: 14}
  - {kind: lags, of: [returns_1], lags: 3}
model:
  kind: sklearn
  estimator: sklearn.ensemble.HistGradientBoostingClassifier
  params: {max_iter: 100, max_depth: 3, learning_rate: 0.05}
  scaler: none
  label: {horizon: 5}
  walk_forward: {train_window: 500, retrain_every: 250}
signal: {kind: threshold, threshold: 0.10}
risk:
  sizing: {kind: kelly, fraction: 0.5, avg_win: 0.02, avg_loss: 0.02, max_position: 1.0}
  stop_loss: 0.05
execution: {kind: simulated, initial_cash: 10000, fill: next_open, fee_bps: 10}
"""

CHILD = """\
import json, sys, time
import pandas as pd
import tradeloom

what, rounds = sys.argv[1], int(sys.argv[2])
frame = pd.read_csv("goog.csv", index_col="timestamp", parse_dates=True)


def timed(call):
    cpu, wall = time.process_time(), time.perf_counter()
    run = call()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    trades = run.trades[["entry_time", "exit_time", "pnl"]].to_json()
    return {"cpu": cpu, "wall": wall, "equity": run.stats["final_equity"], "trades": trades}


if what == "first":
    for _ in range(2):  # the first call, then the warm one
        print(json.dumps(timed(
            lambda: tradeloom.load("goog.yaml").with_data(frame).backtest(quiet=True)
        )), flush=True)
    sys.exit()
strategy = tradeloom.load("goog.yaml")
doors = {
    "file": lambda: tradeloom.load("goog.yaml").backtest(quiet=True),
    "frame": lambda: strategy.with_data(frame).backtest(quiet=True),
}
for name, call in doors.items():
    call()  # untimed: imports, the kernels' forms chosen
for k in range(rounds):
    for name in list(doors) if k % 2 == 0 else list(doors)[::-1]:
        print(json.dumps({"door": name, **timed(doors[name])}), flush=True)
"""


def write_market(folder: Path, bars: int) -> str:
    """Write ``goog.csv`` (the first ``bars`` of backtesting.py's GOOG, else a random
    walk of business days) and the strategy; return where the bars came from."""
    import numpy as np
    import pandas as pd

    try:
        from backtesting.test import GOOG

        frame, source = GOOG.copy(), "backtesting.py's GOOG daily bars"
    except ImportError:
        times = pd.bdate_range("2004-08-19", periods=2148)
        close = 100 * np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.02, len(times))))
        frame = pd.DataFrame(
            {"Open": close, "High": close * 1.01, "Low": close * 0.99, "Close": close,
             "Volume": 1e6},
            index=times,
        )  # fmt: skip
        source = "a random walk of business days (backtesting.py not installed)"
    frame = frame.iloc[:bars]
    frame.columns = [str(c).lower() for c in frame.columns]
    frame.index = pd.DatetimeIndex(frame.index).tz_localize("UTC").rename("timestamp")
    frame.to_csv(folder / "goog.csv")
    (folder / "goog.yaml").write_text(STRATEGY)
    (folder / "child.py").write_text(CHILD)
    return f"{len(frame):,} bars of {source}"


def environment(cache: Path | None = None) -> dict[str, str]:
    """Return a notebook's environment: the first run's rule as a user meets it (not the
    suite's ``compile``), the native threads as the API sets them, bytecode cached."""
    drop = {"TRADELOOM_FIRST_RUN", "PYTHONDONTWRITEBYTECODE", "OMP_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if cache is not None:
        env["TRADELOOM_KERNEL_CACHE"] = str(cache)
    return env


def child(folder: Path, what: str, rounds: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """Run the child script; return its lines.

    Raises:
        SystemExit: It failed (its error's last lines).
    """
    argv = [sys.executable, "child.py", what, str(rounds)]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {what}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def end_background_compile(cache: Path) -> str:
    """End the background compile a first call started in ``cache``, if one runs; say so."""
    lock = cache / "compiling.lock"
    if not lock.exists():
        return "none started"
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return "one started, already over"
    except BlockingIOError:
        pid = int(lock.read_text().split()[0])
        os.killpg(pid, signal.SIGTERM)  # its own session (first_run._launch)
        return f"one started (pid {pid}), ended by this script"
    finally:
        os.close(fd)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):7.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def same_run(calls: list[dict[str, Any]]) -> None:
    """Fail unless every call gave the first one's equity and trades."""
    first = calls[0]
    for call in calls[1:]:
        if (call["equity"], call["trades"]) != (first["equity"], first["trades"]):
            raise SystemExit(f"the doors differ: equity {first['equity']} against {call['equity']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2148)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--first", type=int, default=3, help="fresh processes, empty caches")
    parser.add_argument("--target", type=float, default=1.1, help="frame / file, warm CPU")
    parser.add_argument("--first-target", type=float, default=10.0, help="first - warm, s CPU")
    add_smoke(parser, bars=700, rounds=1, first=1)
    args = parse_args(parser)
    print(describe("numpy", "pandas", "numba", "scikit-learn", "threadpoolctl"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench-doors-") as tmp:
        folder = Path(tmp)
        market = write_market(folder, args.bars)
        warm = child(folder, "warm", args.rounds, environment())
        first: list[list[dict[str, Any]]] = []
        compiles = []
        for k in range(args.first):
            cache = folder / f"kernels-{k}"
            first.append(child(folder, "first", 0, environment(cache)))
            compiles.append(end_background_compile(cache))
    same_run([*warm, *(call for calls in first for call in calls)])
    doors = {name: [c for c in warm if c["door"] == name] for name in ("file", "frame")}
    print(f"\n{market}; the strategy: {STRATEGY.splitlines()[1].split(': ', 1)[1]}")
    print(f"warm, one process, {args.rounds} rounds, the order alternating (each call: load "
          "or with_data, then backtest(), held in memory)")  # fmt: skip
    print(f"  {'':24} {'CPU (every thread)':>40}   {'wall':>40}")
    for name, label in (("file", "load(file).backtest()"), ("frame", "with_data(frame)...")):
        cpu = [float(c["cpu"]) for c in doors[name]]
        wall = [float(c["wall"]) for c in doors[name]]
        print(f"  {label:24} {summary(cpu):>40}   {summary(wall):>40}")
    ratios = {
        clock: statistics.median(
            float(b[clock]) / float(a[clock])
            for a, b in zip(doors["file"], doors["frame"], strict=True)
        )
        for clock in ("cpu", "wall")
    }
    verdict = "met" if ratios["cpu"] <= args.target else "NOT met"
    print(f"frame / file, the median of the rounds' ratios: CPU {ratios['cpu']:.3f}x, wall "
          f"{ratios['wall']:.3f}x (target <= {args.target:g} by CPU: {verdict})")  # fmt: skip
    cold = {clock: [float(calls[0][clock]) for calls in first] for clock in ("cpu", "wall")}
    hot = {clock: [float(calls[1][clock]) for calls in first] for clock in ("cpu", "wall")}
    extra = {c: [a - b for a, b in zip(cold[c], hot[c], strict=True)] for c in ("cpu", "wall")}
    print(f"\nfirst call, {args.first} fresh processes, each with an empty kernel cache: "
          "load(file).with_data(frame).backtest(), then again")  # fmt: skip
    print(f"  {'':24} {'CPU (every thread)':>40}   {'wall':>40}")
    for label, taken in (("first call", cold), ("second call", hot), ("first - second", extra)):
        print(f"  {label:24} {summary(taken['cpu']):>40}   {summary(taken['wall']):>40}")
    gap = statistics.median(extra["cpu"])
    verdict = "met" if gap <= args.first_target else "NOT met"
    print(f"first call over the warm one: {gap:.2f} s of CPU (target <= {args.first_target:g} "
          f"s: {verdict}); background compiles: {'; '.join(sorted(set(compiles)))}")  # fmt: skip
    print(f"every call the same run: final equity {warm[0]['equity']}, the same trades")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    medians = {
        f"{name} {clock}": statistics.median(float(c[clock]) for c in doors[name])
        for name in doors
        for clock in ("cpu", "wall")
    }
    medians |= {f"first {clock}": statistics.median(cold[clock]) for clock in ("cpu", "wall")}
    medians |= {f"second {clock}": statistics.median(hot[clock]) for clock in ("cpu", "wall")}
    ratios = {"ratio cpu": ratios["cpu"], "ratio wall": ratios["wall"], "first over warm cpu": gap}
    print(json.dumps({**medians, **ratios}))


if __name__ == "__main__":
    main()
