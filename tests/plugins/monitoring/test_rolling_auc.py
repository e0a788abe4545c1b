"""Rolling AUC monitor: the AUC, the status thresholds and the changes it reports."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from tests.hunting import examples
from tradeloom.domain import Bar
from tradeloom.plugins.monitoring.auc import RollingAuc, RollingAucParams, WindowAuc
from tradeloom.plugins.protocols import MonitorInput
from tradeloom.stats import auc

T = pd.Timestamp("2024-01-01", tz="UTC")


@given(
    st.lists(st.tuples(st.integers(0, 8), st.booleans()), min_size=2, max_size=60).filter(
        lambda xs: 0 < sum(b for _, b in xs) < len(xs)
    )
)
def test_auc_equals_sklearn_with_ties(pairs) -> None:
    scores = np.array([s / 8 for s, _ in pairs])
    labels = np.array([b for _, b in pairs])
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_of_one_class_is_nan() -> None:
    assert math.isnan(auc(np.array([0.1, 0.9]), np.array([True, True])))


def feed(monitor: RollingAuc, pairs) -> list:
    changes = []
    for i, (p, up) in enumerate(pairs):
        bar = Bar(i, T, 1, 1, 1, 1, 1)
        change = monitor.on_bar(MonitorInput(bar, math.nan, p, up))
        if change:
            changes.append(change)
    return changes


def test_status_follows_the_thresholds() -> None:
    params = RollingAucParams(window=20, min_samples=20, warning_below=0.6, critical_below=0.4)
    monitor = RollingAuc(params)
    good = [(0.9, True), (0.1, False)] * 10
    bad = [(0.9, False), (0.1, True)] * 10
    assert feed(monitor, good) == []
    changes = feed(monitor, bad)
    assert [(c.previous, c.status) for c in changes][-1][1] == "CRITICAL"
    assert monitor.summary()["status"] == "CRITICAL"
    assert monitor.summary()["rolling_auc_last"] == pytest.approx(0.0)
    assert feed(monitor, good)[-1].status == "HEALTHY"


def test_no_judgement_before_min_samples() -> None:
    monitor = RollingAuc(RollingAucParams(window=50, min_samples=30))
    assert feed(monitor, [(0.9, False), (0.1, True)] * 14) == []
    assert monitor.status == "HEALTHY"


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="critical_below must be <= warning_below"):
        RollingAucParams(warning_below=0.4, critical_below=0.5)


def test_hysteresis_keeps_a_worse_status_until_the_auc_clears_the_margin() -> None:
    params = RollingAucParams(
        window=10, min_samples=10, warning_below=0.6, critical_below=0.2, hysteresis=0.1
    )
    monitor = RollingAuc(params)
    assert monitor._judge(0.55) == "WARNING"
    monitor.status = "WARNING"
    assert monitor._judge(0.65) == "WARNING"  # above 0.6 but not by 0.1
    assert monitor._judge(0.71) == "HEALTHY"
    assert monitor._judge(0.1) == "CRITICAL"  # worse at once


@settings(max_examples=examples(100), deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 6), st.booleans()), max_size=120),
    window=st.integers(2, 40),
)
def test_the_sliding_auc_equals_a_recomputation_bit_for_bit(pairs, window) -> None:
    sliding = WindowAuc(window)
    for i, (score, up) in enumerate(pairs):
        sliding.add(score / 6, up)
        last = pairs[max(0, i + 1 - window) : i + 1]
        expected = auc(np.array([s / 6 for s, _ in last]), np.array([u for _, u in last]))
        value = sliding.value()
        assert value == expected or (math.isnan(value) and math.isnan(expected)), i


def test_metrics_give_the_auc_of_the_window_and_nan_before_min_samples() -> None:
    monitor = RollingAuc(RollingAucParams(window=20, min_samples=10))
    assert monitor.metric_names == ("auc",)
    feed(monitor, [(0.9, True), (0.1, False)] * 4)
    assert math.isnan(monitor.metrics()["auc"])
    feed(monitor, [(0.9, True), (0.1, False)])
    assert monitor.metrics()["auc"] == 1.0


def test_the_name_key_names_the_monitor() -> None:
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.monitoring.auc import build

    ctx = BuildContext(strategy_name="s", strategy_dir=Path("."), seed=0)
    assert build(RollingAucParams(name="auc_fast"), ctx).name == "auc_fast"
    assert build(RollingAucParams(), ctx).name == "rolling_auc"
    with pytest.raises(ValidationError, match="String should match pattern"):
        RollingAucParams(name="has.dot")
