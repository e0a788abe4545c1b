"""Prediction rate monitor: shares of predicted bars and of up predictions, against numpy."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from tests.hunting import examples
from tests.plugins.monitoring.monitor_feed import given, same
from tradeloom.plugins.monitoring.prediction_rate import PredictionRate, PredictionRateParams


@settings(max_examples=examples(150), deadline=None)
@hypothesis_given(
    probabilities=st.lists(
        st.one_of(st.sampled_from([math.nan, 0.5, 0.0, 1.0]), st.floats(0, 1)), max_size=60
    ),
    window=st.integers(10, 20),
    min_samples=st.integers(1, 10),
)
def test_metrics_equal_numpy_over_the_last_window(
    probabilities: list[float], window: int, min_samples: int
) -> None:
    monitor = PredictionRate(PredictionRateParams(window=window, min_samples=min_samples))
    for i, p in enumerate(probabilities):
        assert monitor.on_bar(given(i, probability=p)) is None
        last = np.array(probabilities[max(0, i + 1 - window) : i + 1])
        if len(last) < min_samples:
            expected = {"rate": math.nan, "up_share": math.nan}
        else:
            finite = last[np.isfinite(last)]
            expected = {
                "rate": len(finite) / len(last),
                "up_share": float(np.mean(finite > 0.5)) if len(finite) else math.nan,
            }
        assert same(monitor.metrics(), expected), i


def test_summary_counts_the_whole_run() -> None:
    monitor = PredictionRate(PredictionRateParams(window=10, min_samples=10))
    for i, p in enumerate([math.nan] * 30 + [0.7] * 10):
        monitor.on_bar(given(i, probability=p))
    assert monitor.summary() == {"rate": 1.0, "up_share": 1.0, "rate_all": 0.25}
