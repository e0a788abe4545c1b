"""What the allocation layer costs: one rebalance by allocator and universe size, and a
whole backtest against the same universe without allocation.

1. **A rebalance.** Each allocator (its params' defaults: Ledoit-Wolf covariance,
   long-only, summing to 1) is called on a seeded window of ``--window`` returns of a
   one-factor market of 50, 200 and 500 assets, as the engine calls it (with the
   model's probabilities and a horizon of 4 for Black-Litterman). Each is warmed up
   once, then timed ``--runs`` times; the median is printed, and its ratio to
   ``equal_weight``'s (the reference measured in the same run).
2. **A whole run.** A universe of ``--symbols`` x ``--bars`` hourly bars with a
   precomputed probability column, backtested through the Python API (in memory) by a
   threshold signal with no allocation, then with risk parity rebalanced every 24 bars
   over a 240-bar window; medians of ``--runs`` runs after a warm-up, and their ratio.
   The allocation run stops the compiled core at every bar for the allocation stage.

    python benchmarks/bench_allocation.py [--sizes 50 200 500] [--runs 5] [--window 750]
        [--symbols 20] [--bars 5000] [--smoke]

``--smoke`` runs sizes 10 and 20, two runs, 600 bars: a check that it works.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

ALLOCATORS = (
    "equal_weight",
    "inverse_volatility",
    "risk_parity",
    "minimum_variance",
    "mean_variance",
    "hrp",
    "maximum_diversification",
    "black_litterman",
)


def _median(call: Callable[[], Any], runs: int) -> float:
    call()  # warm-up (imports, a solver's first set-up)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _returns(assets: int, window: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factor = rng.normal(0.0, 0.01, (window, 1))
    beta = rng.uniform(0.5, 1.5, (1, assets))
    return factor * beta + rng.normal(0.0, 0.01, (window, assets))


def _allocator(kind: str) -> Any:
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.manager import load_plugins

    found = load_plugins(()).registry.get("allocation", kind)
    assert found is not None, kind
    component = found.component
    return component.factory(component.params(), BuildContext("bench", Path("."), 0))


def rebalance_costs(sizes: Sequence[int], window: int, runs: int) -> None:
    """Print the median cost of one rebalance, by allocator and size."""
    from tradeloom.plugins.protocols_allocation import WeightConstraints

    print(f"\none rebalance, median of {runs} (window {window} returns), ms:")
    print(f"  {'allocator':<24}" + "".join(f"{n:>10} assets" for n in sizes))
    reference: dict[int, float] = {}
    for kind in ALLOCATORS:
        try:
            allocator = _allocator(kind)
        except Exception as exc:  # the allocation extra missing: say so, go on
            print(f"  {kind:<24}  not available: {exc}")
            continue
        cells = []
        for n in sizes:
            returns = _returns(n, window)
            constraints = WeightConstraints.long_only(n)
            p = np.random.default_rng(n).uniform(0.3, 0.7, n)
            result = allocator.allocate(returns, constraints, p, 4, None)
            args = (returns, constraints, p, 4, None)
            seconds = _median(functools.partial(allocator.allocate, *args), runs)
            reference.setdefault(n, seconds)
            status = "" if result.status == "ok" else f" ({result.status})"
            cells.append(f"{seconds * 1e3:>9.2f} x{seconds / reference[n]:<5.0f}{status}")
        print(f"  {kind:<24}" + "".join(f"{c:>16}" for c in cells))
    print("  (x: the ratio to equal_weight's time at the same size)")


def _universe(symbols: int, bars: int) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    times = pd.date_range("2024-01-01", periods=bars, freq="h", tz="UTC", name="timestamp")
    common = rng.normal(0.0, 0.004, bars)
    parts = []
    for k in range(symbols):
        close = 100.0 * np.exp(np.cumsum(common + rng.normal(0.0, 0.006, bars)))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": f"S{k:03d}/USDT",
                    "open": close,
                    "high": close * 1.002,
                    "low": close * 0.998,
                    "close": close,
                    "volume": 1e6,
                    "p_up": rng.uniform(0.0, 1.0, bars),
                },
                index=times,
            )
        )
    return pd.concat(parts).reset_index()


def run_costs(symbols: int, bars: int, runs: int) -> None:
    """Print the median time of a whole backtest with and without allocation."""
    from tradeloom.api import load

    frame = _universe(symbols, bars)
    names = [f"S{k:03d}/USDT" for k in range(symbols)]
    base: dict[str, Any] = {
        "name": "bench_allocation",
        "data": {"kind": "synthetic", "symbols": names, "timeframe": "1h", "bars": bars},
        "features": [{"kind": "log_return", "period": 1}],
        "model": {"kind": "precomputed", "column": "p_up", "horizon": 4},
        "signal": {"kind": "threshold", "threshold": 0.3},
        "risk": {"sizing": {"kind": "fixed_fraction", "fraction": 0.02}},
        "execution": {"kind": "simulated", "initial_cash": 100000, "fee_bps": 10},
    }
    allocated = dict(base)
    allocated["allocation"] = {
        "kind": "risk_parity",
        "window": 240,
        "constraints": {"net_exposure": 0.98},
        "rebalance": {"every": 24},
    }
    plain = load(base).with_data(frame)
    alloc = load(allocated).with_data(frame)
    without = _median(lambda: plain.backtest(quiet=True), runs)
    with_allocation = _median(lambda: alloc.backtest(quiet=True), runs)
    print(f"\nwhole backtest, {symbols} symbols x {bars:,} bars, median of {runs}:")
    print(f"  without allocation (threshold signal)      {without:8.2f} s")
    print(f"  risk_parity every 24 bars, window 240       {with_allocation:8.2f} s")
    print(f"  ratio                                       {with_allocation / without:8.2f}x")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, print the machine and both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=int, default=750)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--bars", type=int, default=5000)
    add_smoke(parser, sizes=[10, 20], runs=2, window=120, symbols=4, bars=600)
    args = parse_args(parser, argv)
    print(describe("numpy", "scipy", "cvxpy-base", "clarabel"))
    rebalance_costs(args.sizes, args.window, args.runs)
    run_costs(args.symbols, args.bars, args.runs)


if __name__ == "__main__":
    main()
