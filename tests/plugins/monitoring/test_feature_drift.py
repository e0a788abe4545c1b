"""Feature drift monitor: PSI per feature against the fold in effect, by a hand formula."""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np
import pytest
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from tests.hunting import examples
from tests.plugins.monitoring.monitor_feed import given, same
from tradeloom.domain import FeatureReference, ModelTraining
from tradeloom.plugins.monitoring.drift import FeatureDrift, FeatureDriftParams

COLUMNS = ("a", "b")


def _training(fold: int, reference: FeatureReference | None) -> ModelTraining:
    return ModelTraining(
        fold=fold,
        train_start=0,
        train_end=99,
        predict_start=100 * (fold + 1),
        predict_end=100 * (fold + 2) - 1,
        rows=100,
        positives=50,
        horizon=1,
        estimator="X",
        reference=reference,
    )


def _hand_psi(values: list[float], reference: FeatureReference, j: int, eps: float) -> float:
    """PSI written out: count the values per bin, share, floor at eps, sum the terms."""
    edges = list(reference.edges[j])
    expected = list(reference.proportions[j])
    counts = [0] * len(expected)
    for v in values:
        counts[bisect_right(edges, v)] += 1
    total = 0.0
    for count, e in zip(counts, expected, strict=True):
        a = max(count / len(values), eps)
        e = max(e, eps)
        total += (a - e) * math.log(a / e)
    return total


@settings(max_examples=examples(60), deadline=None)
@hypothesis_given(
    seed=st.integers(0, 10_000),
    window=st.integers(10, 40),
    min_samples=st.integers(1, 10),
    shift=st.floats(-2, 2),
    nan_share=st.sampled_from([0.0, 0.2]),
)
def test_psi_equals_the_hand_formula_over_the_last_window(
    seed: int, window: int, min_samples: int, shift: float, nan_share: float
) -> None:
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(200, 2))
    train[:, 1] = np.round(train[:, 1])  # few distinct values: duplicate edges removed
    reference = FeatureReference.of(train, COLUMNS)
    training = _training(0, reference)
    eps = 1e-4
    monitor = FeatureDrift(
        FeatureDriftParams(window=window, min_samples=min_samples, epsilon=eps), COLUMNS
    )
    seen: dict[str, list[float]] = {c: [] for c in COLUMNS}
    for i in range(60):
        row = {c: float(rng.normal(shift)) for c in COLUMNS}
        if rng.random() < nan_share:
            row["a"] = math.nan
        monitor.on_bar(given(i, features=row, training=training))
        expected = {}
        for j, column in enumerate(COLUMNS):
            seen[column].append(row[column])
            kept = [v for v in seen[column][-window:] if math.isfinite(v)]
            expected[f"psi.{column}"] = (
                _hand_psi(kept, reference, j, eps) if len(kept) >= min_samples else math.nan
            )
        finite = [v for v in expected.values() if not math.isnan(v)]
        expected["psi_max"] = max(finite) if finite else math.nan
        assert same(monitor.metrics(), expected, rel=1e-9), i


def test_the_training_rows_themselves_do_not_drift() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(size=(500, 2))
    reference = FeatureReference.of(train, COLUMNS)
    monitor = FeatureDrift(FeatureDriftParams(window=500, min_samples=500), COLUMNS)
    for i, (a, b) in enumerate(train):
        monitor.on_bar(given(i, features={"a": a, "b": b}, training=_training(0, reference)))
    assert monitor.metrics()["psi_max"] == pytest.approx(0.0, abs=1e-12)


def test_a_new_fold_starts_the_window_again_against_its_own_reference() -> None:
    rng = np.random.default_rng(5)
    old = FeatureReference.of(rng.normal(size=(1000, 2)), COLUMNS)
    new = FeatureReference.of(rng.normal(5.0, size=(1000, 2)), COLUMNS)
    monitor = FeatureDrift(FeatureDriftParams(window=400, min_samples=200), COLUMNS)
    shifted = [{"a": float(v), "b": float(w)} for v, w in rng.normal(5.0, size=(500, 2))]
    for i, row in enumerate(shifted[:250]):
        monitor.on_bar(given(i, features=row, training=_training(0, old)))
    assert monitor.metrics()["psi_max"] > 5  # far from the old fold's rows
    for i, row in enumerate(shifted[250:449], start=250):
        monitor.on_bar(given(i, features=row, training=_training(1, new)))
    assert math.isnan(monitor.metrics()["psi_max"])  # 199 bars since the new fold < 200
    monitor.on_bar(given(449, features=shifted[449], training=_training(1, new)))
    assert monitor.metrics()["psi_max"] < 0.1  # like the new fold's rows
    assert monitor.summary()["folds"] == 2


def test_no_fold_in_effect_gives_nan() -> None:
    monitor = FeatureDrift(FeatureDriftParams(window=10, min_samples=1), COLUMNS)
    monitor.on_bar(given(0, features={"a": 1.0, "b": 1.0}, training=None))
    assert math.isnan(monitor.metrics()["psi_max"])
    assert monitor.metric_names == ("psi_max", "psi.a", "psi.b")


def test_an_empty_bin_counts_with_epsilon_not_zero() -> None:
    reference = FeatureReference(("a",), (np.array([0.0]),), (np.array([0.5, 0.5]),))
    eps = 0.01
    monitor = FeatureDrift(FeatureDriftParams(window=10, min_samples=10, epsilon=eps), ("a",))
    for i in range(10):  # every value in the upper bin
        monitor.on_bar(given(i, features={"a": 1.0}, training=_training(0, reference)))
    expected = (eps - 0.5) * math.log(eps / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert monitor.metrics()["psi.a"] == pytest.approx(expected, rel=1e-12)
