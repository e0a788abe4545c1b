"""``signal.sides`` in the ladder: a signal on a side the strategy does not trade asks for
flat (it closes the other side, and is a hold from flat), on any venue; never a
``SHORT_NOT_ALLOWED``, never a position on the side barred.

As in test_ladder.py: 10,000 cash, threshold 0.2 (a long at p >= 0.6, a short at
p <= 0.4), 100% of equity, filling at the close, so an entry at 100 buys 100.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.state import CoreState

from .harness import assert_rows, bars, decoded, make_spec, rows, run

NAN = math.nan
LONG, SHORT = 1, -1
"""`tradeloom.engine.core_spec.SIDES` of ``long`` and ``short``."""


def _decision(state: CoreState, bar: int) -> object:
    return next(e.value for e in decoded(state) if e.kind == "decision" and e.bar == bar)


def test_sides_long_holds_a_down_signal_from_flat_on_a_long_only_venue() -> None:
    # the default (both) refuses it SHORT_NOT_ALLOWED, which changes nothing but the journal
    inputs = bars([100.0], p=[0.1])
    both = run(make_spec(), inputs)
    assert [r.kind for r in rows(both)] == ["SIGNAL", "REJECT"]
    state = run(make_spec(sides=LONG), inputs)
    assert_rows(rows(state), [("SIGNAL", 0, -1, 0.8, 0.1), ("DECISION", 0, codes.HOLD, LONG)])
    assert _decision(state, 0) == {
        "outcome": "hold",
        "reason": "signal.sides is long: no short position",
    }


def test_sides_long_opens_no_short_where_the_venue_allows_one() -> None:
    inputs = bars([100.0, 90.0, 95.0], p=[0.9, 0.1, 0.1])
    both = run(make_spec(allow_short=True), inputs)
    assert [r.values[3] for r in rows(both) if r.kind == "ORDER"] == [
        codes.ENTRY,
        codes.REVERSE,
    ]
    state = run(make_spec(allow_short=True, sides=LONG), inputs)
    # bar 1: the down signal closes the long (no reversal); bar 2: flat, it holds
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_SIGNAL, 90.0, 0, NAN),
            ("FILL", 0, 2, -1, 100.0, 90.0, 0.0, 0.0, 1, 0.0, 9000.0),
            ("TRADE", 0, 1, 0, 1, 100.0, 100.0, 90.0, 0.0, -1000.0),
        ],
    )
    assert_rows(rows(state, 2), [("SIGNAL", 0, -1, 0.8, 0.1), ("DECISION", 0, codes.HOLD, LONG)])
    assert state.sym[0, L.S_QTY] == 0.0


def test_sides_short_is_the_mirror() -> None:
    inputs = bars([100.0, 90.0, 95.0], p=[0.1, 0.9, 0.9])
    state = run(make_spec(allow_short=True, sides=SHORT), inputs)
    assert [r.values[3] for r in rows(state) if r.kind == "ORDER"] == [
        codes.ENTRY,
        codes.EXIT_SIGNAL,
    ]
    assert_rows(rows(state, 2), [("SIGNAL", 0, 1, 0.8, 0.9), ("DECISION", 0, codes.HOLD, SHORT)])
    assert _decision(state, 2) == {
        "outcome": "hold",
        "reason": "signal.sides is short: no long position",
    }


def test_a_long_held_as_dust_is_still_said_below_the_minimum() -> None:
    # what the down signal cannot close is journaled as on a long-only venue
    # (test_dust.py's case: 1 unit bought at 100 is worth 40 at bar 2, under 50)
    spec = make_spec(fraction=0.01, min_notional=50.0, sides=LONG)
    state = run(spec, bars([100.0, 100.0, 40.0], p=[0.9, NAN, 0.1]))
    assert [(r.kind, r.values[0]) for r in rows(state, 2)] == [
        ("SIGNAL", -1.0),
        ("REJECT", codes.BELOW_MINIMUM),
    ]


@settings(max_examples=examples(200), deadline=None)
@given(
    p=st.lists(
        st.one_of(st.just(NAN), st.floats(0.0, 1.0, allow_nan=False)), min_size=1, max_size=40
    ),
    moves=st.lists(st.floats(-0.08, 0.08), min_size=40, max_size=40),
    allow_short=st.booleans(),
    fill_at_close=st.booleans(),
    threshold=st.sampled_from([0.05, 0.2, 0.6]),
    min_interval=st.sampled_from([1, 3]),
    max_holding_bars=st.sampled_from([None, 2]),
    stop_loss=st.sampled_from([None, 0.02]),
)
def test_with_sides_long_no_bar_asks_for_a_position_below_zero(
    p: list[float],
    moves: list[float],
    allow_short: bool,
    fill_at_close: bool,
    threshold: float,
    min_interval: int,
    max_holding_bars: int | None,
    stop_loss: float | None,
) -> None:
    """Bar by bar, on either venue: the position, the bar's intent and the working
    order's target are never short, and nothing is refused SHORT_NOT_ALLOWED."""
    close = 100.0 * np.cumprod(1.0 + np.asarray(moves[: len(p)]))
    inputs = bars(close, open_=np.r_[100.0, close[:-1]], p=p)
    spec = make_spec(
        sides=LONG,
        allow_short=allow_short,
        fill_at_close=fill_at_close,
        threshold=threshold,
        min_interval=min_interval,
        max_holding_bars=max_holding_bars,
        stop_loss=stop_loss,
    )
    state = CoreState(spec)
    for t in range(len(inputs)):
        assert state.run(inputs, t + 1) == L.NEED_DONE
        sym = state.sym[0]
        assert sym[L.S_QTY] >= 0.0, f"bar {t}: position {sym[L.S_QTY]}"
        assert sym[L.S_I_DIR] >= 0.0 and sym[L.S_I_TARGET] >= 0.0, f"bar {t}: intent"
        assert sym[L.S_W_ACTIVE] == 0.0 or sym[L.S_W_DIR] >= 0.0, f"bar {t}: working order"
    refused = [r.values[0] for r in rows(state) if r.kind == "REJECT"]
    assert codes.SHORT_NOT_ALLOWED not in refused
