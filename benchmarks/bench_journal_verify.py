"""What checking a journal's whole hash chain costs ``tradeloom status`` on a big journal.

``status`` and ``report`` run `tradeloom.journal.verify` before they read a journal (a
deleted middle record, a cut tail or another run's journal is refused in one line):
every row is read, its digest computed (numpy, `tradeloom.journal.chain_numpy`) and
every stored link of the chain checked at once; only a backtest's blocks, which store
the chain value after their last row alone, are chained one row after another.

Two journals of the same rows, built in a temporary folder:

  a. a paper or live run's: every row in its kind's table, as a run appends them
     (``--bars`` live bars, and the signals, decisions, orders and fills of
     ``bars // 20`` decisions: bench_journal's workload);
  b. a backtest's: the same rows written in bulk, as blocks.

Timed ``--runs`` times each (median, min, max): ``verify`` of (a) and (b); ``read_status``
of (a) as the command runs it (verify included), and with verify replaced by nothing
(the reading alone), in the same run, interleaved: the ratio is what the check costs.

    python benchmarks/bench_journal_verify.py [--bars 500000] [--runs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from bench_journal import MINUTE_NS, START_NS, workload
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.engine import status_rows as status
from tradeloom.journal import ColumnBatch, LiveBar, RunIdentity, open_journal, verify


def live_bars(bars: int, after: int) -> ColumnBatch:
    """``bars`` live bars, one a minute, placed after ``after`` rows."""
    rng = np.random.default_rng(7)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.001, bars)))
    index = np.arange(bars, dtype=np.int64)
    return ColumnBatch(
        LiveBar,
        after + index,
        {
            "bar": index,
            "timestamp": START_NS + index * MINUTE_NS,
            "symbol": "BTC/USDT",
            "correlation_id": index,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.uniform(1, 50, bars),
            "probability": rng.random(bars),
            "anomalous": np.zeros(bars, dtype=np.int64),
            "anomaly_score": np.zeros(bars),
            "wall_time": START_NS + (index + 1) * MINUTE_NS,
        },
    )


def build(folder: Path, bars: int, *, tables: bool) -> Path:
    """A run folder whose journal holds the workload's rows (``tables``: as a run appends
    them, one table row each; else as a backtest writes them, in blocks)."""
    folder.mkdir()
    (folder / "strategy.yaml").write_text("name: bench\ndata: {timeframe: 1m}\n")
    mode = "paper" if tables else "backtest"
    journal = open_journal(folder / "journal.sqlite", RunIdentity("bench", folder.name, mode))
    journal._blocks = not tables  # table rows, as a format-2 file takes them
    decisions = workload(max(bars // 20, 1))
    rows = sum(len(b.positions) for b in decisions)
    journal.write_columns([*decisions, live_bars(bars, rows)])
    journal.close()
    return folder


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def line(label: str, seconds: list[float], rows: int) -> str:
    median = statistics.median(seconds)
    return (
        f"  {label:<42} median {median * 1e3:8.1f} ms (min {min(seconds) * 1e3:7.1f}, "
        f"max {max(seconds) * 1e3:7.1f})  {rows / median / 1e6:5.2f} M rows/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=5)
    add_smoke(parser, bars=500, runs=1)
    args = parse_args(parser)
    print(describe("numpy", "pandas"))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        live = build(Path(tmp) / "live", args.bars, tables=True)
        backtest = build(Path(tmp) / "backtest", args.bars, tables=False)
        rows = verify(live / "journal.sqlite").rows
        assert verify(backtest / "journal.sqlite").rows == rows
        size = (live / "journal.sqlite").stat().st_size / 1e6
        print(f"\n{rows:,} rows ({args.bars:,} live bars), {size:.0f} MB as table rows\n")
        now = pd.Timestamp.now(tz="UTC")
        checked, unchecked, live_verify, bulk_verify = [], [], [], []
        for _ in range(args.runs):  # interleaved, so that each sees the same machine
            live_verify.append(timed(lambda: verify(live / "journal.sqlite")))
            bulk_verify.append(timed(lambda: verify(backtest / "journal.sqlite")))
            checked.append(timed(lambda: status.read_status(live, now=now)))
            real = status.verify_again
            status.verify_again = lambda path: None  # type: ignore[assignment,return-value]
            try:
                unchecked.append(timed(lambda: status.read_status(live, now=now)))
            finally:
                status.verify_again = real
        print(line("verify, a run's journal (table rows)", live_verify, rows))
        print(line("verify, a backtest's journal (blocks)", bulk_verify, rows))
        print(line("status (verify included)", checked, rows))
        print(line("status without verify (its reading alone)", unchecked, rows))
        ratio = statistics.median(checked) / statistics.median(unchecked)
        print(f"\n  status pays {ratio:.2f} x its reading for the whole chain's check")


if __name__ == "__main__":
    main()
