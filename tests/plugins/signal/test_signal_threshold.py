"""The ``threshold`` signal rule: confidence, direction, spacing, NaN."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.hunting import examples
from tradeloom.domain import Bar, Signal
from tradeloom.plugins import signal
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.registry import PluginInfo, Registry
from tradeloom.plugins.signal import (
    ThresholdParams,
    ThresholdRule,
    build_threshold_rule,
    threshold_step,
)
from tradeloom.plugins.signal.threshold import NO_SIGNAL

CTX = BuildContext(strategy_name="t", strategy_dir=Path("."), seed=1)
START = pd.Timestamp("2024-01-01", tz="UTC")


def _bar(index: int) -> Bar:
    return Bar(index, START + pd.Timedelta(hours=index), 1.0, 1.0, 1.0, 1.0, 1.0)


def _run(probabilities: list[float], threshold: float, min_interval: int) -> list[Signal]:
    rule = build_threshold_rule(
        ThresholdParams(threshold=threshold, min_interval=min_interval), CTX
    )
    signals = [rule.on_bar(_bar(t), p) for t, p in enumerate(probabilities)]
    return [s for s in signals if s is not None]


def _reference(
    probabilities: list[float], threshold: float, min_interval: int
) -> list[tuple[int, int, float]]:
    emitted: list[tuple[int, int, float]] = []
    for t, p in enumerate(probabilities):
        if math.isnan(p):
            continue
        confidence = abs(p - 0.5) * 2
        if confidence < threshold:
            continue
        if emitted and t < emitted[-1][0] + min_interval:
            continue
        emitted.append((t, 1 if p > 0.5 else -1, confidence))
    return emitted


_probability = st.one_of(
    st.floats(0.0, 1.0),
    st.just(math.nan),
    st.sampled_from([0.0, 0.5, 1.0, 0.65, 0.35, 0.8, 0.2]),
)
_threshold = st.one_of(
    st.floats(0.0, 1.0, exclude_min=True), st.sampled_from([1.0, 0.3, 0.6, 1e-12])
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_probability, max_size=80), _threshold, st.integers(1, 12))
def test_signals_match_the_reference(
    probabilities: list[float], threshold: float, min_interval: int
) -> None:
    signals = _run(probabilities, threshold, min_interval)
    expected = _reference(probabilities, threshold, min_interval)
    assert [(s.bar, s.direction, s.confidence) for s in signals] == expected
    for s in signals:
        assert s.probability == probabilities[s.bar]
        assert s.timestamp == _bar(s.bar).timestamp


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_probability, max_size=80), _threshold, st.integers(1, 12))
def test_signal_properties(probabilities: list[float], threshold: float, min_interval: int) -> None:
    signals = _run(probabilities, threshold, min_interval)
    bars = [s.bar for s in signals]
    for s in signals:
        p = probabilities[s.bar]
        assert not math.isnan(p)
        assert p != 0.5
        assert s.confidence >= threshold
        assert s.direction == (1 if p > 0.5 else -1)
        assert 0.0 < s.confidence <= 1.0
    # Spaced by at least min_interval ...
    assert all(b - a >= min_interval for a, b in itertools.pairwise(bars))
    # ... and no confident bar left out except within min_interval of the previous signal.
    for t, p in enumerate(probabilities):
        if t in bars or math.isnan(p) or abs(p - 0.5) * 2 < threshold:
            continue
        previous = [b for b in bars if b < t]
        assert previous and t - previous[-1] < min_interval


def test_confidence_and_direction() -> None:
    assert [(s.bar, s.direction, s.confidence) for s in _run([0.9, 0.1, 0.6, 0.4], 0.5, 1)] == [
        (0, 1, pytest.approx(0.8)),
        (1, -1, pytest.approx(0.8)),
    ]
    (up,) = _run([1.0], 1.0, 1)
    (down,) = _run([0.0], 1.0, 1)
    assert (up.direction, up.confidence, down.direction, down.confidence) == (1, 1.0, -1, 1.0)


def test_half_is_never_a_signal() -> None:
    assert _run([0.5] * 10, 1e-12, 1) == []


def test_nan_is_no_signal_and_does_not_move_the_interval() -> None:
    rule = ThresholdRule(0.2, min_interval=3)
    assert rule.on_bar(_bar(0), 0.9) is not None
    assert rule.on_bar(_bar(1), math.nan) is None
    assert rule.on_bar(_bar(2), 0.9) is None
    assert rule.last_signal_bar == 0
    assert rule.on_bar(_bar(3), math.nan) is None
    assert rule.on_bar(_bar(4), 0.1) is not None
    assert rule.last_signal_bar == 4


def test_first_signal_at_bar_zero_and_held_back_signals_do_not_restart_the_interval() -> None:
    signals = _run([0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.9], 0.5, 5)
    assert [(s.bar, s.direction) for s in signals] == [(0, 1), (5, -1)]


def test_state_resumes() -> None:
    rule = ThresholdRule(0.2, min_interval=4, last_signal_bar=10)
    assert rule.on_bar(_bar(13), 0.9) is None
    assert rule.on_bar(_bar(14), 0.9) is not None


def test_step_returns_its_next_state() -> None:
    direction, confidence, state = threshold_step(NO_SIGNAL, 7, 0.8, 0.5, 3)
    assert (direction, state) == (1, 7.0)
    assert confidence == pytest.approx(0.6)
    held = threshold_step(state, 8, 0.1, 0.5, 3)
    assert (held[0], held[2]) == (0, 7.0)
    quiet = threshold_step(state, 8, math.nan, 0.5, 3)
    assert quiet[0] == 0 and math.isnan(quiet[1]) and quiet[2] == 7.0


@pytest.mark.parametrize("p", [1.5, -0.1, math.inf])
def test_probability_outside_unit_interval_is_a_bug(p: float) -> None:
    with pytest.raises(
        ValueError, match=rf"^probability must be in \[0, 1\] or NaN, was {p} at bar 3$"
    ):
        ThresholdRule(0.5).on_bar(_bar(3), p)


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({}, ("threshold",)),
        ({"threshold": 0.0}, ("threshold",)),
        ({"threshold": 1.01}, ("threshold",)),
        ({"threshold": 0.3, "min_interval": 0}, ("min_interval",)),
        ({"threshold": 0.3, "min_intervals": 2}, ("min_intervals",)),
    ],
)
def test_params_reject(document: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        ThresholdParams.model_validate(document)
    assert caught.value.errors()[0]["loc"] == loc


def test_params_accept() -> None:
    assert ThresholdParams(threshold=1.0).min_interval == 1
    params = ThresholdParams.model_validate({"threshold": 0.3, "min_interval": 4})
    rule = build_threshold_rule(params, CTX)
    assert (rule.threshold, rule.min_interval, rule.last_signal_bar) == (0.3, 4, NO_SIGNAL)


def test_component_registers() -> None:
    components = tuple(signal.tradeloom_components())
    registry = Registry([PluginInfo("tradeloom.plugins.signal", "built-in", components)])
    assert registry.kinds("signal") == ["threshold"]
    threshold = registry.get("signal", "threshold")
    assert threshold is not None
    assert threshold.component.params is ThresholdParams
    assert threshold.component.factory is build_threshold_rule
