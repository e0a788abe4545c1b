"""How fast the typed journal writes a backtest's events in bulk, against bare executemany.

The workload is bench_core's (1,000,000 one-minute bars, SMA cross): 27,000 signals,
14,000 risk decisions, 27,000 orders and 27,000 fills, 95,000 rows, interleaved as a
backtest journals them (signal, decision, order at a bar's close; the fill at the next
bar's open). Timed, each in a fresh file, ``--runs`` times (median, min, max):

  a. `SqliteJournal.write_columns`: the column arrays in, rows hashed into the chain
     (numba), converted, written with multi-row INSERTs, committed (WAL,
     ``synchronous=FULL``);
  b. the floor: the same rows (hashes included, computed beforehand) as ready-made
     Python tuples, written by a bare ``executemany`` per table into the same tables,
     one transaction, committed;
  c. the per-event path (`SqliteJournal.append` of each typed event, then one
     ``flush``), as the per-bar driver and paper/live runs write;
  d. the PostgreSQL journal (`PostgresJournal`, a schema of its own, dropped after):
     ``write_columns`` (``COPY``) and the per-event path, each as a ratio of (a) or
     (c) measured in the same run. ``--pg-url`` names the server (default: the local
     test server, ``postgresql://postgres@127.0.0.1:5432/test``); ``--no-pg`` skips it.

    python benchmarks/bench_journal.py [--runs 7] [--decisions 27000] [--pg-url URL] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.journal import (
    ColumnBatch,
    Event,
    FillEvent,
    OrderEvent,
    PgTarget,
    RiskDecision,
    RunIdentity,
    SignalEvent,
    open_journal,
)
from tradeloom.journal.blocks import decode_block
from tradeloom.journal.schema import schema_of

IDENTITY = RunIdentity("bench", "bench-journal", "backtest")
START_NS = pd.Timestamp("2020-01-01", tz="UTC").value
MINUTE_NS = 60_000_000_000


def workload(decisions: int, seed: int = 3) -> list[ColumnBatch]:
    """Return the batches of ``decisions`` signals, orders and fills, and about half as
    many risk decisions (the accepted entries), positioned as a backtest journals them."""
    rng = np.random.default_rng(seed)
    bars = np.sort(rng.choice(np.arange(50, 999_000), decisions, replace=False)).astype(np.int64)
    decided = rng.random(decisions) < 0.52  # entries get an accepted decision row
    per = 3 + decided.astype(np.int64)  # signal, [decision], order, fill
    first = np.concatenate([[0], np.cumsum(per)[:-1]])
    times = START_NS + bars * MINUTE_NS
    side = np.where(np.arange(decisions) % 2 == 0, 1, -1).astype(np.int64)
    ids = [f"bench-1a2b3c4d-{n:06d}" for n in range(1, decisions + 1)]
    reasons = np.asarray(["ENTRY", "EXIT_SIGNAL"], dtype=object)[(side < 0).astype(int)].tolist()
    quantity = rng.uniform(0.1, 3.0, decisions)
    price = 30_000 * np.exp(rng.normal(0, 0.01, decisions))
    header = {"bar": bars, "timestamp": times, "symbol": "BTC/USDT", "correlation_id": bars}
    fill_header = {
        "bar": bars + 1,
        "timestamp": times + MINUTE_NS,
        "symbol": "BTC/USDT",
        "correlation_id": bars,
    }
    d = np.flatnonzero(decided)
    return [
        ColumnBatch(
            SignalEvent,
            first,
            {
                **header,
                "direction": side,
                "confidence": rng.random(decisions),
                "probability": rng.random(decisions),
            },
        ),
        ColumnBatch(
            RiskDecision,
            first[d] + 1,
            {
                "bar": bars[d],
                "timestamp": times[d],
                "symbol": "BTC/USDT",
                "correlation_id": bars[d],
                "outcome": "accepted",
                "reason": "ENTRY",
                "target_fraction": np.ones(len(d)),
            },
        ),
        ColumnBatch(
            OrderEvent,
            first + 1 + decided,
            {
                **header,
                "id": ids,
                "side": side,
                "quantity": quantity,
                "reason": reasons,
                "reference_price": price,
                "kind": "market",
                "stop_price": np.full(decisions, np.nan),
            },
        ),
        ColumnBatch(
            FillEvent,
            first + 2 + decided,
            {
                **fill_header,
                "order_id": ids,
                "side": side,
                "quantity": quantity,
                "price": price * 1.0001,
                "fee": quantity * price * 0.001,
                "slippage": np.zeros(decisions),
            },
        ),
    ]


def events_of(batches: list[ColumnBatch]) -> list[Event]:
    """Return the typed events of ``batches`` in position order (for the per-event path)."""
    placed: list[tuple[int, Event]] = []
    for batch in batches:
        n = len(batch.positions)
        columns = {
            k: (np.broadcast_to(np.asarray(v, dtype=object), n) if isinstance(v, str) else v)
            for k, v in batch.columns.items()
        }
        for i in range(n):
            values = {k: _item(v[i]) for k, v in columns.items()}
            values["timestamp"] = pd.Timestamp(values["timestamp"], tz="UTC")
            placed.append((int(batch.positions[i]), batch.kind(**values)))
    placed.sort(key=lambda item: item[0])
    return [event for _, event in placed]


def _item(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def bulk(folder: Path, batches: list[ColumnBatch], k: int) -> float:
    journal = open_journal(folder / f"bulk-{k}.sqlite", IDENTITY)
    seconds = timed(lambda: journal.write_columns(batches))
    journal.close()
    return seconds


def floor(folder: Path, source: Path, k: int) -> float:
    """executemany of the rows ``source`` holds, as ready tuples, into an empty copy: the
    rows its bulk write stored as blocks (`tradeloom.journal.blocks`), as each kind's
    table holds a row."""
    path = folder / f"floor-{k}.sqlite"
    journal = open_journal(path, IDENTITY)
    journal.close()
    rows: dict[str, list[tuple[object, ...]]] = {}
    with sqlite3.connect(source) as db:
        for kind in ("signal", "risk_decision", "order", "fill"):
            schema = schema_of(kind)
            blocks = db.execute(
                'SELECT first_seq, last_seq, "rows", "columns", data, digest, hash '
                'FROM "segment" WHERE kind = ? ORDER BY first_seq',
                (kind,),
            )
            # a block holds its chain value after its last row alone: each tuple gets a
            # stand-in hash of the same type (the floor times the insert, not the chain)
            rows[schema.table] = [
                (*row[:-1], 0)
                for block in blocks
                for row in decode_block(schema, *block).sql_rows()
            ]
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    statements = {
        t: f'INSERT INTO "{t}" VALUES ({",".join("?" * len(r[0]))})' for t, r in rows.items()
    }

    def write() -> None:
        db.execute("BEGIN")
        for table, tuples in rows.items():
            db.executemany(statements[table], tuples)
        db.execute("COMMIT")

    seconds = timed(write)
    db.close()
    return seconds


def per_event(folder: Path, events: list[Event], k: int) -> float:
    journal = open_journal(folder / f"append-{k}.sqlite", IDENTITY, flush_every=len(events) + 1)

    def write() -> None:
        for event in events:
            journal.append(event)
        journal.flush()

    seconds = timed(write)
    journal.close()
    return seconds


def pg_bulk(target: PgTarget, batches: list[ColumnBatch], k: int) -> float:
    from tradeloom.journal.postgres import PostgresJournal

    journal = PostgresJournal(target, RunIdentity("bench", f"bulk-{k}", "backtest"))
    seconds = timed(lambda: journal.write_columns(batches))
    journal.close()
    return seconds


def pg_per_event(target: PgTarget, events: list[Event], k: int) -> float:
    from tradeloom.journal.postgres import PostgresJournal

    identity = RunIdentity("bench", f"append-{k}", "backtest")
    journal = PostgresJournal(target, identity, flush_every=len(events) + 1)

    def write() -> None:
        for event in events:
            journal.append(event)
        journal.flush()

    seconds = timed(write)
    journal.close()
    return seconds


def postgres(
    url: str, batches: list[ColumnBatch], events: list[Event], runs: int
) -> tuple[list[float], list[float]]:
    """Time the PostgreSQL journal's two write paths in a schema of its own; return the
    seconds of each ``write_columns`` and of each per-event write."""
    import psycopg

    schema = f"bench_journal_{os.getpid()}"
    target = PgTarget(url, "--pg-url", schema)
    try:
        with psycopg.connect(url, autocommit=True) as db:
            version = db.execute("SHOW server_version").fetchone()
            sync = db.execute("SHOW synchronous_commit").fetchone()
    except psycopg.Error as exc:
        print(f"\nPostgreSQL: not reachable ({' '.join(str(exc).split())}); --no-pg skips it")
        raise SystemExit(1) from None
    shown = (version[0] if version else "?", sync[0] if sync else "?")
    print(f"\nPostgreSQL {shown[0]}, synchronous_commit={shown[1]}")
    try:
        pg_bulk(target, batches, -1)  # makes the tables
        copied = [pg_bulk(target, batches, k) for k in range(runs)]
        appended = [pg_per_event(target, events, k) for k in range(max(1, runs // 2))]
    finally:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]
    return copied, appended


def line(label: str, seconds: list[float], rows: int, floor_median: float | None) -> str:
    median = statistics.median(seconds)
    ratio = "" if floor_median is None else f"  {median / floor_median:5.2f} x the floor"
    return (
        f"  {label:<44} median {median * 1e3:7.1f} ms (min {min(seconds) * 1e3:6.1f}, "
        f"max {max(seconds) * 1e3:6.1f})  {rows / median / 1e6:5.2f} M rows/s{ratio}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--decisions", type=int, default=27_000)
    parser.add_argument("--event-runs", type=int, default=3)
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL server"
    )
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL journal")
    add_smoke(parser, runs=1, decisions=2_000, event_runs=1, no_pg=True)
    args = parse_args(parser)
    print(describe("numpy", "numba", "pandas"))
    print(f"SQLite {sqlite3.sqlite_version}")
    batches = workload(args.decisions)
    rows = sum(len(b.positions) for b in batches)
    counts = ", ".join(f"{len(b.positions):,} {b.kind.KIND}" for b in batches)
    print(f"\n{rows:,} rows ({counts}); WAL, synchronous=FULL, {tempfile.gettempdir()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bulk(folder, batches, -1)  # compiles the kernels
        ours, bare = [], []
        for k in range(args.runs):  # interleaved, so that both see the same machine
            ours.append(bulk(folder, batches, k))
            bare.append(floor(folder, folder / f"bulk-{k}.sqlite", k))
        floor_median = statistics.median(bare)
        print(line("write_columns (hash chain included)", ours, rows, floor_median))
        print(line("floor: bare executemany of ready tuples", bare, rows, None))
        events = events_of(batches)
        appended = [per_event(folder, events, k) for k in range(args.event_runs)]
        print(line("append per event, one flush", appended, rows, floor_median))
        per_row = statistics.median(appended) / rows * 1e6
        print(f"  ({per_row:.1f} us per appended event)")
        if not args.no_pg:
            copied, pg_appended = postgres(args.pg_url, batches, events, args.runs)
            sqlite_bulk = statistics.median(ours)
            sqlite_append = statistics.median(appended)
            print(line("PostgreSQL write_columns (COPY, chained)", copied, rows, None))
            print(f"    {statistics.median(copied) / sqlite_bulk:5.2f} x SQLite write_columns")
            print(line("PostgreSQL append per event, one flush", pg_appended, rows, None))
            print(f"    {statistics.median(pg_appended) / sqlite_append:5.2f} x SQLite append")


if __name__ == "__main__":
    main()
