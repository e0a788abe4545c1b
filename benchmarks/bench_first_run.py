"""A user's first ``tradeloom run``, the kernel cache empty, beside the runs after it.

The README's command (``tradeloom run strategies/btc_rf.yaml`` by default, ``--strategy``
another) runs through the CLI as a new process (`tradeloom.cli.main.main`, in a process of
its own that first listens to numba's compile events, as `tradeloom.kernels.compiles`
does, so that any checkout can be measured: ``cd OTHER && python
/path/to/benchmarks/bench_first_run.py`` measures OTHER's package) with
``TRADELOOM_KERNEL_CACHE`` in a new empty folder (and no ``NUMBA_CACHE_DIR``).

The first run is ``TRADELOOM_FIRST_RUN=auto`` (`tradeloom.kernels.first_run`; ``--first-run
compile`` measures the compile in process instead): a small run uses the kernels' Python
form and starts their compile in the background. The benchmark waits for that compile
(its lock in the cache folder) and prints its wall and CPU time and the compile seconds
by kernel from its record (`tradeloom.kernels.first_run.RECORD`). Then the same command
``--runs`` times on the cache it filled: the reference, which compiles nothing. Printed:
the first run's wall and CPU time (user + system, its own process and its children: the
model's training workers; not the detached background compile), how much of it was
compiling in process, the warm runs' median, the difference and the ratio, the load
average before and after, and whether the first run met issue 66's target (at most
``--target`` seconds, default 10, more than the warm run).

``--first N`` repeats the first run N times, a new empty cache each (median quoted).
``--set KEY=VALUE`` (repeatable) is passed to each run. ``--no-wait`` ends the
background compile instead of waiting (the warm runs then run the Python form).
``--smoke`` (benchmarks/smoke.py) runs the suite's small form of the strategy
(`smoke.SMALL_RF`) once on an empty cache and once after it, without waiting.

``--wheel`` measures a user who installs a wheel instead of this checkout: the wheel is
built from a copy of the checkout with the portable kernels (``tradeloom warm --portable``
into a new folder, timed: a release does it once; ``--kernels DIR`` reuses a folder it
filled) and installed (``--no-deps --no-index``) into a fresh venv that sees this
interpreter's site-packages for the dependencies; each run is that venv's ``tradeloom``
from a folder outside the checkout, with an empty kernel cache as above. Printed beside
the runs: building the kernels, the wheel, and ``pip install`` of the wheel, which with
the first run is what the user's whole command costs (the dependencies aside).

    python benchmarks/bench_first_run.py [--strategy strategies/btc_rf.yaml] [--runs 3]
        [--first 1] [--first-run auto|compile|python] [--no-wait] [--target 10]
        [--set KEY=VALUE ...] [--wheel [--kernels DIR]] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    background: int | None = None
    """The pid of the background compile the run started (or found running), if any."""


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
    mode: str = "auto",
) -> Run:
    """Run ``strategy`` through the CLI with the kernel cache ``cache``, ``--set`` each of
    ``overrides`` and ``TRADELOOM_FIRST_RUN=mode``; measure it."""
    install = install or Install()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    for name, value in install.env:
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env["TRADELOOM_KERNEL_CACHE"] = str(cache)
    env["TRADELOOM_FIRST_RUN"] = mode
    folder.mkdir(parents=True)
    env["BENCH_COMPILED"] = str(folder / "compiled.json")
    argv = [install.python, "-c", _PROBE, "-q", "run", strategy, "--out", str(folder / "run")]
    for override in overrides:
        argv += ["--set", override]
    done, wall, cpu = timed(argv, install.cwd, env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    kernels, seconds, cpu_seconds = json.loads((folder / "compiled.json").read_text())
    started = re.search(r"kernels compiling in the background \(pid (\d+)", done.stderr)
    background = int(started.group(1)) if started else None
    return Run(wall, cpu, kernels, seconds, cpu_seconds, background)


def background_compile(cache: Path, pid: int, wait: bool) -> dict[str, Any] | None:
    """Wait for the background compile ``pid`` to end and return its record
    (`tradeloom.kernels.first_run.RECORD`); without ``wait``, end it (its process group) and
    return None."""
    if not wait:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # its session's leader: it and its workers
        return None
    with open(cache / "compiling.lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # granted once the compile has let go of it
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    record: dict[str, Any] = json.loads((cache / "background-compile.json").read_text())
    if record.get("pid") != pid or record.get("exit") != 0:
        raise SystemExit(f"the background compile failed: {record}; see {cache}")
    return record


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
    parser.add_argument(
        "--target", type=float, default=10.0, help="most seconds the first run may take "
        "over the warm run's median",
    )  # fmt: skip
    parser.add_argument(
        "--first-run", choices=["auto", "compile", "python"], default="auto",
        help="TRADELOOM_FIRST_RUN of the first runs (compile: in process, as before)",
    )  # fmt: skip
    parser.add_argument(
        "--no-wait", dest="wait", action="store_false",
        help="end the background compile instead of waiting for it (the warm runs then "
        "run the kernels' Python form)",
    )  # fmt: skip
    parser.add_argument("--wheel", action="store_true", help="from a wheel with portable kernels")
    parser.add_argument("--kernels", type=Path, help="--wheel: a folder warm --portable filled")
    parser.add_argument(
        "--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
        help="passed to tradeloom run (repeatable)",
    )  # fmt: skip
    add_smoke(parser, runs=1, first=1, overrides=list(SMALL_RF), wait=False)
    args = parse_args(parser)
    print(describe("numpy", "numba", "llvmlite", "scikit-learn"))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    strategy = str((ROOT / args.strategy).resolve())
    where = " from a wheel in a fresh venv" if args.wheel else ""
    settings = "".join(f" --set {o}" for o in args.overrides)
    print(f"tradeloom run {args.strategy}{settings}{where}, TRADELOOM_FIRST_RUN={args.first_run}")
    print(f"{'':30s} {'wall s':>8s} {'cpu s':>8s} {'kernels':>8s} {'compile':>9s} {'cmp cpu':>9s}")
    records: list[dict[str, Any]] = []
    warm_mode = "auto"
    with tempfile.TemporaryDirectory(prefix="bench-first-run-") as tmp:
        folder = Path(tmp)
        install = wheel_install(folder, args.kernels) if args.wheel else Install()
        sets = tuple(args.overrides)
        firsts = []
        for k in range(args.first):
            cache = folder / f"kernels-{k}"
            first_folder = folder / f"first-{k}"
            firsts.append(run_once(strategy, cache, first_folder, install, sets, args.first_run))
            print(_line("first run, empty cache", firsts[-1]))
            pid = firsts[-1].background
            if pid is None:
                continue
            record = background_compile(cache, pid, args.wait)
            if record is None:
                print(f"  background compile (pid {pid}) ended, not waited for")
                warm_mode = "python"
                continue
            records.append(record)
            print(f"  background compile (pid {pid}, nice 19): {record['seconds']:.1f} s wall, "
                  f"{record['cpu_seconds']:.1f} s CPU, {record['kernels']} kernels compiled "
                  f"in {record['compile_seconds']:.1f} s ({record['compile_cpu_seconds']:.1f} "
                  "s CPU)")  # fmt: skip
        warms = [
            run_once(strategy, cache, folder / f"warm-{k}", install, sets, warm_mode)
            for k in range(args.runs)
        ]
        label = "warm run (the reference)" if warm_mode == "auto" else "run, Python form"
        for run in warms:
            print(_line(label, run))
    if records:
        print("compile seconds by kernel (wall, the last background compile, outermost "
              "compilations: a kernel's callees compile inside it)")  # fmt: skip
        by_kernel = records[-1]["by_kernel"]
        for name, seconds in sorted(by_kernel.items(), key=lambda item: -item[1]):
            print(f"  {seconds:8.2f}  {name}")
    first = statistics.median(r.wall for r in firsts)
    first_cpu = statistics.median(r.cpu for r in firsts)
    compile_wall = statistics.median(r.compile_wall for r in firsts)
    compile_cpu = statistics.median(r.compile_cpu for r in firsts)
    warm = statistics.median(r.wall for r in warms)
    warm_cpu = statistics.median(r.cpu for r in warms)
    print(
        f"first run {first:.1f} s ({first_cpu:.1f} s CPU), of which compiling in process "
        f"{compile_wall:.1f} s ({compile_cpu:.1f} s CPU); warm run {warm:.1f} s ({warm_cpu:.1f} "
        f"s CPU, median of {args.runs}); first - warm = {first - warm:.1f} s, first / warm = "
        f"{first / warm:.2f}"
    )
    verdict = "ok" if first - warm <= args.target else "OVER"
    print(f"first run <= warm run + {args.target:g} s: {verdict}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    summary = {
        "first": first, "first_cpu": first_cpu, "compile_wall": compile_wall,
        "compile_cpu": compile_cpu, "warm": warm, "warm_cpu": warm_cpu,
        "kernels": statistics.median(r.kernels for r in firsts),
        "background": [{k: r[k] for k in ("seconds", "cpu_seconds", "compile_seconds")}
                       for r in records],
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
