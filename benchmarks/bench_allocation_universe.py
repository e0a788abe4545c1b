"""What allocating a universe costs through the command line: the same ``tradeloom run``
of a universe without allocation, with HRP and with Black-Litterman rebalanced daily.

``--symbols`` hourly markets of ``--bars`` bars (one common factor and a noise of their
own, a precomputed probability column standing for a model), written once as one long
Parquet file. Three strategy files read it, alike but for their ``allocation:``:

  a. none: a threshold signal on the probabilities, 2% of equity per entry;
  b. ``hrp`` (single linkage, Ledoit-Wolf) every 24 bars over the last 240 returns;
  c. ``black_litterman`` (maximum Sharpe on the posterior of the equilibrium and the
     probabilities' views, horizon 4) every 24 bars over the last 240 returns;

each allocation long-only at a net exposure of 0.98. Each is timed as a whole process
(``python -m tradeloom.cli run FILE -q --out DIR``: imports, data, the run, its folder),
the three alternated over ``--runs`` rounds (the order rotated each round); the medians
of wall and CPU seconds (the child's user + system), the ratio of each allocation's to
the run without, and the load average beside every figure.

    python benchmarks/bench_allocation_universe.py [--symbols 500] [--bars 10000]
        [--runs 3] [--keep DIR] [--smoke]

Target (issue 85): at 500 symbols x 10,000 bars, each allocation at most 3x the run
without allocation.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

STRATEGY = """\
name: bench_allocation_{name}
data: {{kind: parquet, path: universe.parquet, symbol_column: symbol, symbols: [{symbols}]}}
features: [{{kind: log_return, period: 1}}]
model: {{kind: precomputed, column: p_up, horizon: 4}}
signal: {{kind: threshold, threshold: 0.3}}
risk: {{sizing: {{kind: fixed_fraction, fraction: 0.02}}}}
execution: {{kind: simulated, initial_cash: 1000000, fee_bps: 10, allow_short: false}}
"""

ALLOCATIONS = {
    "none": "",
    "hrp": "allocation: {kind: hrp, window: 240, rebalance: {every: 24}, "
    "constraints: {net_exposure: 0.98}}\n",
    "black_litterman": "allocation: {kind: black_litterman, window: 240, "
    "rebalance: {every: 24}, constraints: {net_exposure: 0.98}}\n",
}


def _load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def write_universe(folder: Path, symbols: int, bars: int) -> dict[str, Path]:
    """Write the universe's Parquet file and the three strategy files; return them."""
    rng = np.random.default_rng(11)
    times = pd.date_range("2024-01-01", periods=bars, freq="h", tz="UTC", name="timestamp")
    common = rng.normal(0.0, 0.004, bars)
    names = [f"S{k:03d}/USDT" for k in range(symbols)]
    parts = []
    for name in names:
        close = 100.0 * np.exp(
            np.cumsum(common * rng.uniform(0.5, 1.5) + rng.normal(0, 0.006, bars))
        )
        parts.append(
            pd.DataFrame(
                {
                    "symbol": name,
                    "open": close,
                    "high": close * 1.002,
                    "low": close * 0.998,
                    "close": close,
                    "volume": 1e6,
                    "p_up": rng.uniform(0.0, 1.0, bars),
                },
                index=times,
            )
        )
    pd.concat(parts).reset_index().to_parquet(folder / "universe.parquet")
    listed = ", ".join(f'"{s}"' for s in names)
    files = {}
    for name, allocation in ALLOCATIONS.items():
        path = folder / f"{name}.yaml"
        path.write_text(STRATEGY.format(name=name, symbols=listed) + allocation)
        files[name] = path
    return files


def timed(strategy: Path, out: Path) -> tuple[float, float, int]:
    """Run ``tradeloom run`` on ``strategy``; return its wall and CPU seconds and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [sys.executable, "-m", "tradeloom.cli", "run", str(strategy), "-q", "--out"]
    proc = subprocess.run([*command, str(out)], cwd=strategy.parent, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    return wall, cpu, proc.returncode


def main() -> None:
    """Parse the options, write the universe, time the three runs alternated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the data, files and run folders here")
    add_smoke(parser, symbols=3, bars=400, runs=1)
    args = parse_args(parser)
    print(describe("numpy", "scipy", "numba", "cvxpy-base", "clarabel"))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = args.keep or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        files = write_universe(scratch, args.symbols, args.bars)
        print(
            f"{args.symbols} symbols x {args.bars:,} hourly bars, {args.runs} round(s)  {_load()}"
        )
        samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in files}
        names = list(files)
        for k in range(args.runs):
            for name in names[k % 3 :] + names[: k % 3]:
                sample = timed(files[name], scratch / f"{name}-{k}")
                samples[name].append(sample)
                print(
                    f"  round {k + 1} {name:<16} wall {sample[0]:7.1f} s  CPU {sample[1]:7.1f} s"
                    f"  exit {sample[2]}  {_load()}",
                    flush=True,
                )
        print("medians:")
        base = statistics.median(s[0] for s in samples["none"])
        base_cpu = statistics.median(s[1] for s in samples["none"])
        for name, done in samples.items():
            wall = statistics.median(s[0] for s in done)
            cpu = statistics.median(s[1] for s in done)
            print(
                f"  {name:<16} wall {wall:7.1f} s ({wall / base:5.2f}x)  "
                f"CPU {cpu:7.1f} s ({cpu / base_cpu:5.2f}x)  {_load()}"
            )


if __name__ == "__main__":
    main()
