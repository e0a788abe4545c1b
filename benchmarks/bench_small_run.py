"""A small run as a user waits for it: ``tradeloom run`` against a backtesting.py script.

The market and strategy of benchmarks/bench_run.py: ``--bars`` one-minute random-walk bars
in a CSV file (10,000), the SMA(10)/SMA(50) cross as precomputed probabilities (1.0 at an
entry, 0.0 at an exit), long-only, all-in, 0.1% fees, fills at the close. Each engine runs
as a fresh process, as a shell starts it, and reads the same CSV file:

- **tradeloom**: ``python -m tradeloom.cli run csv.yaml --out DIR -q``: the strategy file,
  the data, the features, the core, the journal, every run-folder file and report.html, its
  summary printed;
- **backtesting.py**: a script doing the same (`BACKTESTING_SCRIPT`, written beside the
  data): ``pandas.read_csv`` of the file, backtesting.py's ``FractionalBacktest`` of the
  same signals (trade on close, 0.1% commission), its stats printed;
- **the libraries alone** (for scale, not a target): a process that imports what no
  tradeloom run can start without, numpy, pandas (with the pyarrow it imports) and numba
  as tradeloom imports it (`tradeloom.kernels.jit`), with numba's CPU target made ready for a
  kernel's load, and does nothing else.

After one untimed run of each (bytecode and kernel cache warm), ``--rounds`` rounds run
one process of each engine, the order alternating from round to round. Each process's
wall time and CPU time (user + system, its threads included) are taken; the medians are
printed with min and max, and the ratio backtesting.py / tradeloom as the median of the
rounds' ratios (paired: both ran in the same minute), the target being >= 1.5. The
processes run as an installed package runs, with its bytecode cached:
``PYTHONDONTWRITEBYTECODE`` is dropped from their environment (a checkout whose
environment sets it compiles every module of tradeloom from source at every command,
about 0.4 s of CPU). The number of trades each engine closed is printed (the same
strategy: the same trades). The load average is printed before and after.

    python benchmarks/bench_small_run.py [--bars 10000] [--rounds 7] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench_run import write_market
from machine import describe
from smoke import add_smoke, parse_args

BACKTESTING_SCRIPT = '''\
"""backtesting.py: the CSV file's bars, entries where p_up is 1 and exits where it is 0."""
import sys

import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest

data = pd.read_csv(sys.argv[1], index_col="timestamp", parse_dates=True)
data.index = data.index.tz_localize(None)
p_up = data.pop("p_up").to_numpy()
data.columns = ["Open", "High", "Low", "Close", "Volume"]


class Signals(Strategy):
    def init(self):
        pass

    def next(self):
        i = len(self.data) - 1
        if p_up[i] == 1.0 and not self.position:
            self.buy(size=1.0 - 1e-12)  # a fraction of equity must be < 1
        elif p_up[i] == 0.0 and self.position:
            self.position.close()


backtest = FractionalBacktest(
    data, Signals, cash=100_000, commission=0.001, trade_on_close=True, fractional_unit=1e-14
)
print(backtest.run())
'''

LIBRARIES = (
    "import numpy, pandas\n"
    "from tradeloom.kernels.jit import package_stamp\n"
    "package_stamp()  # imports numba as a kernel's first call does\n"
    "from numba.core.registry import cpu_target\n"
    "cpu_target.target_context.refresh()\n"
    "cpu_target.typing_context.refresh()\n"
)
"""The libraries alone: imported as a run imports them, numba's CPU target made ready for
a kernel's load."""

_TRADES = {
    "tradeloom": re.compile(r"^\s*trades\s+([\d,]+)\s*$", re.M),
    "backtesting.py": re.compile(r"^# Trades\s+(\d+)\s*$", re.M),
}


def environment() -> dict[str, str]:
    """Return the engines' environment: bytecode cached as an install has it, no progress
    bar (backtesting.py's tqdm)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["TQDM_DISABLE"] = "1"
    return env


def timed(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``argv`` to its end; return its wall and CPU seconds and its standard output.

    Raises:
        SystemExit: It failed (its error's last lines).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}: exit {done.returncode}\n{done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stdout


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--target", type=float, default=1.5, help="backtesting.py / tradeloom")
    add_smoke(parser, bars=1_000, rounds=1)
    args = parse_args(parser)
    print(describe("numpy", "pandas", "pyarrow", "numba", "backtesting", "bokeh"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    env = environment()
    with tempfile.TemporaryDirectory(prefix="bench-small-run-") as tmp:
        folder = Path(tmp)
        _, entries, exits = write_market(folder, args.bars)
        (folder / "backtesting_script.py").write_text(BACKTESTING_SCRIPT)
        engines: dict[str, list[str]] = {
            "tradeloom": [sys.executable, "-m", "tradeloom.cli", "run", "csv.yaml", "-q"],
            "backtesting.py": [sys.executable, "backtesting_script.py", "bars.csv"],
            "the libraries alone": [sys.executable, "-c", LIBRARIES],
        }
        runs = 0

        def once(name: str) -> tuple[float, float, str]:
            nonlocal runs
            runs += 1
            argv = engines[name]
            if name == "tradeloom":  # a new run folder each time: a run refuses a used one
                argv = [*argv, "--out", str(folder / "runs" / f"run-{runs}")]
            return timed(argv, folder, env)

        for name in engines if not args.smoke else ():
            once(name)  # untimed: bytecode written, kernels loaded into the cache
        times: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in engines}
        trades = {}
        order = list(engines)
        for k in range(args.rounds):
            for name in order if k % 2 == 0 else order[::-1]:
                wall, cpu, out = once(name)
                times[name]["wall"].append(wall)
                times[name]["cpu"].append(cpu)
                if name in _TRADES:
                    found = _TRADES[name].search(out)
                    trades[name] = found.group(1).replace(",", "") if found else "?"
        size = (folder / "bars.csv").stat().st_size
    print(
        f"\n{args.bars:,} one-minute bars (bars.csv, {size / 1e6:.1f} MB), SMA(10)/SMA(50) cross: "
        f"{int(entries.sum()):,} entries, {int(exits.sum()):,} exits; each engine a fresh "
        f"process, {args.rounds} rounds, the order alternating"
    )
    print(f"  {'':22} {'wall':>38}   {'CPU (user + system)':>38}")
    for name, taken in times.items():
        print(f"  {name:22} {summary(taken['wall']):>38}   {summary(taken['cpu']):>38}")
    print(f"  trades closed: tradeloom {trades['tradeloom']}, "
          f"backtesting.py {trades['backtesting.py']}")  # fmt: skip
    ours, theirs = times["tradeloom"], times["backtesting.py"]
    ratios = {
        clock: statistics.median(b / a for a, b in zip(ours[clock], theirs[clock], strict=True))
        for clock in ("wall", "cpu")
    }
    verdict = "met" if ratios["wall"] >= args.target else "NOT met"
    print(
        f"backtesting.py / tradeloom, the median of the rounds' ratios: wall "
        f"{ratios['wall']:.2f}x, CPU {ratios['cpu']:.2f}x (target >= {args.target:g}: {verdict})"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    medians = {
        f"{name} {clock}": statistics.median(taken[clock])
        for name, taken in times.items()
        for clock in ("wall", "cpu")
    }
    print(json.dumps({**medians, "ratio wall": ratios["wall"], "ratio cpu": ratios["cpu"]}))


if __name__ == "__main__":
    main()
