"""The compiled core's speed, its kernels compiled for this machine's CPU or the portable target.

``tradeloom warm --portable`` compiles kernels for a CPU level most machines have
(`tradeloom.kernels.targets`: x86-64-v3 on x86-64) so that a wheel or an image can ship
them; this measures what that costs the core against kernels compiled for this very CPU
(what a first run compiles here). The workload is bench_core.py's compiled-core line:
`CoreState.run` over ``--bars`` one-minute random-walk bars with the SMA(10)/SMA(50)
crossover's signals.

Each round starts one process per target (this CPU: numba's default; portable: the
target's ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES``), each with a kernel cache of its
own under one folder (``--cache DIR`` keeps it for the next invocation; the first round
compiles, outside the timings). A process checks that the core's event rows are those
of the first process, runs the core once, then times it ``--runs`` times (CPU time,
``time.process_time``, and wall time). The rounds alternate which target goes first.
Printed: each process's medians, then per target the median of its rounds' medians and
the least of them, the ratios portable / this CPU, and the load average before and
after. On a shared machine the CPU time is the steadier figure; a process whose
neighbours thrash the caches runs slower throughout (on the 2-core VM, loaded, some
rounds of either target ran 1.5 to 2 times as long as the rest).

    python benchmarks/bench_portable.py [--bars 1000000] [--runs 15] [--rounds 4]
        [--cache DIR] [--smoke]

``--smoke`` compiles nothing: both processes are this CPU's, with the user's kernel
cache (compiling the core for a target takes minutes at any size).
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
from smoke import add_smoke, parse_args

HERE = Path(__file__).resolve().parent

_CHILD = """
import gc, hashlib, json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {here!r})
import numpy as np
import bench_core as bc
from tradeloom.core.state import BarInputs
from tradeloom.domain import OHLCV

bars, runs = {bars}, {runs}
frame = bc.market(bars)
entries, exits = bc.sma_cross(frame["close"].to_numpy())
probability = np.where(entries, 1.0, np.where(exits, 0.0, 0.5))
with tempfile.TemporaryDirectory() as tmp:
    _, _, spec = bc.tradeloom_setup(Path(tmp))
inputs = BarInputs.of([frame[k].to_numpy(np.float64) for k in OHLCV], probability, frame.index.asi8)
rows = bc.run_core(spec, inputs).rows()
cpu, wall = [], []
for _ in range(runs):
    gc.collect()
    gc.disable()
    c, w = time.process_time(), time.perf_counter()
    bc.run_core(spec, inputs)
    wall.append(time.perf_counter() - w)
    cpu.append(time.process_time() - c)
    gc.enable()
print(json.dumps({{"cpu": cpu, "wall": wall, "rows": hashlib.sha256(rows.tobytes()).hexdigest()}}))
"""


def target_env() -> dict[str, str]:
    """Return the environment in which numba compiles for this machine's portable target."""
    from numba.core.registry import cpu_target

    from tradeloom.kernels.targets import portable_target

    host = cpu_target.target_context.codegen().magic_tuple()
    target = portable_target(host[0])
    if target is None or target.missing(host):
        raise SystemExit(f"this machine ({host[1]}) cannot run the portable target's code")
    print(f"this CPU: {host[1]}; portable: {target.name} ({target.feature_string()})")
    return target.build_env()


def measure(env: dict[str, str], cache: Path | None, bars: int, runs: int) -> dict[str, object]:
    """Time the core in a new process with ``env`` and the kernel cache ``cache`` (None:
    the user's)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    full |= env | ({} if cache is None else {"TRADELOOM_KERNEL_CACHE": str(cache)})
    code = _CHILD.format(here=str(HERE), bars=bars, runs=runs)
    done = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the timing process failed ({done.returncode}):\n{done.stderr}")
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15, help="timed calls per process")
    parser.add_argument("--rounds", type=int, default=4, help="processes per target")
    parser.add_argument("--cache", type=Path, help="kernel caches kept here (default: new)")
    add_smoke(parser, bars=2_000, runs=1, rounds=1)
    args = parse_args(parser)
    print(describe("numpy", "numba", "llvmlite"))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    targets = {"this CPU": {}, "portable": {} if args.smoke else target_env()}
    if args.smoke:
        print("--smoke: 'portable' is this CPU too, both on the user's kernel cache")
    with tempfile.TemporaryDirectory(prefix="bench-portable-") as tmp:
        root = args.cache or Path(tmp)

        def cache(name: str) -> Path | None:
            return None if args.smoke else root / name.replace(" ", "-")

        for name in targets:  # compile (or load) each target's kernels, untimed
            start = time.perf_counter()
            measure(targets[name], cache(name), 1000, 1)
            print(f"{name}: kernels ready in {time.perf_counter() - start:.1f} s")
        medians: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        reference = None
        for k in range(args.rounds):
            order = list(targets) if k % 2 == 0 else list(reversed(targets))
            for name in order:
                got = measure(targets[name], cache(name), args.bars, args.runs)
                reference = reference or got["rows"]
                if got["rows"] != reference:
                    raise SystemExit(f"{name}: the core's rows differ from the first process's")
                cpu = statistics.median(got["cpu"])  # type: ignore[arg-type]
                wall = statistics.median(got["wall"])  # type: ignore[arg-type]
                medians[name].append((cpu, wall))
                load = os.getloadavg()[0]
                print(f"  round {k + 1} {name:9s} CPU median {cpu * 1e3:7.2f} ms, "
                      f"wall median {wall * 1e3:7.2f} ms (load {load:.2f})")  # fmt: skip
    print(f"{args.bars:,} bars, the core's rows identical in every process "
          f"(sha256 {str(reference)[:16]}); median of the rounds' medians:")  # fmt: skip
    summary: dict[str, tuple[float, float]] = {}
    for name, values in medians.items():
        cpu = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        least = min(v[0] for v in values)
        summary[name] = (cpu, least)
        print(f"  {name:9s} CPU {cpu * 1e3:.2f} ms ({args.bars / cpu / 1e6:.1f} M bars/s), "
              f"wall {wall * 1e3:7.2f} ms; the least round's CPU {least * 1e3:.2f} ms")  # fmt: skip
    (cpu, least), (host, host_least) = summary["portable"], summary["this CPU"]
    print(f"portable / this CPU (CPU time): {cpu / host:.3f} (the least rounds: "
          f"{least / host_least:.3f})")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
