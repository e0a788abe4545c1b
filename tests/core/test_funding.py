"""A perpetual's funding through the compiled bar, against figures worked out by hand.

The account: 10,000 cash, shorts allowed (a margin account with the defaults), sizing
100% of the equity, fills at the close unless a test says otherwise. The inputs carry
a seventh row: each bar's funding rate (`tradeloom.core.funding`), booked at the bar's
start on the position carried into it, at the bar's open: ``cash -= q x open x rate``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.core import layout as L
from tradeloom.core.state import BarInputs, CoreState

from .harness import assert_rows, bars, decoded, make_spec, rows, run

NAN = math.nan


def with_funding(inputs: BarInputs, rates: npt.ArrayLike) -> BarInputs:
    """Return ``inputs`` with each bar's funding rate as the seventh row."""
    funding = np.asarray(rates, np.float64)[None, :, None]
    return BarInputs(
        np.concatenate([inputs.px, funding]),
        inputs.flags,
        inputs.score,
        inputs.time_ns,
        inputs.trainings,
    )


def long_then_short() -> CoreState:
    """Long 100 at bar 0's close of 100; short at bar 3's close of 110; three funding times."""
    inputs = bars(
        [100.0, 100.0, 110.0, 110.0, 90.0, 90.0],
        open_=[100.0, 100.0, 105.0, 110.0, 100.0, 90.0],
        p=[0.9, NAN, NAN, 0.1, NAN, NAN],
    )
    return run(make_spec(allow_short=True), with_funding(inputs, [0, 0, 1e-4, 0, 2e-4, -3e-4]))


def test_a_long_pays_and_a_short_receives_a_positive_rate() -> None:
    state = long_then_short()
    # bar 2: long 100 at the open 105, rate 0.01%: pays 100 x 105 x 0.0001 = 1.05 (cash 0
    # after buying 100 at 100)
    assert_rows(rows(state, 2), [("FUNDING", 0, 1e-4, 105.0, 100.0, -1.05, 0, 0, 0, 100.0, -1.05)])
    # bar 3: the reversal is sized on the equity -1.05 + 100 x 110 = 10,998.95: short
    # 10,998.95 / 110 = 99.99045; the trade's profit 100 x 10 less the funding it paid
    short = 10_998.95 / 110.0
    cash = -1.05 + (100.0 + short) * 110.0  # 21,997.90
    assert_rows(
        rows(state, 3)[-2:],
        [
            ("FILL", 0, 2, -1, 100.0 + short, 110.0, 0.0, 0.0, 3, -short, cash),
            ("TRADE", 0, 1, 0, 3, 100.0, 100.0, 110.0, 0.0, 1000.0 - 1.05),
        ],
    )
    # bar 4: short at the open 100, rate 0.02%: receives 99.99045 x 100 x 0.0002 = 1.99981
    received = short * 100.0 * 2e-4
    assert_rows(
        rows(state, 4),
        [("FUNDING", 0, 2e-4, 100.0, -short, received, 0, 0, 0, -short, cash + received)],
    )
    # bar 5: a negative rate: the short pays 99.99045 x 90 x 0.0003 = 2.69974
    paid = short * 90.0 * 3e-4
    after = cash + received - paid
    assert_rows(
        rows(state, 5),
        [("FUNDING", 0, -3e-4, 90.0, -short, -paid, 0, 0, 0, -short, after)],
    )
    assert math.isclose(state.acct[L.A_CASH], 21_997.200066818183, rel_tol=1e-12)
    assert state.acct[L.A_CASH] == after
    assert state.acct[L.A_EQUITY] == after - short * 90.0  # 12,998.06
    assert rows(state, 1) == []  # no funding time, nothing else: the bar writes nothing


def test_funding_rows_decode_to_the_journal_fields() -> None:
    events = [e for e in decoded(long_then_short()) if e.kind == "funding"]
    assert [(e.bar, e.symbol) for e in events] == [(2, 0), (4, 0), (5, 0)]
    assert events[0].value == {
        "rate": 1e-4,
        "price": 105.0,
        "position": 100.0,
        "amount": -1.05,
        "cash": -1.05,
    }


def test_funding_is_booked_on_the_position_carried_into_the_bar_before_its_open_fills() -> None:
    # fill: next_open. The long decided at bar 0's close fills at bar 1's open (100 at
    # 100): bar 1's funding time came first, with nothing held; bar 2's is booked on it.
    # The exit decided at bar 2 fills at bar 3's open, after bar 3's funding on the long.
    inputs = bars(
        [100.0, 100.0, 100.0, 100.0, 100.0],
        p=[0.9, NAN, 0.1, NAN, NAN],
    )
    state = run(
        make_spec(fill_at_close=False), with_funding(inputs, [1e-3, 1e-3, 1e-3, 1e-3, 1e-3])
    )
    funding = [r for r in rows(state) if r.kind == "FUNDING"]
    assert_rows(
        funding,
        [
            ("FUNDING", 0, 1e-3, 100.0, 100.0, -10.0, 0, 0, 0, 100.0, -10.0),
            ("FUNDING", 0, 1e-3, 100.0, 100.0, -10.0, 0, 0, 0, 100.0, -20.0),
        ],
    )
    assert [r.bar for r in funding] == [2, 3]
    # the exit at bar 3's open: 100 x 100 back; the trade paid 20 of funding
    assert state.acct[L.A_CASH] == 10_000.0 - 20.0
    assert_rows(
        [r for r in rows(state) if r.kind == "TRADE"],
        [("TRADE", 0, 1, 1, 3, 100.0, 100.0, 100.0, 0.0, -20.0)],
    )


def test_no_rate_a_zero_rate_and_a_flat_position_book_nothing() -> None:
    inputs = bars([100.0, 100.0, 100.0, 100.0], p=[NAN, 0.9, NAN, NAN])
    # bar 0: flat, rate 1%; bar 2: NaN (no rate known); bar 3: 0
    state = run(make_spec(), with_funding(inputs, [0.01, 0.0, NAN, 0.0]))
    assert [r for r in rows(state) if r.kind == "FUNDING"] == []
    assert state.acct[L.A_CASH] == 0.0  # all in at 100 at bar 1, nothing moved since


def test_zero_rates_change_nothing() -> None:
    inputs = bars([100.0, 100.0, 110.0, 110.0], p=[0.9, NAN, NAN, 0.1])
    with_zero = run(make_spec(allow_short=True), with_funding(inputs, [0.0] * 4))
    without = run(make_spec(allow_short=True), inputs)
    assert np.array_equal(with_zero.rows(), without.rows(), equal_nan=True)
    assert np.array_equal(with_zero.acct, without.acct)


@settings(max_examples=40, deadline=None)
@given(
    rates=st.lists(st.floats(-0.003, 0.003, allow_nan=False), min_size=6, max_size=6),
    opens=st.lists(st.floats(50.0, 150.0), min_size=6, max_size=6),
    side=st.sampled_from([0.9, 0.1]),
)
def test_funding_moves_the_cash_by_the_sum_of_its_amounts(
    rates: list[float], opens: list[float], side: float
) -> None:
    """One entry at bar 0's close, held to the end: the cash and equity differ from the
    same run without funding by exactly the booked amounts, each -q x open x rate."""
    closes = [100.0] * 6
    inputs = bars(closes, open_=[100.0, *opens[1:]], p=[side] + [NAN] * 5)
    spec = make_spec(allow_short=True)
    funded = run(spec, with_funding(inputs, [0.0, *rates[1:]]))
    plain = run(spec, inputs)
    quantity = plain.sym[0, L.S_QTY]
    expected = plain.acct[L.A_CASH]
    for t in range(1, 6):
        if rates[t] != 0.0:
            expected += -quantity * opens[t] * rates[t]
    assert funded.sym[0, L.S_QTY] == quantity
    assert math.isclose(funded.acct[L.A_CASH], expected, rel_tol=1e-12, abs_tol=1e-9)
    booked = sum(r.values[3] for r in rows(funded) if r.kind == "FUNDING")
    assert math.isclose(funded.sym[0, L.S_FUNDING], booked, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(
        funded.acct[L.A_EQUITY] - plain.acct[L.A_EQUITY], booked, rel_tol=1e-9, abs_tol=1e-9
    )
