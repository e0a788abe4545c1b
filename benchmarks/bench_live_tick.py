"""What one live bar costs: a paper and a live tick against the loopback emulator.

A tick is what the live runner does when a bar closes: fetch the closed bar
(REST ``fetch_ohlcv``), step the features, predict with the fold's compiled trees,
journal the bar, run the engine, send any order (live: through ccxt to the
emulator, intent committed first), poll the venue's trades (live), train a fold
when one is due, commit the journal. Two references measured in the same run:

- the floor: one bare ccxt ``fetch_ohlcv`` round trip to the same emulator (the
  least any REST-polling tick can cost);
- the backtest's per-bar engine over the same strategy and bars (no I/O).

Ticks that train a walk-forward fold are reported apart (p50 of those). The run's
files (``metrics.json``, ``equity.csv``, ``trades.csv``) are written on a thread of
their own after each tick; the benchmark lets that finish before the next bar closes,
as any bar interval longer than a refresh does, and reports its time per bar apart.
The floor is measured after it, with that thread idle as the tick finds it (measured
while the thread writes, the round trip waits for the GIL and flatters the ratio).

The tick's ``journal`` stage (its events appended and committed) is printed apart with
the ratio of the rest of the tick to the floor. A tick that sends no order commits
without fsync (SQLite ``synchronous=NORMAL``, no tail record; PostgreSQL
``synchronous_commit`` off for the transaction: docs/guides/operating-live-runs.md);
a live tick that sends one commits its intent durably first (``synchronous=FULL`` and
the tail record: three fsyncs on SQLite) and counts among the ticks measured.

Each mode runs with the SQLite journal and with the PostgreSQL journal (``journal:
{url: ...}``, a schema of its own on ``--pg-url``, dropped after; ``--no-pg`` skips
it): the PostgreSQL tick's p50 is also given as a ratio of the SQLite tick's.

Then the run's observers: paper ticks with ``live.metrics`` and ``live.alerts`` off,
on (alerts delivered to a local HTTP server that answers at once), and on with a
webhook that hangs (it never answers: the alerts' queue fills and drops). Every variant
flips the kill switch on and off every 10 bars, so each one raises the same alerts; the
ratio to the "off" variant is the observers' cost per tick.

Logs go to stderr at ``--log-level`` (warning, the command line's default), so that
what is measured is the tick, not the console renderer printing debug lines.

    python benchmarks/bench_live_tick.py [--bars 400] [--runs 3] [--log-level warning] [--smoke]
                                         [--pg-url URL | --no-pg]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.engine.logs import configure_logging
from tradeloom.engine.wiring import build_pipeline
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.schemas import load_strategy
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator

HISTORY = 300
STRATEGY = """\
name: bench_live
seed: 3
data:
  kind: ccxt
  exchange: binance
  symbol: BTC/USDT
  timeframe: 1h
  start: "2024-01-01"
  cache_dir: cache
  api_key: ${BENCH_API_KEY}
  secret: ${BENCH_API_SECRET}
features:
  - {kind: log_return, period: 1}
  - {kind: log_return, period: 6}
  - {kind: rsi, window: 14}
  - {kind: volatility, window: 24}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 50, max_depth: 5, min_samples_leaf: 10, n_jobs: 1}
  label: {horizon: 3}
  walk_forward: {train_window: 250, retrain_every: 100}
signal: {kind: threshold, threshold: 0.04, min_interval: 2}
risk: {sizing: {kind: fixed_fraction, fraction: 0.5}}
execution: {kind: simulated, fee_bps: 10, initial_cash: 50000}
live: {stream: poll, stale_after_bars: null, capital: 50000}
"""


def make_bars(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    close = 20_000 + np.cumsum(rng.normal(0, 60, n))
    open_ = np.r_[20_000.0, close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + rng.uniform(1, 60, n),
            "low": np.minimum(open_, close) - rng.uniform(1, 60, n),
            "close": close,
            "volume": rng.uniform(1, 50, n),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp"),
    )
    return frame.round({"open": 2, "high": 2, "low": 2, "close": 2, "volume": 5})


PG_SCHEMA = f"bench_live_{os.getpid()}"
"""The PostgreSQL journal's schema in this run (dropped at the end)."""

JOURNAL = f"journal:\n  url: ${{BENCH_JOURNAL_URL}}\n  schema: {PG_SCHEMA}\n"
"""The strategy file's section that journals to PostgreSQL."""


OBSERVED = STRATEGY.replace(
    "live: {stream: poll, stale_after_bars: null, capital: 50000}",
    """live:
  stream: poll
  stale_after_bars: null
  capital: 50000
  metrics: {port: 0}
  alerts:
    targets: [{kind: webhook, url: "${BENCH_WEBHOOK_URL}"}]
    queue_size: 10
    timeout_seconds: 30""",
)


@contextmanager
def webhook(hang: bool) -> Iterator[str]:
    """Serve a webhook on 127.0.0.1 that answers at once, or never (until the end)."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            if hang:
                release.wait()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def one_run(
    mode: str, bars: int, folder: Path, *, pg: bool = False, observers: str | None = None
) -> dict[str, list[float]]:
    """Tick ``bars`` bars; ``pg``: journal to PostgreSQL; ``observers``: None (as before),
    off, on or hanging."""
    frame = make_bars(HISTORY + bars + 1)
    folder.mkdir(parents=True, exist_ok=True)
    strategy = folder / f"{mode}.yaml"
    text = STRATEGY if observers in (None, "off") else OBSERVED
    strategy.write_text(text + (JOURNAL if pg else ""))
    times: dict[str, list[float]] = {
        "tick": [],
        "train": [],
        "floor": [],
        "files": [],
        "journal": [],
    }
    with ExitStack() as stack:
        emu = stack.enter_context(
            ExchangeEmulator(
                {"BTC/USDT": frame},
                {"USDT": Decimal(100_000)},
                start=HISTORY,
                include_open_kline=False,
            )
        )
        stack.enter_context(
            use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False}))
        )
        stack.enter_context(use_pro_client_factory("binance", None))
        if observers is not None:
            url = stack.enter_context(webhook(hang=observers == "hanging"))
            os.environ["BENCH_WEBHOOK_URL"] = url
        config, plugins = load_strategy(strategy, ())
        runner = LiveRunner(
            build_pipeline(config),
            plugins,
            mode=mode,  # type: ignore[arg-type]
            run_dir=folder / f"run-{mode}-{folder.name}",  # a run id per run (PostgreSQL)
            clock=lambda: pd.Timestamp(emu.exchange.now_ms(), unit="ms", tz="UTC"),
            watch_file=False,
        )
        if observers is not None:
            runner.attach_observers(stack)  # metrics and alerts, as the command does
        journal: list[float] = []
        if runner.stages is None:  # the journal's stage of each bar (observers time it too)
            runner.stages = lambda stage, took: journal.append(took) if stage == "journal" else None
        runner.start()
        floor_client = emu.client(enableRateLimit=False)
        floor_client.load_markets()
        for n in range(bars):
            if observers is not None and n % 10 == 9:  # the same alerts in every variant
                session = runner.session_or_fail
                if session.killed:
                    session.resume("benchmark")
                else:
                    session.kill("benchmark")
            emu.advance()
            trainings = len(runner.recorder_or_fail.trainings)
            journaled = len(journal)
            started = time.perf_counter()
            runner.tick()
            elapsed = time.perf_counter() - started
            key = "train" if len(runner.recorder_or_fail.trainings) > trainings else "tick"
            times[key].append(elapsed)
            if key == "tick":
                times["journal"].append(sum(journal[journaled:]))
            # the files of the bar are written on their own thread before the next bar
            # closes (at any bar interval longer than a refresh); not part of the tick
            assert runner.outputs is not None
            runner.outputs.wait()
            # the floor as the tick meets the venue: with the files' thread idle (one
            # measured while it writes waits for the GIL and flatters the ratio)
            started = time.perf_counter()
            floor_client.fetch_ohlcv("BTC/USDT", "1h", limit=2)
            times["floor"].append(time.perf_counter() - started)
        writer = runner.outputs.writer
        times["files"].append(writer.busy_seconds / max(writer.written, 1))
        runner.stop("benchmark over")
    return times


def backtest_per_bar(bars: int, folder: Path) -> float:
    """Seconds per bar of the backtest's per-bar driver over the same bars (no I/O)."""
    from dataclasses import replace

    from tradeloom.backtest.pipeline import run_backtest
    from tradeloom.domain import Bars, RunInfo, Universe
    from tradeloom.engine.events import Recorder
    from tradeloom.journal import RunIdentity, open_journal

    frame = make_bars(HISTORY + bars)
    frame.index = frame.index.as_unit("ns")
    strategy = folder / "backtest.yaml"
    strategy.write_text(STRATEGY)
    config, plugins = load_strategy(strategy, ())
    pipeline = build_pipeline(config)

    class Frame:  # the data source of the bars in memory: a universe of one
        def load_universe(self) -> Universe:
            bars = Bars(frame, "BTC/USDT", "1h", 3600)
            return Universe((bars,), bars.frame.index)

    pipeline = replace(pipeline, data=Frame())  # type: ignore[arg-type]
    # warm the imports
    pipeline.model.fit_predict(pipeline.data.load_universe().bars[0], _features(pipeline))
    journal = open_journal(folder / "bt.sqlite", RunIdentity("bench", "bt", "backtest"))
    recorder = Recorder(journal, plugins.hook, RunInfo("bt", "bench", "backtest", str(folder)))
    started = time.perf_counter()
    run_backtest(pipeline, recorder, "bt", driver="per_bar")
    journal.close()
    return (time.perf_counter() - started) / len(frame)


def _features(pipeline: object) -> pd.DataFrame:
    from tradeloom.engine.features import compute_features

    return compute_features(pipeline, pipeline.data.load_universe().bars[0])  # type: ignore[arg-type, attr-defined]


def _drop_schema(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE')  # type: ignore[arg-type]


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL server"
    )
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL journal")
    add_smoke(parser, bars=12, runs=1, no_pg=True)
    args = parse_args(parser)
    os.environ["BENCH_JOURNAL_URL"] = args.pg_url
    configure_logging(args.log_level, json=True)
    os.environ.setdefault("BENCH_API_KEY", DEFAULT_API_KEY)
    os.environ.setdefault("BENCH_API_SECRET", DEFAULT_SECRET)
    print(describe("ccxt", "scikit-learn", "numba"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)
        per_bar = [backtest_per_bar(args.bars, folder) for _ in range(args.runs)]
        print(
            f"backtest per-bar driver (whole run incl. walk-forward fits): "
            f"{statistics.median(per_bar) * 1e3:.3f} ms/bar (median of {args.runs})"
        )
        journals = ("sqlite",) if args.no_pg else ("sqlite", "postgresql")
        try:
            for mode in ("paper", "live"):
                sqlite_tick = math.nan
                for journal in journals:
                    pg = journal == "postgresql"
                    runs = [
                        one_run(mode, args.bars, folder / f"{mode}{journal}{i}", pg=pg)
                        for i in range(args.runs)
                    ]
                    tick = statistics.median(p(r["tick"], 50) for r in runs)
                    tick99 = statistics.median(p(r["tick"], 99) for r in runs)
                    train = statistics.median(p(r["train"], 50) for r in runs)
                    floor = statistics.median(p(r["floor"], 50) for r in runs)
                    files = statistics.median(p(r["files"], 50) for r in runs)
                    commit = statistics.median(p(r["journal"], 50) for r in runs)
                    sqlite_tick = tick if not pg else sqlite_tick
                    versus = f"; {tick / sqlite_tick:4.2f}x the SQLite tick" if pg else ""
                    print(
                        f"{mode:5s} {journal:10s} tick p50 {tick:6.2f} ms, p99 {tick99:6.2f} ms; "
                        f"ticks that train a fold p50 {train:6.1f} ms; fetch_ohlcv floor p50 "
                        f"{floor:5.2f} ms; tick / floor {tick / floor:4.2f}x (target <= 1.5)"
                        f"{versus}; of the tick, the journal's commit p50 {commit:5.2f} "
                        f"ms, the rest / floor {(tick - commit) / floor:4.2f}x; the files "
                        f"written off the tick {files:5.1f} ms per bar (medians of {args.runs} "
                        f"runs, {args.bars} bars)"
                    )
            base = 0.0
            for variant in ("off", "on", "hanging"):
                runs = [
                    one_run("paper", args.bars, folder / f"obs-{variant}{i}", observers=variant)
                    for i in range(args.runs)
                ]
                tick = statistics.median(p(r["tick"], 50) for r in runs)
                tick99 = statistics.median(p(r["tick"], 99) for r in runs)
                base = base or tick
                print(
                    f"paper, metrics and alerts {variant:7s}: tick p50 {tick:6.2f} ms, p99 "
                    f"{tick99:6.2f} ms; p50 / off {tick / base:4.2f}x (medians of {args.runs} "
                    f"runs, {args.bars} bars)"
                )
        finally:
            if not args.no_pg:
                _drop_schema(args.pg_url)


if __name__ == "__main__":
    main()
