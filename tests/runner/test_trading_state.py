"""The trading state machine and which orders each state lets through."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.runner.trading_state import (
    StateChange,
    TradingState,
    TradingStateMachine,
    TransitionError,
    is_reducing,
    order_allowed,
)

T0 = pd.Timestamp("2024-03-01T12:00Z")
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def test_starts_active_and_records_each_change() -> None:
    machine = TradingStateMachine()
    assert machine.state is ACTIVE
    assert machine.last_change is None
    change = machine.move_to(REDUCING, "OPERATOR", "reduce only", T0)
    assert change == StateChange(ACTIVE, REDUCING, "OPERATOR", "reduce only", T0)
    assert machine.state is REDUCING
    assert machine.last_change == change
    back = machine.move_to(ACTIVE, "OPERATOR", "back", T0)
    assert back is not None and (back.previous, back.state) == (REDUCING, ACTIVE)


def test_moving_to_the_current_state_changes_nothing_and_keeps_the_reason() -> None:
    machine = TradingStateMachine()
    first = machine.move_to(REDUCING, "DAILY_LOSS", "loss", T0)
    assert machine.move_to(REDUCING, "OPERATOR", "again", T0) is None
    assert machine.last_change == first
    assert machine.halt("KILL_SWITCH", "file", T0) is not None
    assert machine.halt("KILL_SWITCH", "signal", T0) is None
    assert machine.last_change is not None and machine.last_change.message == "file"


@pytest.mark.parametrize("start", [ACTIVE, REDUCING])
def test_halted_is_left_only_by_resume(start: TradingState) -> None:
    machine = TradingStateMachine()
    machine.move_to(start, "OPERATOR", "x", T0)
    machine.halt("KILL_SWITCH", "tradeloom kill", T0)
    for target in (ACTIVE, REDUCING):
        with pytest.raises(
            TransitionError,
            match=rf"^cannot move from HALTED to {target}; only resume leaves HALTED$",
        ):
            machine.move_to(target, "OPERATOR", "x", T0)
    assert machine.state is HALTED
    change = machine.resume("tradeloom resume", T0)
    assert change == StateChange(HALTED, ACTIVE, "RESUME", "tradeloom resume", T0)
    assert machine.state is ACTIVE


@pytest.mark.parametrize("state", [ACTIVE, REDUCING])
def test_resume_refuses_a_state_that_is_not_halted(state: TradingState) -> None:
    machine = TradingStateMachine()
    machine.move_to(state, "OPERATOR", "x", T0)
    with pytest.raises(
        TransitionError, match=rf"^cannot resume from {state}: only HALTED is resumed$"
    ):
        machine.resume("x", T0)


def test_a_restored_halt_stays_latched() -> None:
    latched = StateChange(ACTIVE, HALTED, "KILL_SWITCH", "tradeloom kill", T0)
    machine = TradingStateMachine(latched)
    assert machine.state is HALTED
    with pytest.raises(TransitionError):
        machine.move_to(ACTIVE, "RESTART", "x", T0)
    assert machine.resume("ok", T0).state is ACTIVE


@pytest.mark.parametrize(
    ("position", "side", "quantity", "reducing"),
    [
        (2.0, -1, 0.5, True),  # partial close of a long
        (2.0, -1, 2.0, True),  # exact close
        (2.0, -1, 2.5, False),  # flip
        (2.0, 1, 0.5, False),  # increase
        (-2.0, 1, 1.0, True),  # partial close of a short
        (-2.0, 1, 3.0, False),  # flip
        (-2.0, -1, 1.0, False),  # increase
        (0.0, 1, 1.0, False),  # opening from flat
        (0.0, -1, 1.0, False),
    ],
)
def test_is_reducing(position: float, side: int, quantity: float, reducing: bool) -> None:
    assert is_reducing(position, side, quantity) is reducing
    assert order_allowed(REDUCING, position, side, quantity) is reducing
    assert order_allowed(ACTIVE, position, side, quantity) is True
    assert order_allowed(HALTED, position, side, quantity) is False


@pytest.mark.parametrize(
    ("position", "side", "quantity", "message"),
    [
        (1.0, 0, 1.0, "side must be +1 or -1, was 0"),
        (1.0, 2, 1.0, "side must be +1 or -1, was 2"),
        (1.0, 1, 0.0, "quantity must be a positive finite number, was 0.0"),
        (1.0, 1, -1.0, "quantity must be a positive finite number, was -1.0"),
        (1.0, 1, float("nan"), "quantity must be a positive finite number, was nan"),
        (float("inf"), 1, 1.0, "position must be finite, was inf"),
    ],
)
def test_a_malformed_order_is_an_error(
    position: float, side: int, quantity: float, message: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        order_allowed(ACTIVE, position, side, quantity)


positions = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda p: p != 0)
# Quantities relative to |position|, so sequences close, reduce, flip and increase it.
fractions = st.one_of(
    st.floats(min_value=1e-6, max_value=3.0, allow_nan=False), st.sampled_from([0.5, 1.0, 2.0])
)
steps = st.tuples(st.sampled_from([1, -1]), fractions)


@given(position=positions, sequence=st.lists(steps, max_size=40))
def test_reducing_never_increases_or_flips_the_position(
    position: float, sequence: list[tuple[int, float]]
) -> None:
    start_sign = 1 if position > 0 else -1
    for side, fraction in sequence:
        quantity = fraction * (abs(position) or 1.0)
        if quantity <= 0:  # underflow of a tiny position
            continue
        if not order_allowed(REDUCING, position, side, quantity):
            continue
        after = position + side * quantity
        assert abs(after) <= abs(position)
        assert after * start_sign >= 0
        position = after


@given(
    position=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    side=st.sampled_from([1, -1]),
    quantity=st.floats(min_value=1e-9, max_value=1e6, allow_nan=False),
)
def test_halted_refuses_every_order(position: float, side: int, quantity: float) -> None:
    assert order_allowed(HALTED, position, side, quantity) is False
