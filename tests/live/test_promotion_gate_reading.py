"""`read_gate`: the figures of a challenger's promotion gate over two equity curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tests.hunting import examples
from tradeloom.live.lifecycle.prediction_health import PredictionHealth
from tradeloom.live.lifecycle.promotion_gate import HOLD, PROMOTE, WAITING, read_gate
from tradeloom.schemas.strategy import PromoteWhen

equities = st.lists(
    st.tuples(st.floats(100.0, 200.0), st.floats(100.0, 200.0)), min_size=0, max_size=30
)


@settings(max_examples=examples(300), deadline=None)
@given(
    pairs=equities,
    fills=st.integers(0, 5),
    min_bars=st.integers(3, 20),
    min_fills=st.integers(0, 5),
    alpha=st.floats(0.01, 0.5),
)
def test_the_reading_is_a_one_sided_paired_t_test_of_the_return_differences(
    pairs: list[tuple[float, float]], fills: int, min_bars: int, min_fills: int, alpha: float
) -> None:
    gate = PromoteWhen(min_bars=min_bars, min_fills=min_fills, alpha=alpha)
    ours = [a for a, _ in pairs]
    theirs = [b for _, b in pairs]
    reading = read_gate(gate, ours, theirs, fills)
    assert (reading.bars, reading.fills) == (len(pairs), fills)
    returns = [
        (ours[i] / ours[i - 1] - 1.0) - (theirs[i] / theirs[i - 1] - 1.0)
        for i in range(1, len(pairs))
    ]
    if returns:
        assert reading.mean_difference == pytest.approx(float(np.mean(returns)), abs=1e-12)
    else:
        assert math.isnan(reading.mean_difference)
    tested = len(returns) >= 2 and max(returns) > min(returns)
    if tested:
        test = stats.ttest_1samp(returns, 0.0, alternative="greater")
        assert reading.t == pytest.approx(float(test.statistic), rel=1e-6, abs=1e-9)
        assert reading.p == pytest.approx(float(test.pvalue), rel=1e-6, abs=1e-12)
        flipped = read_gate(gate, theirs, ours, fills)  # the champion as the challenger
        assert flipped.t == pytest.approx(-reading.t, rel=1e-6, abs=1e-9)
    else:
        assert math.isnan(reading.t) and math.isnan(reading.p)
    if len(pairs) < min_bars or fills < min_fills:
        assert reading.verdict == WAITING
    else:
        assert reading.verdict == (PROMOTE if tested and reading.p < alpha else HOLD)


def test_a_steadily_better_book_is_promoted_and_an_identical_one_is_not() -> None:
    gate = PromoteWhen(min_bars=5, alpha=0.05)
    champion = [100.0 * 1.001**i for i in range(10)]
    better = [100.0 * 1.002**i * (1.0 + 0.0001 * (i % 2)) for i in range(10)]
    assert read_gate(gate, better, champion, 0).verdict == PROMOTE
    assert read_gate(gate, champion, better, 0).verdict == HOLD
    assert read_gate(gate, champion, champion, 0).verdict == HOLD  # no spread: no test
    assert read_gate(gate, better[:4], champion[:4], 0).verdict == WAITING


def test_a_gate_with_health_rules_waits_for_its_samples_and_holds_an_unhealthy_challenger() -> None:
    champion = [100.0 + i for i in range(12)]
    better = [100.0 + 1.5 * i + (0.2 if i % 2 else 0.0) for i in range(12)]
    gate = PromoteWhen(
        min_bars=5, alpha=0.2, min_auc=0.6, max_calibration_error=0.1, min_samples=10
    )
    assert read_gate(gate, better, champion, 0).verdict == WAITING  # no figures: no samples
    few = PredictionHealth(0.9, 0.01, 9)
    assert read_gate(gate, better, champion, 0, few).verdict == WAITING
    good = PredictionHealth(0.9, 0.01, 10)
    reading = read_gate(gate, better, champion, 0, good)
    assert reading.verdict == PROMOTE and reading.health == good
    for sick in (
        PredictionHealth(0.55, 0.01, 10),  # AUC below its limit
        PredictionHealth(math.nan, 0.01, 10),  # one class: no AUC
        PredictionHealth(0.9, 0.2, 10),  # calibration past its limit
    ):
        assert read_gate(gate, better, champion, 0, sick).verdict == HOLD
    plain = PromoteWhen(min_bars=5, alpha=0.2)  # no health rule: figures are not read
    assert read_gate(plain, better, champion, 0, PredictionHealth(0.1, 0.9, 0)).verdict == PROMOTE
