"""How fast the compiled core runs, against vectorbt, backtesting.py and a bare numba loop.

One run, one seeded market: 1,000,000 one-minute random-walk bars, SMA(10)/SMA(50)
crossover entries and exits computed once (the same boolean arrays for every
engine), long-only, all-in, 0.1% fees, no slippage, fills at the signal bar's close,
100,000 initial cash. Each engine is warmed up once, then timed ``--runs`` times
(the fast engines interleaved, round by round); medians are quoted, with min and max.

  a. tradeloom's compiled core, `CoreState.run` (signal, risk engine, execution,
     portfolio: the step every mode runs), recording every signal, decision,
     rejection, order, fill and trade as event rows; the equity curve is not a per-bar
     output of the core (it follows from the fills' rows, `tradeloom.core.curves`), as
     vectorbt's ``from_signals`` leaves ``value()`` to a later call; line a'. adds it;
  b. the same with the equity curve and the full typed journal: a fresh SQLite journal
     opened (WAL, synchronous=FULL, hash-chained), the rows as column batches written
     in bulk, committed and closed: what a backtest journals (backtesting.py's ``run()``
     returns its equity curve and trades in kind);
  c. vectorbt's ``Portfolio.from_signals`` with ``size=np.inf`` (the call, which runs the
     simulation; ``final_value()`` is computed outside that timing, and timed with it on
     a second line); ``min_size=0`` and a tz-naive index, see `throughput`;
  d. backtesting.py's ``run()`` on a Strategy that buys all-in on an entry and closes on
     an exit, ``commission=0.001``, ``trade_on_close=True``; whole units are avoided with
     `FractionalBacktest` so that it computes the same trades;
  e. a bare hand-written numba loop of the same strategy (final equity only): the floor.

The engines must agree before their speeds mean anything: final equities, trade
counts, and whether the trades have the same bars and sizes are printed.

Then the per-bar driver's latency: one bar of strategies/btc_rf.yaml through the
per-bar features (`FeatureStepper`) and the engine (the compiled step for one bar,
each event journaled as it comes, as paper and live run), the model's output
replaced by precomputed probabilities; committing at every bar (as live runs) and
every 1000 bars, and with the strategy's AUC monitor. Last, ``tradeloom run`` as a
subprocess, cold (a fresh ``NUMBA_CACHE_DIR``, every kernel compiled) and warm.

    python benchmarks/bench_core.py [--bars 1000000] [--runs 7] [--peer-bars N]
        [--peer-runs 3] [--latency-bars 20000] [--latency-warm 2000] [--skip-startup] [--smoke]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd
from machine import describe
from smoke import SMALL_RF, VECTORBT_SKIPPED, add_smoke, parse_args

from tradeloom.core.columns import RowContext
from tradeloom.core.curves import equity_curve, fill_marks
from tradeloom.core.kernels.specs import SizingKernel, ThresholdKernel, VenueKernel
from tradeloom.core.layout import EV_TRADE
from tradeloom.core.params import CoreSpec
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.domain import OHLCV, Bar, RunInfo
from tradeloom.engine.bulk_journal import rows_to_batches
from tradeloom.engine.core_spec import core_spec
from tradeloom.engine.driver import Engine
from tradeloom.engine.events import Recorder
from tradeloom.engine.logs import configure_logging
from tradeloom.engine.wiring import build_pipeline
from tradeloom.journal import RunIdentity, open_journal
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[1]
STRATEGY_FILE = ROOT / "strategies" / "btc_rf.yaml"
CASH = 100_000.0
MIN_NOTIONAL = 1e-12
"""The venue's minimum order: 0.1% fees over 27,000 trades of a random walk take the
equity down to about 2e-7, below the default minimum (a billionth of the cash); the
other engines have no minimum, so this one is set under every order the run sends."""
FEE = 0.001
FRACTIONAL_UNIT = 1e-14  # backtesting.py trades whole units of this


# -- the market and the signals ------------------------------------------------------------


def market(n: int, seed: int = 7) -> pd.DataFrame:
    """Return ``n`` one-minute random-walk bars (UTC index named timestamp)."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.0002, n))
    wick = np.abs(rng.normal(0.0, 0.0004, (2, n)))
    index = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        },
        index=index,
    )


def sma_cross(close: np.ndarray, fast: int = 10, slow: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Return entries (fast SMA crosses above slow) and exits (crosses below)."""
    s = pd.Series(close)
    above = (s.rolling(fast).mean() > s.rolling(slow).mean()).to_numpy()
    valid = np.zeros(len(close), bool)
    valid[slow:] = True  # both averages defined at t and t - 1
    entries = valid & above & ~np.r_[False, above[:-1]]
    exits = valid & ~above & np.r_[False, above[:-1]]
    # backtesting.py never fills an order of the last bar; drop its signals for everyone
    entries[-1] = exits[-1] = False
    return entries, exits


# -- timing ---------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    """Return the seconds one call takes, with the garbage collector held off (as timeit)."""
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


def line(name: str, seconds: list[float], bars: int) -> str:
    med = statistics.median(seconds)
    return (
        f"  {name:<40} {bars / med / 1e6:10.3f} M bars/s  median {med * 1e3:10.2f} ms  "
        f"(min {min(seconds) * 1e3:.2f}, max {max(seconds) * 1e3:.2f}, n={len(seconds)})"
    )


# -- the engines ----------------------------------------------------------------------------


STRATEGY = """\
name: bench_core
data: {kind: csv, path: bars.csv}
features: [{kind: log_return, period: 1}]
model: {kind: precomputed, column: p_up}
signal: {kind: threshold, threshold: 1.0, min_interval: 1}
risk: {sizing: {kind: fixed_fraction, fraction: 1.0}}
execution: {kind: simulated, initial_cash: 100000, fill: close, fee_bps: 10, allow_short: false,
  min_notional: 1.0e-12}
"""


def tradeloom_setup(folder: Path) -> tuple[object, object, CoreSpec]:
    """Build the strategy the engines run, through the real schema and wiring.

    The precomputed model gives probability 1.0 at an entry, 0.0 at an exit and 0.5
    elsewhere; ``threshold: 1.0`` makes them long, short and no signals. A short
    signal when flat is a ``SHORT_NOT_ALLOWED`` rejection (vectorbt ignores an exit
    when flat). The data file is never read: the benchmark passes the bars itself.
    """
    (folder / "bars.csv").write_text("timestamp,open,high,low,close,volume,p_up\n")
    (folder / "strategy.yaml").write_text(STRATEGY)
    config, plugins = load_strategy(folder / "strategy.yaml", [])
    pipeline = build_pipeline(config)
    spec = core_spec(pipeline, 60, periods_per_year=0.0)
    assert spec.compiled, "every sequential layer of this strategy runs in the core"
    got = (spec.signal, spec.sizing, spec.drawdown_limits, spec.venue, spec.max_holding_bars)
    expected = (
        ThresholdKernel(1.0, 1),
        SizingKernel("fixed_fraction", 1.0),
        (),
        VenueKernel(True, 0.0, FEE, False, CASH, None, min_notional=MIN_NOTIONAL),
        None,
    )
    assert got == expected, spec
    assert spec.stop_loss is None and spec.take_profit is None, spec
    return pipeline, plugins, spec


def run_core(spec: CoreSpec, inputs: BarInputs) -> CoreState:
    """Run every bar through the compiled step; return its state and rows."""
    state = CoreState(spec, capacity=len(inputs) // 8)
    state.run(inputs, len(inputs))
    return state


@numba.njit(cache=False)
def floor_loop(
    close: np.ndarray, entries: np.ndarray, exits: np.ndarray, fee: float, cash: float
) -> tuple[float, int]:
    """All-in long-only at the close with a fee; return final equity and trades closed."""
    position = 0.0
    trades = 0
    for t in range(len(close)):
        if position == 0.0:
            if entries[t]:
                position = cash / (close[t] * (1.0 + fee))
                cash = 0.0
        elif exits[t]:
            cash = position * close[t] * (1.0 - fee)
            position = 0.0
            trades += 1
    return cash + position * close[-1], trades


def backtesting_py(frame: pd.DataFrame, entries: np.ndarray, exits: np.ndarray) -> Any:
    """Return a ready backtesting.py backtest of the same strategy, in units of 1e-14."""
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    class Signals(Strategy):
        entry = entries
        exit = exits

        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            if self.entry[i] and not self.position:
                # a fraction of equity must be < 1 (>= 1 means units)
                self.buy(size=1.0 - 1e-12)
            elif self.exit[i] and self.position:
                self.position.close()

    data = frame[list(OHLCV)].copy()
    data.columns = ["Open", "High", "Low", "Close", "Volume"]
    data.index = data.index.tz_localize(None)
    return FractionalBacktest(
        data,
        Signals,
        cash=CASH,
        commission=FEE,
        trade_on_close=True,
        fractional_unit=FRACTIONAL_UNIT,
    )


def core_and_journal(
    folder: Path, spec: CoreSpec, inputs: BarInputs, close: np.ndarray, runs: int
) -> tuple[list[float], int]:
    """Time the core, its equity curve and its full journal: a fresh SQLite file opened,
    the rows written in bulk, closed (backtesting.py's ``run()`` returns its equity curve
    and trades in kind)."""
    seconds = []
    rows = 0
    for k in range(runs + 1):  # the first is the warm-up
        path = folder / f"journal-{k}.sqlite"
        start = time.perf_counter()
        journal = open_journal(path, RunIdentity("bench_core", "bench", "backtest"))
        state = run_core(spec, inputs)
        equity_curve(fill_marks(state.rows()), close, CASH)
        ctx = RowContext(
            times=lambda i: pd.Timestamp(0),
            order_id=lambda n: f"bench-{n:06d}",
            order_prefix="bench",
        )
        converted = rows_to_batches(state.rows(), ctx, inputs.time_ns, "BTC/USDT")
        journal.write_columns(converted.batches)
        journal.close()
        if k:
            seconds.append(time.perf_counter() - start)
        rows = journal.last_seq
        path.unlink()
    return seconds, rows


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b))


def same_trades(ours: np.ndarray, entry: Any, exit_: Any, size: Any) -> str:
    """Say whether a peer's closed trades have tradeloom's bars, and how close the sizes are."""
    if len(ours) != len(entry):
        return "different trade counts"
    bars = np.array_equal(ours[:, 1], np.asarray(entry)) and np.array_equal(
        ours[:, 2], np.asarray(exit_)
    )
    sizes = np.max(np.abs(ours[:, 3] / np.asarray(size, dtype=np.float64) - 1.0), initial=0.0)
    return f"bars {'identical' if bars else 'DIFFER'}, sizes within {sizes:.1e}"


def throughput(args: argparse.Namespace) -> None:
    n = args.bars
    frame = market(n)
    close = frame["close"].to_numpy()
    entries, exits = sma_cross(close)
    probability = np.where(entries, 1.0, np.where(exits, 0.0, 0.5))
    print(
        f"\n{n:,} one-minute bars, SMA(10)/SMA(50) cross: {int(entries.sum()):,} entries, "
        f"{int(exits.sum()):,} exits; long-only, all-in, fee 0.1%, fill at the close"
    )
    # vectorbt gets a tz-naive index: with pandas 3 a tz-aware one makes from_signals ~20x
    # slower (index handling in its wrapper, not the simulation). min_size=0: vectorbt
    # 1.2 rejects orders under 1e-8 units by default, and this strategy's fees leave it so
    # little cash that its last few thousand entries would be skipped.
    index = frame.index.tz_localize(None)
    close_s = pd.Series(close, index=index)
    entries_s = pd.Series(entries, index=index)
    exits_s = pd.Series(exits, index=index)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _, _, spec = tradeloom_setup(folder)
        inputs = BarInputs.of(
            [frame[k].to_numpy(np.float64) for k in OHLCV], probability, frame.index.asi8
        )

        def core() -> Any:
            return run_core(spec, inputs)

        def core_curve() -> Any:
            state = run_core(spec, inputs)
            return equity_curve(fill_marks(state.rows()), close, CASH)

        def vectorbt() -> Any:
            import vectorbt as vbt

            return vbt.Portfolio.from_signals(
                close_s,
                entries_s,
                exits_s,
                fees=FEE,
                init_cash=CASH,
                size=np.inf,
                min_size=0.0,
                freq="1min",
            )

        def vectorbt_value() -> Any:
            return vectorbt().final_value()

        def floor() -> Any:
            return floor_loop(close, entries, exits, FEE, CASH)

        fast = {
            "tradeloom core (CoreState.run)": core,
            "tradeloom core + equity curve": core_curve,
            "vectorbt from_signals": vectorbt,
            "vectorbt from_signals + final_value()": vectorbt_value,
            "bare numba loop (floor)": floor,
        }
        if args.smoke:
            print(VECTORBT_SKIPPED)
            fast = {name: fn for name, fn in fast.items() if not name.startswith("vectorbt")}
        times = interleaved(fast, args.runs)
        journal_seconds, rows = core_and_journal(folder, spec, inputs, close, max(3, args.runs))
        times["tradeloom core + equity + journal (bulk)"] = journal_seconds

    peer_n = min(args.peer_bars or n, n)
    bt = backtesting_py(frame.iloc[:peer_n], entries[:peer_n].copy(), exits[:peer_n].copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt_stats = bt.run()  # warm-up
        bt_times = [timed(bt.run) for _ in range(args.peer_runs)]

    # -- do the engines compute the same thing?
    state = core()
    events = state.rows()
    ours = equity_curve(fill_marks(events), close, CASH)[:, 2]
    kinds = np.bincount(events[:, 0].astype(int), minlength=EV_TRADE + 1)
    floor_final, floor_trades = floor()
    print(
        f"tradeloom recorded {len(events):,} event rows: {kinds[2]:,} signals, "
        f"{kinds[3]:,} decisions, {kinds[4]:,} rejections, {kinds[6]:,} orders, "
        f"{kinds[7]:,} fills, {kinds[EV_TRADE]:,} trades; the journal holds {rows:,} rows"
    )
    trades = events[events[:, 0] == EV_TRADE][:, 3:]
    print("agreement with tradeloom: final equity; closed trades (entry and exit bars, size)")
    print(f"  tradeloom core          {ours[-1]:.12e}  {len(trades):7,d}")
    if not args.smoke:
        pf = vectorbt()
        value = pf.value().to_numpy()
        closed = pf.trades.records[pf.trades.records["status"] == 1]
        print(
            f"  vectorbt value()[-1]    {value[-1]:.12e}  {len(closed):7,d}  "
            f"rel. diff {rel(ours[-1], value[-1]):.1e}; "
            f"{same_trades(trades, closed['entry_idx'], closed['exit_idx'], closed['size'])}"
        )
        print(
            f"     largest rel. diff of the equity curve over all bars: "
            f"{np.max(np.abs(ours - value) / np.maximum(np.abs(ours), np.abs(value))):.1e}"
        )
        final = float(pf.final_value())
        print(
            f"  vectorbt final_value()  {final:.12e}           rel. diff "
            f"{rel(ours[-1], final):.1e} (init_cash + total_profit: {CASH:g} - {CASH - final:.10f})"
        )
    print(
        f"  bare numba loop         {floor_final:.12e}  {floor_trades:7,d}  "
        f"rel. diff {rel(ours[-1], floor_final):.1e}"
    )
    if peer_n == n:
        bt_trades = bt_stats["_trades"]
        bt_final = float(bt_stats["Equity Final [$]"])
        print(
            f"  backtesting.py          {bt_final:.12e}  {len(bt_trades):7,d}  "
            f"rel. diff {rel(ours[-1], bt_final):.1e}; "
            f"{same_trades(trades, bt_trades['EntryBar'], bt_trades['ExitBar'], bt_trades['Size'])}"
            f" (whole units of {FRACTIONAL_UNIT:g})"
        )
    else:
        print(f"  backtesting.py          ran on the first {peer_n:,} bars; not compared")

    print(f"throughput, {n:,} bars (fast engines interleaved over {args.runs} rounds)")
    for name, seconds in times.items():
        print(line(name, seconds, n))
    print(line(f"backtesting.py run() [{peer_n:,} bars]", bt_times, peer_n))
    rate = {name: n / statistics.median(seconds) for name, seconds in times.items()}
    rate["backtesting.py"] = peer_n / statistics.median(bt_times)
    for ours_name in ("tradeloom core (CoreState.run)", "tradeloom core + equity + journal (bulk)"):
        ours_rate = rate[ours_name]
        print(f"{ours_name}: median bars/s over")
        for name in (
            "vectorbt from_signals",
            "vectorbt from_signals + final_value()",
            "backtesting.py",
            "bare numba loop (floor)",
        ):
            if name in rate:
                print(f"  {name:<38} {ours_rate / rate[name]:9.3f}")
    if not args.smoke:
        rust = "available" if _vectorbt_rust() else "not installed: numba engine"
        print(f"  (vectorbt-rust {rust})")


def _vectorbt_rust() -> bool:
    try:
        from vectorbt._engine import is_rust_available
    except ImportError:
        return False
    return bool(is_rust_available())


# -- per-bar latency ------------------------------------------------------------------------


class _Row(Mapping[str, float]):
    """One bar's features by name, over the stepper's row (no copy)."""

    __slots__ = ("_columns", "values")

    def __init__(self, columns: dict[str, int]) -> None:
        self._columns = columns
        self.values = np.empty(len(columns))

    def __getitem__(self, key: str) -> float:
        return float(self.values[self._columns[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def latency(args: argparse.Namespace) -> None:
    from tradeloom.plugins.protocols_steps import FeatureStepper, StepContext

    warm, measured = args.latency_warm, args.latency_bars
    print(
        f"\nper-bar driver latency, strategies/btc_rf.yaml: features (FeatureStepper), then "
        f"the engine, one bar per call of the compiled step (signal, Kelly sizing, drawdown "
        f"halt, holding limit, simulated venue; each event journaled as it comes); the "
        f"model's output replaced by seeded uniform probabilities; {measured:,} bars timed "
        f"after {warm:,}; microseconds"
    )
    cases = [
        ("no monitor, commit every bar", False, 1),
        ("no monitor, commit every 1000 bars", False, 1000),
        ("+ rolling_auc monitor, every 1000 bars", True, 1000),
    ]
    for label, monitored, flush_every in cases:
        overrides = [*(SMALL_RF if args.smoke else ()), f"data.bars={warm + measured}"]
        config, plugins = load_strategy(STRATEGY_FILE, overrides)
        pipeline = build_pipeline(config)
        if not monitored:
            pipeline = replace(pipeline, monitors=())
        bars = pipeline.data.load()
        stepper = FeatureStepper(pipeline.features, StepContext.of(bars))
        row = _Row({name: j for j, name in enumerate(stepper.columns)})
        p = np.random.default_rng(11).random(len(bars))
        frame = bars.frame
        o, h, lo, c, v = (frame[k].to_numpy(np.float64) for k in OHLCV)
        times = list(frame.index)
        inputs = BarInputs.of([o, h, lo, c, v], p, frame.index.asi8)
        with tempfile.TemporaryDirectory() as tmp:
            journal = open_journal(
                Path(tmp) / "journal.sqlite", RunIdentity(config.name, "bench", "paper")
            )
            run = RunInfo("bench", config.name, "paper", tmp)
            engine = Engine(
                pipeline,
                Recorder(journal, plugins.hook, run),
                lambda n: f"bench-{n:06d}",
                times=times.__getitem__,
                timeframe_seconds=bars.timeframe_seconds,
                calendar=bars.calendar,
                features=lambda i, row=row: row.values,  # type: ignore[misc]
                columns=tuple(stepper.columns),
            )
            ns = np.empty((len(bars), 3), np.int64)
            clock = time.perf_counter_ns
            for t in range(len(bars)):
                bar = Bar(
                    t, times[t], float(o[t]), float(h[t]), float(lo[t]), float(c[t]), float(v[t])
                )
                ns[t, 0] = clock()
                row.values = stepper.step(bar)
                ns[t, 1] = clock()
                engine.run(inputs, t + 1)
                if (t + 1) % flush_every == 0:
                    journal.flush()
                ns[t, 2] = clock()
            journal.close()
            rows = journal.last_seq
        us = np.diff(ns[warm:], axis=1) / 1e3
        total = us.sum(axis=1)
        p50, p99, p999 = np.percentile(total, [50, 99, 99.9])
        f50, f99 = np.percentile(us[:, 0], [50, 99])
        e50, e99 = np.percentile(us[:, 1], [50, 99])
        print(
            f"  {label:<40} p50 {p50:7.1f}  p99 {p99:8.1f}  p99.9 {p999:8.1f}  "
            f"max {total.max():8.1f}  | features p50 {f50:5.1f} p99 {f99:6.1f}  "
            f"engine p50 {e50:6.1f} p99 {e99:8.1f}  ({rows:,} journal rows)"
        )
    stepped = sum(hasattr(f, "stepper") for f in pipeline.features)
    print(
        f"  ({stepped} of {len(pipeline.features)} features have a compiled stepper; journal "
        f"in {tempfile.gettempdir()}, SQLite WAL, synchronous=FULL)"
    )


# -- start-up -------------------------------------------------------------------------------


def startup() -> None:
    """Time ``tradeloom run`` twice as a subprocess, sharing a fresh numba cache."""
    command = [
        "run",
        str(STRATEGY_FILE),
        "--set",
        "data.bars=2000",
        "--set",
        "model.walk_forward.train_window=1000",
        "--set",
        "model.walk_forward.retrain_every=500",
    ]
    exe = shutil.which("tradeloom")
    prefix = [exe] if exe else [sys.executable, "-c", "from tradeloom.cli.main import main; main()"]
    print("\nstart-up: tradeloom " + " ".join(command).replace(str(ROOT) + "/", ""))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cache")}
        for label in ("cold (empty numba cache)", "warm (cache filled by the cold run)"):
            out = Path(tempfile.mkdtemp(dir=tmp))
            start = time.perf_counter()
            done = subprocess.run(
                [*prefix, *command, "--out", str(out / "run")],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - start
            status = "" if done.returncode == 0 else f"  FAILED ({done.returncode}): {done.stderr}"
            print(f"  {label:<38} {seconds:7.2f} s wall{status}")
        cached = sum(1 for _ in (Path(tmp) / "numba-cache").rglob("*.nbi"))
        print(f"  ({cached} kernels cached in the fresh NUMBA_CACHE_DIR)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--peer-bars", type=int, default=0, help="backtesting.py on the first N bars (0: all)"
    )
    parser.add_argument("--peer-runs", type=int, default=3)
    parser.add_argument("--latency-bars", type=int, default=20_000)
    parser.add_argument("--latency-warm", type=int, default=2_000, help="bars before the timed")
    parser.add_argument("--skip-startup", action="store_true")
    # the start-up section compiles every kernel into an empty cache: minutes at any size
    add_smoke(
        parser,
        bars=2_000,
        runs=1,
        peer_runs=1,
        latency_bars=50,
        latency_warm=350,
        skip_startup=True,
    )
    args = parse_args(parser)
    os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar
    configure_logging("error")  # the latency runs halt on drawdown
    print("machine:", describe("numpy", "numba", "pandas", "vectorbt", "backtesting", "tradeloom"))
    throughput(args)
    latency(args)
    if not args.skip_startup:
        startup()


if __name__ == "__main__":
    main()
