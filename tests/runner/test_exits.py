"""Stop-loss, take-profit and the holding limit: when they trigger and at which price."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.runner.exits import NO_EXIT, STOP_LOSS, TAKE_PROFIT, holding_expired, stop_exit

NAN = math.nan


@pytest.mark.parametrize(
    ("direction", "bar", "expected"),
    [
        (1, (100.0, 101.0, 99.0), (NO_EXIT, NAN)),
        (1, (100.0, 101.0, 97.0), (STOP_LOSS, 98.0)),  # the low reaches 98: out at 98
        (1, (96.0, 101.0, 95.0), (STOP_LOSS, 96.0)),  # opens through the stop: out at the open
        (1, (100.0, 105.0, 99.0), (TAKE_PROFIT, 104.0)),
        (1, (106.0, 107.0, 105.0), (TAKE_PROFIT, 106.0)),
        (1, (100.0, 105.0, 97.0), (STOP_LOSS, 98.0)),  # both in one bar: the stop first
        (-1, (100.0, 103.0, 99.0), (STOP_LOSS, 102.0)),
        (-1, (103.0, 104.0, 99.0), (STOP_LOSS, 103.0)),
        (-1, (100.0, 101.0, 95.0), (TAKE_PROFIT, 96.0)),
        (-1, (95.0, 96.0, 94.0), (TAKE_PROFIT, 95.0)),
        (0, (50.0, 200.0, 1.0), (NO_EXIT, NAN)),
    ],
)
def test_stop_exit_levels(direction: int, bar: tuple[float, float, float], expected) -> None:
    code, price = stop_exit(direction, 100.0, *bar, 0.02, 0.04)
    assert code == expected[0]
    assert (math.isnan(price) and math.isnan(expected[1])) or price == pytest.approx(expected[1])


def test_a_missing_level_never_triggers() -> None:
    assert stop_exit(1, 100.0, 50.0, 200.0, 1.0, NAN, NAN)[0] == NO_EXIT
    assert stop_exit(1, 100.0, 100.0, 200.0, 1.0, NAN, 0.5)[0] == TAKE_PROFIT
    assert stop_exit(-1, 100.0, 100.0, 200.0, 1.0, 0.5, NAN)[0] == STOP_LOSS


@settings(max_examples=500, deadline=None)
@given(
    direction=st.sampled_from([-1, 1]),
    entry=st.floats(1.0, 1000.0),
    open_=st.floats(0.5, 2000.0),
    up=st.floats(0.0, 500.0),
    down=st.floats(0.0, 500.0),
    stop=st.one_of(st.just(NAN), st.floats(0.001, 0.9)),
    target=st.one_of(st.just(NAN), st.floats(0.001, 2.0)),
)
def test_stop_exit_fills_inside_the_bar_and_only_when_a_level_is_reached(
    direction, entry, open_, up, down, stop, target
) -> None:
    high, low = open_ + up, max(open_ - down, 1e-9)
    code, price = stop_exit(direction, entry, open_, high, low, stop, target)
    if code == NO_EXIT:
        return
    assert low <= price <= high
    level = {
        (1, STOP_LOSS): entry * (1 - stop),
        (1, TAKE_PROFIT): entry * (1 + target),
        (-1, STOP_LOSS): entry * (1 + stop),
        (-1, TAKE_PROFIT): entry * (1 - target),
    }[(direction, code)]
    assert price in (level, open_)
    slack = 1e-12 * level
    if code == STOP_LOSS:  # never a better price than the stop for the position
        assert price * direction <= level * direction + slack
    else:
        assert price * direction >= level * direction - slack


def test_holding_expired() -> None:
    assert holding_expired(10, 7, 3)
    assert not holding_expired(9, 7, 3)
    assert not holding_expired(100, -1, 3)  # flat
    assert not holding_expired(100, 0, 0)  # no limit
