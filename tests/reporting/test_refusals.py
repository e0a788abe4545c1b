"""The refusal table (`tradeloom.reporting.refusals`): one count by stage, code and purpose.

Built from a journal's rejections (code, purpose) and cancellations joined to their
orders' reasons; the engine's own cancels are no refusal; a code tradeloom does not
know is counted all the same; exits refused are those that left a position open.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.core import codes
from tradeloom.reporting.refusals import (
    UNKNOWN,
    RefusalTable,
    count_refusals,
    exits_warning,
    refusal_lines,
    refusal_metrics,
    unfilled_orders,
)

ORDERS = {
    "o1": "ENTRY",
    "o2": "EXIT_STOP_LOSS",
    "o3": "EXIT_SIGNAL",
    "o4": "EXIT_STOP_LOSS",
    "o5": "ENTRY",
    "o6": "REVERSE",
    "o7": "EXIT_SIGNAL",
}
CANCELS = [
    ("o1", "REPLACED"),  # the engine's own: no refusal
    ("o2", "NO_ROUTE"),
    ("o3", "NO_ROUTE"),
    ("o4", "NO_ROUTE"),
    ("o5", "INSUFFICIENT_CASH"),
    ("o6", "REJECTED VENUE_MIN_NOTIONAL"),  # a venue's code, unknown to tradeloom
    ("o7", "BELOW_MINIMUM"),  # an exit cut to dust: the position counts as flat
    ("gone", "NOT_SENT"),  # an order the journal does not hold
]
REJECTIONS = {
    ("SHORT_NOT_ALLOWED", "ENTRY"): 5,
    ("KELLY_NO_EDGE", "REVERSE"): 2,  # a signal's refused reversal still exits
    ("ORDER_RATE", "EXIT_STOP_LOSS"): 1,  # a pre-trade check refused the stop's order
    ("HALTED", ""): 3,  # journaled before rejections said what they refused
}


def _table() -> RefusalTable:
    ids, reasons = zip(*CANCELS, strict=True)
    return count_refusals(REJECTIONS, ids, reasons, list(ORDERS), list(ORDERS.values()))


def test_every_refusal_is_counted_by_stage_code_and_purpose() -> None:
    table = _table()
    assert table.nested() == {
        "rejected": {
            "HALTED": {UNKNOWN: 3},
            "KELLY_NO_EDGE": {"REVERSE": 2},
            "ORDER_RATE": {"EXIT_STOP_LOSS": 1},
            "SHORT_NOT_ALLOWED": {"ENTRY": 5},
        },
        "cut": {"BELOW_MINIMUM": {"EXIT_SIGNAL": 1}, "INSUFFICIENT_CASH": {"ENTRY": 1}},
        "cancelled": {
            "NOT_SENT": {UNKNOWN: 1},
            "NO_ROUTE": {"EXIT_SIGNAL": 1, "EXIT_STOP_LOSS": 2},
            "REJECTED VENUE_MIN_NOTIONAL": {"REVERSE": 1},
        },
    }
    assert table.total == 11 + 2 + 5
    assert table.by_stage() == {"rejected": 11, "cut": 2, "cancelled": 5}


def test_an_exit_refused_is_one_that_left_its_position_open() -> None:
    exits = {(r.stage, r.code, r.purpose): (r.count, r.protective) for r in _table().exits()}
    assert exits == {
        ("rejected", "ORDER_RATE", "EXIT_STOP_LOSS"): (1, True),
        ("cancelled", "NO_ROUTE", "EXIT_SIGNAL"): (1, False),
        ("cancelled", "NO_ROUTE", "EXIT_STOP_LOSS"): (2, True),
        ("cancelled", "REJECTED VENUE_MIN_NOTIONAL", "REVERSE"): (1, False),
    }
    assert _table().exits_by_purpose() == {"EXIT_STOP_LOSS": 3, "EXIT_SIGNAL": 1, "REVERSE": 1}
    assert exits_warning(_table()) == (
        "5 exits refused (3 EXIT_STOP_LOSS, 1 EXIT_SIGNAL, 1 REVERSE; 3 NO_ROUTE, "
        "1 ORDER_RATE, 1 REJECTED VENUE_MIN_NOTIONAL): each left open the position it was "
        "to close"
    )
    assert exits_warning(RefusalTable()) is None


def test_the_pre_trade_checks_are_the_ones_the_risk_engine_returns() -> None:
    # the codes `pretrade_check` can return refuse an order (an exit's too): no other does
    source = (Path(codes.__file__).parent / "risk.py").read_text(encoding="utf-8")
    body = source.split("def pretrade_check(", 1)[1]
    assert set(re.findall(r"return codes\.([A-Z_]+)", body)) == codes.ORDER_CHECKS


def test_metrics_keys_are_stable_and_read_back() -> None:
    table = _table()
    keys = refusal_metrics(table)
    assert set(keys) == {"refusals", "refusals_total", "exits_refused", "rejections", "cut_orders"}
    assert keys["rejections"] == {
        "HALTED": 3,
        "KELLY_NO_EDGE": 2,
        "ORDER_RATE": 1,
        "SHORT_NOT_ALLOWED": 5,
    }
    assert keys["cut_orders"] == {"BELOW_MINIMUM": 1, "INSUFFICIENT_CASH": 1}
    assert RefusalTable.of_metrics(keys) == table
    empty = refusal_metrics(RefusalTable())
    assert empty["refusals"] == {"rejected": {}, "cut": {}, "cancelled": {}}
    assert (empty["refusals_total"], empty["exits_refused"]) == (0, {})


def test_the_lines_rank_codes_by_count_within_each_stage() -> None:
    assert refusal_lines(_table()) == [
        ("refusals", "18 (11 rejected, 2 cut, 5 cancelled) by code and purpose"),
        ("  SHORT_NOT_ALLOWED", "5 rejected: 5 ENTRY"),
        ("  HALTED", "3 rejected: 3 UNKNOWN"),
        ("  KELLY_NO_EDGE", "2 rejected: 2 REVERSE"),
        ("  ORDER_RATE", "1 rejected: 1 EXIT_STOP_LOSS"),
        ("  BELOW_MINIMUM", "1 cut: 1 EXIT_SIGNAL"),
        ("  INSUFFICIENT_CASH", "1 cut: 1 ENTRY"),
        ("  NO_ROUTE", "3 cancelled: 2 EXIT_STOP_LOSS, 1 EXIT_SIGNAL"),
        ("  NOT_SENT", "1 cancelled: 1 UNKNOWN"),
        ("  REJECTED VENUE_MIN_NOTIONAL", "1 cancelled: 1 REVERSE"),
    ]
    assert refusal_lines(RefusalTable()) == [("refusals", "none")]


def test_an_order_short_of_its_quantity_is_unfilled_whatever_stopped_it() -> None:
    # a cancel with nothing left is no unfilled order; one left working at the end is
    assert unfilled_orders(["a", "b", "b", "c"], [1.0, 2.0, 0.5, 0.0], ["d", "a"]) == 3


@pytest.mark.parametrize("nested", [None, [], {"rejected": {"X": {"ENTRY": -1}}}, {"odd": {}}])
def test_a_metrics_file_without_a_usable_table_reads_as_empty(nested: object) -> None:
    assert RefusalTable.from_nested(nested) == RefusalTable()


_CODES = st.sampled_from(
    ["NO_ROUTE", "NOT_SENT", "REPLACED", "PROTECTIVE_EXIT", "INSUFFICIENT_CASH", "X_Y"]
)


@settings(max_examples=40, deadline=None)
@given(
    cancels=st.lists(st.tuples(st.integers(0, 9), _CODES), max_size=30),
    rejections=st.dictionaries(
        st.tuples(st.sampled_from(["HALTED", "ORDER_RATE"]), st.sampled_from(["", "ENTRY"])),
        st.integers(1, 5),
        max_size=4,
    ),
)
def test_each_refusal_counts_once_and_the_table_reads_back(
    cancels: list[tuple[int, str]], rejections: dict[tuple[str, str], int]
) -> None:
    reasons = [sorted(codes.EXIT_REASONS | {"ENTRY"})[k] for k in range(10)]
    ids = [f"o{k}" for k, _ in cancels]
    table = count_refusals(
        rejections, ids, [c for _, c in cancels], [f"o{k}" for k in range(10)], reasons
    )
    engine = sum(1 for _, c in cancels if c in codes.ENGINE_CANCELS)
    assert table.total == sum(rejections.values()) + len(cancels) - engine
    assert RefusalTable.from_nested(table.nested()) == table
    assert all(r.count > 0 and r.purpose for r in table.rows)
