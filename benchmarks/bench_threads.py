"""A HistGradientBoosting strategy's run time under the native thread policy.

Runs ``tradeloom run`` of a HGB strategy (strategies/eth_hgb_stops.yaml, its bars cut
with ``--bars``) as a whole process, three ways, ``--runs`` times each, interleaved:

- the default policy (`tradeloom.runtime.threads`: one native thread per process);
- ``OMP_NUM_THREADS=1`` in the environment, the reference the issue measured against;
- ``--threads N`` with N the usable cores: what every run did before the policy (the
  libraries' own default, one thread per core).

``--load K`` starts K busy processes for the duration (a loaded machine: the issue's
figure was taken under load; 0 measures an idle one). Prints each median with min and
max, and the ratios default / OMP_NUM_THREADS=1 (target <= 1.2) and one-per-core /
default.

    python benchmarks/bench_threads.py [--runs 3] [--bars 6000] [--load 2] [--smoke]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe
from smoke import add_smoke, parse_args

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "eth_hgb_stops.yaml"


def _spin(stop: multiprocessing.synchronize.Event) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _run(argv: list[str], env: dict[str, str], out: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "tradeloom.cli.main", "-q", *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if done.returncode != 0:  # say why, rather than a bare CalledProcessError
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bars", type=int, default=6000)
    parser.add_argument("--load", type=int, default=2, help="busy processes while measuring")
    add_smoke(parser, runs=1, bars=400, load=0)
    args = parse_args(parser)
    cores = len(os.sched_getaffinity(0))
    print(describe("scikit-learn", "threadpoolctl", "numpy"))
    base = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    base.pop("TRADELOOM_THREADS", None)
    run = ["run", str(STRATEGY), "--set", f"data.bars={args.bars}"]
    if args.smoke:  # one small fold within the bars
        run += ["--set", "model.walk_forward.train_window=300", "--set", "model.params.max_iter=5"]
    ways = {
        "default policy": (run, base),
        "OMP_NUM_THREADS=1": (run, {**base, "OMP_NUM_THREADS": "1"}),
        f"--threads {cores} (one per core)": (["--threads", str(cores), *run], base),
    }
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.load)]
    for spinner in spinners:
        spinner.start()
    times: dict[str, list[float]] = {name: [] for name in ways}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not args.smoke:
                _run(run, base, Path(tmp) / "warm")  # compile the kernels once
            for k in range(args.runs):
                for i, (name, (argv, env)) in enumerate(ways.items()):
                    # a new folder per run: a backtest refuses a folder that holds one
                    times[name].append(_run(argv, env, Path(tmp) / f"{k}-{i}"))
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
    print(f"{args.bars} bars, {args.runs} runs each, {args.load} busy processes, {cores} cores")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:32s} median {medians[name]:7.2f} s  min {min(values):7.2f}  "
              f"max {max(values):7.2f}")  # fmt: skip
    default, one = medians["default policy"], medians["OMP_NUM_THREADS=1"]
    per_core = medians[f"--threads {cores} (one per core)"]
    print(f"default / OMP_NUM_THREADS=1: {default / one:.2f}x (target <= 1.2)")
    print(f"one per core / default:      {per_core / default:.2f}x")


if __name__ == "__main__":
    main()
