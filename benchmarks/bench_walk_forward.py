"""Walk-forward training, serial against parallel folds (``model.walk_forward.n_jobs``).

Loads the default strategy (strategies/btc_rf.yaml) with --bars bars of the built-in
synthetic market and its features, swaps in a small estimator, and times
`SklearnModel.fit_predict` with ``n_jobs: 1`` and with ``n_jobs: -1`` (every core). Prints
the machine, the median of --runs runs of each and their ratio, and checks that both give
identical predictions. ``forest`` (the default) fits with one job, so the folds are the
only parallelism; ``hgb`` fits with OpenMP, which runs every core inside one fit when the
folds run one after another, and one thread per fold when the folds run in parallel
(`SklearnModel` limits each fold thread's OpenMP pool), so it compares the two ways of
using the cores.

    python benchmarks/bench_walk_forward.py [--bars 1000000] [--runs 3] [--smoke]
        [--estimator forest|hgb] [--retrain-every 500]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe
from smoke import SMALL_RF, add_smoke, parse_args

from tradeloom.domain import Bars, ModelOutput
from tradeloom.engine.features import compute_features
from tradeloom.engine.wiring import build_pipeline
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[1]

ESTIMATORS = {
    "forest": [
        "model.estimator=sklearn.ensemble.RandomForestClassifier",
        "model.params.n_estimators=20",
        "model.params.n_jobs=1",
    ],
    "hgb": [
        "model.estimator=sklearn.ensemble.HistGradientBoostingClassifier",
        "model.params={max_iter: 30, max_depth: 5, early_stopping: false}",
    ],
}


def walk_forward(
    bars: Bars, features: pd.DataFrame, overrides: list[str], n_jobs: int
) -> tuple[float, ModelOutput]:
    config, _ = load_strategy(
        ROOT / "strategies" / "btc_rf.yaml", [*overrides, f"model.walk_forward.n_jobs={n_jobs}"]
    )
    model = build_pipeline(config).model
    start = time.perf_counter()
    output = model.fit_predict(bars, features)
    return time.perf_counter() - start, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--estimator", choices=sorted(ESTIMATORS), default="forest")
    parser.add_argument("--retrain-every", type=int, default=500)
    add_smoke(parser, bars=1_000, runs=1, retrain_every=250)
    args = parse_args(parser)

    overrides = [
        *(SMALL_RF if args.smoke else ()),
        f"data.bars={args.bars}",
        f"model.walk_forward.retrain_every={args.retrain_every}",
        *ESTIMATORS[args.estimator],
    ]
    config, _ = load_strategy(ROOT / "strategies" / "btc_rf.yaml", overrides)
    pipeline = build_pipeline(config)
    bars = pipeline.data.load()
    features = compute_features(pipeline, bars)
    model = pipeline.model
    print(describe("numpy", "scikit-learn", "joblib", "tradeloom"))
    print(
        f"walk-forward over {len(bars):,} bars, {features.shape[1]} features, "
        f"{type(model.estimator).__name__}, "
        f"train_window {model.train_window}, retrain_every {model.retrain_every}; "
        f"median of {args.runs} runs"
    )
    medians: dict[int, float] = {}
    outputs: dict[int, ModelOutput] = {}
    for n_jobs in (1, -1):
        seconds = []
        for _ in range(args.runs):
            elapsed, outputs[n_jobs] = walk_forward(bars, features, overrides, n_jobs)
            seconds.append(elapsed)
        medians[n_jobs] = statistics.median(seconds)
        folds = len(outputs[n_jobs].trainings)
        print(f"  n_jobs {n_jobs:>2}  {medians[n_jobs]:8.2f} s  ({folds} folds)")
    serial, parallel = outputs[1], outputs[-1]
    identical = np.array_equal(
        serial.probability.to_numpy(), parallel.probability.to_numpy(), equal_nan=True
    ) and (serial.trainings == parallel.trainings)
    print(f"  serial / parallel  {medians[1] / medians[-1]:.2f}x")
    print(f"  identical predictions: {identical}")
    if not identical:
        raise SystemExit("parallel predictions differ from serial ones")


if __name__ == "__main__":
    main()
