"""How fast a run takes documents from a feed, against reading the same documents from a file.

A seeded set of documents (20,000 by default) is handed to a text source's inbox as one
JSON payload each, as a NATS subject or a poll hands them over, then taken as a paper or
live run's tick takes them (`ReceivedText.take`: each checked by the file's rules,
normalised, appended to the run's documents file, kept in memory), in batches of
``--batch`` (a tick's arrivals). The reference: the same documents written as a JSON Lines
file and read at once by `read_documents` (what a backtest does), in the same run. Also
timed: `ReceivedText.documents` after each batch (what the features read: the source's
file merged with what arrived), over a history file of ``--history`` documents.

Printed: the machine, the load average before the runs, documents per second of each
(median of ``--runs``), the ratio take / file (the cost of checking one document at a
time), and the median seconds of a merge.

    python benchmarks/bench_text_feed.py [--documents 20000] [--batch 100]
        [--history 100000] [--runs 3] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.plugins.data.received import ReceivedText, TextRules
from tradeloom.plugins.data.text_source import DocumentFile, TextColumns, read_documents
from tradeloom.text.feeds import Inbox

_RULES = TextRules(
    name="news",
    label="data.auxiliary.0 (news)",
    delay_ns=0,
    columns=TextColumns(timestamp="time", symbols="symbols", id="id"),
    max_chars=20_000,
    policy="reject",
)
_START = pd.Timestamp("2024-01-01", tz="UTC")
_WORDS = [
    "rally",
    "surge",
    "gains",
    "crash",
    "plunge",
    "losses",
    "market",
    "desk",
    "traders",
    "funds",
    "flat",
    "mixed",
]


def _document(n: int) -> dict[str, Any]:
    words = " ".join(_WORDS[(n * 7 + k) % len(_WORDS)] for k in range(12))
    return {
        "id": f"d{n:07d}",
        "time": (_START + pd.Timedelta(seconds=30 * n)).isoformat(),
        "text": f"BTC {words} {n}",
        "symbols": ["BTC/USDT"] if n % 3 else [],
    }


def _earlier(n: int) -> dict[str, Any]:
    """A history file's document, in time order (a minute apart, from 2023)."""
    stamp = pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(minutes=n)
    return {**_document(10**6 + n), "time": stamp.isoformat()}


class _Handed:
    """A receiver whose payloads the benchmark hands over itself."""

    def __init__(self) -> None:
        self.inbox: Inbox | None = None

    def start(self, cursor: str | None, inbox: Inbox) -> None:
        self.inbox = inbox

    def stop(self) -> None:
        pass


def _take(folder: Path, payloads: list[bytes], batch: int, history: Path) -> tuple[float, float]:
    clock = iter(range(10**18, 10**18 + 10**9))
    receiver = _Handed()
    file = DocumentFile(
        lambda: read_documents(
            history,
            label="history",
            delay_ns=0,
            columns=_RULES.columns,
            max_chars=20_000,
            policy="reject",
        ),
        history,
    )
    feed = ReceivedText(_RULES, receiver, file)
    feed.attach(folder)
    feed.start(lambda: next(clock))
    assert receiver.inbox is not None
    feed.documents()
    taking = merging = 0.0
    merges = 0
    for start in range(0, len(payloads), batch):
        for k, body in enumerate(payloads[start : start + batch], start=start):
            receiver.inbox.put(f"bench seq {k}", body, str(k))
        t = time.perf_counter()
        refused = feed.take()
        taking += time.perf_counter() - t
        assert not refused, refused[:1]
        t = time.perf_counter()
        feed.documents()
        merging += time.perf_counter() - t
        merges += 1
    return taking, merging / merges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    add_smoke(parser, documents=300, batch=50, history=1_000, runs=1)
    args = parse_args(parser)
    print(describe("numpy", "pandas"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    documents = [_document(n) for n in range(args.documents)]
    payloads = [json.dumps(d).encode() for d in documents]
    with tempfile.TemporaryDirectory(prefix="bench-text-feed-") as tmp:
        root = Path(tmp)
        history = root / "history.jsonl"
        history.write_text(
            "".join(json.dumps(_earlier(n)) + "\n" for n in range(args.history)),
            encoding="utf-8",
        )
        lines = root / "file.jsonl"
        lines.write_text("".join(p.decode() + "\n" for p in payloads), encoding="utf-8")
        takes, files, merges = [], [], []
        for run in range(args.runs):
            taken, merge = _take(root / f"run{run}", payloads, args.batch, history)
            takes.append(taken)
            merges.append(merge)
            t = time.perf_counter()
            read_documents(
                lines,
                label="file",
                delay_ns=0,
                columns=_RULES.columns,
                max_chars=20_000,
                policy="reject",
            )
            files.append(time.perf_counter() - t)
    take, file, merge = map(statistics.median, (takes, files, merges))
    n = args.documents
    print(f"documents {n:,} in batches of {args.batch}, history {args.history:,}, runs {args.runs}")
    print(f"feed take (checked one by one, kept): {n / take:,.0f} documents/s ({take:.3f} s)")
    print(f"file read (read_documents, at once):  {n / file:,.0f} documents/s ({file:.3f} s)")
    print(f"ratio take / file: {take / file:.1f}")
    print(f"merge with the history after a batch: {merge * 1000:.2f} ms (median)")


if __name__ == "__main__":
    main()
