"""How long the command line takes to answer, warm, beside a bare interpreter.

Each command runs as a user runs it, a new process of the installed ``tradeloom``
entry point (``python -m tradeloom.cli.main``, so that the numbers do not depend on a
shell's PATH lookup), ``--runs`` times after one warm-up run; the median, min and max
wall times are printed beside ``python -c pass`` measured in the same run, with their
ratio, the median CPU time of the command's process (user + system: on a shared
machine, the part of the wall time that is the command's own work), and the heavy
libraries each command left in ``sys.modules`` (read from a probe run of the same
command, which is its warm-up run; validate's probe runs after its timed runs).

Commands: ``--version``, ``--help``, ``validate`` of every file in strategies/, and
``status``, ``journal verify`` and ``kill`` of a finished paper run (30 bars of
strategies/btc_rf.yaml on the simulated clock, made first in a temporary folder). The
commands run as an installed package runs, with its bytecode cached:
``PYTHONDONTWRITEBYTECODE`` is dropped from their environment (a checkout whose
environment sets it compiles every module it imports from source at every command).
Every command runs with ``TRADELOOM_CACHE`` in that folder: the warm-up run of
``validate`` checks the estimator (importing its library, unless it is a plain
scikit-learn estimator whose check is declared,
`tradeloom.plugins.model.estimator_table`) and the timed runs read its
remembered verdict, as an editor's validate-on-save does from its second save on; the
line under each ``validate`` is its first run, a new cache each time (the estimator
checked, as a user's first ``validate`` of a file checks it).
Targets (issue 66, idle 2-core machine): --version, --help, validate and status
<= 0.3 s warm, a validate's first run <= 1.0 s; each command with a target says whether
its median meets it (``ok``) or not (``OVER``), and the last line names those over theirs.

    python benchmarks/bench_startup.py [--runs 7] [--smoke]

``--smoke``: one run of each command, strategies/btc_rf.yaml's validate alone, a smaller
paper run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe
from smoke import SMALL_RF, add_smoke, parse_args

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "sklearn",
    "scipy",
    "numba",
    "numpy",
    "pandas",
    "pyarrow",
    "plotly",
    "narwhals",
    "ccxt",
    "dask",
    "structlog",
    "rich",
)
_PROBE = (
    "import sys\n"
    "from tradeloom.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & set(%r)), file=sys.stderr)\n"
)


_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""The commands' environment: bytecode cached, as an installed package has it."""

FIRST_VALIDATE = 1.0
"""Issue 66's bound on a validate's first run (the estimator checked), in seconds."""


def _target(name: str) -> float | None:
    """Return issue 66's bound on the median wall time of command ``name`` (None: none)."""
    if name in ("--version", "--help", "status RUN") or name.startswith("validate "):
        return 0.3
    return None


def _wall(argv: list[str], runs: int, *, warm_up: bool = True) -> tuple[list[float], list[float]]:
    """Return each run's wall time and CPU time (user + system, the process's own), after
    an untimed run (``warm_up``)."""
    if warm_up:
        subprocess.run(argv, capture_output=True, check=False, cwd=ROOT, env=_ENV)
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False, cwd=ROOT, env=_ENV)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu


def _first(argv: list[str], runs: int, folder: Path) -> tuple[list[float], list[float]]:
    """Return the wall and CPU times of ``runs`` first runs: each with a cache of its own,
    new."""
    times, cpu = [], []
    for k in range(runs):
        env = {**_ENV, "TRADELOOM_CACHE": str(folder / f"fresh-{k}")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False, cwd=ROOT, env=env)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times, cpu


def _heavy(args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=_ENV,
    )
    line = next((x for x in done.stderr.splitlines() if x.startswith("HEAVY ")), "HEAVY ?")
    return line.removeprefix("HEAVY ")


def _finished_run(folder: Path, overrides: tuple[str, ...]) -> Path:
    out = folder / "paper"
    sets = [word for override in overrides for word in ("--set", override)]
    subprocess.run(
        [sys.executable, "-m", "tradeloom.cli.main", "-q", "run", "strategies/btc_rf.yaml",
         "--mode", "paper", "--clock", "simulated", "--speed", "max", "--max-bars", "30",
         *sets, "--out", str(out)],
        check=True, capture_output=True, cwd=ROOT, env=_ENV,
    )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("files", nargs="*", help="strategy files to validate (default: all)")
    add_smoke(parser, runs=1, files=["btc_rf.yaml"])
    args = parse_args(parser)
    print(describe("numpy", "pandas", "scikit-learn", "numba", "pydantic"))
    print(f"load average before: {os.getloadavg()[0]:.2f}; median of {args.runs} runs each")
    bare_times, bare_cpu = _wall([sys.executable, "-c", "pass"], args.runs)
    bare = statistics.median(bare_times)
    cli = [sys.executable, "-m", "tradeloom.cli.main"]
    with tempfile.TemporaryDirectory() as tmp:
        _ENV["TRADELOOM_CACHE"] = str(Path(tmp) / "cache")
        commands: list[tuple[str, list[str]]] = [
            ("--version", ["--version"]),
            ("--help", ["--help"]),
        ]
        for path in sorted((ROOT / "strategies").glob("*.yaml")):
            if not args.files or path.name in args.files:
                commands.append((f"validate {path.name}", ["validate", str(path)]))
        overrides = SMALL_RF if args.smoke else ("data.bars=4000",)
        run = str(_finished_run(Path(tmp), overrides))
        commands.append(("status RUN", ["status", run]))
        commands.append(("journal verify RUN", ["journal", "verify", run]))
        commands.append(("kill RUN", ["kill", run, "--reason", "bench"]))
        print(
            f"{'command':32s} {'median':>7s} {'min':>6s} {'max':>6s} {'x bare':>6s} "
            f"{'cpu':>6s} {'target':>11s}  heavy imports"
        )
        print(
            f"{'python -c pass':32s} {bare:7.3f} {'':6s} {'':6s} {1.0:6.1f} "
            f"{statistics.median(bare_cpu):6.3f} {'':11s}"
        )
        report = {}
        over = []
        for name, argv in commands:
            # the probe is the untimed first run, but validate's: it would check the
            # estimator (importing scikit-learn) that the timed runs find remembered
            validate = name.startswith("validate ")
            heavy = "" if validate else _heavy(argv)
            times, cpu = _wall(cli + argv, args.runs, warm_up=validate)
            heavy = _heavy(argv) if validate else heavy
            median = statistics.median(times)
            report[name] = median
            target = _target(name)
            verdict = ""
            if target is not None:
                verdict = f"<={target:.1f} {'ok' if median <= target else 'OVER'}"
                if median > target:
                    over.append(name)
            print(
                f"{name:32s} {median:7.3f} {min(times):6.3f} {max(times):6.3f} "
                f"{median / bare:6.1f} {statistics.median(cpu):6.3f} {verdict:>11s}  {heavy}"
            )
            if name.startswith("validate "):  # the estimator checked: a fresh cache
                first, first_cpu = _first(cli + argv, args.runs, Path(tmp) / name.split()[1])
                median = statistics.median(first)
                report[f"{name} (first)"] = median
                verdict = f"<={FIRST_VALIDATE:.1f} {'ok' if median <= FIRST_VALIDATE else 'OVER'}"
                if median > FIRST_VALIDATE:
                    over.append(f"{name} (first)")
                print(
                    f"{'  first, a fresh cache':32s} {median:7.3f} {min(first):6.3f} "
                    f"{max(first):6.3f} {median / bare:6.1f} {statistics.median(first_cpu):6.3f} "
                    f"{verdict:>11s}"
                )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"over their target: {', '.join(over) if over else 'none'}")
    print(json.dumps({"bare": bare, **report}))


if __name__ == "__main__":
    main()
