"""The live parity monitor's cost per check at bar 1,000 and at bar 100,000 (issue 85:
within 1.2x), over a paper run on the simulated clock.

A strategy on the synthetic market (``--bars`` live bars after as many of history, a
logistic regression trained once, a threshold signal that trades often) runs on paper
on the simulated clock (``tradeloom run --mode paper --clock simulated --speed max``, in
this process) with ``live.parity: {every_bars: --every, window_bars: --every}``. Each
check the monitor runs (`ParityFollower.check`, in the monitor's thread: the replay
stepped over the bars since the last check, the run's new rows and ``equity.csv``'s new
lines compared with it) is timed, wall and the thread's own CPU (steadier on a shared
machine: the trading thread runs beside it); each check is waited for before the next
bar (as the tests do), so one falls every ``--every`` bars whatever the machine's speed
(a run never waits for one: at ``--speed max`` a slow check would cover more bars). The
medians of the ``--checks`` checks
from bar ``--early`` on and of the last ``--checks`` are compared. Beside them, the
whole check (`window_parity`: the replay from the first live bar and the comparison,
what every check cost before, in this process without the process start) at the same
two bars, and its fields against each journaled row of a check at or before bar
``--verify`` and the last one (to the bit).

    python benchmarks/bench_parity_follow.py [--bars 100000] [--every 100] [--checks 9]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.cli.main import main
from tradeloom.diagnostics.live_parity import window_parity
from tradeloom.journal import read_rows
from tradeloom.live.lifecycle.parity_follow import ParityFollower
from tradeloom.live.lifecycle.parity_stage import ParityStage
from tradeloom.live.tick.runner import LiveRunner

STRATEGY = """\
name: bench_follow
seed: 3
data: {{kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: {bars}, start: "2000-01-01"}}
features:
  - {{kind: log_return, period: 1}}
  - {{kind: rsi, window: 14}}
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  params: {{max_iter: 200}}
  label: {{horizon: 3}}
  walk_forward: {{train_window: 300, retrain_every: 1000000}}
signal: {{kind: threshold, threshold: 0.01, min_interval: 1}}
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.5}}
execution: {{kind: simulated, fee_bps: 10, initial_cash: 50000}}
live:
  parity: {{every_bars: {every}, window_bars: {every}}}
"""


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=100_000, help="live bars played")
    parser.add_argument("--early", type=int, default=1_000, help="the earlier checks' bar")
    parser.add_argument("--every", type=int, default=100, help="bars between checks")
    parser.add_argument("--checks", type=int, default=9, help="checks in each median")
    parser.add_argument("--verify", type=int, default=3_000, help="rows checked up to this bar")
    add_smoke(parser, bars=320, early=80, every=40, checks=2, verify=120)
    args = parse_args(parser)
    print("machine:", describe("numpy", "pandas", "tradeloom"))
    print(load(), "(before)")
    timings: list[tuple[int, float, float, bool]] = []
    check = ParityFollower.check

    def timed(
        self: ParityFollower, run_dir: Path, until: int, window: int, limit: float
    ) -> dict[str, Any]:
        followed = self.followed
        wall, cpu = time.perf_counter(), time.thread_time()
        fields = check(self, run_dir, until, window, limit)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        timings.append((until, wall, cpu, self.followed > followed))
        return fields

    tick = LiveRunner.tick

    def waited(self: LiveRunner, *args: Any, **kwargs: Any) -> Any:
        done = tick(self, *args, **kwargs)
        stage = self.stage(ParityStage)
        if stage is not None:  # each check ends before the next bar: one every --every
            stage.monitor.wait()
        return done

    root = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-follow-", dir=root) as scratch:
        folder = Path(scratch)
        file = folder / "strategy.yaml"
        file.write_text(STRATEGY.format(bars=2 * args.bars, every=args.every))
        out = folder / "paper"
        words = ["--log-level", "error", "-q", "run", str(file), "--mode", "paper"]
        words += ["--clock", "simulated", "--speed", "max", "--out", str(out)]
        ParityFollower.check = timed  # type: ignore[method-assign]
        LiveRunner.tick = waited  # type: ignore[method-assign]
        began = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                if main(words) != 0:
                    raise SystemExit("the paper run failed")
        finally:
            ParityFollower.check = check  # type: ignore[method-assign]
            LiveRunner.tick = tick  # type: ignore[method-assign]
        print(f"paper run of {args.bars:,} live bars: {time.perf_counter() - began:.0f} s")
        _report(args, out, timings)
    print(load(), "(after)")


def _report(
    args: argparse.Namespace, out: Path, timings: list[tuple[int, float, float, bool]]
) -> None:
    rows = [r for r in read_rows(out / "journal.sqlite", ["parity_checked"])]
    first_live = next(iter(read_rows(out / "journal.sqlite", ["live_bar"]))).bar
    whole = sum(1 for t in timings if not t[3])
    print(
        f"{len(timings)} checks every {args.every} bars, {whole} of them by the whole "
        f"replay; {len(rows)} journaled"
    )
    early = [t for t in timings if t[0] - first_live >= args.early][: args.checks]
    late = timings[-args.checks :]
    medians = {}
    for name, group in (("early", early), ("late", late)):
        wall = statistics.median(t[1] for t in group) * 1e3
        cpu = statistics.median(t[2] for t in group) * 1e3
        medians[name] = (wall, cpu)
        at = group[0][0] - first_live
        began = time.thread_time()
        window_parity(out, group[-1][0], args.every, 0.0)
        replay = (time.thread_time() - began) * 1e3
        print(
            f"  live bar {at:>7,}: a check p50 {wall:8.1f} ms wall {cpu:8.1f} ms CPU   "
            f"(the whole check at its last bar: {replay:9.1f} ms CPU)"
        )
    wall_ratio = medians["late"][0] / medians["early"][0]
    cpu_ratio = medians["late"][1] / medians["early"][1]
    print(
        f"  ratio late / early: {cpu_ratio:.2f}x CPU, {wall_ratio:.2f}x wall (target <= 1.2x); "
        + load()
    )
    differ = checked = 0
    for row in rows:
        if row.bar - first_live > args.verify and row is not rows[-1]:
            continue
        values = row.values
        want = window_parity(out, row.bar, int(values["last_bar"] - values["first_bar"]) + 1, 0.0)
        got = {k: values[k] for k in want if k != "max_unexplained"}
        want.pop("max_unexplained")
        checked += 1
        differ += {k: repr(v) for k, v in got.items()} != {k: repr(v) for k, v in want.items()}
    print(f"  {checked} journaled rows against the whole check at their bar: {differ} differ")
    if differ:
        raise SystemExit("the followed checks differ from the whole replay")


if __name__ == "__main__":
    main_()
