"""Trailing stops, break-even stops, cooldowns and time-of-day exits in the compiled bar.

Every case is worked out by hand from crafted bars (`tests.core.harness`): where the
stop sits at each bar, which bar reaches it, at which price the exit fills, and what
the ladder refuses during a cooldown.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.exits import (
    OpenTrade,
    StopSettings,
    active_stop,
    atr_update,
    cooling_down,
    ratchet,
    resting_stop,
    time_exit_due,
    trail_level,
)
from tradeloom.core.params import ExitRules
from tradeloom.plugins.features.atr import atr

from .harness import HOUR, T0, For, assert_rows, bars, make_spec, rows, run

NAN = math.nan
MINUTE = 60_000_000_000


def _trades(state) -> list[tuple[float, ...]]:
    return [r.values[:8] for r in rows(state) if r.kind == "TRADE"]


# --- the rules on their own --------------------------------------------------------------


def test_the_tightest_stop_rests_and_ties_go_to_the_first() -> None:
    # entry 100, stop-loss 5% (95), break-even after +2%, trailing level given
    assert active_stop(1, 100.0, 101.0, 90.0, 0.05, 0.02) == (codes.EXIT_STOP_LOSS, 95.0)
    assert active_stop(1, 100.0, 102.0, 90.0, 0.05, 0.02) == (codes.EXIT_BREAK_EVEN, 100.0)
    assert active_stop(1, 100.0, 102.0, 100.5, 0.05, 0.02) == (codes.EXIT_TRAILING_STOP, 100.5)
    assert active_stop(1, 100.0, 102.0, 100.0, 0.05, 0.02) == (codes.EXIT_BREAK_EVEN, 100.0)
    assert active_stop(1, 100.0, 100.0, 95.0, 0.05, NAN) == (codes.EXIT_STOP_LOSS, 95.0)
    assert active_stop(1, 100.0, 100.0, 96.0, NAN, NAN) == (codes.EXIT_TRAILING_STOP, 96.0)
    reason, level = active_stop(1, 100.0, 150.0, NAN, NAN, NAN)
    assert reason == 0 and math.isnan(level)
    # a short: the stops sit above; break-even once the best low gained 2% (98)
    assert active_stop(-1, 100.0, 98.5, 110.0, 0.05, 0.02) == (codes.EXIT_STOP_LOSS, 105.0)
    assert active_stop(-1, 100.0, 98.0, 110.0, 0.05, 0.02) == (codes.EXIT_BREAK_EVEN, 100.0)
    assert active_stop(-1, 100.0, 90.0, 99.0, 0.05, 0.02) == (codes.EXIT_TRAILING_STOP, 99.0)


def test_a_trailing_level_follows_the_best_price_and_never_moves_back() -> None:
    assert trail_level(1, 200.0, NAN, 0.1, 0.0) == pytest.approx(180.0)
    assert trail_level(-1, 200.0, NAN, 0.1, 0.0) == pytest.approx(220.0)
    assert trail_level(1, 200.0, 4.0, NAN, 3.0) == 188.0
    assert trail_level(-1, 200.0, 4.0, NAN, 3.0) == 212.0
    assert math.isnan(trail_level(1, 200.0, NAN, NAN, 3.0))  # no ATR yet
    assert ratchet(1, 95.0, 94.0) == 95.0
    assert ratchet(1, 95.0, 96.0) == 96.0
    assert ratchet(-1, 105.0, 106.0) == 105.0
    assert ratchet(-1, 105.0, 104.0) == 104.0
    assert ratchet(1, NAN, 94.0) == 94.0
    assert ratchet(1, 94.0, NAN) == 94.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(50.0, 150.0), min_size=2, max_size=40), st.integers(1, 6))
def test_the_stops_atr_is_the_atr_feature(closes: list[float], window: int) -> None:
    close = np.asarray(closes)
    high, low = close * 1.01, close * 0.985
    state = np.zeros(4)
    got = np.array(
        [atr_update(state, h, lo, c, window) for h, lo, c in zip(high, low, close, strict=False)]
    )
    np.testing.assert_array_equal(got, atr(high, low, close, window))


def test_the_time_of_day_exit_falls_on_the_bar_whose_span_holds_it() -> None:
    at = (21 * 60 + 45) * MINUTE
    day = T0  # 2024-03-01T00:00Z
    due = [b for b in range(48) if time_exit_due(day + b * HOUR, HOUR, at)]
    assert due == [21, 45]  # the 1h bars 21:00-22:00 of each day
    quarter = 15 * MINUTE
    due = [b for b in range(96) if time_exit_due(day + b * quarter, quarter, at)]
    assert due == [86]  # the 15m bar 21:30-21:45 closes at 21:45 itself
    assert not time_exit_due(day, HOUR, -1)


def test_a_cooldown_counts_from_the_exits_bar() -> None:
    assert cooling_down(10, 10.0, 2)
    assert cooling_down(11, 10.0, 2)
    assert not cooling_down(12, 10.0, 2)
    assert cooling_down(10, 10.0, 1)
    assert not cooling_down(11, 10.0, 1)
    assert not cooling_down(10, NAN, 2)  # no exit yet
    assert not cooling_down(10, 10.0, 0)  # no cooldown


# --- in the bar ----------------------------------------------------------------------------


def test_a_percent_trailing_stop_takes_the_bars_high_after_its_check() -> None:
    # a long at 100 (filled at bar 0's close), trailing 10% below its best price
    spec = make_spec(exits=ExitRules(trailing_stop=0.1))
    inputs = bars(
        [100.0, 108.0, 118.0, 110.0, 110.0],
        open_=[100.0, 100.0, 108.0, 118.0, 110.0],
        high=[100.0, 110.0, 120.0, 119.0, 110.0],
        # bar 2's low 100 is under 120 * 0.9 = 108, which is only in force from bar 3
        low=[100.0, 99.0, 100.0, 107.0, 110.0],
        p=[0.9, NAN, NAN, NAN, NAN],
    )
    state = run(spec, inputs)
    q = 100.0
    assert_rows(
        rows(state, 3),
        [
            ("ORDER", 0, 2, -1, q, codes.EXIT_TRAILING_STOP, 108.0, L.ORDER_STOP, 108.0),
            ("FILL", 0, 2, -1, q, 108.0, 0.0, 0.0, 3, 0.0, 10_800.0),
            ("TRADE", 0, 1, 0, 3, q, 100.0, 108.0, 0.0, 800.0),
        ],
    )
    assert rows(state, 1) == [] and rows(state, 2) == []


def test_a_gap_through_the_trailing_stop_fills_at_the_open() -> None:
    spec = make_spec(exits=ExitRules(trailing_stop=0.1))
    inputs = bars(
        [100.0, 118.0, 100.0],
        open_=[100.0, 100.0, 101.0],
        high=[100.0, 120.0, 102.0],
        low=[100.0, 99.0, 95.0],
        p=[0.9, NAN, NAN],
    )
    state = run(spec, inputs)
    fill = next(r for r in rows(state, 2) if r.kind == "FILL")
    assert fill.values[3] == 101.0  # the level 108 was gapped: out at the open
    assert rows(state, 2)[0].values[3] == codes.EXIT_TRAILING_STOP


def test_a_short_trails_above_its_lowest_low() -> None:
    spec = make_spec(allow_short=True, exits=ExitRules(trailing_stop=0.05))
    inputs = bars(
        [100.0, 92.0, 95.0],
        open_=[100.0, 100.0, 92.0],
        high=[100.0, 101.0, 95.0],
        low=[100.0, 90.0, 91.0],
        p=[0.1, NAN, NAN],
    )
    state = run(spec, inputs)
    # best low 90 after bar 1: the stop is 90 * 1.05 = 94.5, reached by bar 2's high 95
    order = next(r for r in rows(state, 2) if r.kind == "ORDER")
    assert order.values[3] == codes.EXIT_TRAILING_STOP
    assert order.values[6] == pytest.approx(94.5)


def test_an_atr_trailing_stop_sits_multiple_atrs_below_the_best_high() -> None:
    # ATR(2): true ranges of bars 1 and 2 are 2 and 2 (seeded at bar 2: 2.0); bar 3's
    # true range is 4 -> Wilder: 2 * 0.5 + 4 * 0.5 = 3.0
    spec = make_spec(exits=ExitRules(trailing_atr=2, trailing_multiple=2.0))
    inputs = bars(
        [100.0, 100.0, 100.0, 104.0, 104.0, 104.0],
        open_=[100.0, 100.0, 100.0, 100.0, 104.0, 103.0],
        high=[101.0, 101.0, 101.0, 104.0, 105.0, 103.0],
        low=[99.0, 99.0, 99.0, 100.0, 103.0, 97.0],
        p=[NAN, NAN, 0.9, NAN, NAN, NAN],
    )
    state = run(spec, inputs)
    # entry 100 at bar 2's close; bar 3: the stop starts at 100 - 2 * 2.0 = 96 (ATR up
    # to bar 2), then takes the best high 104 and ATR 3.0: 104 - 6 = 98; bar 4: TR 2,
    # ATR 2.5, best 105: 105 - 5 = 100; bar 5's low 97 reaches it
    order = [r for r in rows(state) if r.kind == "ORDER"][-1]
    assert order.bar == 5
    assert order.values[3] == codes.EXIT_TRAILING_STOP
    assert order.values[6] == pytest.approx(100.0)
    assert state.sym[0, L.S_TRAIL] == pytest.approx(100.0)


def test_a_widening_atr_never_lowers_the_stop() -> None:
    spec = make_spec(exits=ExitRules(trailing_atr=1, trailing_multiple=1.0))
    inputs = bars(
        [100.0, 100.0, 100.0, 100.0],
        open_=[100.0, 100.0, 100.0, 100.0],
        high=[100.0, 101.0, 101.0, 101.0],
        low=[100.0, 99.0, 90.0, 99.5],
        p=[NAN, 0.9, NAN, NAN],
    )
    state = run(spec, inputs)
    # ATR(1) is the true range: 2 at bar 1 (entry 100 there, at the close); bar 2:
    # the stop is 100 - 2 = 98, reached by the low 90
    order = [r for r in rows(state) if r.kind == "ORDER"][-1]
    assert (order.bar, order.values[3], order.values[6]) == (2, codes.EXIT_TRAILING_STOP, 98.0)


def test_break_even_moves_the_stop_to_the_entry_after_the_gain() -> None:
    spec = make_spec(stop_loss=0.05, exits=ExitRules(break_even=0.02))
    inputs = bars(
        [100.0, 101.0, 101.0, 99.0],
        open_=[100.0, 100.0, 101.0, 101.0],
        high=[100.0, 102.0, 101.5, 101.0],
        # bar 1 reaches +2% (102): the stop is 100 from bar 2; bar 2's low stays above
        low=[100.0, 99.5, 100.5, 98.0],
        p=[0.9, NAN, NAN, NAN],
    )
    state = run(spec, inputs)
    assert_rows(
        rows(state, 3),
        [
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_BREAK_EVEN, 100.0, L.ORDER_STOP, 100.0),
            ("FILL", 0, 2, -1, 100.0, 100.0, 0.0, 0.0, 3, 0.0, 10_000.0),
            ("TRADE", 0, 1, 0, 3, 100.0, 100.0, 100.0, 0.0, 0.0),
        ],
    )


def test_without_the_gain_the_stop_loss_stays() -> None:
    spec = make_spec(stop_loss=0.05, exits=ExitRules(break_even=0.02))
    inputs = bars(
        [100.0, 101.0, 94.0],
        open_=[100.0, 100.0, 101.0],
        high=[100.0, 101.9, 101.0],
        low=[100.0, 99.5, 94.0],
        p=[0.9, NAN, NAN],
    )
    order = next(r for r in rows(run(spec, inputs), 2) if r.kind == "ORDER")
    assert (order.values[3], order.values[6]) == (codes.EXIT_STOP_LOSS, 95.0)


def test_a_cooldown_refuses_entries_for_its_bars_after_an_exit() -> None:
    spec = make_spec(stop_loss=0.05, exits=ExitRules(cooldown_bars=2))
    inputs = bars(
        [100.0, 94.0, 94.0, 94.0],
        open_=[100.0, 100.0, 94.0, 94.0],
        low=[100.0, 94.0, 94.0, 94.0],
        p=[0.9, 0.9, 0.9, 0.9],
    )
    state = run(spec, inputs)
    # stopped out at bar 1 (95): bars 1 and 2 refuse the entry; bar 3 takes it
    for bar in (1, 2):
        rejects = [r for r in rows(state, bar) if r.kind == "REJECT"]
        assert_rows(rejects, [("REJECT", 0, codes.COOLDOWN, bar - 1, 2, 1, For(codes.ENTRY))])
    decisions = [r for r in rows(state, 3) if r.kind == "DECISION"]
    assert decisions[0].values[:2] == (codes.ACCEPTED, codes.ENTRY)


def test_a_cooldown_does_not_hold_a_position_or_its_exit() -> None:
    # a signal exit at bar 1 (p=0.1 on a long-only venue): the cooldown starts there,
    # yet the exit itself and the held long were never refused
    spec = make_spec(exits=ExitRules(cooldown_bars=2))
    inputs = bars([100.0, 100.0, 100.0, 100.0], p=[0.9, 0.1, 0.9, 0.9])
    state = run(spec, inputs)
    assert [r.values[3] for r in rows(state) if r.kind == "ORDER"] == [
        codes.ENTRY,
        codes.EXIT_SIGNAL,
        codes.ENTRY,
    ]
    assert [r.bar for r in rows(state) if r.kind == "REJECT"] == [2]


def test_the_time_exit_closes_at_the_bar_holding_the_time_of_day() -> None:
    at = (2 * 60 + 30) * MINUTE  # 02:30 UTC: the bar 02:00-03:00 (bar 2)
    spec = make_spec(exits=ExitRules(exit_time_ns=at))
    inputs = bars([100.0, 101.0, 102.0, 103.0], p=[0.9, NAN, NAN, NAN])
    state = run(spec, inputs)
    assert_rows(
        rows(state, 2),
        [
            ("ORDER", 0, 2, -1, 100.0, codes.EXIT_TIME, 102.0, L.ORDER_MARKET, NAN),
            ("FILL", 0, 2, -1, 100.0, 102.0, 0.0, 0.0, 2, 0.0, 10_200.0),
            ("TRADE", 0, 1, 0, 2, 100.0, 100.0, 102.0, 0.0, 200.0),
        ],
    )


def test_stops_at_the_close_watch_the_trailing_level_with_the_bars_own_high() -> None:
    spec = make_spec(exits=ExitRules(trailing_stop=0.1))
    spec = spec.__class__(**{**spec.__dict__, "orders": _bar_close(spec)})
    inputs = bars(
        [100.0, 107.0, 107.0],
        open_=[100.0, 100.0, 107.0],
        high=[100.0, 120.0, 107.0],
        low=[100.0, 99.0, 107.0],
        p=[0.9, NAN, NAN],
    )
    state = run(spec, inputs)
    # bar 1's high 120 raises the level to 108; its close 107 is through: a market exit
    order = next(r for r in rows(state, 1) if r.kind == "ORDER")
    assert order.values[3] == codes.EXIT_TRAILING_STOP
    assert order.values[5] == L.ORDER_MARKET


def _bar_close(spec):
    from dataclasses import replace

    return replace(spec.orders, stops_at_close=True)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.97, 1.03), min_size=4, max_size=30),
    st.floats(0.01, 0.2),
    st.sampled_from([1, -1]),
)
def test_a_trailing_exit_is_never_below_the_entry_bars_level(
    moves: list[float], trailing: float, side: int
) -> None:
    """A long's trailing exit sits at >= entry * (1 - trailing) (a short's mirrors it),
    unless the bar gapped through (the open then), and never better than the bar."""
    close = 100.0 * np.cumprod(moves)
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    p = np.full(len(close), NAN)
    p[0] = 0.9 if side > 0 else 0.1
    spec = make_spec(allow_short=side < 0, exits=ExitRules(trailing_stop=trailing))
    state = run(spec, bars(close, open_=open_, high=high, low=low, p=p))
    for r in rows(state):
        if r.kind == "ORDER" and r.values[3] == codes.EXIT_TRAILING_STOP:
            level = r.values[6]
            fill = next(f for f in rows(state, r.bar) if f.kind == "FILL")
            price = fill.values[3]
            assert low[r.bar] <= price <= high[r.bar]
            floor = close[0] * (1.0 - side * trailing)
            assert side * level >= side * floor - 1e-9
            assert price == level or price == open_[r.bar]


def test_an_atr_that_widens_in_the_entry_bar_never_lowers_the_stop_in_force() -> None:
    """Entry at bar 2's open (100): during bar 2 the stop is 100 - 2 x ATR(1) up to bar
    1 = 96. Bar 2's range (100.5 to 97) widens the ATR to 3.5: built again from its best
    high, 100.5 - 7 = 93.5, the level would drop below the 96 in force; it stays at 96,
    and bar 3's low 95 reaches it."""
    spec = make_spec(fill_at_close=False, exits=ExitRules(trailing_atr=1, trailing_multiple=2.0))
    inputs = bars(
        [100.0, 100.0, 100.0, 100.0],
        high=[101.0, 101.0, 100.5, 100.2],
        low=[99.0, 99.0, 97.0, 95.0],
        p=[NAN, 0.9, NAN, NAN],
    )
    state = run(spec, inputs, 3)
    assert state.sym[0, L.S_TRAIL] == pytest.approx(96.0)
    state = run(spec, inputs)
    order = [r for r in rows(state) if r.kind == "ORDER"][-1]
    assert (order.bar, order.values[3], order.values[6]) == (3, codes.EXIT_TRAILING_STOP, 96.0)


def _stop_in_force(state, prm) -> float:
    """The stop resting under the position for the next bar, as a live run rests it at
    the exchange (`tradeloom.engine.book.Book.stop_of`)."""
    row = state.sym[0]
    quantity = float(row[L.S_QTY])
    window = int(prm[L.P_TRAIL_ATR])
    atr_now = float(row[L.S_ATR + 3]) if row[L.S_ATR + 2] >= window else NAN
    trade = OpenTrade(
        1 if quantity > 0.0 else -1,
        float(row[L.S_ENTRY_PRICE]),
        float(row[L.S_BEST]),
        float(row[L.S_TRAIL]),
        atr_now,
    )
    stops = StopSettings(
        float(prm[L.P_STOP_LOSS]),
        float(prm[L.P_BREAK_EVEN]),
        float(prm[L.P_TRAILING]),
        float(prm[L.P_TRAIL_MULTIPLE]),
    )
    return resting_stop(trade, stops)[1]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, -1]),
    st.integers(1, 4),
    st.floats(0.5, 3.0),
    st.booleans(),
)
def test_an_atr_trailing_stop_never_moves_against_the_position(
    seed: int, side: int, window: int, multiple: float, at_close: bool
) -> None:
    """Bar after bar, the stop in force under an open trade (the level the next bar is
    checked against, the one a live run rests at the exchange) never falls for a long
    nor rises for a short, from the trade's first bar on: ranges that widen and narrow
    at random, the entry bar's included."""
    rng = np.random.default_rng(seed)
    n = 30
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.02, (2, n))) * rng.choice([0.2, 1.0, 3.0], (2, n))
    high = np.maximum(open_, close) * (1.0 + spread[0])
    low = np.minimum(open_, close) * (1.0 - spread[1])
    p = np.full(n, NAN)
    p[window + 1] = 0.9 if side > 0 else 0.1
    spec = make_spec(
        fill_at_close=at_close,
        allow_short=side < 0,
        exits=ExitRules(trailing_atr=window, trailing_multiple=multiple),
    )
    inputs = bars(close, open_=open_, high=high, low=low, p=p)
    levels: list[float] = []
    for t in range(1, n + 1):
        state = run(spec, inputs, t)
        if state.sym[0, L.S_QTY] == 0.0:
            if levels:
                break  # the trade is over
            continue
        if not levels:  # its first bar: the level in force during it, from the entry
            entry_bar = int(state.sym[0, L.S_ENTRY_BAR])
            before = run(spec, inputs, entry_bar)  # the ATR up to the bar before it
            atr_before = float(before.sym[0, L.S_ATR + 3])
            entry = float(state.sym[0, L.S_ENTRY_PRICE])
            if not at_close:  # filled at its open: the bar was checked against it
                levels.append(entry - side * multiple * atr_before)
        levels.append(_stop_in_force(state, state.prm))
    steps = np.diff(np.asarray(levels))
    assert np.all(side * steps >= -1e-9 * 100.0), levels
