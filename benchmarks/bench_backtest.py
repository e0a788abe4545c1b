"""Where the time of a backtest goes, under both drivers.

Runs the default strategy's stages separately (data, features, model, then the
sequential layers with their journal under the batch and the per-bar driver), and
a whole backtest on precomputed probabilities under both drivers against a floor:
a bare Python loop doing the same threshold entries and exits with no journal, no
events and no risk layer. Prints medians of several runs, the machine, the ratios.
benchmarks/bench_core.py compares the compiled core with vectorbt and others.

    python benchmarks/bench_backtest.py [--bars 200000] [--runs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from machine import describe
from smoke import SMALL_RF, add_smoke, parse_args
from threshold_market import write_threshold_market

from tradeloom.backtest.pipeline import Driver, run_backtest
from tradeloom.domain import ModelOutput, RunInfo
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import compute_features
from tradeloom.engine.logs import configure_logging
from tradeloom.engine.wiring import Pipeline, build_pipeline
from tradeloom.journal import RunIdentity, open_journal
from tradeloom.plugins.manager import load_plugins
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stages(runs: int, overrides: tuple[str, ...] = ()) -> None:
    config, _ = load_strategy(ROOT / "strategies" / "btc_rf.yaml", overrides)
    pipeline = build_pipeline(config)
    bars = pipeline.data.load()
    features = compute_features(pipeline, bars)
    print(f"default strategy, {len(bars):,} bars: median of {runs} runs")
    print(f"  data      {median_seconds(pipeline.data.load, runs):8.3f} s")
    print(f"  features  {median_seconds(lambda: compute_features(pipeline, bars), runs):8.3f} s")
    fit_runs = max(1, runs // 2)
    seconds = median_seconds(lambda: pipeline.model.fit_predict(bars, features), fit_runs)
    print(f"  model     {seconds:8.3f} s  (walk-forward, median of {fit_runs})")
    output = pipeline.model.fit_predict(bars, features)
    with tempfile.TemporaryDirectory() as tmp:
        for driver in ("batch", "per_bar"):

            def engine(driver: str = driver) -> None:
                fresh = build_pipeline(config)
                fresh = replace(fresh, model=_Fixed(output, fresh.model.horizon))
                backtest(fresh, Path(tmp), driver)

            seconds = median_seconds(engine, runs)
            print(f"  {driver:9} {seconds:8.3f} s  (features, sequential layers and journal)")


class _Fixed:
    """A model that returns a finished walk-forward's output (the engine alone is timed)."""

    def __init__(self, output: ModelOutput, horizon: int) -> None:
        self.output = output
        self.horizon = horizon

    def fit_predict_universe(self, universe: object, features: object) -> tuple[ModelOutput]:
        return (self.output,)  # the universe of one


def backtest(pipeline: Pipeline, folder: Path, driver: Driver) -> None:
    identity = RunIdentity("bench", "bench", "backtest")
    journal = open_journal(folder / f"j{time.perf_counter_ns()}.sqlite", identity)
    run = RunInfo("bench", "bench", "backtest", str(folder))
    run_backtest(pipeline, Recorder(journal, load_plugins([]).hook, run), "bench", driver=driver)
    journal.close()


def engine_vs_floor(n_bars: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        frame, strategy = write_threshold_market(Path(tmp), n_bars)
        config, _ = load_strategy(strategy)

        def engine(driver: Driver) -> None:
            backtest(build_pipeline(config), Path(tmp), driver)

        p = frame["p_up"].to_numpy()
        c = frame["close"].to_numpy()

        def floor() -> None:
            position, cash = 0.0, 100_000.0
            pending = 0.0
            for t in range(n_bars):
                if pending:
                    position += pending
                    cash -= pending * c[t] * 1.001
                    pending = 0.0
                confidence = abs(p[t] - 0.5) * 2
                if confidence >= 0.9:
                    if p[t] > 0.5 and position == 0.0:
                        pending = cash / c[t]
                    elif p[t] < 0.5 and position > 0.0:
                        pending = -position

        batch_s = median_seconds(lambda: engine("batch"), runs)
        per_bar_s = median_seconds(lambda: engine("per_bar"), runs)
        floor_s = median_seconds(floor, runs)
        print(
            f"backtest on precomputed probabilities (load, features, sequential layers, "
            f"journal), {n_bars:,} bars: median of {runs} runs"
        )
        print(f"  batch driver      {n_bars / batch_s:12,.0f} bars/s  ({batch_s:.3f} s)")
        print(f"  per-bar driver    {n_bars / per_bar_s:12,.0f} bars/s  ({per_bar_s:.3f} s)")
        print(f"  bare Python loop  {n_bars / floor_s:12,.0f} bars/s  ({floor_s:.3f} s)")
        print(f"  ratio batch/floor throughput: {floor_s / batch_s:.2f}")
        print(f"  ratio batch/per-bar throughput: {per_bar_s / batch_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    add_smoke(parser, bars=500, runs=1)
    args = parse_args(parser)
    configure_logging("warning")
    print("machine:", describe("numpy", "numba", "pandas", "scikit-learn", "tradeloom"))
    stages(args.runs, SMALL_RF if args.smoke else ())
    engine_vs_floor(args.bars, args.runs)


if __name__ == "__main__":
    main()
