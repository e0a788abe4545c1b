"""How much Python a live tick runs, by stage: calls per tick, repeatable whatever the load.

Wall-clock ratios on a shared machine move with its load; the number of Python and C
function calls a tick makes does not. This runs `bench_live_tick`'s paper or live run
(the same strategy, emulator and bars) with a profile hook on around `LiveRunner.tick`
only, and counts every call (Python functions and C builtins) under the stage it
happens in: ccxt's ``fetch_ohlcv`` (what the floor also runs), the rest of the poll
(tradeloom's wrapper), the features, the prediction, the bar's journal row, the
engine's bar, the commit, the outputs' snapshot, the control files... Ticks that train
a fold are left out. A stage whose count grows with the run's length is a bug.

    python benchmarks/tick_calls.py paper|live [--bars 200] [--detail STAGE,...] [--smoke]

``--detail`` lists the calls of one tick (the 150th) in those stages, by function.

Two builds compare tick by tick: the run is deterministic, so its ticks pair up. A
median of each build's counts can move by a bucket of ticks (a fill's tick against a
quiet one) while no tick changed; the median of the paired differences cannot::

    python benchmarks/tick_calls.py live --save /tmp/this.json
    PYTHONPATH=/tmp/ref python benchmarks/tick_calls.py live --against /tmp/this.json

(``/tmp/ref``: ``git worktree add /tmp/ref REV``) prints, per stage, the median and mean
of (that build's count - this one's) over the paired ticks, and the same by what the
tick journaled (quiet, an order, a fill...).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import bench_live_tick as bench
import ccxt
from smoke import add_smoke, parse_args

from tradeloom.engine.driver import Engine
from tradeloom.engine.logs import configure_logging
from tradeloom.journal.sqlite import SqliteJournal
from tradeloom.live.outputs.refresh import LiveOutputs
from tradeloom.live.tick import runner, session, ticker
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET

STAGES: dict[CodeType, str] = {
    runner.LiveRunner._tick.__code__: "tick (the rest)",
    runner.LiveRunner._control.__code__: "control files",
    ticker.BarTicker.poll.__code__: "poll (wrapper)",
    ccxt.binance.fetch_ohlcv.__code__: "ccxt fetch_ohlcv",
    ticker.BarTicker.due.__code__: "due bar",
    session.LiveSession._features.__code__: "features",
    session.LiveSession.predict_all.__code__: "predict",
    session.LiveSession._journal_tick.__code__: "bar's journal row",
    session.LiveSession.advance.__code__: "advance (the rest)",
    session.LiveSession.train.__code__: "train check",
    session.LiveSession.step.__code__: "step (the rest)",
    Engine.run.__code__: "engine's bar",
    SqliteJournal.flush.__code__: "commit",
    LiveOutputs.refresh.__code__: "outputs' snapshot",
}
"""The stages, by the function that starts each (the innermost one counts a call)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["paper", "live"])
    parser.add_argument("--bars", type=int, default=200)
    parser.add_argument("--detail", default="", help="stages to list one tick's calls of")
    parser.add_argument("--save", type=Path, help="write each tick's counts by stage (JSON)")
    parser.add_argument("--against", type=Path, help="compare each tick with a --save file")
    add_smoke(parser, mode="paper", bars=20)
    args = parse_args(parser)
    if args.mode is None:
        parser.error("the following arguments are required: mode")
    configure_logging("warning", json=True)
    os.environ.setdefault("BENCH_API_KEY", DEFAULT_API_KEY)
    os.environ.setdefault("BENCH_API_SECRET", DEFAULT_SECRET)
    counts: Counter[str] = Counter()
    named: Counter[tuple[str, str]] = Counter()
    stack: list[tuple[FrameType, str]] = []
    ticks: list[Counter[str]] = []
    journaled: list[str] = []  # what each tick journaled, its kinds of rows
    record = SqliteJournal.append
    detail = set(filter(None, args.detail.split(",")))

    def count(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            stage = STAGES.get(frame.f_code)
            if stage is not None:
                stack.append((frame, stage))
            if stack:
                counts[stack[-1][1]] += 1
                if len(ticks) == 150 and stack[-1][1] in detail:
                    code = frame.f_code
                    named[(stack[-1][1], f"{Path(code.co_filename).name}:{code.co_name}")] += 1
        elif event == "c_call" and stack:
            counts[stack[-1][1]] += 1
            if len(ticks) == 150 and stack[-1][1] in detail:
                named[(stack[-1][1], f"C:{getattr(arg, '__qualname__', arg)}")] += 1
        elif event == "return" and stack and stack[-1][0] is frame:
            stack.pop()

    tick = runner.LiveRunner.tick

    kinds: set[str] = set()

    def append(self: SqliteJournal, event: Any) -> Any:
        kinds.add(event.KIND)
        return record(self, event)

    def counted(self: runner.LiveRunner) -> int:
        trainings = len(self.recorder_or_fail.trainings)
        counts.clear()
        kinds.clear()
        sys.setprofile(count)
        try:
            return tick(self)
        finally:
            sys.setprofile(None)
            if len(self.recorder_or_fail.trainings) == trainings:
                ticks.append(Counter(counts))
                journaled.append(",".join(sorted(kinds - {"live_bar"})) or "quiet")

    SqliteJournal.append = append  # type: ignore[method-assign]

    runner.LiveRunner.tick = counted  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        bench.one_run(args.mode, args.bars, Path(tmp) / "run")
    total = [sum(t.values()) for t in ticks]
    print(
        f"{args.mode}: {len(ticks)} ticks (those that train a fold left out); calls per tick "
        f"median {statistics.median(total):.0f}, mean {statistics.mean(total):.0f}"
    )
    stages = sorted({s for t in ticks for s in t}, key=lambda s: -sum(t[s] for t in ticks))
    for stage in stages:
        each = [t[stage] for t in ticks]
        print(
            f"  {stage:20s} median {statistics.median(each):6.0f}  mean "
            f"{statistics.mean(each):7.1f}  first {each[0]:5d}  last {each[-1]:5d}"
        )
    for (stage, name), n in sorted(named.items()):
        print(f"  {stage:20s} {n:4d} {name}")
    if args.save:
        args.save.write_text(json.dumps({"ticks": ticks, "journaled": journaled}))
    if args.against:
        compare(ticks, journaled, json.loads(args.against.read_text()))


def compare(ticks: list[Counter[str]], journaled: list[str], other: dict[str, Any]) -> None:
    """Print this build's calls less the saved build's, tick by tick."""
    theirs = [Counter(t) for t in other["ticks"]]
    if len(theirs) != len(ticks):
        sys.exit(f"--against: {len(theirs)} ticks saved, {len(ticks)} here: not the same run")
    print("this build less the saved one, per paired tick (median, mean):")
    stages = sorted({s for t in ticks + theirs for s in t})
    for stage in [*stages, "all"]:
        diff = [
            (sum(a.values()) - sum(b.values())) if stage == "all" else a[stage] - b[stage]
            for a, b in zip(ticks, theirs, strict=True)
        ]
        if any(diff):
            print(f"  {stage:20s} {statistics.median(diff):+7.0f} {statistics.mean(diff):+9.1f}")
    print("by what the tick journaled (this build's rows; ticks, median, mean of all stages):")
    for kind in sorted(set(journaled), key=journaled.count, reverse=True):
        diff = [
            sum(a.values()) - sum(b.values())
            for a, b, k in zip(ticks, theirs, journaled, strict=True)
            if k == kind
        ]
        print(
            f"  {kind[:48]:48s} {len(diff):4d} {statistics.median(diff):+7.0f} "
            f"{statistics.mean(diff):+9.1f}"
        )


if __name__ == "__main__":
    main()
