"""What a gate's health and a stage's AUC/ECE rules cost per bar on a long book.

A book of ``--pairs`` resolved predictions (one market, and a universe of ``--symbols``
sharing them) is read at each of ``--bars`` further bar closes two ways: the whole book
again (`prediction_health`, what every reading did before) and `HealthBook.health`, fed
only the bar just closed. The figures must be identical at every bar. Medians and p99 per
bar, in microseconds, and their ratio.

    python benchmarks/bench_book_health.py [--pairs 20000] [--bars 200] [--smoke]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.live.lifecycle.prediction_health import (
    HealthBook,
    PredictionHealth,
    prediction_health,
)


def _timed(read: Callable[[int], PredictionHealth], bars: range) -> tuple[list[object], str, float]:
    ns = np.empty(len(bars))
    figures: list[object] = []
    for i, t in enumerate(bars):
        start = time.perf_counter_ns()
        health = read(t)
        ns[i] = time.perf_counter_ns() - start
        figures.append((health.auc.hex(), health.calibration_error.hex(), health.samples))
    us = ns / 1e3
    p50, p99 = np.percentile(us, [50, 99])
    return figures, f"p50 {p50:9.1f}  p99 {p99:9.1f}", float(p50)


def _case(symbols: int, pairs: int, bars: int, horizon: int) -> None:
    rng = np.random.default_rng(3)
    n = pairs // symbols + horizon + bars
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, symbols)), axis=0))
    rows = {t: rng.random(symbols) for t in range(n)}
    first = n - bars
    book = HealthBook(horizon)
    book.health({t: rows[t] for t in range(first)}, closes[:first], 30)  # the book so far
    asked = {t: rows[t] for t in range(first)}
    grown = dict(asked)

    def whole(t: int) -> PredictionHealth:
        asked[t] = rows[t]
        return prediction_health(asked, closes[: t + 1], horizon, 30)

    def kept(t: int) -> PredictionHealth:
        grown[t] = rows[t]
        return book.health(grown, closes[: t + 1], 30)

    prediction_health(asked, closes[:first], horizon, 30)  # the AUC's kernel compiled
    span = range(first, n)
    before, whole_line, whole_p50 = _timed(whole, span)
    after, kept_line, kept_p50 = _timed(kept, span)
    print(f"{symbols} symbol(s), {book.samples:,} resolved predictions, per bar, microseconds")
    print(f"  {'whole book (prediction_health)':<34} {whole_line}")
    print(f"  {'kept up to date (HealthBook)':<34} {kept_line}")
    print(f"  ratio of medians: {whole_p50 / kept_p50:.1f}x; identical figures: {before == after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--bars", type=int, default=200)
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=4)
    add_smoke(parser, pairs=300, bars=5)
    args = parse_args(parser)
    print("machine:", describe("numpy", "numba", "tradeloom"))
    for symbols in (1, args.symbols):
        _case(symbols, args.pairs, args.bars, args.horizon)


if __name__ == "__main__":
    main()
