"""How long the compiled step takes to compile from an empty cache: its first call.

The first run from a clone spends most of its CPU compiling `tradeloom.core.bar.run_bars`
and what it calls (issue 44). This times one thing only: the first call of `CoreState.run`
on bench_core.py's strategy (a few bars), in a process whose kernel cache is an empty
folder, so every kernel of the step compiles; then a second call, which compiles
nothing. CPU time is the figure to compare (it counts the compiler's work whatever
else the machine runs); wall time and the peak memory are printed beside it.

    python benchmarks/bench_step_compile.py [--smoke]

``--smoke`` uses the user's kernel cache (its first call loads the step instead of
compiling it: minutes at any size).

To compare two checkouts, run each with its own tradeloom first on the path, at the
same time (so that both see the same load), and compare the CPU seconds:

    PYTHONPATH=/work/a:/work/a/benchmarks python benchmarks/bench_step_compile.py &
    PYTHONPATH=/work/b:/work/b/benchmarks python benchmarks/bench_step_compile.py
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

if "--smoke" not in sys.argv[1:]:
    _CACHE = tempfile.mkdtemp(prefix="tradeloom-step-compile-")
    os.environ["NUMBA_CACHE_DIR"] = _CACHE  # before numba or tradeloom is imported
    os.environ["TRADELOOM_KERNEL_CACHE"] = _CACHE

import numba  # imported before the timing: it is not the step's compile
import numpy as np
from bench_core import OHLCV, market, tradeloom_setup
from smoke import add_smoke, parse_args

from tradeloom.core.state import BarInputs, CoreState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_smoke(parser)
    parse_args(parser)
    frame = market(64)
    probability = np.tile([1.0, 0.5, 0.0, 0.5], 16)
    inputs = BarInputs.of(
        [frame[k].to_numpy(np.float64) for k in OHLCV], probability, frame.index.asi8
    )
    with tempfile.TemporaryDirectory() as tmp:
        _, _, spec = tradeloom_setup(Path(tmp))
    runs = []
    for _ in range(2):
        cpu, wall = time.process_time(), time.perf_counter()
        CoreState(spec).run(inputs, len(inputs))
        runs.append((time.process_time() - cpu, time.perf_counter() - wall))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"numba {numba.__version__}, load {os.getloadavg()[0]:.2f}")
    print(f"first call:  {runs[0][0]:.1f} s CPU, {runs[0][1]:.1f} s wall, peak {peak:.0f} MB")
    print(f"second call: {runs[1][0] * 1e3:.2f} ms CPU")


if __name__ == "__main__":
    main()
