"""What the monitors cost per bar, and the sliding AUC against recomputing it.

Each built-in monitor is fed ``--bars`` bars of seeded inputs (a probability per bar,
its outcome ``--horizon`` bars later, 13 features against a fold's reference, a fill
every 4th bar) and timed per bar, ``on_bar`` then ``metrics()`` (what a health rule
reading it costs), after a warm-up of one window. Then the rolling AUC of a
``--window`` window two ways: `tradeloom.stats.auc` over the whole window at every bar
(what `rolling_auc` did before) and `WindowAuc.add` + ``value()``; they must agree bit
for bit. Medians and p99 in microseconds.

    python benchmarks/bench_monitoring.py [--bars 20000] [--window 500] [--smoke]
"""

from __future__ import annotations

import argparse
import math
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import pandas as pd
from machine import describe
from smoke import add_smoke, parse_args

from tradeloom.domain import Bar, FeatureReference, Fill, ModelTraining, Order
from tradeloom.plugins.monitoring.auc import RollingAuc, RollingAucParams, WindowAuc
from tradeloom.plugins.monitoring.calibration import Calibration, CalibrationParams
from tradeloom.plugins.monitoring.drift import FeatureDrift, FeatureDriftParams
from tradeloom.plugins.monitoring.execution import ExecutionQuality, ExecutionQualityParams
from tradeloom.plugins.monitoring.prediction_rate import PredictionRate, PredictionRateParams
from tradeloom.plugins.protocols import MonitorInput
from tradeloom.stats import auc

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def inputs(bars: int, horizon: int, columns: tuple[str, ...]) -> list[MonitorInput]:
    rng = np.random.default_rng(7)
    p = rng.random(bars)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, bars)))
    x = rng.normal(size=(bars, len(columns)))
    reference = FeatureReference.of(rng.normal(size=(4000, len(columns))), columns)
    training = ModelTraining(0, 0, 3999, 0, bars - 1, 4000, 2000, horizon, "X", reference=reference)
    data = []
    for t in range(bars):
        bar = Bar(t, T0, close[t], close[t], close[t], close[t], 1.0)
        orders: tuple[Order, ...] = ()
        fills: tuple[Fill, ...] = ()
        if t % 4 == 0:
            order = Order(f"o{t}", t, T0, 1, 1.0, "ENTRY", close[t])
            orders = (order,)
            fills = (Fill(order.id, t, T0, 1, 1.0, close[t] * 1.0003, 0.0, close[t] * 0.0003),)
        data.append(
            MonitorInput(
                bar,
                p[t],
                p[t - horizon] if t >= horizon else math.nan,
                t >= horizon and close[t] > close[t - horizon],
                dict(zip(columns, x[t], strict=True)),
                orders,
                fills,
                (),
                training,
            )
        )
    return data


def timed(step: Callable[[MonitorInput], object], data: list[MonitorInput], warm: int) -> str:
    ns = np.empty(len(data))
    clock = time.perf_counter_ns
    for t, item in enumerate(data):
        start = clock()
        step(item)
        ns[t] = clock() - start
    us = ns[warm:] / 1e3
    p50, p99 = np.percentile(us, [50, 99])
    return f"p50 {p50:7.1f}  p99 {p99:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--horizon", type=int, default=4)
    add_smoke(parser, bars=1_000, window=100)
    args = parse_args(parser)
    columns = tuple(f"f{j}" for j in range(13))
    data = inputs(args.bars, args.horizon, columns)
    w = args.window
    monitors = {
        "rolling_auc": RollingAuc(RollingAucParams(window=w, min_samples=100)),
        "calibration": Calibration(CalibrationParams(window=w, min_samples=100)),
        "feature_drift (13 features)": FeatureDrift(
            FeatureDriftParams(window=w, min_samples=100), columns
        ),
        "execution_quality": ExecutionQuality(ExecutionQualityParams(window=100)),
        "prediction_rate": PredictionRate(PredictionRateParams(window=w, min_samples=100)),
    }
    print("machine:", describe("numpy", "numba", "scikit-learn", "tradeloom"))
    print(f"{args.bars:,} bars, window {w}, on_bar + metrics() per bar, microseconds")
    for name, monitor in monitors.items():

        def step(item: MonitorInput, monitor: object = monitor) -> None:
            monitor.on_bar(item)  # type: ignore[attr-defined]
            monitor.metrics()  # type: ignore[attr-defined]

        print(f"  {name:<28} {timed(step, data, w)}")

    scores: deque[float] = deque(maxlen=w)
    ups: deque[bool] = deque(maxlen=w)
    sliding = WindowAuc(w)
    recomputed, slid = [], []

    def recompute(item: MonitorInput) -> None:
        if not math.isnan(item.resolved_probability):
            scores.append(item.resolved_probability)
            ups.append(item.resolved_up)
            recomputed.append(auc(np.fromiter(scores, float), np.fromiter(ups, bool)))

    def slide(item: MonitorInput) -> None:
        if not math.isnan(item.resolved_probability):
            sliding.add(item.resolved_probability, item.resolved_up)
            slid.append(sliding.value())

    print(f"rolling AUC of a {w}-bar window, per bar")
    print(f"  {'recomputed (stats.auc)':<28} {timed(recompute, data, w)}")
    print(f"  {'sliding (WindowAuc)':<28} {timed(slide, data, w)}")
    same = all(
        a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(recomputed, slid, strict=True)
    )
    print(f"  identical values: {same} ({len(slid):,} windows)")


if __name__ == "__main__":
    main()
