"""What publishing a run's events costs its bars: paper ticks with ``live.events`` off and on.

The paper runner of bench_live_tick.py (the loopback exchange emulator, a walk-forward
random forest, the SQLite journal) ticks the same bars in three variants, alternated run
by run (each round starting with another) so that the machine's load falls on each alike:

- ``off``: no ``live.events`` (the reference);
- ``on``: ``live.events`` publishing every committed row to the machine's NATS JetStream
  (``--nats``) and Redis (``--redis``) servers, a subject prefix and stream key of this
  run's own (deleted after);
- ``down``: both brokers' URLs at a port nobody listens on: the publishers fail and back
  off the whole run (a broker outage).

It prints each variant's tick p50 and p99 (ticks that train a fold apart), the ratio of
its p50 to ``off``'s, the load average, and for ``on`` how many rows reached each broker
(every journal row: the publisher keeps up). A tick never waits for a broker: the
publishers are threads that read the committed journal; what they cost a tick is the
GIL they hold while encoding rows (the ratio).

    python benchmarks/bench_publish.py [--bars 300] [--runs 3] [--smoke]
                                       [--nats URL] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import ExitStack, suppress
from decimal import Decimal
from pathlib import Path

import pandas as pd
from bench_live_tick import HISTORY, STRATEGY, make_bars
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.engine.logs import configure_logging
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal.outbox import position_path, read_position
from tradeloom.journal.reader import read_sequenced
from tradeloom.live.tick.runner import LiveRunner
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.schemas import load_strategy
from tradeloom.testing import DEFAULT_API_KEY, DEFAULT_SECRET, ExchangeEmulator

VARIANTS = ("off", "on", "down")


def events_yaml(variant: str, nats: str, redis: str, prefix: str) -> str:
    """Return the ``live.events`` lines of ``variant`` (none for ``off``)."""
    if variant == "off":
        return ""
    if variant == "down":
        nats, redis = "nats://127.0.0.1:9", "redis://127.0.0.1:9/0"
    return (
        "  events:\n"
        f"    - {{kind: nats, url: '{nats}', subject_prefix: {prefix}, stream: {prefix}, "
        "drain_seconds: 0}\n"
        f"    - {{kind: redis_streams, url: '{redis}', key_prefix: {prefix}, drain_seconds: 0}}\n"
    )


def one_run(variant: str, bars: int, folder: Path, events: str) -> tuple[list[float], int, Path]:
    """Tick ``bars`` bars; return the tick times (s), the count of fold-training ticks
    and the run folder."""
    frame = make_bars(HISTORY + bars + 1)
    folder.mkdir(parents=True, exist_ok=True)
    strategy = folder / "paper.yaml"
    text = STRATEGY.replace("live: {stream: poll, stale_after_bars: null, capital: 50000}\n", "")
    strategy.write_text(text + "live:\n  stream: poll\n  stale_after_bars: null\n" + events)
    ticks: list[float] = []
    trained = 0
    run_dir = folder / f"run-{variant}"
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
        config, plugins = load_strategy(strategy, ())
        runner = LiveRunner(
            build_pipeline(config),
            plugins,
            mode="paper",
            run_dir=run_dir,
            clock=lambda: pd.Timestamp(emu.exchange.now_ms(), unit="ms", tz="UTC"),
            watch_file=False,
        )
        runner.attach_observers(stack)  # starts the publishers, as the command does
        runner.start()
        for _ in range(bars):
            emu.advance()
            trainings = len(runner.recorder_or_fail.trainings)
            started = time.perf_counter()
            runner.tick()
            elapsed = time.perf_counter() - started
            if len(runner.recorder_or_fail.trainings) > trainings:
                trained += 1
            else:
                ticks.append(elapsed)
            assert runner.outputs is not None
            runner.outputs.wait()
        runner.stop("benchmark over")
    return ticks, trained, run_dir


def pct(values: list[float], q: float) -> float:
    """Return the ``q`` quantile of ``values`` in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def cleanup(nats: str, redis_url: str, prefix: str) -> None:
    """Delete this benchmark's NATS stream and Redis keys from the shared servers."""
    import nats as nats_client
    import redis

    async def drop() -> None:
        client = await nats_client.connect(nats)
        with suppress(Exception):
            await client.jetstream().delete_stream(prefix)
        await client.close()

    asyncio.run(drop())
    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter(f"{prefix}:*"):
        r.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    add_smoke(parser, bars=12, runs=1)
    args = parse_args(parser)
    configure_logging("error", json=True)
    os.environ.setdefault("BENCH_API_KEY", DEFAULT_API_KEY)
    os.environ.setdefault("BENCH_API_SECRET", DEFAULT_SECRET)
    print(describe("nats-py", "redis", "scikit-learn"))
    prefix = f"bench_publish_{os.getpid()}"
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    p99: dict[str, list[float]] = {v: [] for v in VARIANTS}
    loads: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                # each round starts with another variant: none always pays a round's start
                for variant in VARIANTS[i % 3 :] + VARIANTS[: i % 3]:
                    events = events_yaml(variant, args.nats, args.redis, prefix)
                    folder = Path(tmp) / f"{variant}{i}"
                    ticks, _, run_dir = one_run(variant, args.bars, folder, events)
                    results[variant].append(pct(ticks, 0.5))
                    p99[variant].append(pct(ticks, 0.99))
                    loads.append(os.getloadavg()[0])
                    if variant == "on":
                        rows = sum(1 for _ in read_sequenced(run_dir / "journal.sqlite"))
                        acked = [
                            getattr(read_position(position_path(run_dir, n)), "seq", 0)
                            for n in ("nats", "redis_streams")
                        ]
                        print(f"run {i}: {rows} journal rows; acked by nats, redis: {acked}")
    finally:
        cleanup(args.nats, args.redis, prefix)
    reference = statistics.median(results["off"])
    for variant in VARIANTS:
        p50 = statistics.median(results[variant])
        print(
            f"paper tick, events {variant:4s}: p50 {p50:6.2f} ms, p99 "
            f"{statistics.median(p99[variant]):6.2f} ms, ratio to off {p50 / reference:5.2f} "
            f"(median of {args.runs} runs of {args.bars} bars)"
        )
    print(f"load average (1 min) during the runs: {min(loads):.1f} .. {max(loads):.1f}")


if __name__ == "__main__":
    main()
