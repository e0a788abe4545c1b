"""How long the router's routing decision takes, for 2 and 5 venues with deep books.

Each decision is one call of `tradeloom.core.routing.route`, as the live
router makes it per order once the books and balances are read: every venue's book
(``--levels`` levels a side, 50 by default, sizes growing away from the touch as real
books do) walked up to the order's limit, fees applied, venues ranked, the order split.
The orders alternate buys and sells, market and limit, and are sized so that about
half of them need more than the best venue's depth (a split). ``--decisions``
decisions per run, ``--runs`` runs, interleaved with the reference:

  reference: a bare Python loop walking one book's levels for the same order (the
  least a decision must do), measured in the same run.

Printed: p50 and p99 per decision of each run's timings, the median over the runs,
and the ratio of the p50 to the reference's.

    python benchmarks/bench_execution.py [--decisions 20000] [--runs 5] [--levels 50] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.core.routing import Candidate, RouteOrder, route

Book = tuple[tuple[float, float], ...]


def books(rng: np.random.Generator, levels: int, mid: float) -> tuple[Book, Book]:
    """Return bids and asks around ``mid``: 1 bps apart, sizes growing 5% a level."""
    sizes = 0.2 * 1.05 ** np.arange(levels) * rng.uniform(0.5, 1.5, levels)
    half = mid * (1 + rng.uniform(0.5, 2.0) / 1e4)
    bids = tuple((round(mid * (1 - (k + 1) / 1e4), 2), float(sizes[k])) for k in range(levels))
    asks = tuple((round(half * (1 + k / 1e4), 2), float(sizes[k])) for k in range(levels))
    return bids, asks


def venues(rng: np.random.Generator, count: int, levels: int) -> list[Candidate]:
    """Return ``count`` venues with their own prices, fees, books and balances."""
    out = []
    for k in range(count):
        mid = 30_000.0 * (1 + rng.normal(0, 2e-4))
        bids, asks = books(rng, levels, mid)
        out.append(
            Candidate(
                f"v{k}",
                taker_fee=float(rng.choice([0.0004, 0.0006, 0.001])),
                maker_fee=float(rng.choice([-0.0001, 0.0, 0.0002])),
                last_price=mid,
                bids=bids,
                asks=asks,
                free_quote=float(rng.uniform(50_000, 500_000)),
                free_base=float(rng.uniform(2, 20)),
                lot=0.00001,
                min_amount=0.00001,
                min_notional=5.0,
            )
        )
    return out


def orders(rng: np.random.Generator, n: int) -> list[RouteOrder]:
    """Return ``n`` orders: buys and sells, market and limit, 0.1 to 8 BTC."""
    out = []
    for i in range(n):
        side = 1 if i % 2 == 0 else -1
        limit = math.nan if i % 4 < 2 else 30_000.0 * (1 + side * 10 / 1e4)
        out.append(RouteOrder(side, float(rng.uniform(0.1, 8.0)), 30_000.0, limit_price=limit))
    return out


def bare_walk(order: RouteOrder, book: Book) -> float:
    """The reference: walk one book for ``order`` (no fees, no ranking, no split)."""
    left = order.quantity
    gross = 0.0
    for price, quantity in book:
        if not math.isnan(order.limit_price) and (price - order.limit_price) * order.side > 0:
            break
        part = min(left, quantity)
        gross += part * price
        left -= part
        if left <= 0.0:
            break
    return gross


def per_call(calls: Sequence[tuple[Any, ...]], fn: Callable[..., object]) -> np.ndarray:
    """Return each call's seconds."""
    times = np.empty(len(calls))
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i, args in enumerate(calls):
            start = clock()
            fn(*args)
            times[i] = clock() - start
    finally:
        gc.enable()
    return times / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--levels", type=int, default=50)
    add_smoke(parser, decisions=200, runs=1, levels=5)
    args = parse_args(parser)
    print(describe("numpy"))
    rng = np.random.default_rng(7)
    flow = orders(rng, args.decisions)
    print(
        f"\n{args.decisions:,} decisions a run, {args.runs} runs; books of {args.levels} "
        "levels a side; half market, half limit orders, buys and sells"
    )
    for count in (2, 5):
        candidates = venues(rng, count, args.levels)
        calls = [(order, candidates) for order in flow]
        first = candidates[0]
        reference = [(o, first.asks if o.side > 0 else first.bids) for o in flow]
        split = sum(len(route(o, candidates).allocations) > 1 for o in flow) / len(flow)
        p50s, p99s, ref50s = [], [], []
        for _ in range(args.runs):  # interleaved, so that both see the same machine
            timed = per_call(calls, route)
            bare = per_call(reference, bare_walk)
            p50s.append(float(np.percentile(timed, 50)))
            p99s.append(float(np.percentile(timed, 99)))
            ref50s.append(float(np.percentile(bare, 50)))
        p50, p99, ref = (statistics.median(x) for x in (p50s, p99s, ref50s))
        print(
            f"  {count} venues: route p50 {p50 * 1e6:6.1f} us (runs {min(p50s) * 1e6:.1f} to "
            f"{max(p50s) * 1e6:.1f})  p99 {p99 * 1e6:7.1f} us (runs {min(p99s) * 1e6:.1f} to "
            f"{max(p99s) * 1e6:.1f}); "
            f"reference (bare walk of one book) p50 {ref * 1e6:5.2f} us: "
            f"{p50 / ref:5.1f} x; {split:.0%} of orders split"
        )


if __name__ == "__main__":
    main()
