"""How fast a sweep runs its variants, against vectorbt's parameter grid, and on a Dask cluster.

One run, one seeded market: ``--bars`` one-minute bars (100,000) and a fixed model
output (a seeded probability per bar: the predictions are the shared stage, computed
once). The sweep is ``--variants`` (1,000) = 10 thresholds x 10 Kelly fractions x 10
stop-losses, long-only, the whole fraction-of-Kelly bet (capped at 50% of equity) on a
long signal, an exit on a short one, fills at the signal bar's close, 0.1% fees.

- **tradeloom**: `tradeloom.sweep.batch.run_batch`, one compiled call of the backtest's
  bar step per parameter row, then each variant's metrics as ``metrics.json`` has them
  (Sharpe, Sortino, CAGR, drawdowns, trades...) and its bar returns;
- **vectorbt**: ``vbt.Portfolio.from_signals`` broadcast over the same 1,000 columns:
  entries and exits of each threshold, the Kelly size of each (threshold, fraction) as
  a percent of the cash (all of the equity when flat, as in the core), ``sl_stop`` from
  the bars' lows; then its Sharpe ratio and total return per column (its stats are
  vectorised).

Both are warmed up, then timed ``--runs`` times interleaved; medians are quoted as
variants per second, and the ratio. The two engines do not trade identically (vectorbt
checks a stop from the bar after the entry, at the stop price; the core at the bar's
range, and sizes at the close): the line "agreement" quotes the median relative
difference of final equity over the columns, for scale.

Then the same tradeloom sweep as tasks (`tradeloom.sweep.tasks.execute`), its variants
dealt as a sweep deals them (`tradeloom.sweep.engine.deal`: 4 tasks of 250 at 20,000
bars, 16 of 62-63 at 100,000, each from all over the grid), each task's part of the
results (its rows, its float32 returns) written into a sweep directory as `tradeloom
sweep` writes it (by the task where it ran: serially, on the pool, and on a Dask worker
that finds the run's token in the folder, `ResultStore.open_to_workers`): serially, on a
local pool of 2 processes (`tradeloom.sweep.pool.LocalPool`, kept between runs) and on a
2-worker ``distributed.LocalCluster`` (processes, one thread each) started with the
sweep's worker settings (`tradeloom.sweep.dask_settings.local_cluster`), and beside it
one on Dask's defaults (``--no-dask-defaults``: not), each warmed by one untimed run;
medians of ``--pool-runs``, each mode's speed over the serial run's, and the peak RSS of
the process tree while it ran. Beside the wall time, which others' work on a shared
machine inflates, each mode's CPU time per run (user and system) of this process (the
parent: it submits the tasks and takes their results; on a LocalCluster it also runs the
scheduler and the nannies), of each worker process, and of the rest of the tree; the
parent's share of the tree's CPU (the serial fraction), the tree's CPU over the serial
run's, and the most that CPU allows on 2 idle cores: the serial CPU over the larger of
the tree's CPU over two and the busiest process's. On a quiet machine the wall ratio
approaches that bound; a loaded one moves the wall time a lot and the CPU figures
little.

Last, the whole ``tradeloom sweep`` command over a sweep file of ``--sweep-variants``
(1,000) variants of ``--sweep-bars`` (100,000) bars (`sweep_memory`): its peak RSS, its
workers counted, serially and with ``--workers 2``.

    python benchmarks/bench_sweep.py [--bars 100000] [--runs 3] [--pool-runs 2]
        [--variants 1000] [--sweep-bars 100000] [--sweep-variants 1000]
        [--sweep-workers 1 2] [--no-dask-defaults] [--idle 2] [--smoke]

``--smoke`` runs each section once: the cluster on tradeloom's settings alone (Dask's
defaults are the same code on other settings: 2 more worker processes) of one worker
(the code of two), and the whole
sweep's first run (serial) then ``--workers 2`` (its ``--workers 1`` repeats the first
run's path with its stages cached).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import describe
from smoke import VECTORBT_SKIPPED, add_smoke, parse_args
from sweep_memory import Cpu, CpuCount, PeakTree, measured, write_sweep

from tradeloom.core.kernels.specs import SizingKernel, ThresholdKernel, VenueKernel
from tradeloom.core.params import CoreSpec
from tradeloom.core.state import BarInputs
from tradeloom.domain import OHLCV
from tradeloom.sweep.batch import run_batch
from tradeloom.sweep.engine import DEFAULT_CHUNK, BatchTask, batch_task, deal, task_size
from tradeloom.sweep.results import ResultStore
from tradeloom.sweep.stage_cache import StageCache
from tradeloom.sweep.stages import Series, StageHashes
from tradeloom.sweep.tasks import Task, execute

CASH = 100_000.0
FEE = 0.001
PAYOFF = 1.0
MAX_POSITION = 0.5
IDLE_SECONDS = 2.0
"""How long each scale-out mode's tree is watched idle, before it is timed (``--idle``)."""
THRESHOLDS = np.round(np.linspace(0.06, 0.24, 10), 6)
FRACTIONS = np.round(np.linspace(0.1, 1.0, 10), 6)
STOPS = np.round(np.linspace(0.005, 0.05, 10), 6)


def market(n: int, seed: int = 7) -> pd.DataFrame:
    """Return ``n`` one-minute random-walk bars and a seeded probability per bar."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.0002, n))
    wick = np.abs(rng.normal(0.0, 0.0004, (2, n)))
    index = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]),
            "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close,
            "volume": rng.uniform(1.0, 10.0, n),
        },
        index=index,
    )
    frame["p"] = np.clip(0.5 + rng.normal(0.0, 0.04, n), 0.01, 0.99)
    return frame


def grid() -> list[tuple[float, float, float]]:
    """Return the (threshold, fraction, stop-loss) of each variant, the threshold slowest."""
    return [(t, f, s) for t in THRESHOLDS for f in FRACTIONS for s in STOPS]


def specs() -> list[CoreSpec]:
    """Return each variant's core parameters (a spot account, fills at the close)."""
    venue = VenueKernel(
        fill_at_close=True,
        slippage=0.0,
        fee_rate=FEE,
        allow_short=False,
        initial_cash=CASH,
        max_volume_fraction=None,
    )
    return [
        CoreSpec(
            signal=ThresholdKernel(float(t), 1),
            sizing=SizingKernel("kelly", float(f), PAYOFF, MAX_POSITION),
            venue=venue,
            initial_cash=CASH,
            stop_loss=float(s),
            timeframe_ns=60 * 10**9,
        )
        for t, f, s in grid()
    ]


def series_of(frame: pd.DataFrame) -> Series:
    """Return the shared stage: the bars and the fixed predictions, as a sweep caches them."""
    inputs = BarInputs.of(
        [frame[k].to_numpy(np.float64) for k in OHLCV],
        frame["p"].to_numpy(np.float64),
        frame.index.as_unit("ns").asi8,
    )
    return Series(
        inputs=inputs,
        index=frame.index,
        timeframe_seconds=60,
        periods_per_year=525_600.0,
        calendar_year=None,
        sizing_year=525_600.0,
        model_trainings=0,
        model_folds_skipped=0,
        hashes=StageHashes("bench", "bench", "bench", "bench"),
    )


def vectorbt_inputs(frame: pd.DataFrame, count: int) -> dict[str, Any]:
    """Return from_signals' arguments over the grid's first ``count`` columns (the sweep's
    variants, in the same order)."""
    p = frame["p"].to_numpy()
    confidence = np.abs(p - 0.5) * 2.0
    combos = grid()[:count]
    t_of = np.array([np.searchsorted(THRESHOLDS, t) for t, _, _ in combos])
    f_of = np.array([np.searchsorted(FRACTIONS, f) for _, f, _ in combos])
    entries = np.stack([(confidence >= t) & (p > 0.5) for t in THRESHOLDS], axis=1)[:, t_of]
    exits = np.stack([(confidence >= t) & (p < 0.5) for t in THRESHOLDS], axis=1)[:, t_of]
    full = 2.0 * p - 1.0  # Kelly's bet at payoff 1 on a long: p - (1 - p)
    sizes = np.stack([np.minimum(f * full, MAX_POSITION) for f in FRACTIONS], axis=1)[:, f_of]
    index = frame.index.tz_localize(None)  # tz-aware indexes slow vectorbt's wrapper down
    return {
        "close": pd.Series(frame["close"].to_numpy(), index=index),
        "open": pd.Series(frame["open"].to_numpy(), index=index),
        "high": pd.Series(frame["high"].to_numpy(), index=index),
        "low": pd.Series(frame["low"].to_numpy(), index=index),
        "entries": entries,
        "exits": exits,
        "size": np.where(entries, np.maximum(sizes, 0.0), np.nan),
        "sl_stop": np.array([s for _, _, s in combos])[None, :],
    }


def timed(
    fn: Callable[[], object], cpu: list[float] | None = None, *, collect: bool = True
) -> float:
    """Return the seconds one call takes, with the garbage collector held off (and run
    before it, unless ``collect`` is False); append the CPU seconds of this thread (where
    both engines compute; the process's would count the BLAS threads' spinning after
    numpy's calls) to ``cpu``."""
    if collect:
        gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        start_cpu = time.thread_time()
        fn()
        if cpu is not None:
            cpu.append(time.thread_time() - start_cpu)
        return time.perf_counter() - start
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pool-runs", type=int, default=2)
    parser.add_argument("--variants", type=int, default=1000, help="the grid's first N")
    parser.add_argument("--sweep-bars", type=int, default=100_000, help="of the whole sweep")
    parser.add_argument("--sweep-variants", type=int, default=1000, help="of the whole sweep")
    parser.add_argument(
        "--sweep-workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="the whole sweep's --workers after its first run, default 1 2",
    )
    parser.add_argument(
        "--dask-defaults",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a LocalCluster on Dask's default settings (not tradeloom's)",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=IDLE_SECONDS,
        help="seconds each scale-out mode's tree is watched idle (its upkeep), default 2",
    )
    add_smoke(
        parser, bars=500, runs=1, pool_runs=1, variants=16, sweep_bars=600, sweep_variants=8,
        idle=0.2, dask_defaults=False, sweep_workers=[2],
    )  # fmt: skip
    args = parse_args(parser)

    print(describe("numba", "numpy", "pandas", "vectorbt", "dask", "distributed"))
    frame = market(args.bars)
    series = series_of(frame)
    variants = specs()[: args.variants]
    vin = vectorbt_inputs(frame, args.variants)
    n_var = len(variants)
    print(f"\n{args.bars:,} one-minute bars x {n_var:,} variants (of the grid of 10 thresholds "
          "x 10 Kelly fractions x 10 stop-losses); predictions fixed")  # fmt: skip

    def ours() -> Any:
        return run_batch(series, variants)

    def theirs() -> Any:
        import vectorbt as vbt

        pf = vbt.Portfolio.from_signals(
            vin["close"], vin["entries"], vin["exits"], open=vin["open"], high=vin["high"],
            low=vin["low"], size=vin["size"], size_type="percent", sl_stop=vin["sl_stop"],
            fees=FEE, init_cash=CASH, freq="1min", accumulate=False,
        )  # fmt: skip
        return pf, pf.sharpe_ratio(), pf.total_return()

    engines = {
        "tradeloom run_batch (core + metrics)": ours,
        "vectorbt from_signals + stats": theirs,
    }
    if args.smoke:
        print(VECTORBT_SKIPPED)
        del engines["vectorbt from_signals + stats"]
    for fn in engines.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in engines}
    cpus: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.runs):
        for name, fn in engines.items():
            times[name].append(timed(fn, cpus[name]))
    result = ours()
    trades = int(sum(m["trades"] for m in result.metrics))
    if args.smoke:
        print(f"tradeloom closed {trades:,} trades over the variants")
    else:
        pf, _, _ = theirs()
        mine = np.array([m["final_equity"] for m in result.metrics])
        vbt_final = pf.final_value().to_numpy()
        diff = float(np.median(np.abs(mine - vbt_final) / vbt_final))
        print(
            f"tradeloom closed {trades:,} trades over the variants; agreement with vectorbt: "
            f"median rel. diff of final equity {diff:.1e}"
        )
    rate = {}
    cpu_median = {}
    for name, seconds in times.items():
        med = statistics.median(seconds)
        rate[name] = n_var / med
        cpu_median[name] = cpu = statistics.median(cpus[name])
        print(f"  {name:<42} {n_var / med:10.1f} variants/s  median {med:8.3f} s  "
              f"(min {min(seconds):.3f}, max {max(seconds):.3f}, n={len(seconds)}); CPU "
              f"{cpu:.3f} s, {cpu / n_var * 1e3:.2f} ms a variant")  # fmt: skip
    names = list(rate)
    if len(names) == 2:
        print(f"tradeloom over vectorbt: {rate[names[0]] / rate[names[1]]:.2f}x variants/s, "
              f"{cpu_median[names[1]] / cpu_median[names[0]]:.2f}x by CPU time (a loaded "
              "machine inflates the wall time, less the CPU's)")  # fmt: skip
    if args.pool_runs > 0:  # --pool-runs 0: the batched comparison alone
        # --smoke: a cluster of one worker (the same code; one worker process fewer)
        cluster = 1 if args.smoke else 2
        scale_out(series, variants, args.pool_runs, args.dask_defaults, args.idle, cluster)
    if args.sweep_bars > 0:  # --sweep-bars 0: no whole sweep
        whole_sweep(args.sweep_bars, args.sweep_variants, args.sweep_workers)


def scale_out(
    series: Series,
    variants: list[CoreSpec],
    runs: int,
    dask_defaults: bool = True,
    idle_seconds: float = IDLE_SECONDS,
    cluster_workers: int = 2,
) -> None:
    """Time the sweep as tasks serially, on a 2-process local pool and on a 2-worker
    LocalCluster, each warmed the same way before it is timed, and count the CPU time of
    each process (`CpuCount`)."""
    from distributed import LocalCluster

    from tradeloom.sweep.dask_settings import local_cluster
    from tradeloom.sweep.pool import LocalPool

    with tempfile.TemporaryDirectory() as tmp:
        cache = StageCache(Path(tmp))
        inputs = series.inputs
        hashes = {"data": "bench", "features": "bench", "predictions": "bench", "inputs": "bench"}
        cache.put(
            "inputs",
            "bench",
            {
                "px": inputs.px,
                "flags": inputs.flags,
                "score": inputs.score,
                "time_ns": inputs.time_ns,
                "trainings": inputs.trainings,
            },
            {
                "timeframe_seconds": 60,
                "periods_per_year": series.periods_per_year,
                "calendar_year": None,
                "sizing_year": series.sizing_year,
                "model_trainings": 0,
                "model_folds_skipped": 0,
                "hashes": ["bench"] * 4,
            },
        )
        # dealt as the sweep deals a group's variants: at 20,000 bars 4 tasks of 250 of
        # 1,000, at 100,000 16 of 62-63 (`MIN_TASK_WORK`), each
        # from all over the grid
        bars = len(series.inputs)
        parts = deal(list(range(len(variants))), task_size(DEFAULT_CHUNK, bars), bars)

        def tasks(sweep_dir: str, token: str | None) -> list[Task]:
            # as `run_sweep` makes them: a task writes its part itself (serially, on the
            # pool, and on a Dask worker that finds the run's token in the folder)
            return [
                Task(
                    f"batch-{k}",
                    batch_task,
                    (
                        BatchTask(
                            f"batch-{k}",
                            tmp,
                            "bench",
                            tuple(map(str, part)),
                            tuple(variants[v] for v in part),
                            tuple({"param.variant": v} for v in part),
                            tuple(() for _ in part),
                            hashes,
                            sweep_dir,
                            token,
                        ),
                    ),
                )
                for k, part in enumerate(parts)
            ]

        finals: dict[str, list[float]] = {}

        def run(name: str, local: bool, **where: Any) -> Callable[[], None]:
            store = ResultStore(Path(tmp) / name, {"bench": name})
            todo = tasks(str(store.root), None if local else store.open_to_workers())

            def go() -> None:
                execute(todo, on_result=lambda task, part: store.keep(part), **where)
                finals[name] = [store.rows[str(v)]["final_equity"] for v in range(len(variants))]

            return go

        def measure(name: str, go: Callable[[], None]) -> None:
            go()  # warm-up: the processes import tradeloom and load the kernels
            idle = CpuCount()  # what the tree costs doing nothing: its timers, heartbeats
            time.sleep(idle_seconds)
            upkeep[name] = idle.stop().per_run(idle_seconds)
            loads[name] = os.getloadavg()[0]
            timings[name] = []
            collecting = 0.0  # this process holds vectorbt's objects: a collection is long
            with PeakTree() as peak:
                count = CpuCount()
                for _ in range(runs):
                    started = time.thread_time()
                    gc.collect()
                    collecting += time.thread_time() - started
                    timings[name].append(timed(go, collect=False))
            # the sampling thread's CPU is known once it ended
            counts[name] = count.stop(peak, less=collecting)
            peaks[name] = peak.peak

        timings: dict[str, list[float]] = {}
        counts: dict[str, Cpu] = {}
        peaks: dict[str, int] = {}
        loads: dict[str, float] = {}
        upkeep: dict[str, Cpu] = {}
        measure("serial (1 process)", run("serial", True, workers=1))
        with LocalPool(2) as pool:
            pool.warm()
            measure("local pool, 2 processes", run("pool", True, workers=2, pool=pool))
        with local_cluster(cluster_workers, dashboard_address=":0") as cluster:
            measure(
                f"dask LocalCluster, {cluster_workers} workers",
                run("dask", False, scheduler=cluster.scheduler_address),
            )
        if dask_defaults:
            with LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster:
                measure(
                    "  the same, Dask's defaults",
                    run("dask-defaults", False, scheduler=cluster.scheduler_address),
                )
        sizes = sorted({len(part) for part in parts})
        print(f"\nthe same sweep as {len(parts)} tasks of {'-'.join(map(str, sizes))} variants "
              "dealt across the grid, each writing its part of the results (its rows and "
              "float32 returns) as `tradeloom sweep` does; each mode warmed by one untimed "
              "run (the pool and the cluster kept between runs)")  # fmt: skip
        serial = statistics.median(timings["serial (1 process)"])
        serial_cpu = counts["serial (1 process)"].total / runs
        for name, seconds in timings.items():
            med = statistics.median(seconds)
            cpu = counts[name].per_run(runs)
            print(f"  {name:<30} {len(variants) / med:8.1f} variants/s  median {med:7.3f} s "
                  f"(n={len(seconds)}, load {loads[name]:.1f}); {serial / med:.2f}x serial; "
                  f"peak RSS {peaks[name] / 2**30:.2f} GiB")  # fmt: skip
            print(f"    CPU a run: {cpu.line()}; {cpu.total / serial_cpu:.2f}x serial's")
            if cpu.workers:
                idle = upkeep[name]
                print(f"    idle, the tree spends {idle.total:.3f} CPU s a second (the parent "
                      f"{idle.parent:.3f}), {idle.total * cpu.wall:.2f} s of a run at its wall "
                      f"time; at best {cpu.bound(serial_cpu, idle):.2f}x serial on 2 idle "
                      f"cores ({cpu.bound(serial_cpu):.2f}x with the upkeep of this wall "
                      "time)")  # fmt: skip
        same = len({tuple(v) for v in finals.values()}) == 1
        print(f"  results identical in every mode: {same}")
        print(f"  (2 workers on {os.cpu_count()} cores shared with whatever else runs: "
              f"load average {os.getloadavg()[0]:.2f} now. A process's CPU time is what "
              "it ran, which a loaded machine inflates less than the wall time: the "
              "parent's share is the work only one process does; 'at best' is the serial "
              "CPU over the larger of the tree's CPU over 2 cores and the busiest "
              "process's, its idle upkeep counted at that shorter wall time)")  # fmt: skip


def whole_sweep(bars: int, variants: int, workers_runs: list[int]) -> None:
    """Peak RSS of ``tradeloom sweep`` itself (its workers counted): its first run (serial),
    then on each of ``workers_runs`` (1 and 2) with its stages cached."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sweep_file = write_sweep(folder, bars, variants)
        base = [sys.executable, "-m", "tradeloom.cli.main", "sweep", str(sweep_file)]
        cache = ["--cache-dir", str(folder / "cache")]
        _, total, seconds, code = measured([*base, "--out", str(folder / "first"), *cache])
        print(f"\ntradeloom sweep of {variants:,} variants x {bars:,} bars through the CLI "
              f"(peak RSS of the command and its workers, sampled every 50 ms):\n"
              f"  first run (data, features, model computed): {total / 2**30:.2f} GiB, "
              f"{seconds:.1f} s, exit {code}")  # fmt: skip
        for workers in workers_runs:
            out = ["--out", str(folder / f"workers-{workers}"), "--workers", str(workers)]
            _, total, seconds, code = measured([*base, *out, *cache])
            print(f"  --workers {workers} (stages cached): {total / 2**30:.2f} GiB, "
                  f"{seconds:.1f} s, exit {code}")  # fmt: skip


if __name__ == "__main__":
    main()
