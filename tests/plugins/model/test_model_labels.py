"""Training labels: direction with a dead zone, the triple barrier, the forward return and
down/flat/up classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.plugins.model.labels import (
    class_labels,
    direction_labels,
    make_labels,
    return_labels,
    triple_barrier_labels,
)

NAN = np.nan


# --- direction ------------------------------------------------------------------------


def test_direction_labels() -> None:
    close = np.array([1.0, 2.0, 2.0, 1.0, 3.0, np.nan, 4.0])
    np.testing.assert_array_equal(direction_labels(close, 1), [1.0, 0.0, 0.0, 1.0, NAN, NAN, NAN])
    np.testing.assert_array_equal(direction_labels(close, 2), [1.0, 0.0, 1.0, NAN, 1.0, NAN, NAN])
    assert np.isnan(direction_labels(close[:2], 2)).all()


def test_direction_dead_zone_drops_small_moves_only() -> None:
    # Forward log returns: +0.5%, -2%, +3%, 0 (an unchanged close is inside any zone).
    close = 100.0 * np.exp(np.cumsum([0.0, 0.005, -0.02, 0.03, 0.0]))
    np.testing.assert_array_equal(direction_labels(close, 1, 0.01), [NAN, 0.0, 1.0, NAN, NAN])
    np.testing.assert_array_equal(direction_labels(close, 1, 0.0), [1.0, 0.0, 1.0, 0.0, NAN])
    # The zone is strict: a return exactly at the threshold keeps its label.
    assert direction_labels([1.0, math.e], 1, 1.0)[0] == 1.0


# --- return and classes -------------------------------------------------------------------


def test_return_labels_by_hand() -> None:
    close = np.array([100.0, 102.0, 102.0, 96.9, np.nan, 110.0])
    np.testing.assert_array_equal(
        return_labels(close, 1), [102.0 / 100.0 - 1.0, 0.0, 96.9 / 102.0 - 1.0, NAN, NAN, NAN]
    )
    np.testing.assert_array_equal(
        return_labels(close, 2),
        [102.0 / 100.0 - 1.0, 96.9 / 102.0 - 1.0, NAN, 110.0 / 96.9 - 1.0, NAN, NAN],
    )


def test_class_labels_by_hand_with_the_band_ends_flat() -> None:
    # forward returns: +2%, 0, -5%, +0.5% (exactly the band: flat), then none
    close = np.array([100.0, 102.0, 102.0, 96.9, 97.38450, np.nan])
    forward = return_labels(close, 1)
    band = forward[3]
    np.testing.assert_array_equal(class_labels(close, 1, band), [2.0, 1.0, 0.0, 1.0, NAN, NAN])
    np.testing.assert_array_equal(class_labels(close, 1, 0.03), [1.0, 1.0, 0.0, 1.0, NAN, NAN])
    np.testing.assert_array_equal(
        make_labels(close, close, close, kind="classes", horizon=1, dead_band=0.01),
        [2.0, 1.0, 0.0, 1.0, NAN, NAN],
    )
    np.testing.assert_array_equal(
        make_labels(close, close, close, kind="return", horizon=1), forward
    )


@given(
    st.lists(st.floats(1.0, 1e6), min_size=2, max_size=40),
    st.integers(1, 5),
    st.floats(1e-4, 0.5),
)
@settings(max_examples=examples(60), deadline=None)
def test_classes_are_the_sign_of_the_return_outside_the_band(
    close: list[float], horizon: int, band: float
) -> None:
    forward = return_labels(close, horizon)
    classes = class_labels(close, horizon, band)
    known = ~np.isnan(forward)
    assert np.array_equal(np.isnan(classes), ~known)
    expected = np.where(forward > band, 2.0, np.where(forward < -band, 0.0, 1.0))
    assert np.array_equal(classes[known], expected[known])
    # direction agrees with classes wherever the move leaves the band
    direction = direction_labels(close, horizon)
    outside = known & (classes != 1.0)
    assert np.array_equal(direction[outside], classes[outside] / 2.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: direction_labels([1.0, 2.0], 0), "horizon must be >= 1, was 0"),
        (lambda: direction_labels([1.0, 2.0], 1, -0.1), "dead_zone must be >= 0, was -0.1"),
        (
            lambda: triple_barrier_labels([1.0], [1.0], [1.0], 1, 0.0, 0.1),
            "take_profit must be > 0, was 0.0",
        ),
        (
            lambda: triple_barrier_labels([1.0], [1.0], [1.0], 1, 0.1, 1.0),
            "stop_loss must be > 0 and < 1, was 1.0",
        ),
        (
            lambda: triple_barrier_labels([1.0, 2.0], [1.0], [1.0], 1, 0.1, 0.1),
            r"high, low and close must have one shape, have \(2,\), \(1,\), \(1,\)",
        ),
        (
            lambda: make_labels([1.0], [1.0], [1.0], kind="triple_barrier", horizon=1),
            "triple_barrier labels need take_profit and stop_loss",
        ),
        (
            lambda: make_labels([1.0], [1.0], [1.0], kind="classes", horizon=1),
            "classes labels need dead_band",
        ),
        (lambda: class_labels([1.0, 2.0], 1, 0.0), "dead_band must be > 0, was 0.0"),
        (lambda: return_labels([1.0, 2.0], 0), "horizon must be >= 1, was 0"),
        (
            lambda: make_labels([1.0], [1.0], [1.0], kind="up", horizon=1),  # type: ignore[arg-type]
            "kind must be 'direction', 'triple_barrier', 'return' or 'classes', was 'up'",
        ),
    ],
)
def test_bad_arguments(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^{message}$"):
        call()  # type: ignore[operator]


@given(
    st.lists(st.floats(1.0, 1e6), min_size=0, max_size=50),
    st.integers(1, 10),
    st.sampled_from([0.0, 0.001, 0.05]),
)
def test_direction_labels_match_definition(close: list[float], horizon: int, zone: float) -> None:
    labels = direction_labels(close, horizon, zone)
    for i, label in enumerate(labels):
        if i + horizon >= len(close) or abs(math.log(close[i + horizon] / close[i])) < zone:
            assert np.isnan(label)
        else:
            assert label == (1.0 if close[i + horizon] > close[i] else 0.0)


# --- triple barrier --------------------------------------------------------------------


def test_triple_barrier_cases() -> None:
    # Entry 100, take profit at 102, stop at 99, time limit 3 bars.
    high = np.array([100, 101, 102, 100, 100, 100, 100, 100.5, 101, 100])
    low = np.array([100, 99.5, 99.5, 98, 99.5, 99, 99.5, 99.5, 99.5, 100])
    close = np.array([100, 100, 100, 100, 100, 100, 100, 100.2, 99.8, 100.0])
    labels = triple_barrier_labels(high, low, close, 3, 0.02, 0.01)
    # Row 0: take profit at bar 2, before the stop at bar 3.
    # Row 1: high 102 at bar 2 reaches the take profit -> 1.
    # Row 2: the stop at bar 3 (low 98) -> 0.
    # Row 3: stop at bar 5 (low 99 reaches 99 exactly) -> 0.
    # Row 4: stop at bar 5 -> 0.
    # Row 5: nothing touched in bars 6..8; close 99.8 at the limit < 100 -> 0.
    # Row 6: nothing touched in bars 7..9; close 100.0 at the limit, not above -> 0.
    # Rows 7..9: the limit runs past the data.
    np.testing.assert_array_equal(labels, [1, 1, 0, 0, 0, 0, 0, NAN, NAN, NAN])


def test_triple_barrier_both_touched_in_one_bar_counts_as_the_stop() -> None:
    high = np.array([100.0, 103.0, 100.0])
    low = np.array([100.0, 97.0, 100.0])
    close = np.array([100.0, 100.0, 100.0])
    assert triple_barrier_labels(high, low, close, 2, 0.02, 0.02)[0] == 0.0
    # One bar earlier the take profit alone: up, whatever comes after.
    high[1], low[1], low[2] = 103.0, 100.0, 50.0
    assert triple_barrier_labels(high, low, close, 2, 0.02, 0.02)[0] == 1.0


def test_triple_barrier_at_the_time_limit_uses_the_dead_zone() -> None:
    close = np.array([100.0, 100.0, 100.3, 100.0, 99.0])
    flat = close.copy()  # highs and lows equal the closes: no barrier at 5% is reached
    labels = triple_barrier_labels(flat, flat, close, 2, 0.05, 0.05, dead_zone=0.005)
    # Row 0: +0.3% at the limit is inside the zone, row 1 unchanged too; row 2: -1.3% -> 0.
    np.testing.assert_array_equal(labels, [NAN, NAN, 0.0, NAN, NAN])
    labels = triple_barrier_labels(flat, flat, close, 2, 0.05, 0.05)
    np.testing.assert_array_equal(labels, [1.0, 0.0, 0.0, NAN, NAN])


def test_triple_barrier_needs_finite_prices_in_its_window() -> None:
    close = np.array([100.0, 100.0, 100.0, 100.0, 100.0])
    high = np.array([100.0, 110.0, np.nan, 100.0, 100.0])
    labels = triple_barrier_labels(high, close, close, 2, 0.05, 0.05)
    # Rows 0 and 1 see bar 2's NaN high; row 2 sees bars 3..4 only.
    np.testing.assert_array_equal(labels, [NAN, NAN, 0.0, NAN, NAN])


def _reference_triple_barrier(
    high: list[float],
    low: list[float],
    close: list[float],
    horizon: int,
    take_profit: float,
    stop_loss: float,
    zone: float,
) -> list[float]:
    out = []
    for i in range(len(close)):
        if i + horizon >= len(close):
            out.append(NAN)
            continue
        label = NAN
        decided = False
        for j in range(i + 1, i + horizon + 1):
            if low[j] <= close[i] * (1 - stop_loss):
                label, decided = 0.0, True
                break
            if high[j] >= close[i] * (1 + take_profit):
                label, decided = 1.0, True
                break
        if not decided:
            inside = abs(math.log(close[i + horizon] / close[i])) < zone
            label = NAN if inside else (1.0 if close[i + horizon] > close[i] else 0.0)
        out.append(label)
    return out


@st.composite
def _ohlc(draw: st.DrawFn) -> tuple[list[float], list[float], list[float]]:
    n = draw(st.integers(0, 40))
    moves = draw(st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n))
    spans = draw(st.lists(st.floats(0.0, 0.04), min_size=2 * n, max_size=2 * n))
    close = [100.0 * math.exp(sum(moves[: i + 1])) for i in range(n)]
    high = [c * (1 + spans[2 * i]) for i, c in enumerate(close)]
    low = [c * (1 - spans[2 * i + 1]) for i, c in enumerate(close)]
    return high, low, close


@settings(max_examples=examples(300), deadline=None)
@given(
    _ohlc(),
    st.integers(1, 8),
    st.floats(0.001, 0.1),
    st.floats(0.001, 0.1),
    st.sampled_from([0.0, 0.002, 0.02]),
)
def test_triple_barrier_matches_a_bar_by_bar_reference(
    ohlc: tuple[list[float], list[float], list[float]],
    horizon: int,
    take_profit: float,
    stop_loss: float,
    zone: float,
) -> None:
    high, low, close = ohlc
    labels = triple_barrier_labels(high, low, close, horizon, take_profit, stop_loss, zone)
    expected = _reference_triple_barrier(high, low, close, horizon, take_profit, stop_loss, zone)
    np.testing.assert_array_equal(labels, expected)
    dispatched = make_labels(
        high,
        low,
        close,
        kind="triple_barrier",
        horizon=horizon,
        dead_zone=zone,
        take_profit=take_profit,
        stop_loss=stop_loss,
    )
    np.testing.assert_array_equal(dispatched, labels)


@settings(max_examples=examples(100), deadline=None)
@given(_ohlc(), st.integers(1, 8), st.sampled_from([0.0, 0.01]))
def test_unreachable_barriers_give_direction_labels(
    ohlc: tuple[list[float], list[float], list[float]], horizon: int, zone: float
) -> None:
    high, low, close = ohlc
    np.testing.assert_array_equal(
        triple_barrier_labels(high, low, close, horizon, 1e6, 0.999, zone),
        direction_labels(close, horizon, zone),
    )
    np.testing.assert_array_equal(
        make_labels(high, low, close, kind="direction", horizon=horizon, dead_zone=zone),
        direction_labels(close, horizon, zone),
    )


@settings(max_examples=examples(100), deadline=None)
@given(_ohlc(), st.integers(1, 8), st.integers(0, 40), st.sampled_from(["direction", "tb"]))
def test_a_label_uses_no_bar_after_its_horizon(
    ohlc: tuple[list[float], list[float], list[float]], horizon: int, cut: int, kind: str
) -> None:
    # Changing every bar after `cut` leaves the labels of rows i with i + horizon <= cut.
    high, low, close = (np.array(a) for a in ohlc)
    changed = [a.copy() for a in (high, low, close)]
    for a in changed:
        a[cut + 1 :] *= 1.5

    def labels(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
        if kind == "direction":
            return make_labels(h, lo, c, kind="direction", horizon=horizon)
        return make_labels(
            h, lo, c, kind="triple_barrier", horizon=horizon, take_profit=0.02, stop_loss=0.02
        )

    known = max(0, min(len(close), cut - horizon + 1))
    np.testing.assert_array_equal(labels(*changed)[:known], labels(high, low, close)[:known])
