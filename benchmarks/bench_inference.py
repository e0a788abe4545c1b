"""Single-row inference latency: compiled tree ensembles against scikit-learn's predict_proba.

Live trading predicts one row at a time. For each supported estimator, trained once on
synthetic rows (--rows x --features), every run times single-row calls on held-out rows:
`CompiledClassifier.predict_proba_one(row)` and the estimator's
``predict_proba(row[None, :])``, after a warm-up, and checks that the two give identical
numbers. Prints the machine, then per estimator the median and p99 latency in
microseconds of each path and the ratio of the medians, each the median over --runs.

    python benchmarks/bench_inference.py [--runs 3] [--calls 5000] [--sklearn-calls 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from machine import describe
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.tree import DecisionTreeClassifier

from tradeloom.plugins.model.compiled_trees import CompiledClassifier, compile_classifier

MODELS: dict[str, Callable[[int], Any]] = {
    "RandomForestClassifier": lambda seed: RandomForestClassifier(
        n_estimators=300, n_jobs=-1, random_state=seed
    ),
    "ExtraTreesClassifier": lambda seed: ExtraTreesClassifier(
        n_estimators=300, n_jobs=-1, random_state=seed
    ),
    "GradientBoostingClassifier": lambda seed: GradientBoostingClassifier(
        n_estimators=300, random_state=seed
    ),
    "HistGradientBoostingClassifier": lambda seed: HistGradientBoostingClassifier(
        max_iter=300, early_stopping=False, random_state=seed
    ),
    "DecisionTreeClassifier": lambda seed: DecisionTreeClassifier(random_state=seed),
}
WARM_UP_CALLS = 200


def market(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)) * np.geomspace(0.01, 100.0, features)
    z = x / np.geomspace(0.01, 100.0, features)
    signal = 0.6 * z[:, 0] - 0.4 * z[:, 1] * z[:, 2] + 0.3 * np.sin(3 * z[:, 3])
    y = (signal + rng.normal(size=rows) > 0).astype(np.int64)
    return x, y


def latencies_us(predict: Callable[[np.ndarray], float], rows: np.ndarray) -> np.ndarray:
    out = np.empty(len(rows))
    clock = time.perf_counter_ns
    for i, row in enumerate(rows):
        start = clock()
        predict(row)
        out[i] = clock() - start
    return out / 1e3


def one_run(
    estimator: Any, held_out: np.ndarray, calls: int, sklearn_calls: int, rng: np.random.Generator
) -> dict[str, float]:
    start = time.perf_counter()
    compiled = compile_classifier(estimator, strict=True)
    compile_s = time.perf_counter() - start
    assert isinstance(compiled, CompiledClassifier)

    def sklearn_one(row: np.ndarray) -> float:
        return float(estimator.predict_proba(row[None, :])[0, 1])

    for row in held_out[:WARM_UP_CALLS]:
        compiled.predict_proba_one(row)
    for row in held_out[: WARM_UP_CALLS // 10]:
        sklearn_one(row)
    rows = held_out[rng.integers(0, len(held_out), calls)]
    ours = latencies_us(compiled.predict_proba_one, rows)
    theirs = latencies_us(sklearn_one, rows[:sklearn_calls])
    checked = rows[:sklearn_calls]
    identical = [compiled.predict_proba_one(r) for r in checked] == [
        sklearn_one(r) for r in checked
    ] and np.array_equal(compiled.predict_proba(rows), estimator.predict_proba(rows))
    return {
        "compile_s": compile_s,
        "ours_median": float(np.median(ours)),
        "ours_p99": float(np.percentile(ours, 99)),
        "theirs_median": float(np.median(theirs)),
        "theirs_p99": float(np.percentile(theirs, 99)),
        "identical": float(identical),
        "n_trees": compiled.n_trees,
        "n_nodes": compiled.n_nodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="timed runs; medians are printed")
    parser.add_argument("--calls", type=int, default=5000, help="compiled calls per run")
    parser.add_argument(
        "--sklearn-calls", type=int, default=500, help="predict_proba calls per run"
    )
    parser.add_argument("--rows", type=int, default=20_000, help="training rows")
    parser.add_argument("--features", type=int, default=12)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()

    print("machine:", describe("numpy", "numba", "scikit-learn", "scipy", "tradeloom"))
    print(
        f"data: {args.rows:,} training rows x {args.features} features; single rows drawn "
        f"from 5,000 held-out rows; per run {args.calls:,} compiled and "
        f"{args.sklearn_calls:,} predict_proba calls after a warm-up; medians of "
        f"{args.runs} runs"
    )
    x, y = market(args.rows, args.features, seed=1)
    held_out, _ = market(5000, args.features, seed=2)
    header = (
        f"{'estimator':<31} {'trees':>5} {'nodes':>10} {'compile s':>9}  "
        f"{'compiled us':>17}  {'predict_proba us':>19}  {'ratio':>7}  identical"
    )
    print(header)
    print(f"{'':<60}{'median':>8} {'p99':>8}  {'median':>9} {'p99':>9}  {'medians':>7}")
    all_identical = True
    for name in args.models:
        estimator = MODELS[name](0).fit(x, y)
        if hasattr(estimator, "n_jobs"):
            estimator.set_params(n_jobs=None)  # trained in parallel, predicting as deployed
        rng = np.random.default_rng(3)
        runs = [
            one_run(estimator, held_out, args.calls, args.sklearn_calls, rng)
            for _ in range(args.runs)
        ]

        def median(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        identical = all(run["identical"] for run in runs)
        all_identical &= identical
        print(
            f"{name:<31} {int(runs[0]['n_trees']):>5} {int(runs[0]['n_nodes']):>10,} "
            f"{median('compile_s'):>9.2f}  {median('ours_median'):>8.1f} "
            f"{median('ours_p99'):>8.1f}  {median('theirs_median'):>9.1f} "
            f"{median('theirs_p99'):>9.1f}  "
            f"{median('theirs_median') / median('ours_median'):>6.0f}x  "
            f"{'yes' if identical else 'NO'}",
            flush=True,
        )
    if not all_identical:
        sys.exit("compiled and predict_proba outputs differ")


if __name__ == "__main__":
    main()
