"""A user's first ``tradeloom run``, the kernel cache empty, beside the runs after it.

The README's command (``tradeloom run strategies/btc_rf.yaml`` by default, ``--strategy``
another) runs through the CLI as a new process (`tradeloom.cli.main.main`, in a process of
its own that first listens to numba's compile events, as `tradeloom.kernel_compiles`
does, so that any checkout can be measured: ``cd OTHER && python
/path/to/benchmarks/bench_first_run.py`` measures OTHER's package) with
``TRADELOOM_KERNEL_CACHE`` in a new empty folder (and no ``NUMBA_CACHE_DIR``): every
kernel the strategy uses is compiled and cached, and the outermost compilations' count,
wall and CPU time are recorded (the kernels a kernel calls compile inside its own). Then
the same command ``--runs`` times on the cache it filled: the reference, which compiles
nothing. Printed: the first run's wall and CPU time (user + system, its own process and
its children: the model's training workers), how much of it was compiling (wall and
CPU: on a loaded machine the CPU time is the steadier figure), the warm runs' median,
the ratio of the first to the warm median, the load average before and after, and
whether compiling met issue 44's target (at most ``--target`` seconds of wall time on a
2-core machine, default 10).

``--first N`` repeats the first run N times, a new empty cache each (median quoted).
``--set KEY=VALUE`` (repeatable) is passed to each run. ``--smoke`` (benchmarks/smoke.py)
runs the suite's small form of the strategy (`smoke.SMALL_RF`) once cold and once warm.

``--wheel`` measures a user who installs a wheel instead of this checkout: the wheel is
built from a copy of the checkout with the portable kernels (``tradeloom warm --portable``
into a new folder, timed: a release does it once; ``--kernels DIR`` reuses a folder it
filled) and installed (``--no-deps --no-index``) into a fresh venv that sees this
interpreter's site-packages for the dependencies; each run is that venv's ``tradeloom``
from a folder outside the checkout, with an empty kernel cache as above. Printed beside
the runs: building the kernels, the wheel, and ``pip install`` of the wheel, which with
the first run is what the user's whole command costs (the dependencies aside).

    python benchmarks/bench_first_run.py [--strategy strategies/btc_rf.yaml] [--runs 3]
        [--first 1] [--target 10] [--set KEY=VALUE ...] [--wheel [--kernels DIR]] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from machine import describe
from smoke import SMALL_RF, add_smoke, parse_args

ROOT = Path.cwd()
_PROBE = """
import json, os, sys, time
from numba.core import event
depth, totals, started = [0], [0, 0.0, 0.0], [0.0, 0.0]
class Counting(event.Listener):
    def on_start(self, ev):
        if depth[0] == 0:
            started[:] = [time.perf_counter(), time.process_time()]
        depth[0] += 1
    def on_end(self, ev):
        depth[0] -= 1
        if depth[0] == 0:
            totals[0] += 1
            totals[1] += time.perf_counter() - started[0]
            totals[2] += time.process_time() - started[1]
event.register("numba:compile", Counting())
from tradeloom.cli.main import main
code = main(sys.argv[1:])
with open(os.environ["BENCH_COMPILED"], "w") as file:
    json.dump(totals, file)
sys.exit(code)
"""


@dataclass(frozen=True)
class Run:
    """One ``tradeloom run`` as measured from outside, with what it compiled."""

    wall: float
    cpu: float
    kernels: int
    compile_wall: float
    compile_cpu: float


@dataclass(frozen=True)
class Install:
    """Where the runs' ``tradeloom`` comes from: this checkout, or a venv with the wheel."""

    python: str = sys.executable
    cwd: Path = ROOT
    env: tuple[tuple[str, str | None], ...] = ()
    """Variables set in (a value) or removed from (None) the runs' environment."""


def run_once(
    strategy: str,
    cache: Path,
    folder: Path,
    install: Install | None = None,
    overrides: tuple[str, ...] = (),
) -> Run:
    """Run ``strategy`` through the CLI with the kernel cache ``cache`` (and ``--set`` each
    of ``overrides``); measure it."""
    install = install or Install()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    for name, value in install.env:
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env["TRADELOOM_KERNEL_CACHE"] = str(cache)
    folder.mkdir(parents=True)
    env["BENCH_COMPILED"] = str(folder / "compiled.json")
    argv = [install.python, "-c", _PROBE, "-q", "run", strategy, "--out", str(folder / "run")]
    for override in overrides:
        argv += ["--set", override]
    done, wall, cpu = timed(argv, install.cwd, env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    kernels, seconds, cpu_seconds = json.loads((folder / "compiled.json").read_text())
    return Run(wall, cpu, kernels, seconds, cpu_seconds)


def timed(
    argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``argv``; return it done, its wall time and its CPU time (with its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return done, wall, cpu


def step(label: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run one step of the wheel's making (failing the benchmark if it fails); print its time."""
    done, wall, cpu = timed(argv, cwd, env or dict(os.environ))
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    print(f"{label:30s} {wall:8.1f} {cpu:8.1f}")


_NOT_COPIED = (".git", "runs", "sweeps", "test-artifacts", "build", "dist", "*.egg-info",
               "__pycache__", ".*_cache", ".hypothesis", "_kernels")  # fmt: skip


def wheel_install(folder: Path, kernels: Path | None) -> Install:
    """Build the wheel with portable kernels (building them into ``folder`` if ``kernels``
    is None), install it into a fresh venv; print each step's time; return the install."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    if kernels is None:
        kernels = folder / "portable-kernels"
        cli = [sys.executable, "-m", "tradeloom.cli.main", "-q", "warm", "--portable"]
        into = env | {"TRADELOOM_KERNEL_CACHE": str(kernels)}
        step("portable kernels (a release)", cli, ROOT, into)
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    dist = folder / "dist"
    pip = [sys.executable, "-m", "pip"]
    build = [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)]
    from tradeloom import __version__  # the copy has no git history to take it from

    versioned = {
        "TRADELOOM_WHEEL_KERNELS": str(kernels),
        "SETUPTOOLS_SCM_PRETEND_VERSION": __version__,
    }
    step("the wheel", build, folder, env | versioned)
    [wheel] = dist.glob("tradeloom-*.whl")
    print(f"  {wheel.name}, {wheel.stat().st_size / 1e6:.1f} MB")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)  # fmt: skip
    python = str(venv / "bin" / "python")
    install = [*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", str(wheel)]
    step("pip install of the wheel", install, folder)
    cwd = folder / "user"
    cwd.mkdir()
    return Install(python, cwd, (("PYTHONPATH", None), ("PYTHONNOUSERSITE", "1")))


def _line(label: str, run: Run) -> str:
    return (
        f"{label:30s} {run.wall:8.1f} {run.cpu:8.1f} {run.kernels:8d} "
        f"{run.compile_wall:9.1f} {run.compile_cpu:9.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="strategies/btc_rf.yaml")
    parser.add_argument("--runs", type=int, default=3, help="warm runs (median quoted)")
    parser.add_argument("--first", type=int, default=1, help="first runs, each cache empty")
    parser.add_argument("--target", type=float, default=10.0, help="compile wall seconds")
    parser.add_argument("--wheel", action="store_true", help="from a wheel with portable kernels")
    parser.add_argument("--kernels", type=Path, help="--wheel: a folder warm --portable filled")
    parser.add_argument(
        "--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
        help="passed to tradeloom run (repeatable)",
    )  # fmt: skip
    add_smoke(parser, runs=1, first=1, overrides=list(SMALL_RF))
    args = parse_args(parser)
    print(describe("numpy", "numba", "llvmlite", "scikit-learn"))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    strategy = str((ROOT / args.strategy).resolve())
    where = " from a wheel in a fresh venv" if args.wheel else ""
    settings = "".join(f" --set {o}" for o in args.overrides)
    print(f"tradeloom run {args.strategy}{settings}{where}")
    print(f"{'':30s} {'wall s':>8s} {'cpu s':>8s} {'kernels':>8s} {'compile':>9s} {'cmp cpu':>9s}")
    with tempfile.TemporaryDirectory(prefix="bench-first-run-") as tmp:
        folder = Path(tmp)
        install = wheel_install(folder, args.kernels) if args.wheel else Install()
        sets = tuple(args.overrides)
        firsts = []
        for k in range(args.first):
            cache = folder / f"kernels-{k}"
            firsts.append(run_once(strategy, cache, folder / f"first-{k}", install, sets))
            print(_line("first run, empty cache", firsts[-1]))
        warms = [
            run_once(strategy, cache, folder / f"warm-{k}", install, sets) for k in range(args.runs)
        ]
        for run in warms:
            print(_line("warm run (the reference)", run))
    first = statistics.median(r.wall for r in firsts)
    compile_wall = statistics.median(r.compile_wall for r in firsts)
    compile_cpu = statistics.median(r.compile_cpu for r in firsts)
    warm = statistics.median(r.wall for r in warms)
    print(
        f"first run {first:.1f} s, of which compiling {compile_wall:.1f} s wall "
        f"({compile_cpu:.1f} s CPU); warm run {warm:.1f} s (median of {args.runs}); "
        f"first / warm = {first / warm:.1f}"
    )
    verdict = "ok" if compile_wall <= args.target else "OVER"
    print(f"compiling <= {args.target:g} s: {verdict}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(
        json.dumps(
            {"first": first, "compile_wall": compile_wall, "compile_cpu": compile_cpu,
             "warm": warm, "kernels": statistics.median(r.kernels for r in firsts)}
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
