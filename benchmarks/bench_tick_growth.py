"""What a tick's or a live reader's call costs early in a run and late in a months-long
one: three places whose cost must not grow with the run's length.

Each is timed at two run lengths, ``--short`` and ``--long`` (documents, or a journal's
live bars, with their decisions' rows: about 1.2 rows a bar), as a run meets them:

  1. the text stage's tick (`TextAnswers.after_tick`): the unscored documents a text
     feature left, journaled once each, over a feed holding that many documents (a tenth
     unscored, all journaled already) that gets one document more each tick, a fifth
     of them unscored;
  2. a feed-only text source's documents (`ReceivedText.documents`, what each text
     feature reads at each bar), at a tick that brought nothing and at one that brought
     one document;
  3. the check of the journal's chain by ``tradeloom status``, the console and the agent
     door (`tradeloom.journal.verify_again`; before it, `verify` of the whole journal at
     each call), a bar's rows appended between calls. The whole `verify` is timed beside
     it.

Printed: the machine, the load average, at each length the median microseconds of a call
(of half the ``--calls`` calls) and the mean number of Python and C functions a call
makes (of the other half, counted by a profile hook: the work, whatever the load and
the caches; none for the whole verify), and the ratio of the times long / short (1.0:
the cost does not grow).

    python benchmarks/bench_tick_growth.py [--short 1000] [--long 50000] [--calls 200]

The same script times the code before these three changes when run from benchmarks/
with ``PYTHONPATH`` on a checkout of it (the journal's check is then `verify`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from bench_journal_verify import build, live_bars
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.journal import RunIdentity, open_journal, verify
from tradeloom.live.lifecycle.text_stage import TextAnswers
from tradeloom.plugins.data.received import ReceivedText, TextRules
from tradeloom.plugins.data.text_source import TextColumns
from tradeloom.text.documents import Documents
from tradeloom.text.feeds import Inbox

_MINUTE = 60 * 10**9
_START = 1_704_067_200 * 10**9  # 2024-01-01
_RULES = TextRules(
    name="news",
    label="data.auxiliary.0 (news)",
    delay_ns=0,
    columns=TextColumns(timestamp="time", symbols="symbols", id="id"),
    max_chars=20_000,
    policy="reject",
)


def _documents(first: int, count: int) -> Documents:
    index = range(first, first + count)
    times = _START + np.arange(first, first + count, dtype=np.int64) * _MINUTE
    return Documents(
        ids=tuple(f"d{n:07d}" for n in index),
        stamped_ns=times,
        visible_ns=times.copy(),
        texts=tuple(f"BTC rally {n}" for n in index),
        titles=("",) * count,
        sources=("",) * count,
        symbols=(("BTC/USDT",),) * count,
    )


def _joined(a: Documents, b: Documents) -> Documents:
    return Documents(
        ids=a.ids + b.ids,
        stamped_ns=np.concatenate([a.stamped_ns, b.stamped_ns]),
        visible_ns=np.concatenate([a.visible_ns, b.visible_ns]),
        texts=a.texts + b.texts,
        titles=a.titles + b.titles,
        sources=a.sources + b.sources,
        symbols=a.symbols + b.symbols,
    )


class _Feed:
    """A text source's documents, a new object when one arrives (as a feed's)."""

    def __init__(self, held: Documents) -> None:
        self.held = held

    def documents(self) -> Documents:
        return self.held


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def record(self, row: Any) -> None:
        self.rows.append(row)


class _Timed:
    """The median microseconds of the calls timed, and the mean Python calls of those
    counted (a call either timed or counted: the profile hook slows it)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.calls: list[int] = []

    def __call__(self, fn: Callable[[], object], counted: bool = False) -> None:
        if counted:
            self.calls.append(_calls(fn))
            return
        start = time.perf_counter()
        fn()
        self.seconds.append(time.perf_counter() - start)

    @property
    def us(self) -> float:
        return statistics.median(self.seconds) * 1e6

    @property
    def mean_calls(self) -> float:
        return statistics.mean(self.calls) if self.calls else math.nan


def _calls(fn: Callable[[], object]) -> int:
    """How many Python and C functions ``fn`` calls."""
    count = 0

    def counted(frame: object, event: str, arg: object) -> None:
        nonlocal count
        count += event in ("call", "c_call")

    sys.setprofile(counted)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def _line(label: str, short: _Timed, long: _Timed, args: argparse.Namespace) -> str:
    def calls(timed: _Timed) -> str:
        return "       -" if math.isnan(timed.mean_calls) else f"{timed.mean_calls:8.0f}"

    return (
        f"  {label:<48} {short.us:9.1f} us {calls(short)} calls at {args.short:>6,}"
        f"  {long.us:9.1f} us {calls(long)} calls at {args.long:>6,}"
        f"  x{long.us / short.us:6.2f}"
    )


# --- 1. the text stage's tick ---------------------------------------------------------


def _text_tick(length: int, ticks: int, folder: Path) -> _Timed:
    feed = _Feed(_documents(0, length))
    feature = SimpleNamespace(of="news", prefix="tone", reasons={})
    for n in range(0, length, 10):
        feature.reasons[f"d{n:07d}"] = "the model refused it"
    data = SimpleNamespace(live_documents=lambda: {"news": feed})
    pipeline = SimpleNamespace(features=[feature], data=data, config=SimpleNamespace(name="s"))
    markets = SimpleNamespace(p=pipeline, portfolio=None)
    recorder = _Recorder()
    link = SimpleNamespace(recorder_or_fail=recorder)
    files = SimpleNamespace(run_dir=folder)
    stage = TextAnswers(files, link, markets)  # type: ignore[arg-type]
    stage.after_tick(1)  # the run so far, journaled
    assert len(recorder.rows) == len(feature.reasons)
    timed = _Timed()
    for k in range(length, length + ticks):
        feed.held = _joined(feed.held, _documents(k, 1))  # (not timed: the feed's work)
        if k % 5 == 0:  # (odd and even ticks alike)
            feature.reasons[f"d{k:07d}"] = "the model refused it"
        timed(lambda: stage.after_tick(1), counted=bool(k % 2))
    assert len(recorder.rows) == len(feature.reasons)
    return timed


# --- 2. a feed-only text source -------------------------------------------------------


class _Handed:
    def __init__(self) -> None:
        self.inbox: Inbox | None = None

    def start(self, cursor: str | None, inbox: Inbox) -> None:
        self.inbox = inbox

    def stop(self) -> None:
        pass


def _line_of(n: int) -> str:
    stamp = np.datetime_as_string(np.datetime64(_START + n * _MINUTE, "ns"), unit="ns")
    return json.dumps(
        {
            "time": f"{stamp}Z",
            "id": f"d{n:07d}",
            "text": f"BTC rally {n}",
            "symbols": ["BTC/USDT"],
            "received_at": f"{stamp}Z",
        }
    )


def _feed_only(length: int, calls: int, folder: Path) -> tuple[_Timed, _Timed]:
    folder.mkdir()
    (folder / "news.jsonl").write_text("".join(_line_of(n) + "\n" for n in range(length)))
    receiver = _Handed()
    feed = ReceivedText(_RULES, receiver, None)
    feed.attach(folder)
    clock = iter(range(_START + (length + 1) * _MINUTE, 2**62, _MINUTE))
    feed.start(lambda: next(clock))
    assert receiver.inbox is not None and len(feed.documents()) == length
    quiet, arrived = _Timed(), _Timed()
    for k in range(calls):
        quiet(feed.documents, counted=bool(k % 2))  # a tick that brought nothing
        n = length + k
        receiver.inbox.put(f"bench {n}", _line_of(n).encode(), str(n))
        assert not feed.take()  # (not timed: the feed's own work)
        arrived(feed.documents, counted=bool(k % 2))  # a tick that brought one
    assert len(feed.documents()) == length + calls
    return quiet, arrived


# --- 3. status's check of the journal -------------------------------------------------


def _journal_check(
    length: int, calls: int, folder: Path, check: Callable[[Path], object]
) -> tuple[_Timed, _Timed]:
    run = build(folder, length, tables=True)
    path = run / "journal.sqlite"
    check(path)  # the reader's first call: the whole chain
    journal = open_journal(path, RunIdentity("bench", run.name, "paper"))
    checked, whole = _Timed(), _Timed()
    try:
        for k in range(calls):
            journal.write_columns([live_bars(1, 0)])  # a bar's row, after the others
            journal.flush()
            checked(lambda: check(path), counted=bool(k % 2))
            if k % 10 == 0:  # the whole chain, now and then (its cost grows)
                whole(lambda: verify(path))
    finally:
        journal.close()
    return checked, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=1_000)
    parser.add_argument("--long", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=200)
    add_smoke(parser, short=100, long=300, calls=3)
    args = parse_args(parser)
    print(describe("numpy", "pandas"))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    try:
        from tradeloom.journal import verify_again
    except ImportError:  # (before it: each call verified the whole journal)
        verify_again = verify
    with tempfile.TemporaryDirectory(prefix="bench-tick-growth-") as tmp:
        root = Path(tmp)
        text = [_text_tick(n, args.calls, root) for n in (args.short, args.long)]
        print(_line("1. text stage, a tick (TextAnswers.after_tick)", *text, args))
        quiet, arrived = zip(
            *(_feed_only(n, args.calls, root / f"feed-{n}") for n in (args.short, args.long)),
            strict=True,
        )
        print(_line("2. feed-only source, a tick that brought none", *quiet, args))
        print(_line("   ... a tick that brought one document", *arrived, args))
        found = [
            _journal_check(n, args.calls, root / f"run-{n}", verify_again)
            for n in (args.short, args.long)
        ]
        print(_line("3. status's journal check, a bar's rows since", *(f[0] for f in found), args))
        print(_line("   the whole verify (each call before)", *(f[1] for f in found), args))


if __name__ == "__main__":
    main()
