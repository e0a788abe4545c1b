"""`GateTally`: a gate's verdict kept as closes come, equal to `read_gate` over the book."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.live.lifecycle import promotion_gate
from tradeloom.live.lifecycle.prediction_health import PredictionHealth
from tradeloom.live.lifecycle.promotion_gate import GateTally, read_gate
from tradeloom.schemas.strategy import PromoteWhen

_equity = st.one_of(
    st.floats(90.0, 110.0),
    st.sampled_from([100.0, 100.0, 101.0, 0.0, math.nan, math.inf]),
)
_healths = st.builds(
    PredictionHealth,
    st.one_of(st.just(math.nan), st.floats(0.0, 1.0)),
    st.one_of(st.just(math.nan), st.floats(0.0, 1.0)),
    st.integers(0, 50),
)


def _finite(ours: list[float], theirs: list[float]) -> tuple[list[float], list[float]]:
    kept = [(e, c) for e, c in zip(ours, theirs, strict=True) if np.isfinite(e) and np.isfinite(c)]
    return [e for e, _ in kept], [c for _, c in kept]


def _bits(reading: promotion_gate.GateReading) -> tuple[object, ...]:
    health = reading.health
    floats = (reading.mean_difference, reading.t, reading.p, health.auc, health.calibration_error)
    whole = (reading.bars, reading.fills, reading.verdict, health.samples)
    return (*whole, *(f.hex() for f in floats))


@settings(max_examples=examples(300), deadline=None)
@given(
    pairs=st.lists(st.tuples(_equity, _equity), max_size=40),
    fills=st.integers(0, 5),
    min_bars=st.integers(3, 10),
    min_fills=st.integers(0, 3),
    alpha=st.floats(0.001, 0.5),
    health=st.one_of(st.none(), _healths),
    rules=st.sampled_from([{}, {"min_auc": 0.5}, {"max_calibration_error": 0.2}]),
    data=st.data(),
)
def test_the_verdict_at_every_close_is_the_whole_reading_s(
    pairs: list[tuple[float, float]],
    fills: int,
    min_bars: int,
    min_fills: int,
    alpha: float,
    health: PredictionHealth | None,
    rules: dict[str, float],
    data: st.DataObject,
) -> None:
    gate = PromoteWhen(min_bars=min_bars, min_fills=min_fills, alpha=alpha, **rules)
    tally = GateTally()
    ours: list[float] = []
    theirs: list[float] = []
    for e, c in pairs:
        ours.append(e)
        theirs.append(c)
        tally.feed(ours, theirs)
        whole = read_gate(gate, *_finite(ours, theirs), fills, health)
        if 0.0 < whole.p <= 0.5 and data.draw(st.booleans()):  # alpha exactly at p
            gate = gate.model_copy(update={"alpha": whole.p})
            whole = read_gate(gate, *_finite(ours, theirs), fills, health)
        assert tally.verdict(gate, fills, health) == whole.verdict
        assert _bits(tally.reading(gate, fills, health)) == _bits(whole)  # journaled figures


@pytest.mark.parametrize("drift", [0.0, 3e-4, -3e-4])
def test_a_long_book_reads_the_whole_book_only_near_alpha(
    drift: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    ours = list(100 * np.cumprod(1 + rng.normal(drift, 1e-3, 3000)))
    theirs = list(100 * np.cumprod(1 + rng.normal(0.0, 1e-3, 3000)))
    gate = PromoteWhen(min_bars=10, min_fills=0, alpha=0.05)
    verdicts = [read_gate(gate, ours[: n + 1], theirs[: n + 1], 0).verdict for n in range(3000)]
    whole = 0
    real = promotion_gate.read_gate

    def counted(*args: object, **kwargs: object) -> promotion_gate.GateReading:
        nonlocal whole
        whole += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(promotion_gate, "read_gate", counted)
    tally = GateTally()
    for n in range(3000):
        tally.feed(ours[: n + 1], theirs[: n + 1])
        assert tally.verdict(gate, 0, None) == verdicts[n]
    assert whole <= 3  # a p within 1e-6 of alpha is rare: O(1) a close
