"""How fast the compiled core runs a portfolio with shared cash, against vectorbt.

One run, one seeded universe: 100 symbols x 100,000 one-minute bars (a common factor
plus each symbol's own noise), SMA(10)/SMA(50) crossover entries and exits computed
once per symbol (the same boolean arrays for both engines), long-only, 0.1% fees, no
slippage, fills at the signal bar's close, 1,000,000 initial cash shared by every
symbol. tradeloom's core gets the signals as probabilities (1.0 entry, 0.0 exit, 0.5
none; ``threshold: 1.0``); a short signal while flat is a ``SHORT_NOT_ALLOWED``
rejection, which vectorbt ignores. Each engine is warmed up once, then timed
``--runs`` times, interleaved round by round; medians are quoted.

The core sizes an entry as a fraction of the equity marked at the bar's close and
fills the symbols in their order; a spot buy is cut to the cash left. vectorbt's
``from_signals`` sizes only as an amount, a value or a percent of the *cash* (its
docs: target sizes "are not compatible with signals"), so it reproduces the core's
sizing exactly only where the two coincide. Two workloads therefore:

  A. **all-in rotation** (the "Done when" line): ``fraction: 1.0`` against
     ``from_signals(size=np.inf, group_by=True, cash_sharing=True)``, columns called
     in the symbols' order (``call_seq="default"``). Each entry wants the whole
     equity and gets the cash left, so the first symbol to signal takes the book
     and the others' orders are cut to nothing (``INSUFFICIENT_CASH``) until it
     exits: a shared-cash book where the order within a bar decides every fill.
  B. **0.5% of equity per entry**, up to 100 positions at once: the same rule in
     vectorbt needs ``from_orders(size_type="targetpercent")`` with the target
     ``fraction / (1 + fee)`` on entry bars, 0 on exit bars and NaN elsewhere (its
     target is the position's value before the fee; the core's fraction includes
     it), grouped with shared cash and the value taken at the bar's close.

Each workload is timed as the core alone and with its inputs built from the arrays
(`BarInputs`, as large as the core's work: vectorbt's call builds its own inputs from
the frames it is given). For both, the equity of every bar is compared (the core's is
rebuilt from its fill rows, as `tradeloom.core.curves` does for one symbol), and the
largest relative difference is printed.

Last, the per-bar latency over 20 symbols: one bar per call of the compiled step,
with one-row inputs as paper and live step (``P_YIELD_BARS``), the portfolio checks on
(``top_k``, ``max_open_positions``, gross exposure and a 96-bar correlation limit),
every event row read back as the journal reads it (`tradeloom.core.columns`); the
model's output is precomputed and the journal's SQLite write is left out.

    python benchmarks/bench_portfolio.py [--symbols 100] [--bars 100000] [--runs 5]
        [--latency-symbols 20] [--latency-bars 20000] [--latency-warm 2000] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from machine import describe
from smoke import VECTORBT_SKIPPED, add_smoke, parse_args

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.columns import RowContext, decode
from tradeloom.core.kernels.specs import SizingKernel, ThresholdKernel, VenueKernel
from tradeloom.core.params import CoreSpec, PortfolioLimits
from tradeloom.core.state import BarInputs, CoreState

CASH = 1_000_000.0
FEE = 0.001
MINUTE_NS = 60_000_000_000


# -- the universe and the signals -------------------------------------------------------------


def universe(bars: int, symbols: int, seed: int = 7) -> npt.NDArray[np.float64]:
    """Return closes ``[bars, symbols]``: a common factor plus each symbol's own noise."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 0.0006, (bars, 1))
    own = rng.normal(0.0, 0.0008, (bars, symbols))
    start = rng.uniform(10.0, 1000.0, symbols)
    return start * np.exp(np.cumsum(common + own, axis=0))


def sma_cross(
    close: npt.NDArray[np.float64], fast: int = 10, slow: int = 50
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Return entries (the fast SMA crosses above the slow one) and exits, per symbol."""
    frame = pd.DataFrame(close)
    above = (frame.rolling(fast).mean() > frame.rolling(slow).mean()).to_numpy()
    before = np.vstack([np.zeros((1, close.shape[1]), bool), above[:-1]])
    valid = np.zeros(close.shape, bool)
    valid[slow:] = True  # both averages defined at t and t - 1
    return valid & above & ~before, valid & ~above & before


def inputs_of(close: npt.NDArray[np.float64], probability: npt.NDArray[np.float64]) -> BarInputs:
    """Return the core's inputs: flat bars at the close, unlimited volume."""
    bars, symbols = close.shape
    px = np.empty((6, bars, symbols))
    px[0] = px[1] = px[2] = px[3] = close
    px[4] = 1e12
    px[5] = probability
    return BarInputs(
        px,
        np.zeros((2, bars, symbols), np.uint8),
        np.full((bars, symbols), np.nan),
        np.arange(bars, dtype=np.int64) * MINUTE_NS,
        np.zeros(bars, np.int64),
    )


def spec(fraction: float, portfolio: PortfolioLimits | None = None, **other: Any) -> CoreSpec:
    """Return the strategy: threshold 1.0 on the signals, a fixed fraction, spot at the close."""
    return CoreSpec(
        signal=ThresholdKernel(1.0, 1),
        sizing=SizingKernel("fixed_fraction", fraction),
        venue=VenueKernel(True, 0.0, FEE, False, CASH, None),
        initial_cash=CASH,
        timeframe_ns=MINUTE_NS,
        portfolio=portfolio or PortfolioLimits(),
        **other,
    )


def run_core(core_spec: CoreSpec, inputs: BarInputs) -> CoreState:
    """Run every bar through the compiled step; return its state and rows."""
    state = CoreState(core_spec, inputs.px.shape[2], capacity=1 << 21)
    state.run(inputs, len(inputs))
    return state


def equity_of(
    rows: npt.NDArray[np.float64], close: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Return each bar's equity, ``cash + sum(position x close)``, from the core's fill rows."""
    bars, symbols = close.shape
    fills = rows[rows[:, L.E_KIND] == L.EV_FILL]
    bar = fills[:, L.E_BAR]
    index = np.arange(bars)
    last = np.searchsorted(bar, index, side="right") - 1
    cash = np.where(last >= 0, fills[np.maximum(last, 0), 3 + 8], CASH)
    equity = cash.copy()
    for s in range(symbols):
        mine = fills[fills[:, L.E_SYM] == s]
        k = np.searchsorted(mine[:, L.E_BAR], index, side="right") - 1
        position = np.where(k >= 0, mine[np.maximum(k, 0), 3 + 7], 0.0)
        equity += position * close[:, s]
    return equity


# -- timing ----------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    """Return the seconds one call takes, with the garbage collector held off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def interleaved(engines: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Time every engine once per round, ``runs`` rounds, after one warm-up each."""
    for fn in engines.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):
        for name, fn in engines.items():
            times[name].append(timed(fn))
    return times


def line(name: str, seconds: list[float], cells: int) -> str:
    med = statistics.median(seconds)
    return (
        f"  {name:<46} median {med * 1e3:9.1f} ms  {cells / med / 1e6:7.2f} M symbol-bars/s  "
        f"(min {min(seconds) * 1e3:.1f}, max {max(seconds) * 1e3:.1f}, n={len(seconds)})"
    )


def largest_rel_diff(ours: npt.NDArray[np.float64], theirs: npt.NDArray[np.float64]) -> float:
    return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(ours), np.abs(theirs))))


# -- throughput ------------------------------------------------------------------------------


def throughput(args: argparse.Namespace) -> None:
    bars, symbols = args.bars, args.symbols
    close = universe(bars, symbols)
    entries, exits = sma_cross(close)
    probability = np.where(entries, 1.0, np.where(exits, 0.0, 0.5))
    inputs = inputs_of(close, probability)
    cells = bars * symbols
    print(
        f"\n{symbols} symbols x {bars:,} one-minute bars, SMA(10)/SMA(50) cross: "
        f"{int(entries.sum()):,} entries, {int(exits.sum()):,} exits; long-only, fee 0.1%, "
        f"fill at the close, {CASH:,.0f} cash shared"
    )
    # tz-naive index and min_size=0: see bench_core.py
    index = pd.date_range("2020-01-01", periods=bars, freq="1min")
    close_df = pd.DataFrame(close, index=index)
    entries_df = pd.DataFrame(entries, index=index)
    exits_df = pd.DataFrame(exits, index=index)
    shared = {
        "fees": FEE,
        "init_cash": CASH,
        "group_by": True,
        "cash_sharing": True,
        "call_seq": "default",
        "min_size": 0.0,
        "freq": "1min",
    }
    rotation, fractional = spec(1.0), spec(args.fraction)
    target = np.where(entries, args.fraction / (1.0 + FEE), np.where(exits, 0.0, np.nan))
    target_df = pd.DataFrame(target, index=index)

    def core_a() -> Any:
        return run_core(rotation, inputs)

    def built_a() -> Any:  # the inputs built from the arrays, as vectorbt's call builds its own
        return run_core(rotation, inputs_of(close, probability))

    def built_b() -> Any:
        return run_core(fractional, inputs_of(close, probability))

    def vbt_a() -> Any:
        import vectorbt as vbt

        return vbt.Portfolio.from_signals(close_df, entries_df, exits_df, size=np.inf, **shared)

    def core_b() -> Any:
        return run_core(fractional, inputs)

    def vbt_b() -> Any:
        import vectorbt as vbt

        return vbt.Portfolio.from_orders(close_df, target_df, size_type="targetpercent", **shared)

    workloads = (
        ("A. all-in rotation", core_a, built_a, "vectorbt from_signals(size=inf)", vbt_a),
        (f"B. {args.fraction:.1%} of equity per entry", core_b, built_b,
         "vectorbt from_orders(targetpercent)", vbt_b),
    )  # fmt: skip
    if args.smoke:
        print(VECTORBT_SKIPPED)
    for title, core, built, peer_name, peer in workloads:
        state = core()
        rows = state.rows()
        kinds = np.bincount(rows[:, L.E_KIND].astype(int), minlength=L.EV_EXTERNAL + 1)
        cut = int(
            np.sum((rows[:, L.E_KIND] == L.EV_CANCEL) & (rows[:, 3 + 2] == codes.INSUFFICIENT_CASH))
        )
        ours = equity_of(rows, close)
        held = np.count_nonzero(state.sym[:, L.S_QTY])
        print(
            f"\n{title}: tradeloom recorded {len(rows):,} event rows: {kinds[L.EV_ORDER]:,} "
            f"orders, {kinds[L.EV_FILL]:,} fills, {kinds[L.EV_TRADE]:,} trades, "
            f"{kinds[L.EV_REJECT]:,} rejections, {cut:,} orders cut to nothing by the cash; "
            f"{held} positions open at the end"
        )
        engines = {
            "tradeloom core (CoreState.run)": core,
            "tradeloom inputs (BarInputs) + core": built,
        }
        if not args.smoke:
            pf = peer()
            theirs = pf.value().to_numpy()
            print(
                f"  final equity: tradeloom {ours[-1]:.12e}, {peer_name} {theirs[-1]:.12e}; "
                f"{len(pf.orders.records):,} vectorbt orders"
            )
            print(f"  largest relative difference of the equity over all bars: "
                  f"{largest_rel_diff(ours, theirs):.1e}")  # fmt: skip
            engines[peer_name] = peer
        times = interleaved(engines, args.runs)
        for name, seconds in times.items():
            print(line(name, seconds, cells))
        if args.smoke:
            continue
        peer_time = statistics.median(times[peer_name])
        for name in ("tradeloom core (CoreState.run)", "tradeloom inputs (BarInputs) + core"):
            ratio = peer_time / statistics.median(times[name])
            print(f"  {name} is {ratio:.2f}x faster than {peer_name} (medians)")


# -- per-bar latency -------------------------------------------------------------------------


def latency(args: argparse.Namespace) -> None:
    symbols, measured, warm = args.latency_symbols, args.latency_bars, args.latency_warm
    bars = warm + measured
    close = universe(bars, symbols, seed=11)
    rng = np.random.default_rng(12)
    probability = np.where(rng.random((bars, symbols)) < 0.5, np.nan, rng.random((bars, symbols)))
    inputs = inputs_of(close, probability)
    portfolio = PortfolioLimits(
        top_k=3,
        max_open_positions=8,
        max_gross_exposure=1.0,
        max_correlation=0.8,
        correlation_window=96,
    )
    core_spec = replace(spec(0.1, portfolio, yield_bars=True), signal=ThresholdKernel(0.3, 4))
    state = CoreState(core_spec, symbols)
    ctx = RowContext(
        times=lambda bar: pd.Timestamp(bar * MINUTE_NS, tz="UTC"),
        order_id=lambda n: f"bench-{n:06d}",
        symbols=tuple(f"S{k}" for k in range(symbols)),
    )
    one_row = [
        BarInputs(
            inputs.px[:, t : t + 1].copy(),
            inputs.flags[:, t : t + 1].copy(),
            inputs.score[t : t + 1].copy(),
            inputs.time_ns[t : t + 1].copy(),
            inputs.trainings[t : t + 1].copy(),
            base=t,
        )
        for t in range(bars)
    ]
    ns = np.empty(bars, np.int64)
    events = 0
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for t in range(bars):
            start = clock()
            state.run(one_row[t], t + 1)
            for _ in decode(state.rows(), ctx).events():
                events += 1
            state.clear()
            ns[t] = clock() - start
    finally:
        gc.enable()
    us = ns[warm:] / 1e3
    p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
    print(
        f"\nper-bar latency, {symbols} symbols, one bar per call with one-row inputs (as paper "
        f"and live step), threshold signal, 10% of equity, top_k 3, max_open_positions 8, "
        f"gross exposure 1.0, correlation 0.8 over 96 bars; each event read back as the "
        f"journal reads it; model and SQLite excluded; {measured:,} bars after {warm:,}:"
    )
    print(
        f"  p50 {p50:7.1f} us  p99 {p99:7.1f} us  p99.9 {p999:7.1f} us  max {us.max():7.1f} us  "
        f"({events:,} events)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--fraction", type=float, default=0.005)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-symbols", type=int, default=20)
    parser.add_argument("--latency-bars", type=int, default=20_000)
    parser.add_argument("--latency-warm", type=int, default=2_000, help="bars before the timed")
    add_smoke(
        parser, symbols=3, bars=1_000, runs=1, latency_symbols=3, latency_bars=50, latency_warm=100
    )
    args = parse_args(parser)
    print("machine:", describe("numpy", "numba", "pandas", "vectorbt", "tradeloom"))
    # the latency's tail is the scheduler's on a shared machine: say how busy it was
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    throughput(args)
    latency(args)


if __name__ == "__main__":
    main()
