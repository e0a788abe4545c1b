"""What exact backtest/live parity would cost for an estimator that is not compiled.

A backtest predicts a fold's rows in one batch; a paper or live run predicts each bar's
row alone. For an estimator that is not compiled, ``predict_proba`` may give a row other
last bits in a batch than alone (BLAS blocks its products by the number of rows). The
backtest could predict every row alone too, so that both modes give the same number;
this measures what that costs on the bars a 20,000-bar backtest predicts (--rows, after
a --train-rows window): for each estimator, the time of one batch ``predict_proba``
(the reference, measured in the same run) and of one call per row, their ratio, and
how many rows' probabilities differ between the two and by how much. Medians of --runs.

    python benchmarks/bench_row_parity.py [--runs 3] [--rows 17000] [--train-rows 3000] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from machine import describe
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from smoke import add_smoke, parse_args

MODELS: dict[str, Callable[[], Any]] = {
    "MLPClassifier": lambda: MLPClassifier((32,), max_iter=200, random_state=0),
    "QuadraticDiscriminantAnalysis": QuadraticDiscriminantAnalysis,
    "GaussianNB": GaussianNB,
    "KNeighborsClassifier": KNeighborsClassifier,
    "SVC": lambda: SVC(probability=True, random_state=0),
    "AdaBoostClassifier": lambda: AdaBoostClassifier(n_estimators=50, random_state=0),
    "BaggingClassifier": lambda: BaggingClassifier(n_estimators=10, random_state=0),
}


def one_run(estimator: Any, rows: np.ndarray) -> dict[str, float]:
    start = time.perf_counter()
    batch = estimator.predict_proba(rows)[:, 1]
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    alone = np.array([estimator.predict_proba(row[None, :])[0, 1] for row in rows])
    alone_s = time.perf_counter() - start
    return {
        "batch_s": batch_s,
        "alone_s": alone_s,
        "differ": float(np.sum(batch != alone)),
        "max_diff": float(np.max(np.abs(batch - alone))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="timed runs; medians are printed")
    parser.add_argument("--rows", type=int, default=17_000, help="rows predicted")
    parser.add_argument("--train-rows", type=int, default=3_000, help="rows trained on")
    parser.add_argument("--features", type=int, default=12)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    add_smoke(parser, runs=1, rows=200, train_rows=400, features=4)
    args = parse_args(parser)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # the fit is not measured
    warnings.filterwarnings("ignore", category=FutureWarning)  # SVC(probability=True)

    print("machine:", describe("numpy", "scipy", "scikit-learn", "tradeloom"))
    print(
        f"data: {args.train_rows:,} training rows, {args.rows:,} predicted rows x "
        f"{args.features} features; medians of {args.runs} runs"
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.train_rows + args.rows, args.features))
    y = (x[:, 0] + rng.normal(size=len(x)) > 0).astype(int)
    train, rows = slice(0, args.train_rows), x[args.train_rows :]
    print(
        f"{'estimator':<31} {'batch ms':>9} {'one per row s':>14} {'us per row':>11} "
        f"{'ratio':>8} {'rows differing':>15} {'max |diff|':>10}"
    )
    for name in args.models:
        estimator = MODELS[name]().fit(x[train], y[train])
        runs = [one_run(estimator, rows) for _ in range(args.runs)]

        def median(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        print(
            f"{name:<31} {median('batch_s') * 1e3:>9.1f} {median('alone_s'):>14.2f} "
            f"{median('alone_s') / len(rows) * 1e6:>11.1f} "
            f"{median('alone_s') / median('batch_s'):>7.0f}x "
            f"{int(median('differ')):>15,} {median('max_diff'):>10.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
