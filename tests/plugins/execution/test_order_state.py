"""The order state machine: its table, fills by trade id, overfills, terminal states."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import Rejection
from tradeloom.plugins.protocols_orders.order_state import (
    FILL_TOLERANCE,
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    OrderLifecycle,
    OrderState,
    OrderStateError,
    OverfillError,
)

S = OrderState
T = pd.Timestamp("2024-01-01", tz="UTC")
REFUSED = Rejection(3, T, "VENUE_REJECTED", "InsufficientFunds -2010: no money")


def accepted(quantity: float = 1.0) -> OrderLifecycle:
    life = OrderLifecycle("s-1", quantity)
    life.send()
    life.accept("v1")
    return life


def test_every_state_has_a_row_and_terminal_states_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    assert {s for s, targets in TRANSITIONS.items() if not targets} == TERMINAL
    assert {S.FILLED, S.CANCELLED, S.REJECTED} == TERMINAL
    # UNKNOWN is left only by what a lookup finds; it is never sent again.
    assert S.SUBMITTED not in TRANSITIONS[S.UNKNOWN]
    assert S.PENDING not in {t for targets in TRANSITIONS.values() for t in targets}


def test_a_market_order_moves_pending_submitted_accepted_partial_filled() -> None:
    life = OrderLifecycle("s-1", 0.3)
    life.send()
    life.accept("v1")
    assert life.fill("t1", 0.1).transition is not None
    assert life.fill("t2", 0.1).transition is None  # still partially filled: no move
    life.fill("t3", 0.1)  # 0.1 + 0.1 + 0.1 > 0.3 in floats: within the tolerance
    assert [(t.previous, t.state) for t in life.history] == [
        (S.PENDING, S.SUBMITTED),
        (S.SUBMITTED, S.ACCEPTED),
        (S.ACCEPTED, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, S.FILLED),
    ]
    assert life.filled > 0.3  # the float sum overshoots...
    assert (life.state, life.remaining, life.venue_id) == (S.FILLED, 0.0, "v1")  # ...harmlessly
    assert life.history[-1].reason == "trade t3"


def test_a_repeated_trade_id_is_ignored_and_reported() -> None:
    life = accepted()
    assert life.fill("t1", 0.4).applied
    again = life.fill("t1", 0.4)
    assert (again.applied, again.duplicate, again.transition) == (False, True, None)
    assert (life.filled, life.trade_ids, life.state) == (0.4, {"t1"}, S.PARTIALLY_FILLED)


def test_an_overfill_is_refused_and_not_applied() -> None:
    life = accepted()
    life.fill("t1", 0.7)
    with pytest.raises(
        OverfillError,
        match=r"^OVERFILL: order s-1: trade t2 would fill 1\.2 of at most 1; refused$",
    ) as refused:
        life.fill("t2", 0.5)
    assert (refused.value.trade_id, refused.value.quantity, refused.value.limit) == ("t2", 0.5, 1.0)
    assert (life.filled, life.trade_ids, life.state) == (0.7, {"t1"}, S.PARTIALLY_FILLED)
    assert len(life.history) == 3
    life.fill("t3", 0.3)
    assert life.state == S.FILLED


def test_the_tolerance_is_relative_to_the_quantity() -> None:
    life = accepted(2.0)
    life.fill("t1", 2.0 * (1 + FILL_TOLERANCE / 2))
    assert life.state == S.FILLED
    fresh = accepted(2.0)
    with pytest.raises(OverfillError):
        fresh.fill("t1", 2.0 * (1 + 3 * FILL_TOLERANCE))


@pytest.mark.parametrize("terminal", [S.FILLED, S.CANCELLED, S.REJECTED])
def test_no_event_moves_an_order_out_of_a_terminal_state(terminal: OrderState) -> None:
    life = OrderLifecycle("s-1", 1.0)
    life.send()
    if terminal == S.FILLED:
        life.accept("v1")
        life.fill("t1", 1.0)
    elif terminal == S.CANCELLED:
        life.accept("v1")
        life.cancel("REPLACED", 0.0)
    else:
        life.reject(REFUSED)
    before = list(life.history)
    for event in (life.send, lambda: life.lose("timeout"), lambda: life.cancel("x")):
        with pytest.raises(IllegalTransition):
            event()
    assert life.observe("open", 0.0) == []  # a stale status read changes nothing
    assert (life.state, life.history) == (terminal, before)


def test_illegal_moves_name_both_states() -> None:
    life = OrderLifecycle("s-9", 1.0)
    with pytest.raises(
        IllegalTransition, match=r"^order s-9: cannot move from pending to unknown$"
    ):
        life.lose("timeout")
    with pytest.raises(
        IllegalTransition,
        match=r"^order s-9: a fill \(trade t1\) for an order that is pending$",
    ):
        life.fill("t1", 0.1)
    with pytest.raises(IllegalTransition, match=r"^order s-9: cannot be accepted while pending$"):
        life.accept("v1")
    assert (life.state, life.history, life.filled) == (S.PENDING, [], 0.0)


def test_an_unknown_order_is_settled_by_what_the_lookup_finds() -> None:
    lost = OrderLifecycle("s-1", 1.0)
    lost.send()
    lost.lose("RequestTimeout")
    lost.fill("t1", 0.25)  # its trades prove the venue has it
    assert lost.state == S.PARTIALLY_FILLED
    never = OrderLifecycle("s-2", 1.0)
    never.send()
    never.lose("NetworkError")
    never.reject(REFUSED)
    assert never.history[-1].rejection == REFUSED
    with pytest.raises(IllegalTransition, match=r"^order s-1: cannot reject an order with fills"):
        lost.reject(REFUSED)


def test_a_cancelled_order_takes_late_fills_up_to_what_the_venue_said_was_filled() -> None:
    life = accepted()
    life.fill("t1", 0.2)
    [move] = life.cancel("REPLACED", venue_filled=0.5)
    assert (move.state, life.fill_limit, life.awaiting_trades) == (S.CANCELLED, 0.5, True)
    life.fill("t2", 0.3)  # filled before the cancel, reported after it
    assert (life.state, life.filled, life.awaiting_trades) == (S.CANCELLED, 0.5, False)
    with pytest.raises(OverfillError, match=r"would fill 0\.6 of at most 0\.5"):
        life.fill("t3", 0.1)


def test_a_cancel_that_reports_everything_filled_leaves_the_order_to_its_trades() -> None:
    life = accepted()
    assert life.cancel("REPLACED", venue_filled=1.0) == []
    assert (life.state, life.awaiting_trades) == (S.ACCEPTED, True)
    life.fill("t1", 1.0)
    assert life.state == S.FILLED


def test_a_venue_status_moves_the_order_and_a_closed_one_waits_for_its_trades() -> None:
    life = OrderLifecycle("s-1", 1.0)
    life.send()
    life.lose("RequestTimeout")
    [found] = life.observe("closed", 1.0, "v7")
    assert (found.previous, found.state, life.venue_id) == (S.UNKNOWN, S.ACCEPTED, "v7")
    assert life.awaiting_trades
    life.fill("t1", 1.0)
    assert life.state == S.FILLED

    expired = accepted()
    moves = expired.observe("expired", 0.0)
    assert [(m.state, m.reason) for m in moves] == [(S.CANCELLED, "expired")]

    refused = OrderLifecycle("s-3", 1.0)
    refused.send()
    refused.lose("timeout")
    with pytest.raises(ValueError, match=r"^order s-3: a rejected status needs its rejection$"):
        refused.observe("rejected", 0.0)
    [move] = refused.observe("rejected", 0.0, "v3", REFUSED)
    assert (move.state, move.rejection) == (S.REJECTED, REFUSED)


def test_a_status_claiming_more_than_the_quantity_is_refused() -> None:
    life = accepted()
    with pytest.raises(OverfillError, match=r"^OVERFILL: order s-1: a venue status would fill 2"):
        life.observe("closed", 2.0)
    assert (life.state, life.venue_filled) == (S.ACCEPTED, 0.0)


# --- properties ----------------------------------------------------------------------

QUANTITY = 1.0
statuses = st.sampled_from(["open", "closed", "canceled", "expired", "rejected"])
fraction = st.floats(0.0, 1.3, allow_nan=False)
fills = st.tuples(st.just("fill"), st.integers(0, 7), st.floats(0.01, 0.5))
events = st.lists(
    st.one_of(
        fills,
        fills,
        fills,
        fills,
        st.tuples(st.just("send")),
        st.tuples(st.just("accept"), st.sampled_from([None, "v1", "v2"])),
        st.tuples(st.just("lose")),
        st.tuples(st.just("reject")),
        st.tuples(st.just("cancel"), st.one_of(st.none(), fraction)),
        st.tuples(st.just("observe"), statuses, st.one_of(st.none(), fraction)),
    ),
    max_size=40,
)
starts = st.sampled_from(["pending", "submitted", "accepted", "unknown"])


def _start(start: str) -> OrderLifecycle:
    life = OrderLifecycle("s-1", QUANTITY)
    if start != "pending":
        life.send()
    if start == "accepted":
        life.accept("v1")
    if start == "unknown":
        life.lose("RequestTimeout")
    return life


def _apply(life: OrderLifecycle, event: tuple[Any, ...]) -> Any:
    kind = event[0]
    if kind == "send":
        return life.send()
    if kind == "accept":
        return life.accept(event[1])
    if kind == "lose":
        return life.lose("RequestTimeout")
    if kind == "reject":
        return life.reject(REFUSED)
    if kind == "cancel":
        return life.cancel("REPLACED", None if event[1] is None else event[1] * QUANTITY)
    if kind == "fill":
        return life.fill(f"t{event[1]}", event[2])
    filled = None if event[2] is None else event[2] * QUANTITY
    return life.observe(event[1], filled, "v1", REFUSED)


@settings(max_examples=examples(400), deadline=None)
@given(start=starts, plan=events)
def test_no_fill_counts_twice_no_overfill_no_way_out_of_a_terminal_state(
    start: str, plan: list[tuple[Any, ...]]
) -> None:
    life = _start(start)
    counted: dict[str, float] = {}
    terminal_at: OrderState | None = None
    for event in plan:
        before = (life.state, len(life.history), life.filled, life.trade_ids)
        try:
            outcome = _apply(life, event)
        except OrderStateError:
            # A refused event changes nothing.
            assert (life.state, len(life.history), life.filled, life.trade_ids) == before
            continue
        if event[0] == "fill":
            trade_id = f"t{event[1]}"
            if outcome.applied:
                assert trade_id not in counted
                counted[trade_id] = event[2]
            else:
                assert trade_id in counted
        assert life.trade_ids == set(counted)
        assert life.filled == math.fsum(counted.values())
        assert life.filled <= QUANTITY * (1 + FILL_TOLERANCE)
        if terminal_at is not None:
            assert life.state == terminal_at
        elif life.terminal:
            terminal_at = life.state
    state = OrderState.PENDING
    for move in life.history:
        assert move.previous == state
        assert move.state in TRANSITIONS[move.previous]
        state = move.state
    assert state == life.state
    if life.state == S.FILLED:
        assert life.filled >= QUANTITY * (1 - FILL_TOLERANCE)
    if life.state == S.REJECTED:
        assert life.filled == 0.0
