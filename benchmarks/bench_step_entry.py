"""What one Python call of the compiled step costs, for one bar: the entry's overhead.

The per-bar paths (paper, live, a backtest with a Python signal, venue or rules layer)
call `tradeloom.core.bar.run_bars` once per bar, so what numba's dispatcher spends
taking the arguments from Python is paid at every bar. Two parts:

1. The entry's forms, on a stand-in kernel that reads one value of each bundle (the
   same arrays as a one-symbol `CoreState`): the 15 arrays one by one; the two bundles
   as the named tuples `Bars` and `State`; the same as plain tuples, named inside; the
   plain tuples built at each call (as `CoreState.run` does). Medians of the rounds,
   in microseconds, and the ratio to the arrays one by one.
2. The real step: `CoreState.run(inputs, t + 1)` for one bar at a time over
   benchmarks/bench_core.py's market and strategy (its rows cleared every 1000 bars),
   the median call in microseconds; in this checkout and in each ``--against
   NAME=CHECKOUT`` (a directory put first on ``PYTHONPATH``), each in its own process,
   the checkouts alternating round by round. Medians over the rounds are printed, and
   this checkout's over each other's.

    python benchmarks/bench_step_entry.py [--bars 20000] [--rounds 5] \\ [--smoke]
        [--against main=/path/to/a/worktree/of/main]
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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from machine import describe
from smoke import add_smoke, parse_args

if TYPE_CHECKING:
    from tradeloom.core.params import CoreSpec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CALLS = 20_000
"""Calls of a stand-in kernel per round (part 1)."""


def _spec() -> CoreSpec:
    from bench_core import tradeloom_setup

    from tradeloom.engine.logs import configure_logging

    configure_logging("error")
    with tempfile.TemporaryDirectory() as tmp:
        _, _, spec = tradeloom_setup(Path(tmp))
    return spec


def _entry_forms(rounds: int) -> None:
    import numba

    from tradeloom.core import layout as L
    from tradeloom.core.context import Bars, State
    from tradeloom.core.state import BarInputs, CoreState

    compile_ = numba.njit(error_model="numpy", _nrt=False, cache=False)

    @compile_
    def separate(t_end, px, flags, score, time_ns, trainings, acct, sym, prm, limits, sent,
                 port, ev, cur, io, scratch):  # type: ignore[no-untyped-def]  # fmt: skip
        return t_end + cur[L.C_T] + px.shape[0] + scratch.shape[0]

    @compile_
    def named(t_end, bars, st):  # type: ignore[no-untyped-def]
        return t_end + st.cur[L.C_T] + bars.px.shape[0] + st.out.shape[0]

    @compile_
    def plain(t_end, inputs, arrays):  # type: ignore[no-untyped-def]
        bars = Bars(*inputs)
        acct, sym, prm, limits, sent, port, ev, cur, io, scratch = arrays
        st = State(acct, sym, prm, limits, sent, port, ev, cur, io, scratch[:8], scratch[8:16])
        return t_end + st.cur[L.C_T] + bars.px.shape[0] + st.out.shape[0]

    n = 100
    inputs = BarInputs.of([np.ones(n)] * 5, np.full(n, 0.5), np.arange(n, dtype=np.int64))
    s = CoreState(_spec())
    bars = inputs.arrays
    arrays = (s.acct, s.sym, s.prm, s.limits, s.sent, s.port, s.ev, s.cur, s.io, s.scratch)
    bundles = (Bars(*bars), s.bundle())
    forms: dict[str, Callable[[], object]] = {
        "15 arrays": lambda: separate(1, *bars, *arrays),
        "named tuples Bars, State": lambda: named(1, *bundles),
        "plain tuples, named inside": lambda: plain(1, bars, arrays),
        "plain tuples built per call": lambda: plain(
            1,
            inputs.arrays,
            (s.acct, s.sym, s.prm, s.limits, s.sent, s.port, s.ev, s.cur, s.io, s.scratch),
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in forms}
    for call in forms.values():
        call()  # compile
    for _ in range(rounds):
        for name, call in forms.items():
            start = time.perf_counter()
            for _ in range(CALLS):
                call()
            times[name].append((time.perf_counter() - start) / CALLS * 1e6)
    base = statistics.median(times["15 arrays"])
    print(f"1. the entry's forms (a stand-in kernel), {CALLS:,} calls x {rounds} rounds; us/call")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<30} {median:6.2f}  (min {min(values):.2f})  x{median / base:.2f}")


def _step_per_bar(bars: int) -> float:
    """Return the median microseconds of one `CoreState.run` call for one bar."""
    from bench_core import market, sma_cross

    from tradeloom.core.state import BarInputs, CoreState

    frame = market(bars)
    close = frame["close"].to_numpy()
    entries, exits = sma_cross(close)
    p = np.where(entries, 1.0, np.where(exits, 0.0, 0.5))
    ohlcv = [frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")]
    inputs = BarInputs.of(ohlcv, p, frame.index.asi8)
    state = CoreState(_spec())
    state.run(inputs, 1)  # loads the step
    ns = np.empty(bars - 1, np.int64)
    clock = time.perf_counter_ns
    for t in range(1, bars):
        start = clock()
        state.run(inputs, t + 1)
        ns[t - 1] = clock() - start
        if t % 1000 == 0:
            state.clear()
    return float(np.median(ns)) / 1e3


def _child(checkout: str, bars: int) -> float:
    env = {**os.environ, "PYTHONPATH": checkout}
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--bars", str(bars)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=HERE,
    ).stdout
    return float(json.loads(out.splitlines()[-1])["us"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", action="append", default=[], metavar="NAME=CHECKOUT")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    add_smoke(parser, bars=300, rounds=1)
    args = parse_args(parser)
    if args.child:
        print(json.dumps({"us": _step_per_bar(args.bars)}))
        return
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{describe('numba')}; load average {load}")
    _entry_forms(args.rounds)
    checkouts = {"this": str(ROOT)}
    for item in args.against:
        name, _, path = item.partition("=")
        if not Path(path, "tradeloom").is_dir():
            print(f"  {name}: no checkout at {path}, skipped")
            continue
        checkouts[name] = path
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    order = list(checkouts)
    for r in range(args.rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(_child(checkouts[name], args.bars))
    print(
        f"2. CoreState.run for one bar, bench_core's market and strategy, {args.bars:,} bars "
        f"x {args.rounds} rounds (checkouts alternating); median us/call"
    )
    this = statistics.median(times["this"])
    for name, values in times.items():
        median = statistics.median(values)
        shown = " ".join(f"{v:.2f}" for v in values)
        ratio = "" if name == "this" else f"  this / {name}: x{this / median:.3f}"
        print(f"  {name:<10} {median:6.2f}{ratio}  (rounds: {shown})")


if __name__ == "__main__":
    main()
