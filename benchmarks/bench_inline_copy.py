"""numba's inliner copies an inlined function's whole scope once per block: a reproduction.

`numba.core.inline_closurecall.InlineWorker.inline_ir` copies the function it inlines
(``inline="always"``) with one ``copy.deepcopy`` per block; each block's statements
hold variables, each variable holds the scope, and the scope holds every variable of
the function, so each block's copy takes the whole scope again: time and memory grow
with blocks x variables. A bar stage of `tradeloom.core.bar` has hundreds of blocks and
thousands of variables once its own helpers are inlined into it.

This builds a function of N branches (N blocks and a few variables each), inlines it
into a caller, and times the caller's compile in a fresh process, with numba's copy
and with `tradeloom.kernels.jit`'s (one memo per scope: the blocks share one copy of it), for
each N. Both compiled callers return the same value.

    python benchmarks/bench_inline_copy.py [--sizes 50 100 200 400] [--smoke]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap

from smoke import add_smoke, parse_args

CHILD = textwrap.dedent(
    """
    import sys, time
    import numba
    n, fixed = int(sys.argv[1]), sys.argv[2] == "1"
    if fixed:
        from tradeloom.kernels import jit
        jit._copy_inlined_scope_once()
    lines = ["def body(x):", "    total = 0.0"]
    for k in range(n):
        lines += [
            f"    if x > {k}:",
            f"        a{k} = x * {k + 1}.0",
            f"        b{k} = a{k} - {k}.5",
            f"        total += a{k} * b{k}",
        ]
    lines.append("    return total")
    space = {}
    exec("\\n".join(lines), space)
    body = numba.njit(inline="always")(space["body"])

    def caller(x):
        return body(x) + 1.0

    start = time.process_time()
    value = numba.njit(caller)(float(n))
    print(f"{time.process_time() - start:.2f} {value!r}")
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    add_smoke(parser, sizes=[10])
    args = parse_args(parser)
    print(f"{'branches':>8}  {'numba copy (s CPU)':>18}  {'one memo (s CPU)':>16}  same value")
    for n in args.sizes:
        runs = []
        for fixed in ("0", "1"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(n), fixed],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds, value = out.stdout.split()
            runs.append((float(seconds), value))
        print(f"{n:>8}  {runs[0][0]:>18.2f}  {runs[1][0]:>16.2f}  {runs[0][1] == runs[1][1]}")


if __name__ == "__main__":
    main()
