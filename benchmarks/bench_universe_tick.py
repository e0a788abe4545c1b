"""What one tick of a paper universe costs: N symbols against the loopback emulator.

A tick is what the live runner does when a bar of the common clock closes over a
universe: poll every symbol (REST ``fetch_ohlcv``, one request each), step each
symbol's features and the cross-sectional ones, predict one row per symbol with the
pooled fold's compiled trees, journal the bars, run the bar loop once over every
symbol, train a fold when one is due, commit the journal. The reference, measured in
the same run: N bare ccxt ``fetch_ohlcv`` round trips to the same emulator (the least
a REST-polling tick over N symbols can cost). Ticks that train a fold are left out.

    python benchmarks/bench_universe_tick.py [--symbols 20] [--bars 200] [--runs 3] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from decimal import Decimal
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
name: bench_universe
seed: 3
data:
  kind: ccxt
  exchange: binance
  symbols: [{symbols}]
  timeframe: 1h
  start: "2024-01-01"
  cache_dir: cache
  api_key: ${{BENCH_API_KEY}}
  secret: ${{BENCH_API_SECRET}}
features:
  - {{kind: log_return, period: 1}}
  - {{kind: log_return, period: 6}}
  - {{kind: rsi, window: 14}}
  - {{kind: cross_rank, of: log_return_6}}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {{n_estimators: 50, max_depth: 5, min_samples_leaf: 10, n_jobs: 1}}
  label: {{horizon: 3}}
  walk_forward: {{train_window: 250, retrain_every: 100}}
  pooling: pooled
signal: {{kind: threshold, threshold: 0.04, min_interval: 2, top_k: 3}}
risk: {{sizing: {{kind: fixed_fraction, fraction: 0.2}}}}
execution: {{kind: simulated, fee_bps: 10, initial_cash: 50000}}
live: {{stream: poll, stale_after_bars: null, capital: 50000, close_delay_seconds: 0}}
"""


def make_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
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


def one_run(symbols: list[str], bars: int, folder: Path) -> dict[str, list[float]]:
    markets = {s: make_bars(HISTORY + bars + 1, 5 + k) for k, s in enumerate(symbols)}
    folder.mkdir(parents=True, exist_ok=True)
    strategy = folder / "universe.yaml"
    strategy.write_text(STRATEGY.format(symbols=", ".join(symbols)))
    times: dict[str, list[float]] = {"tick": [], "floor": []}
    with (
        ExchangeEmulator(
            markets, {"USDT": Decimal(100_000)}, start=HISTORY, include_open_kline=False
        ) as emu,
        use_client_factory("binance", lambda s: emu.client(**{**s, "enableRateLimit": False})),
        use_pro_client_factory("binance", None),
    ):
        config, plugins = load_strategy(strategy, ())
        runner = LiveRunner(
            build_pipeline(config, mode="paper"),
            plugins,
            mode="paper",
            run_dir=folder / "run",
            clock=lambda: pd.Timestamp(emu.exchange.now_ms(), unit="ms", tz="UTC"),
            watch_file=False,
        )
        runner.start()
        floor_client = emu.client(enableRateLimit=False)
        floor_client.load_markets()
        for _ in range(bars):
            emu.advance()
            trainings = len(runner.recorder_or_fail.trainings)
            started = time.perf_counter()
            runner.tick()
            elapsed = time.perf_counter() - started
            if len(runner.recorder_or_fail.trainings) == trainings:
                times["tick"].append(elapsed)
            started = time.perf_counter()
            for symbol in symbols:
                floor_client.fetch_ohlcv(symbol, "1h", limit=2)
            times["floor"].append(time.perf_counter() - started)
        runner.stop("benchmark over")
    return times


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--bars", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    add_smoke(parser, symbols=2, bars=20, runs=1)
    args = parse_args(parser)
    configure_logging("warning", json=True)
    os.environ.setdefault("BENCH_API_KEY", DEFAULT_API_KEY)
    os.environ.setdefault("BENCH_API_SECRET", DEFAULT_SECRET)
    symbols = [f"C{k:02d}/USDT" for k in range(args.symbols)]
    print(describe("ccxt", "scikit-learn", "numba"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)
        runs = [one_run(symbols, args.bars, folder / f"run{i}") for i in range(args.runs)]
    tick50 = statistics.median(ms(r["tick"], 50) for r in runs)
    tick99 = statistics.median(ms(r["tick"], 99) for r in runs)
    floor50 = statistics.median(ms(r["floor"], 50) for r in runs)
    print(
        f"paper tick over {args.symbols} symbols (poll, features, {args.symbols} predictions, "
        f"one bar loop, journal; fold trainings left out): p50 {tick50:.2f} ms, "
        f"p99 {tick99:.2f} ms (median of {args.runs} runs of {args.bars} ticks)"
    )
    print(
        f"floor: {args.symbols} bare fetch_ohlcv round trips: p50 {floor50:.2f} ms; "
        f"tick / floor = {tick50 / floor50:.2f}"
    )


if __name__ == "__main__":
    main()
