"""Scaling in and out (`tradeloom.core.scaling`): partial take-profits, pyramiding, DCA.

Each case runs a few crafted bars through the compiled bar and compares the rows with
numbers worked out by hand. Unless a case says otherwise: cash 10,000, no fee, no
slippage, fills at the close, a long signal at p >= 0.6 (confidence 0.4).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.exits import OpenTrade, StopSettings, resting_stop
from tradeloom.core.params import ExitRules, Scaling
from tradeloom.core.state import CoreState

from .harness import For, assert_rows, bars, make_spec, rows, run

NAN = math.nan
ENTRY, SCALE_IN, PARTIAL = codes.ENTRY, codes.SCALE_IN, codes.TAKE_PROFIT_PARTIAL
STOP = L.ORDER_STOP
HALVES = Scaling(take_profit_levels=((0.02, 0.5), (0.04, 0.5)))


def test_partial_take_profits_fill_inside_the_bar_at_their_levels() -> None:
    # 50 bought at 100; levels at 102 (half of 50) and 104 (the other half)
    spec = make_spec(fraction=0.5, scaling=HALVES)
    inputs = bars(
        [100, 100, 101, 102, 104, 100],
        open_=[100, 100, 101, 101, 102, 104],
        high=[100, 100, 101, 102.5, 104.5, 104],
        low=[100, 100, 100.5, 100.5, 101.5, 100],
        p=[0.7, NAN, NAN, NAN, NAN, NAN],
    )
    state = run(spec, inputs)
    assert rows(state, 2) == []  # 101 is short of the first level
    assert_rows(
        rows(state, 3),
        [
            ("ORDER", 0, 2, -1, 25, PARTIAL, 102, STOP, 102),
            ("FILL", 0, 2, -1, 25, 102, 0, 0, 3, 25, 5000 + 25 * 102),
        ],
    )
    # the second level closes the rest: the trade's exit is the quantity-weighted price
    assert_rows(
        rows(state, 4),
        [
            ("ORDER", 0, 3, -1, 25, PARTIAL, 104, STOP, 104),
            ("FILL", 0, 3, -1, 25, 104, 0, 0, 4, 0, 7550 + 25 * 104),
            ("TRADE", 0, 1, 0, 4, 50, 100, 103, 0, 25 * 2 + 25 * 4),
        ],
    )


def test_a_bar_that_opens_through_two_levels_fills_both_at_the_open() -> None:
    spec = make_spec(fraction=0.5, scaling=Scaling(take_profit_levels=((0.02, 0.3), (0.04, 0.3))))
    inputs = bars([100, 105], open_=[100, 105], p=[0.7, NAN])
    state = run(spec, inputs)
    assert_rows(
        rows(state, 1),
        [
            ("ORDER", 0, 2, -1, 15, PARTIAL, 105, STOP, 105),
            ("FILL", 0, 2, -1, 15, 105, 0, 0, 1, 35, 5000 + 15 * 105),
            ("ORDER", 0, 3, -1, 15, PARTIAL, 105, STOP, 105),
            ("FILL", 0, 3, -1, 15, 105, 0, 0, 1, 20, 5000 + 30 * 105),
        ],
    )
    assert state.sym[0, L.S_QTY] == pytest.approx(20)


def test_the_stop_loss_a_bar_reaches_wins_over_a_level_it_reaches_too() -> None:
    # stop at 98, first level at 102: the bar reaches both, the path is unknown
    spec = make_spec(fraction=0.5, stop_loss=0.02, scaling=HALVES)
    inputs = bars([100, 99], open_=[100, 100], high=[100, 102.5], low=[100, 97.5], p=[0.7, NAN])
    state = run(spec, inputs)
    assert_rows(
        rows(state, 1),
        [
            ("ORDER", 0, 2, -1, 50, codes.EXIT_STOP_LOSS, 98, STOP, 98),
            ("FILL", 0, 2, -1, 50, 98, 0, 0, 1, 0, 5000 + 50 * 98),
            ("TRADE", 0, 1, 0, 1, 50, 100, 98, 0, -100),
        ],
    )


def test_a_partial_that_would_leave_dust_closes_everything() -> None:
    # 90% of 50 at 102 leaves 5 worth 510 < the 600 minimum: all 50 go
    spec = make_spec(
        fraction=0.5, min_notional=600.0, scaling=Scaling(take_profit_levels=((0.02, 0.9),))
    )
    inputs = bars([100, 102], open_=[100, 101], high=[100, 102], p=[0.7, NAN])
    state = run(spec, inputs)
    assert_rows(
        rows(state, 1),
        [
            ("ORDER", 0, 2, -1, 50, PARTIAL, 102, STOP, 102),
            ("FILL", 0, 2, -1, 50, 102, 0, 0, 1, 0, 5000 + 50 * 102),
            ("TRADE", 0, 1, 0, 1, 50, 100, 102, 0, 100),
        ],
    )


def test_a_partial_below_the_minimum_is_refused_and_its_level_spent() -> None:
    # 5% of 50 = 2.5 at 102 is 255 < 600: refused; the 4% level still closes its half
    spec = make_spec(
        fraction=0.5,
        min_notional=600.0,
        scaling=Scaling(take_profit_levels=((0.02, 0.05), (0.04, 0.5))),
    )
    inputs = bars([100, 102, 101, 104], open_=[100, 101, 101, 101], p=[0.7, NAN, NAN, NAN])
    state = run(spec, inputs)
    # the mark the refusal reads is the previous close (100): 2.5 x 100 = 250
    assert_rows(
        rows(state, 1),
        [("REJECT", 0, codes.BELOW_MINIMUM, 2.5, 250, 600, 0, PARTIAL, For(PARTIAL))],
    )
    assert rows(state, 2) == []  # spent: not tried again at 102
    assert_rows(
        rows(state, 3),
        [
            ("ORDER", 0, 2, -1, 25, PARTIAL, 104, STOP, 104),
            ("FILL", 0, 2, -1, 25, 104, 0, 0, 3, 25, 5000 + 25 * 104),
        ],
    )


def test_a_short_takes_its_partial_profits_below_its_entry() -> None:
    spec = make_spec(fraction=0.5, allow_short=True, scaling=HALVES)
    inputs = bars([100, 98], open_=[100, 99], low=[100, 97.5], p=[0.3, NAN])
    state = run(spec, inputs)
    assert_rows(
        rows(state, 1),
        [
            ("ORDER", 0, 2, 1, 25, PARTIAL, 98, STOP, 98),
            ("FILL", 0, 2, 1, 25, 98, 0, 0, 1, -25, 15000 - 25 * 98),
        ],
    )


def test_pyramid_adds_on_each_step_up_sized_by_the_sizing_and_capped() -> None:
    spec = make_spec(
        fraction=0.2,
        scaling=Scaling(kind="pyramid", step=0.01, max_adds=5, max_position=0.5),
    )
    state = run(spec, bars([100, 100.5, 101, 102, 103.1, 104.2], p=[0.7] * 6))
    # 20 bought at 100; 100.5 is half a step: a hold
    assert_rows(rows(state, 1), [("SIGNAL", 0, 1, 0.4, 0.7), ("DECISION", 0, codes.HOLD)])
    # 101: one step: an add of 0.2 of the equity 8,000 + 20 x 101
    equity = 8000 + 20 * 101
    add = 0.2 * equity / 101
    assert_rows(
        rows(state, 2),
        [
            ("SIGNAL", 0, 1, 0.4, 0.7),
            ("DECISION", 0, codes.ACCEPTED, SCALE_IN, 0.2),
            ("ORDER", 0, 2, 1, add, SCALE_IN, 101, L.ORDER_MARKET, NAN),
            ("FILL", 0, 2, 1, add, 101, 0, 0, 2, 20 + add, 8000 - add * 101),
        ],
    )
    # 102 is less than a step from the add's 101
    assert_rows(rows(state, 3), [("SIGNAL", 0, 1, 0.4, 0.7), ("DECISION", 0, codes.HOLD)])
    # 103.1: a step again; the cap leaves 0.5 - weight for it
    held, cash = 20 + add, 8000 - add * 101
    equity = cash + held * 103.1
    room = 0.5 - held * 103.1 / equity
    add2 = room * equity / 103.1
    assert_rows(
        rows(state, 4),
        [
            ("SIGNAL", 0, 1, 0.4, 0.7),
            ("DECISION", 0, codes.ACCEPTED, SCALE_IN, room),
            ("ORDER", 0, 3, 1, add2, SCALE_IN, 103.1, L.ORDER_MARKET, NAN),
            ("FILL", 0, 3, 1, add2, 103.1, 0, 0, 4, held + add2, cash - add2 * 103.1),
        ],
    )
    # 104.2: a step, but the position is at its cap (a little over, marked up)
    held, cash = held + add2, cash - add2 * 103.1
    weight = held * 104.2 / (cash + held * 104.2)
    assert_rows(
        rows(state, 5),
        [
            ("SIGNAL", 0, 1, 0.4, 0.7),
            ("REJECT", 0, codes.SCALE_IN_CAP, weight, 0.5, For(codes.SCALE_IN)),
        ],
    )
    # the average entry price is the legs' quantity-weighted price
    assert state.sym[0, L.S_ENTRY_PRICE] == pytest.approx(
        (20 * 100 + add * 101 + add2 * 103.1) / held
    )


def test_dca_adds_on_each_step_down_and_the_stop_measures_from_the_average() -> None:
    # 10 at 100, then 10 more at 99 and at 98.01 (max_adds 2): average 99.003...
    spec = make_spec(
        fraction=0.1,
        stop_loss=0.03,
        scaling=Scaling(kind="dca", step=0.01, max_adds=2, max_position=1.0),
    )
    closes = [100, 99.5, 99, 98.5, 98.01, 97.0, 96.2, 95.5]
    state = run(spec, bars(closes, p=[0.7, 0.7, 0.7, 0.7, 0.7, 0.7, NAN, NAN]))
    decisions = [
        (r.bar, r.values[:2]) for r in rows(state) if r.kind == "DECISION" and r.values[0] == 1
    ]
    assert [(bar, v[1]) for bar, v in decisions] == [(0, ENTRY), (2, SCALE_IN), (4, SCALE_IN)]
    assert [r.values[0] for r in rows(state, 5) if r.kind == "DECISION"] == [codes.HOLD]
    fills = [r for r in rows(state) if r.kind == "FILL"]
    q0 = 1000 / 100
    q1 = 0.1 * (9000 + q0 * 99) / 99
    cash = 9000 - q1 * 99
    q2 = 0.1 * (cash + (q0 + q1) * 98.01) / 98.01
    assert [f.values[2] for f in fills[:3]] == pytest.approx([q0, q1, q2])
    held = q0 + q1 + q2
    average = (q0 * 100 + q1 * 99 + q2 * 98.01) / held
    stop = average * 0.97  # 96.03 (from the entry's 100 it would be 97): 96.2 is above it
    assert 95.5 < stop < 96.2 < 97.0
    assert [r for r in rows(state, 6) if r.kind == "ORDER"] == []
    exit_ = fills[3]
    assert exit_.bar == 7 and exit_.values[2] == pytest.approx(held)
    assert exit_.values[3] == pytest.approx(95.5)  # a flat bar opens through the stop
    trade = next(r for r in rows(state) if r.kind == "TRADE")
    assert trade.values[3:5] == pytest.approx((held, average))


def test_an_add_refused_down_the_ladder_keeps_the_position() -> None:
    # the anomaly gate refuses the add: an entry's refusal exits, an add's does not
    spec = make_spec(
        fraction=0.2, scaling=Scaling(kind="pyramid", step=0.01, max_adds=3, max_position=1.0)
    )
    inputs = bars([100, 101, 101], p=[0.7, 0.7, NAN], anomalous=[False, True, False])
    state = run(spec, inputs)
    assert_rows(
        rows(state, 1),
        [("SIGNAL", 0, 1, 0.4, 0.7), ("REJECT", 0, codes.ANOMALY, NAN, For(codes.SCALE_IN))],
    )
    assert rows(state, 2) == []
    assert state.sym[0, L.S_QTY] == pytest.approx(20)


def test_an_exit_signal_closes_every_leg_and_a_new_trade_starts_afresh() -> None:
    spec = make_spec(
        fraction=0.2,
        scaling=Scaling(
            take_profit_levels=((0.05, 0.5),),
            kind="pyramid",
            step=0.01,
            max_adds=1,
            max_position=1.0,
        ),
    )
    closes = [100, 101, 102, 102, 103, 104.05, 109.0]
    opens = [100, 101, 102, 102, 103, 104.05, 104.05]
    p = [0.7, 0.7, 0.3, NAN, 0.7, 0.7, NAN]
    state = run(spec, bars(closes, open_=opens, p=p))
    add = 0.2 * (8000 + 20 * 101) / 101
    # bar 2: the long-only exit closes the entry and the add, one trade
    trade = next(r for r in rows(state) if r.kind == "TRADE")
    assert trade.bar == 2
    assert trade.values[3] == pytest.approx(20 + add)  # quantity: the largest size
    assert trade.values[5] == 102
    # bar 4 enters again: its own add (max_adds counts per trade) at 104.05
    assert [(r.bar, r.values[1]) for r in rows(state) if r.kind == "DECISION"] == [
        (0, ENTRY),
        (1, SCALE_IN),
        (4, ENTRY),
        (5, SCALE_IN),
    ]
    # and its level measures from its own average: 5% above it, reached inside bar 6
    entry, added = (r.values[2] for r in rows(state) if r.kind == "FILL" and r.bar in (4, 5))
    held = entry + added
    average = (entry * 103 + added * 104.05) / held
    assert state.sym[0, L.S_ENTRY_PRICE] == pytest.approx(average)
    order = next(r for r in rows(state, 6) if r.kind == "ORDER")
    assert order.values[3:5] == (PARTIAL, pytest.approx(average * 1.05))
    assert order.values[2] == pytest.approx(held / 2)
    assert state.sym[0, L.S_QTY] == pytest.approx(held / 2)


@settings(max_examples=40, deadline=None)
@given(
    closes=st.lists(st.floats(90.0, 110.0), min_size=3, max_size=30),
    kind=st.sampled_from(["pyramid", "dca"]),
    step=st.sampled_from([0.002, 0.01]),
    max_adds=st.integers(1, 4),
    cap=st.sampled_from([0.3, 0.6, 1.0]),
)
def test_adds_never_exceed_their_count_nor_the_cap(
    closes: list[float], kind: str, step: float, max_adds: int, cap: float
) -> None:
    spec = make_spec(
        fraction=0.2,
        scaling=Scaling(kind=kind, step=step, max_adds=max_adds, max_position=cap),
    )
    state = run(spec, bars(closes, p=np.full(len(closes), 0.7)))
    decided = [r for r in rows(state) if r.kind == "DECISION" and r.values[0] == codes.ACCEPTED]
    adds = [r for r in decided if r.values[1] == SCALE_IN]
    assert len(adds) <= max_adds
    cash = 10_000.0
    held = 0.0
    for r in rows(state):
        if r.kind == "FILL":
            held, cash = r.values[7], r.values[8]
            price = r.values[3]
            # right after an add fills at its close, the position is within the cap
            if r.values[0] > 1:
                assert held * price / (cash + held * price) <= cap * (1 + 1e-9)


def test_the_cap_refusal_reads_as_its_values() -> None:
    message, values = codes.describe(codes.SCALE_IN_CAP, (0.50265316, 0.5), codes.CodeTable())
    assert message == (
        "position=0.5027 of equity, cap=0.5 (risk.scaling.scale_in.max_position): "
        "no room for an add"
    )
    assert values == {"position": 0.50265316, "cap": 0.5}


@settings(max_examples=examples(60), deadline=None)
@given(
    moves=st.lists(
        st.tuples(st.floats(-0.02, 0.02), st.floats(0.0, 0.02), st.floats(0.0, 0.02)),
        min_size=2,
        max_size=12,
    ),
    closes=st.sampled_from([(0.5, 0.5), (0.3, 0.3, 0.3), (0.25, 0.75), (0.9,)]),
    stop=st.sampled_from([None, 0.01, 0.03]),
    minimum=st.sampled_from([0.0, 700.0]),
)
def test_partials_fill_in_the_bar_in_order_once_and_never_leave_dust(
    moves: list[tuple[float, float, float]],
    closes: tuple[float, ...],
    stop: float | None,
    minimum: float,
) -> None:
    # one long of 50 at 100 (fill at the close), then bars drawn as moves of the open
    # from the last close and wicks above and below it
    levels = tuple((0.004 * (k + 1), c) for k, c in enumerate(closes))
    close, o, h, lo, c = 100.0, [100.0], [100.0], [100.0], [100.0]
    for gap, up, down in moves:
        opened = close * (1 + gap)
        close = opened * (1 + (up - down) / 2)
        o.append(opened)
        h.append(max(opened, close) * (1 + up))
        lo.append(min(opened, close) * (1 - down))
        c.append(close)
    spec = make_spec(
        fraction=0.5,
        stop_loss=stop,
        min_notional=minimum,
        scaling=Scaling(take_profit_levels=levels),
    )
    state = run(spec, bars(c, open_=o, high=h, low=lo, p=[0.7] + [NAN] * len(moves)))
    out = [r for r in rows(state) if r.kind == "ORDER" and r.values[3] == PARTIAL]
    assert len(out) <= len(levels)
    level_prices = [100.0 * (1 + g) for g, _ in levels]
    sold = 0.0
    stopped = {
        r.bar for r in rows(state) if r.kind == "ORDER" and r.values[3] == codes.EXIT_STOP_LOSS
    }
    for k, order in enumerate(out):
        t = order.bar
        price = order.values[4]
        # the k-th partial is the k-th level (each share is over the minimum here), at
        # the level or at an open already through it, inside the bar
        assert price >= level_prices[k] * (1 - 1e-12)
        assert price == pytest.approx(level_prices[k]) or price == o[t]
        assert lo[t] <= price <= h[t]
        if t in stopped:  # a bar that reaches the stop fills a level only at its open
            assert price == o[t]
        sold += order.values[2]
    assert sold <= 50 * (1 + 1e-9)
    held = state.sym[0, L.S_QTY]
    # what is left is a position an order could close, or nothing
    assert held == 0.0 or held * state.sym[0, L.S_MARK] >= minimum or minimum == 0.0


def test_a_trailing_stop_and_break_even_follow_a_pyramided_trade_from_its_average_entry() -> None:
    """Exits and scaling on one trade: the add moves the average entry, and the
    break-even stop and the partial level measure from it; the trailing stop from the
    best price; a run bar by bar writes the same rows."""
    spec = make_spec(
        fraction=0.1,
        exits=ExitRules(trailing_stop=0.03, break_even=0.02),
        scaling=Scaling(
            take_profit_levels=((0.03, 0.5),),
            kind="pyramid",
            step=0.01,
            max_adds=1,
            max_position=1.0,
        ),
    )
    inputs = bars(
        [100, 101, 102.6, 103.4, 104.8, 101.5],
        open_=[100, 101, 101, 102.7, 103.4, 104],
        high=[100, 101, 102.8, 103.6, 105, 104],
        low=[100, 101, 101, 102.5, 103.2, 101],
        p=[0.7, 0.7, NAN, NAN, NAN, NAN],
    )
    state = run(spec, inputs)
    # 10 bought at 100; at 101 (one step up) an add of 0.1 x 10,010 / 101
    add = 0.1 * (9000 + 10 * 101) / 101
    held = 10 + add
    average = (10 * 100 + add * 101) / held  # 100.4978
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, 1, 0.4, 0.7),
            ("DECISION", 0, codes.ACCEPTED, SCALE_IN, 0.1),
            ("ORDER", 0, 2, 1, add, SCALE_IN, 101, L.ORDER_MARKET, NAN),
            ("FILL", 0, 2, 1, add, 101, 0, 0, 1, held, 7999),
        ],
    )
    # bar 2 (high 102.8) fills nothing; its high, now the best price, is past
    # 1.02 x the average (102.5077): the break-even stop rests at the average from bar 3
    assert rows(state, 2) == []
    level = average * 1.03  # the partial level: 103.5127 (from the first entry: 103)
    assert average * 1.02 < 102.8 and 103.0 < level < 103.6
    after = run(spec, inputs, t_end=3)
    assert after.sym[0, L.S_BEST] == 102.8
    assert after.sym[0, L.S_ENTRY_PRICE] == pytest.approx(average)
    trade = OpenTrade(1, average, 102.8, after.sym[0, L.S_TRAIL], NAN)
    assert resting_stop(trade, StopSettings(NAN, 0.02, 0.03, 0.0)) == (
        codes.EXIT_BREAK_EVEN,
        pytest.approx(average),
    )  # at the moved average, not 100
    # bar 3: the partial level from the average fills inside the bar (the stop in force,
    # the break-even at 100.4978, is not reached), for half the largest size
    assert_rows(
        rows(state, 3),
        [
            ("ORDER", 0, 3, -1, held / 2, PARTIAL, level, STOP, level),
            ("FILL", 0, 3, -1, held / 2, level, 0, 0, 3, held / 2, 7999 + held / 2 * level),
        ],
    )
    # bar 4 lifts the best price to 105: the trailing stop 101.85 passes the break-even,
    # and bar 5's low 101 reaches it
    assert rows(state, 4) == []
    cash = 7999 + held / 2 * level + held / 2 * 101.85
    pnl = held / 2 * (level - average) + held / 2 * (101.85 - average)
    assert_rows(
        rows(state, 5),
        [
            ("ORDER", 0, 4, -1, held / 2, codes.EXIT_TRAILING_STOP, 101.85, STOP, 101.85),
            ("FILL", 0, 4, -1, held / 2, 101.85, 0, 0, 5, 0, cash),
            ("TRADE", 0, 1, 0, 5, held, average, (level + 101.85) / 2, 0, pnl),
        ],
    )
    stepped = CoreState(replace(spec, yield_bars=True), 1)
    for t in range(len(inputs)):
        assert stepped.run(inputs, t + 1) == L.NEED_BAR
    np.testing.assert_array_equal(stepped.rows(), state.rows())


def test_a_bar_that_reaches_the_trailing_stop_fills_no_level_inside_it() -> None:
    # 50 bought at 100; the trailing stop rests at 98, the level at 103: a bar that
    # reaches both is read as reaching the stop first, as with the stop-loss
    spec = make_spec(
        fraction=0.5,
        exits=ExitRules(trailing_stop=0.02),
        scaling=Scaling(take_profit_levels=((0.03, 0.5),)),
    )
    inputs = bars(
        [100, 100, 99],
        open_=[100, 100, 101],
        high=[100, 100, 103.5],
        low=[100, 100, 97.5],
        p=[0.7, NAN, NAN],
    )
    state = run(spec, inputs)
    assert_rows(
        rows(state, 2),
        [
            ("ORDER", 0, 2, -1, 50, codes.EXIT_TRAILING_STOP, 98, STOP, 98),
            ("FILL", 0, 2, -1, 50, 98, 0, 0, 2, 0, 5000 + 50 * 98),
            ("TRADE", 0, 1, 0, 2, 50, 100, 98, 0, -100),
        ],
    )
