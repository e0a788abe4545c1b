"""Declared latency in the compiled bar (`tradeloom.core.latency`): which open an order
reaches, reproducible draws, and a cancel that races the order it cancels.

Hand-built hourly bars; cash 10,000, no fee, no slippage, ``fill: next_open``, a long
signal at p >= 0.6. Each bar opens at 100 + its index, so a fill's price names its bar.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.core import codes
from tradeloom.core.kernels.latency import (
    ARRIVE_BAR_OPEN,
    ARRIVE_NEXT_OPEN,
    LAT_FIXED,
    LAT_LOGNORMAL,
    LAT_UNIFORM,
    LEG_SEND,
    arrival_delay,
    latency_ms,
    unit_draw,
)
from tradeloom.core.kernels.specs import LatencyKernel

from .harness import bars, make_spec, rows, run

NAN = math.nan
HOUR_MS = 3_600_000.0


def _spec(latency: LatencyKernel | None = None, **other: object):
    spec = make_spec(fill_at_close=False, fraction=0.5, **other)
    assert spec.venue is not None
    if latency is not None:
        spec = replace(spec, venue=replace(spec.venue, latency=latency))
    return spec


def _fills(state) -> list[tuple[int, float]]:
    return [(r.bar, r.values[3]) for r in rows(state) if r.kind == "FILL"]


def _market(n: int = 8, p: list[float] | None = None):
    opens = [100.0 + k for k in range(n)]
    return bars(opens, open_=opens, p=p or [0.7] + [NAN] * (n - 1))


@pytest.mark.parametrize(
    ("ms", "rule", "bar"),
    [
        (0.0, ARRIVE_BAR_OPEN, 1),  # no latency: the next bar's open
        (250.0, ARRIVE_BAR_OPEN, 1),  # below a bar period: the next open, as without
        (HOUR_MS, ARRIVE_BAR_OPEN, 2),  # one period: it arrives as bar 2 opens
        (2.5 * HOUR_MS, ARRIVE_BAR_OPEN, 3),  # inside bar 3: its open
        (250.0, ARRIVE_NEXT_OPEN, 2),  # next_open: never a price quoted before it arrived
        (2.5 * HOUR_MS, ARRIVE_NEXT_OPEN, 4),
    ],
)
def test_a_fixed_latency_moves_the_fill_to_the_declared_open(
    ms: float, rule: int, bar: int
) -> None:
    latency = LatencyKernel(kind=LAT_FIXED if ms else 0, a=ms, rule=rule)
    state = run(_spec(latency), _market())
    assert _fills(state) == [(bar, 100.0 + bar)]


def test_without_a_latency_the_rows_are_those_of_a_venue_without_the_setting() -> None:
    p = [0.7, NAN, 0.3, NAN, 0.7, 0.3, NAN, NAN]
    plain = run(_spec(), _market(p=p))
    zero = run(_spec(LatencyKernel()), _market(p=p))
    assert np.array_equal(plain.rows(), zero.rows(), equal_nan=True)
    assert [r.bar for r in rows(plain) if r.kind == "FILL"] == [1, 3, 5, 6]


def test_a_seeded_distribution_draws_the_same_milliseconds_in_every_call() -> None:
    first = [latency_ms(LAT_LOGNORMAL, 20.0, 0.5, 7, n, LEG_SEND) for n in range(1, 200)]
    again = [latency_ms(LAT_LOGNORMAL, 20.0, 0.5, 7, n, LEG_SEND) for n in range(1, 200)]
    other = [latency_ms(LAT_LOGNORMAL, 20.0, 0.5, 8, n, LEG_SEND) for n in range(1, 200)]
    assert first == again
    assert first != other
    # the median is the declared one (199 draws: within 15%)
    assert float(np.median(first)) == pytest.approx(20.0, rel=0.15)


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(0, 1e5),
    span=st.floats(0, 1e5),
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 2**31 - 1),
)
def test_a_uniform_draw_stays_inside_its_bounds(low: float, span: float, seed: int, n: int) -> None:
    ms = latency_ms(LAT_UNIFORM, low, low + span, seed, n, LEG_SEND)
    assert low <= ms <= low + span
    assert 0.0 < unit_draw(seed, n, 0) < 1.0


@settings(max_examples=60, deadline=None)
@given(ms=st.one_of(st.just(0.0), st.floats(1e-3, 1e8)), period=st.floats(1, 1e7))
def test_the_rules_arrive_at_the_bar_of_the_arrival_or_the_first_open_after(
    ms: float, period: float
) -> None:
    at = arrival_delay(ms, period, ARRIVE_BAR_OPEN)
    after = arrival_delay(ms, period, ARRIVE_NEXT_OPEN)
    assert at * period <= ms < (at + 1) * period or ms == 0.0
    assert after in (at, at + 1)
    assert after * period >= ms


def test_a_seeded_latency_run_twice_gives_the_same_rows() -> None:
    latency = LatencyKernel(kind=LAT_UNIFORM, a=0.0, b=3 * HOUR_MS, seed=11)
    p = [0.7, NAN, NAN, NAN, 0.3, NAN, NAN, NAN, 0.7, NAN, NAN, NAN, NAN, NAN]
    one = run(_spec(latency), _market(len(p), p))
    two = run(_spec(latency), _market(len(p), p))
    assert np.array_equal(one.rows(), two.rows(), equal_nan=True)
    # each order fills at the open its own draw says
    for seq, (bar, _) in enumerate(_fills(one), start=1):
        sent = next(r.bar for r in rows(one) if r.kind == "ORDER" and r.values[0] == seq)
        delay = arrival_delay(
            latency_ms(LAT_UNIFORM, 0.0, 3 * HOUR_MS, 11, seq, LEG_SEND), HOUR_MS, 0
        )
        assert bar == sent + 1 + delay


def test_a_cancel_that_arrives_before_the_order_cancels_it() -> None:
    # the entry (bar 0) takes 2.5 periods: it would fill at bar 3's open; the exit's
    # decision at bar 1 cancels it, and the cancel takes 10 ms: it reaches the venue
    # 1.5 periods before the order, which never fills
    latency = LatencyKernel(kind=LAT_FIXED, a=2.5 * HOUR_MS, cancel_kind=LAT_FIXED, cancel_a=10.0)
    p = [0.7, 0.3, NAN, NAN, NAN, NAN, NAN, NAN]
    state = run(_spec(latency, allow_short=True), _market(p=p))
    cancels = [r for r in rows(state) if r.kind == "CANCEL"]
    assert [(r.bar, int(r.values[2])) for r in cancels] == [(1, codes.REPLACED)]
    # the short that replaced it is the only fill: at bar 4 (1 + 1 + 2)
    assert _fills(state) == [(4, 104.0)]


def test_a_cancel_that_arrives_after_the_order_is_too_late_and_the_order_fills() -> None:
    # the entry takes 1.5 periods (bar 2's open); the exit's cancel at bar 1's close
    # takes 0.75 period: it reaches the venue 0.25 period after the order
    latency = LatencyKernel(
        kind=LAT_FIXED, a=1.5 * HOUR_MS, cancel_kind=LAT_FIXED, cancel_a=0.75 * HOUR_MS
    )
    p = [0.7, 0.3, NAN, NAN, NAN, NAN, NAN, NAN]
    state = run(_spec(latency, allow_short=True), _market(p=p))
    refused = [r for r in rows(state) if r.kind == "REJECT"]
    assert [(r.bar, int(r.values[0])) for r in refused] == [(1, codes.CANCEL_TOO_LATE)]
    assert refused[0].values[1:4] == (1.0, 0.5 * HOUR_MS, 0.75 * HOUR_MS)
    assert [r for r in rows(state) if r.kind == "CANCEL"] == []
    assert _fills(state) == [(2, 102.0)]


def test_a_cancel_arriving_at_the_same_instant_as_the_order_is_too_late() -> None:
    latency = LatencyKernel(
        kind=LAT_FIXED, a=1.5 * HOUR_MS, cancel_kind=LAT_FIXED, cancel_a=0.5 * HOUR_MS
    )
    p = [0.7, 0.3, NAN, NAN, NAN, NAN, NAN, NAN]
    state = run(_spec(latency, allow_short=True), _market(p=p))
    assert [int(r.values[0]) for r in rows(state) if r.kind == "REJECT"] == [codes.CANCEL_TOO_LATE]
    assert _fills(state) == [(2, 102.0)]


@settings(max_examples=30, deadline=None)
@given(
    p=st.lists(st.sampled_from([NAN, 0.1, 0.3, 0.5, 0.7, 0.9]), min_size=4, max_size=24),
    ms=st.floats(0.0, HOUR_MS, exclude_max=True),
    short=st.booleans(),
)
def test_a_latency_below_one_bar_period_journals_what_no_latency_journals(
    p: list[float], ms: float, short: bool
) -> None:
    opens = [100.0 + 3 * math.sin(k) for k in range(len(p))]
    inputs = bars(opens, open_=opens, p=p)
    plain = run(_spec(allow_short=short), inputs)
    late = run(_spec(LatencyKernel(kind=LAT_FIXED, a=ms), allow_short=short), inputs)
    assert np.array_equal(plain.rows(), late.rows(), equal_nan=True)
