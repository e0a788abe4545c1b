"""The engine's own exits: stop-loss, take-profit, liquidation and the holding limit.

Ported from tests/runner/test_exits.py, against `tradeloom.core.exits`, with
liquidation added: where it lies, and which exit a bar that reaches several takes.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core.codes import EXIT_LIQUIDATION, EXIT_STOP_LOSS, EXIT_TAKE_PROFIT
from tradeloom.core.exits import (
    NO_EXIT,
    holding_expired,
    liquidation_price,
    protective_exit,
    stop_exit,
)

NAN = math.nan
STOP, TARGET, LIQ = EXIT_STOP_LOSS, EXIT_TAKE_PROFIT, EXIT_LIQUIDATION


def same(got: tuple[int, float], expected: tuple[int, float]) -> bool:
    code, price = got
    if code != expected[0]:
        return False
    return (math.isnan(price) and math.isnan(expected[1])) or price == pytest.approx(expected[1])


# Entry 100, stop-loss 2%, take-profit 4%: a long's stop is 98 and its target 104; a
# short's stop is 102 and its target 96.
@pytest.mark.parametrize(
    ("direction", "bar", "expected"),
    [
        (1, (100.0, 101.0, 99.0), (NO_EXIT, NAN)),
        (1, (100.0, 101.0, 97.0), (STOP, 98.0)),  # the low reaches 98: out at 98
        (1, (96.0, 101.0, 95.0), (STOP, 96.0)),  # opens through the stop: out at the open
        (1, (100.0, 105.0, 99.0), (TARGET, 104.0)),
        (1, (106.0, 107.0, 105.0), (TARGET, 106.0)),
        (1, (100.0, 105.0, 97.0), (STOP, 98.0)),  # both in one bar: the stop first
        (1, (100.0, 104.0, 98.0), (STOP, 98.0)),  # both exactly at their levels
        (-1, (100.0, 103.0, 99.0), (STOP, 102.0)),
        (-1, (103.0, 104.0, 99.0), (STOP, 103.0)),
        (-1, (100.0, 101.0, 95.0), (TARGET, 96.0)),
        (-1, (95.0, 96.0, 94.0), (TARGET, 95.0)),
        (-1, (100.0, 103.0, 95.0), (STOP, 102.0)),
        (0, (50.0, 200.0, 1.0), (NO_EXIT, NAN)),
    ],
)
def test_stop_exit_levels(direction: int, bar: tuple[float, float, float], expected) -> None:
    assert same(stop_exit(direction, 100.0, *bar, 0.02, 0.04), expected)
    assert same(protective_exit(direction, 100.0, *bar, 0.02, 0.04, NAN), expected)


def test_a_missing_level_never_triggers() -> None:
    assert stop_exit(1, 100.0, 50.0, 200.0, 1.0, NAN, NAN)[0] == NO_EXIT
    assert stop_exit(1, 100.0, 100.0, 200.0, 1.0, NAN, 0.5)[0] == TARGET
    assert stop_exit(-1, 100.0, 100.0, 200.0, 1.0, 0.5, NAN)[0] == STOP
    assert protective_exit(1, 100.0, 50.0, 200.0, 1.0, NAN, NAN, NAN)[0] == NO_EXIT


# The same stop (98 long, 102 short) and target (104 long, 96 short), with a
# liquidation price on either side of the stop.
@pytest.mark.parametrize(
    ("direction", "liquidation", "bar", "expected"),
    [
        # long, liquidated at 99 (above the stop): falling from 100, the price meets 99 first
        (1, 99.0, (100.0, 101.0, 97.0), (LIQ, 99.0)),
        (1, 99.0, (100.0, 101.0, 99.0), (LIQ, 99.0)),  # the low exactly at it
        (1, 99.0, (100.0, 101.0, 99.5), (NO_EXIT, NAN)),
        (1, 99.0, (100.0, 105.0, 97.0), (LIQ, 99.0)),  # the adverse level wins over the target
        (1, 99.0, (98.5, 100.0, 97.0), (LIQ, 98.5)),  # opens past it (not the stop): the open
        (1, 99.0, (96.0, 97.0, 95.0), (STOP, 96.0)),  # opens past both: the stop order first
        (1, 99.0, (106.0, 107.0, 105.0), (TARGET, 106.0)),
        # long, liquidated at 97 (below the stop): the stop is met first
        (1, 97.0, (100.0, 101.0, 96.0), (STOP, 98.0)),
        (1, 97.0, (97.5, 101.0, 96.0), (STOP, 97.5)),
        (1, 98.0, (100.0, 101.0, 97.0), (STOP, 98.0)),  # a tie: the stop (no liquidation fee)
        # short, liquidated at 101 (below the stop at 102)
        (-1, 101.0, (100.0, 103.0, 99.0), (LIQ, 101.0)),
        (-1, 101.0, (100.0, 101.5, 95.0), (LIQ, 101.0)),  # over the target too
        (-1, 101.0, (101.5, 101.8, 99.0), (LIQ, 101.5)),
        (-1, 101.0, (105.0, 106.0, 104.0), (STOP, 105.0)),
        (-1, 101.0, (100.0, 100.5, 99.0), (NO_EXIT, NAN)),
        # short, liquidated at 103 (above the stop)
        (-1, 103.0, (100.0, 104.0, 99.0), (STOP, 102.0)),
        (-1, 103.0, (95.0, 96.0, 94.0), (TARGET, 95.0)),
    ],
)
def test_liquidation_against_the_stop_and_the_target(
    direction: int, liquidation: float, bar: tuple[float, float, float], expected
) -> None:
    got = protective_exit(direction, 100.0, *bar, 0.02, 0.04, liquidation)
    assert same(got, expected), got


@pytest.mark.parametrize(
    ("direction", "liquidation", "bar", "expected"),
    [
        (1, 99.0, (100.0, 120.0, 98.0), (LIQ, 99.0)),
        (1, 99.0, (90.0, 91.0, 80.0), (LIQ, 90.0)),
        (-1, 120.0, (100.0, 125.0, 50.0), (LIQ, 120.0)),
        (-1, 120.0, (130.0, 140.0, 129.0), (LIQ, 130.0)),
        (-1, 120.0, (100.0, 119.99, 50.0), (NO_EXIT, NAN)),
    ],
)
def test_liquidation_alone(
    direction: int, liquidation: float, bar: tuple[float, float, float], expected
) -> None:
    assert same(protective_exit(direction, 100.0, *bar, NAN, NAN, liquidation), expected)


def test_liquidation_price_of_a_long_on_borrowed_cash() -> None:
    # 10,000 cash buys 100 at 150: cash -5,000. Equity at P is -5,000 + 100 P, the
    # requirement 0.25 x 100 P; equal at 75 P = 5,000: P = 66.67.
    price = liquidation_price(-5000.0, 100.0, 0.25)
    assert price == pytest.approx(5000.0 / 75.0)
    assert -5000.0 + 100.0 * price == pytest.approx(0.25 * 100.0 * price)
    assert liquidation_price(-5000.0, 100.0, 0.0) == pytest.approx(50.0)  # at zero equity


def test_liquidation_price_of_a_short() -> None:
    # 10,000 cash sells 100 short at 100: cash 20,000. Equity 20,000 - 100 P meets
    # 0.25 x 100 P at 125 P = 20,000: P = 160 (equity 4,000 = 0.25 x 16,000).
    assert liquidation_price(20_000.0, -100.0, 0.25) == pytest.approx(160.0)
    assert liquidation_price(20_000.0, -100.0, 0.0) == pytest.approx(200.0)


@pytest.mark.parametrize("other", [0.0, 1.0, 10_000.0])
def test_an_unleveraged_long_is_never_liquidated(other: float) -> None:
    assert math.isnan(liquidation_price(other, 100.0, 0.25))
    assert math.isnan(liquidation_price(other, 1e-9, 0.0))


def test_a_flat_position_has_no_liquidation_price() -> None:
    assert math.isnan(liquidation_price(-5000.0, 0.0, 0.25))
    assert math.isnan(liquidation_price(5000.0, 0.0, 0.25))


@settings(max_examples=examples(300), deadline=None)
@given(
    other=st.floats(-1e6, 1e6).filter(lambda x: abs(x) > 1e-3),
    quantity=st.floats(1e-3, 1e4),
    short=st.booleans(),
    maintenance=st.floats(0.0, 0.99),
)
def test_at_the_liquidation_price_equity_is_the_maintenance_requirement(
    other: float, quantity: float, short: bool, maintenance: float
) -> None:
    q = -quantity if short else quantity
    price = liquidation_price(other, q, maintenance)
    if not short and other > 0:
        assert math.isnan(price)
        return
    if short and other < 0:  # below the requirement at any price: out at the next open
        assert price < 0.0
        assert protective_exit(-1, 100.0, 1.0, 2.0, 0.5, NAN, NAN, price) == (LIQ, 1.0)
        return
    assert price > 0.0
    equity = other + q * price
    assert equity == pytest.approx(maintenance * quantity * price, rel=1e-9, abs=1e-9)


@settings(max_examples=examples(500), deadline=None)
@given(
    direction=st.sampled_from([-1, 1]),
    entry=st.floats(1.0, 1000.0),
    open_=st.floats(0.5, 2000.0),
    up=st.floats(0.0, 500.0),
    down=st.floats(0.0, 500.0),
    stop=st.one_of(st.just(NAN), st.floats(0.001, 0.9)),
    target=st.one_of(st.just(NAN), st.floats(0.001, 2.0)),
    liquidation=st.one_of(st.just(NAN), st.floats(0.5, 3000.0)),
)
def test_an_exit_fills_inside_the_bar_and_only_when_a_level_is_reached(
    direction: int,
    entry: float,
    open_: float,
    up: float,
    down: float,
    stop: float,
    target: float,
    liquidation: float,
) -> None:
    high, low = open_ + up, max(open_ - down, 1e-9)
    code, price = protective_exit(direction, entry, open_, high, low, stop, target, liquidation)
    levels = {
        STOP: entry * (1 - direction * stop),
        TARGET: entry * (1 + direction * target),
        LIQ: liquidation,
    }
    # What the bar's range reaches, for the position: adverse levels from above (long)
    # or below (short), the target from the other side.
    adverse = [
        c
        for c in (STOP, LIQ)
        if not math.isnan(levels[c])
        and direction * levels[c] >= (direction * (low if direction > 0 else high))
    ]
    target_reached = not math.isnan(target) and direction * levels[TARGET] <= direction * (
        high if direction > 0 else low
    )
    if code == NO_EXIT:
        assert not adverse and not target_reached
        return
    assert low <= price <= high
    assert price in (levels[code], open_)
    slack = 1e-12 * levels[code]
    through_at_open = [
        c
        for c in (STOP, LIQ)
        if not math.isnan(levels[c]) and direction * levels[c] >= (direction * open_)
    ]
    if code == TARGET:  # never worse than the target, and never while an adverse level is met
        assert price * direction >= levels[code] * direction - slack
        assert not through_at_open
        if price != open_:  # inside the bar: nothing adverse was reached at all
            assert not adverse
    else:  # never a better price than the level for the position
        assert price * direction <= levels[code] * direction + slack
        assert code in adverse
        if price == open_:
            assert code in through_at_open
        else:  # inside the bar: the adverse level nearest the open
            assert not through_at_open
            nearest = max(adverse, key=lambda c: direction * levels[c])
            assert direction * levels[code] == direction * levels[nearest]


def test_holding_expired() -> None:
    assert holding_expired(10, 7, 3)
    assert holding_expired(11, 7, 3)
    assert not holding_expired(9, 7, 3)
    assert not holding_expired(100, -1, 3)  # flat
    assert not holding_expired(100, 0, 0)  # no limit
    assert not holding_expired(100, 0, -1)
