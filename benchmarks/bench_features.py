"""How fast the feature kernels are, against TA-Lib, and the per-bar latency of a live step.

Batch: on a seeded random walk of 1,000,000 bars, times RSI(14), Bollinger width(20),
the rolling std(10), SMA(20), ADX(14), OBV and the Donchian channel(20) against
talib.RSI, BBANDS, STDDEV, SMA, ADX, OBV and MAX + MIN + MIDPRICE in the same run. Each is
called once first (numba compiles or loads its cache), then the runs
alternate ours and TA-Lib's so that both see the same machine state; the figure is
the median nanoseconds per element, and the ratio ours / TA-Lib (below 1: faster).
TA-Lib's BBANDS returns three bands where ours returns the width: it does more
output work, ours more arithmetic (every window summed from its own values, as the
SMA's). The session VWAP has no TA-Lib counterpart: it is timed against pandas'
groupby-cumsum over the same UTC days.

Per-bar: steps the default strategy's features (strategies/btc_rf.yaml) one bar at
a time over its bars with `FeatureStepper`, as a live run does, checks the rows
against the batch driver bit for bit, and prints the median and p99 microseconds
per bar.

    python benchmarks/bench_features.py [--elements 1000000] [--runs 7] [--bars 20000] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import talib
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.core.kernels.window import rolling_std
from tradeloom.domain import Bar, Bars
from tradeloom.engine.features import compute_features
from tradeloom.engine.wiring import build_pipeline
from tradeloom.plugins.features.adx import adx
from tradeloom.plugins.features.bollinger import bb_width
from tradeloom.plugins.features.donchian import donchian
from tradeloom.plugins.features.obv import obv
from tradeloom.plugins.features.rsi import rsi
from tradeloom.plugins.features.sessions import vwap
from tradeloom.plugins.features.sma import sma
from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[1]


def alternate(ours: Callable[[], object], theirs: Callable[[], object], runs: int) -> tuple:
    ours()
    theirs()  # warm-up: compile or load the cache, fault the pages in
    times: tuple[list[int], list[int]] = ([], [])
    for _ in range(runs):
        for fn, sink in ((ours, times[0]), (theirs, times[1])):
            start = time.perf_counter_ns()
            fn()
            sink.append(time.perf_counter_ns() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def _pandas_vwap(bars: Bars) -> object:
    f = bars.frame
    day = f.index.normalize()
    pv = ((f["high"] + f["low"] + f["close"]) / 3 * f["volume"]).groupby(day).cumsum()
    return pv / f["volume"].groupby(day).cumsum()


def batch(elements: int, runs: int) -> None:
    rng = np.random.default_rng(42)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, elements)))
    opens = np.r_[close[0], close[:-1]]
    high = np.maximum(opens, close) * (1 + np.abs(rng.normal(0, 0.004, elements)))
    low = np.minimum(opens, close) * (1 - np.abs(rng.normal(0, 0.004, elements)))
    volume = rng.lognormal(5, 1, elements)
    index = pd.date_range("2020-01-01", periods=elements, freq="min", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {"open": opens, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )
    bars = Bars(frame, "BENCH", "1m", 60)
    cases = [
        ("RSI(14)", lambda: rsi(close, 14), lambda: talib.RSI(close, 14)),
        (
            "Bollinger width(20)",
            lambda: bb_width(close, 20, 2.0),
            lambda: talib.BBANDS(close, 20, 2.0, 2.0, 0),
        ),
        (
            "rolling std(10)",
            lambda: rolling_std(close, 10, 0),
            lambda: talib.STDDEV(close, 10, 1.0),
        ),
        ("SMA(20)", lambda: sma(close, 20), lambda: talib.SMA(close, 20)),
        ("ADX(14)", lambda: adx(high, low, close, 14), lambda: talib.ADX(high, low, close, 14)),
        ("OBV", lambda: obv(close, volume), lambda: talib.OBV(close, volume)),
        (
            "Donchian(20)",
            lambda: donchian(high, low, 20),
            lambda: (talib.MAX(high, 20), talib.MIN(low, 20), talib.MIDPRICE(high, low, 20)),
        ),
        ("VWAP (vs pandas)", lambda: vwap(bars), lambda: _pandas_vwap(bars)),
    ]
    print(f"batch: {elements:,} random-walk closes, median of {runs} runs, ns per element")
    print(f"  {'kernel':<22}{'tradeloom':>10}{'TA-Lib':>10}{'ratio':>8}")
    for name, ours, theirs in cases:
        mine, reference = alternate(ours, theirs, runs)
        print(
            f"  {name:<22}{mine / elements:>10.3f}{reference / elements:>10.3f}"
            f"{mine / reference:>8.2f}"
        )


def per_bar(limit: int) -> None:
    config, _ = load_strategy(ROOT / "strategies" / "btc_rf.yaml")
    pipeline = build_pipeline(config)
    bars = pipeline.data.load()
    frame = bars.frame.iloc[:limit]
    columns = [frame[k].tolist() for k in ("open", "high", "low", "close", "volume")]
    each = [
        Bar(t, ts, *row) for t, (ts, *row) in enumerate(zip(frame.index, *columns, strict=True))
    ]
    warm = FeatureStepper(pipeline.features, StepContext.of(bars))
    for bar in each[:100]:
        warm.step(bar)  # compile or load the cache
    stepper = FeatureStepper(pipeline.features, StepContext.of(bars))
    rows = []
    times = []
    for bar in each:
        start = time.perf_counter_ns()
        rows.append(stepper.step(bar))
        times.append(time.perf_counter_ns() - start)
    expected = compute_features(pipeline, bars).to_numpy(np.float64)[: len(each)]
    same = np.ascontiguousarray(expected).tobytes() == np.vstack(rows).tobytes()
    micros = np.array(times) / 1000
    print(
        f"per bar: FeatureStepper over btc_rf.yaml's {len(pipeline.features)} features "
        f"({len(stepper.columns)} columns), {len(each):,} bars"
    )
    print(
        f"  median {np.median(micros):.1f} us, p99 {np.percentile(micros, 99):.1f} us per bar; "
        f"rows equal to the batch driver bit for bit: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--bars", type=int, default=20_000, help="bars stepped one at a time")
    add_smoke(parser, elements=2_000, runs=1, bars=300)
    args = parse_args(parser)
    print(describe("numpy", "numba", "TA-Lib", "tradeloom"))
    batch(args.elements, args.runs)
    per_bar(args.bars)


if __name__ == "__main__":
    main()
