"""Calibration monitor: Brier score, ECE and bias of the last window, against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.hunting import examples
from tests.plugins.monitoring.monitor_feed import given, same
from tradeloom.plugins.monitoring.calibration import Calibration, CalibrationParams


def _direct(p: np.ndarray, y: np.ndarray, bins: int) -> dict[str, float]:
    """Brier, ECE and bias by their textbook definitions, one bin at a time."""
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        if inside.any():
            ece += inside.sum() / len(p) * abs(p[inside].mean() - y[inside].mean())
    return {
        "brier": float(np.mean((p - y) ** 2)),
        "ece": float(ece),
        "bias": float(p.mean() - y.mean()),
    }


@settings(max_examples=examples(150), deadline=None)
@hypothesis_given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 1.0, 0.1, 0.3, math.nan])),
            st.booleans(),
        ),
        max_size=80,
    ),
    window=st.integers(10, 30),
    min_samples=st.integers(1, 10),
    bins=st.sampled_from([2, 5, 10]),
)
def test_metrics_equal_the_direct_computation_over_the_last_window(
    pairs: list[tuple[float, bool]], window: int, min_samples: int, bins: int
) -> None:
    params = CalibrationParams(window=window, min_samples=min_samples, bins=bins)
    monitor = Calibration(params)
    resolved: list[tuple[float, bool]] = []
    for i, (p, up) in enumerate(pairs):
        assert monitor.on_bar(given(i, resolved_probability=p, resolved_up=up)) is None
        if not math.isnan(p):
            resolved.append((p, up))
        last = resolved[-window:]
        if len(last) < min_samples:
            expected = dict.fromkeys(("brier", "ece", "bias"), math.nan)
        else:
            ps = np.array([x for x, _ in last])
            ys = np.array([1.0 if u else 0.0 for _, u in last])
            expected = _direct(ps, ys, bins)
        assert same(monitor.metrics(), expected), (i, monitor.metrics(), expected)


def test_a_perfectly_calibrated_window_has_no_ece_and_a_known_brier() -> None:
    # in each bin the share of up moves equals the probability: ECE 0, bias 0
    monitor = Calibration(CalibrationParams(window=16, min_samples=16, bins=2))
    outcomes = [(0.25, True)] + [(0.25, False)] * 3 + [(0.75, True)] * 3 + [(0.75, False)]
    for i, (p, up) in enumerate([(0.9, False)] * 5 + outcomes * 2):  # the first 5 drop out
        monitor.on_bar(given(i, resolved_probability=p, resolved_up=up))
    metrics = monitor.metrics()
    assert metrics["ece"] == pytest.approx(0.0, abs=1e-15)
    assert metrics["bias"] == pytest.approx(0.0, abs=1e-15)
    assert metrics["brier"] == pytest.approx(0.1875)  # 0.25 * 0.75 in both bins


def test_summary_holds_the_reliability_bins_of_the_last_window() -> None:
    monitor = Calibration(CalibrationParams(window=10, min_samples=1, bins=4))
    for i, (p, up) in enumerate([(0.1, False), (0.2, True), (0.9, True), (1.0, True)]):
        monitor.on_bar(given(i, resolved_probability=p, resolved_up=up))
    summary = monitor.summary()
    assert summary["resolved"] == 4
    assert summary["reliability"] == [
        {"from": 0.0, "to": 0.25, "count": 2, "predicted": pytest.approx(0.15), "observed": 0.5},
        {"from": 0.75, "to": 1.0, "count": 2, "predicted": pytest.approx(0.95), "observed": 1.0},
    ]
    assert summary["brier_all"] == pytest.approx((0.01 + 0.64 + 0.01 + 0.0) / 4)


def test_min_samples_must_fit_the_window() -> None:
    with pytest.raises(ValidationError, match="min_samples must be <= window, was 50 > 20"):
        CalibrationParams(window=20, min_samples=50)
