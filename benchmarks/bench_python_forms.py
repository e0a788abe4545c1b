"""What a small run's kernels cost as Python and compiled: the two numbers of the first run's rule.

`tradeloom.kernels.first_run.python_is_cheaper` runs a small run's kernels as their Python
forms, without importing numba, when ``bars x symbols x (PYTHON_CELL_SECONDS + features x
PYTHON_FEATURE_SECONDS)`` is below ``NUMBA_START_SECONDS``. This script measures them on
this machine, as a run spends them: the CSV strategy of benchmarks/bench_small_run.py
(``--bars`` one-minute bars, one feature, a precomputed model, long-only, every output file
and report.html) run by ``tradeloom run`` in fresh processes,

- with ``TRADELOOM_FIRST_RUN=python``: the CPU time of every kernel call made outside a
  kernel, as Python (the features' steps, the bar's stages, the metrics' passes, the
  journal's digests, the tables' lines), divided by the bars: the feature's (its one
  ``log_return``) ``PYTHON_FEATURE_SECONDS``, the rest ``PYTHON_CELL_SECONDS``;
- with ``TRADELOOM_FIRST_RUN=compile`` and the kernel cache warm (one untimed run first):
  the CPU time of the same calls compiled, numba's import and each kernel's load from the
  cache included (made at a kernel's first call): ``NUMBA_START_SECONDS`` (the compiled
  bars themselves cost a few milliseconds of it).

Each call's CPU time is its thread's (`time.thread_time`), so the metrics' two threads
are not counted twice. ``--rounds`` rounds, the two forms alternating; the medians are
printed, with the bars at which the two forms cost the same, beside the constants the
package holds. The load average is printed before and after: on a loaded machine both
grow, their ratio (the bars at even) less.

    python benchmarks/bench_python_forms.py [--bars 10000] [--rounds 5] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_run import write_market
from bench_small_run import environment
from machine import describe
from smoke import add_smoke, parse_args

CHILD = """
import json, sys, time
from tradeloom.kernels import jit

spent = [0.0, 0.0]
depth = [0]
call = jit.LazyKernel.__call__


def timed(self, *args, **kwargs):
    if depth[0]:
        return call(self, *args, **kwargs)
    depth[0] += 1
    start = time.thread_time()
    try:
        return call(self, *args, **kwargs)
    finally:
        taken = time.thread_time() - start
        spent[0] += taken
        if self._func.__module__.startswith("tradeloom.plugins.features"):
            spent[1] += taken
        depth[0] -= 1


jit.LazyKernel.__call__ = timed
from tradeloom.cli.main import main

code = main(sys.argv[1:])
print("KERNELS " + json.dumps({"seconds": spent[0], "features": spent[1],
                               "numba": "numba" in sys.modules}), file=sys.stderr)
raise SystemExit(code)
"""
"""A ``tradeloom run`` whose outermost kernel calls are timed (a kernel's Python form calls
its callees through the same objects; a thread's calls are counted once, at the top)."""


def measure(folder: Path, mode: str, run: int) -> dict[str, float]:
    """Run the strategy once with ``TRADELOOM_FIRST_RUN=mode``; return what its kernels cost."""
    env = {**environment(), "TRADELOOM_FIRST_RUN": mode}
    out = folder / "runs" / f"{mode}-{run}"
    argv = [sys.executable, "-c", CHILD, "-q", "run", "csv.yaml", "--out", str(out)]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode}: exit {done.returncode}\n{done.stderr[-2000:]}")
    line = next(x for x in done.stderr.splitlines() if x.startswith("KERNELS "))
    found: dict[str, float] = json.loads(line.removeprefix("KERNELS "))
    return found


def main() -> None:
    from tradeloom.kernels.first_run import (
        NUMBA_START_SECONDS,
        PYTHON_CELL_SECONDS,
        PYTHON_FEATURE_SECONDS,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    add_smoke(parser, bars=500, rounds=1)
    args = parse_args(parser)
    print(describe("numpy", "pandas", "numba"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    python: list[float] = []
    feature: list[float] = []
    compiled: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-python-forms-") as tmp:
        folder = Path(tmp)
        write_market(folder, args.bars)
        if not args.smoke:
            measure(folder, "compile", 0)  # untimed: the kernels in the cache
        for k in range(args.rounds):
            for mode in ("python", "compile") if k % 2 == 0 else ("compile", "python"):
                found = measure(folder, mode, k + 1)
                if mode == "python":
                    assert not found["numba"], "a run of Python forms imported numba"
                    python.append(found["seconds"] - found["features"])
                    feature.append(found["features"])
                else:
                    compiled.append(found["seconds"])
    per_cell = statistics.median(python) / args.bars
    per_feature = statistics.median(feature) / args.bars
    start = statistics.median(compiled)
    print(
        f"\n{args.bars:,} bars, {args.rounds} rounds, the forms alternating; the CPU time of "
        "the kernels' calls (median, min, max):"
    )
    print(f"  as Python, the feature:  {statistics.median(feature):.3f} s ({min(feature):.3f}, "
          f"{max(feature):.3f}): {per_feature * 1e6:.1f} us a bar")  # fmt: skip
    print(f"  as Python, the rest:     {statistics.median(python):.3f} s ({min(python):.3f}, "
          f"{max(python):.3f}): {per_cell * 1e6:.1f} us a bar")  # fmt: skip
    print(f"  compiled:                {start:.3f} s ({min(compiled):.3f}, {max(compiled):.3f}), "
          "numba's import and the cache's loads included")  # fmt: skip
    print(f"  the forms cost the same at {start / (per_cell + per_feature):,.0f} bars")
    ours = PYTHON_CELL_SECONDS + PYTHON_FEATURE_SECONDS
    print(
        f"the package's rule (tradeloom.kernels.first_run): PYTHON_CELL_SECONDS = "
        f"{PYTHON_CELL_SECONDS * 1e6:.1f} us, PYTHON_FEATURE_SECONDS = "
        f"{PYTHON_FEATURE_SECONDS * 1e6:.1f} us, NUMBA_START_SECONDS = "
        f"{NUMBA_START_SECONDS:.2f} s: even at {NUMBA_START_SECONDS / ours:,.0f} bars"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(json.dumps({"python seconds": python, "feature seconds": feature,
                      "compiled seconds": compiled, "python per bar": per_cell,
                      "feature per bar": per_feature, "numba start": start}))  # fmt: skip


if __name__ == "__main__":
    main()
