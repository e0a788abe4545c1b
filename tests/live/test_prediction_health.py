"""`prediction_health`: a model's AUC and calibration error over its resolved predictions,
the rule a canary's rollback and a promotion gate's health read."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tests.hunting import examples
from tradeloom.live.prediction_health import health_json, prediction_health


def _ece(p: np.ndarray, up: np.ndarray) -> float:
    """Ten equal-width bins, written out bin by bin (p = 1 in the last)."""
    total = 0.0
    for b in range(10):
        inside = (p >= b / 10) & ((p < (b + 1) / 10) if b < 9 else (p <= 1.0))
        if inside.any():
            total += inside.sum() * abs(p[inside].mean() - up[inside].mean())
    return total / len(p)


@settings(max_examples=examples(200), deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    bars=st.integers(0, 40),
    symbols=st.integers(1, 3),
    horizon=st.integers(1, 5),
    min_samples=st.integers(2, 30),
)
def test_the_figures_are_sklearns_auc_and_the_ece_over_the_resolved_pairs(
    seed: int, bars: int, symbols: int, horizon: int, min_samples: int
) -> None:
    rng = np.random.default_rng(seed)
    closes = 100 + rng.normal(0, 1, (bars + horizon + 5, symbols)).cumsum(axis=0)
    closes[rng.random(closes.shape) < 0.1] = np.nan  # symbols without a bar
    asked = {}
    for t in rng.choice(len(closes), size=min(bars, len(closes)), replace=False):
        row = rng.random(symbols)
        row[rng.random(symbols) < 0.1] = np.nan
        asked[int(t)] = row
    health = prediction_health(asked, closes, horizon, min_samples)
    pairs = [
        (asked[t][s], closes[t + horizon, s] > closes[t, s])
        for t in sorted(asked)
        if t + horizon < len(closes)
        for s in range(symbols)
        if not (np.isnan(asked[t][s]) or np.isnan(closes[t, s]) or np.isnan(closes[t + horizon, s]))
    ]
    assert health.samples == len(pairs)
    if len(pairs) < min_samples:
        assert math.isnan(health.auc) and math.isnan(health.calibration_error)
        return
    p = np.array([q for q, _ in pairs])
    up = np.array([u for _, u in pairs], dtype=np.float64)
    assert health.calibration_error == pytest.approx(_ece(p, up), abs=1e-12)
    if 0 < up.sum() < len(up):
        assert health.auc == pytest.approx(roc_auc_score(up, p), abs=1e-12)
    else:
        assert math.isnan(health.auc)  # one class: no AUC


def test_the_journal_holds_the_figures_as_json_with_null_for_none() -> None:
    closes = np.array([[1.0], [2.0], [3.0]])
    few = prediction_health({0: np.array([0.7])}, closes, horizon=1, min_samples=5)
    assert health_json(few) == '{"auc": null, "calibration_error": null, "samples": 1}'
