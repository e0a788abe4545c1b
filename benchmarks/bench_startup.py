"""How long the command line takes to answer, warm, beside a bare interpreter.

Each command runs as a user runs it, a new process of the installed ``tradeloom``
entry point (``python -m tradeloom.runner.cli``, so that the numbers do not depend on a
shell's PATH lookup), ``--runs`` times after one warm-up run; the median, min and max
wall times are printed beside ``python -c pass`` measured in the same run, with their
ratio, and the heavy libraries each command left in ``sys.modules`` (read from a probe
run of the same command).

Commands: ``--version``, ``--help``, ``validate`` of every file in strategies/, and
``status`` of a finished run (a short backtest of strategies/btc_rf.yaml is made first,
in a temporary folder). Targets (issue 30, idle 2-core machine): --version and --help
<= 0.3 s, validate and status <= 1.0 s.

    python benchmarks/bench_startup.py [--runs 7]
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
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "scipy", "numba", "pandas", "pyarrow", "plotly", "ccxt", "dask", "rich")
_PROBE = (
    "import sys\n"
    "from tradeloom.runner.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & set(%r)), file=sys.stderr)\n"
)


def _wall(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=False, cwd=ROOT)  # warm the caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def _heavy(args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    line = next((x for x in done.stderr.splitlines() if x.startswith("HEAVY ")), "HEAVY ?")
    return line.removeprefix("HEAVY ")


def _finished_run(folder: Path) -> Path:
    out = folder / "run"
    subprocess.run(
        [sys.executable, "-m", "tradeloom.runner.cli", "-q", "run", "strategies/btc_rf.yaml",
         "--set", "data.bars=4000", "--out", str(out)],
        check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(describe("numpy", "pandas", "scikit-learn", "numba", "pydantic"))
    print(f"load average before: {os.getloadavg()[0]:.2f}; median of {args.runs} runs each")
    bare = statistics.median(_wall([sys.executable, "-c", "pass"], args.runs))
    cli = [sys.executable, "-m", "tradeloom.runner.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        commands: list[tuple[str, list[str]]] = [
            ("--version", ["--version"]),
            ("--help", ["--help"]),
        ]
        for path in sorted((ROOT / "strategies").glob("*.yaml")):
            commands.append((f"validate {path.name}", ["validate", str(path)]))
        commands.append(("status RUN", ["status", str(_finished_run(Path(tmp)))]))
        print(
            f"{'command':42s} {'median':>8s} {'min':>7s} {'max':>7s} {'x bare':>7s}  heavy imports"
        )
        print(f"{'python -c pass':42s} {bare:8.3f} {'':7s} {'':7s} {1.0:7.1f}")
        report = {}
        for name, argv in commands:
            times = _wall(cli + argv, args.runs)
            median = statistics.median(times)
            heavy = _heavy(argv)
            report[name] = median
            print(
                f"{name:42s} {median:8.3f} {min(times):7.3f} {max(times):7.3f} "
                f"{median / bare:7.1f}  {heavy}"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps({"bare": bare, **report}))


if __name__ == "__main__":
    main()
