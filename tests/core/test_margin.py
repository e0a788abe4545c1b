"""Margin and liquidation through the compiled bar, against figures worked out by hand.

The account: 10,000 cash; ``execution.margin`` initial 0.5, maintenance 0.25,
leverage 2, liquidation fee 0.5% unless a test says otherwise; sizing 100% of
leverage x equity; fills at the close. The venue liquidates when the equity
``C + q P`` (cash, signed position) falls to ``m |q| P``: a short at
``P = C / (|q| (1 + m))``, a long at ``P = -C / (q (1 - m))``
(`tradeloom.core.exits`), at that price or at the open of a bar that gaps past it,
with the venue's slippage and fee plus the liquidation fee.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.feed import kill
from tradeloom.core.kernels.specs import MARGIN_SET, MarginKernel
from tradeloom.core.state import BarInputs, CoreState
from tradeloom.domain import Halt, Rejection

from .harness import HOUR, T0, For, assert_rows, bars, decoded, make_spec, rows, run

NAN = math.nan
LIQ = codes.EXIT_LIQUIDATION
MARGIN = MarginKernel(initial=0.5, maintenance=0.25, leverage=2.0, liquidation_fee=0.005)


def short_at_100(
    bar1: tuple[float, float, float, float], *, margin: MarginKernel = MARGIN, **kw: object
) -> CoreState:
    """Go fully short at bar 0's close of 100, then run bar 1 (open, high, low, close)."""
    o, h, lo, c = bar1
    spec = make_spec(allow_short=True, margin=margin, **kw)  # type: ignore[arg-type]
    inputs = bars([100.0, c], open_=[100.0, o], high=[100.0, h], low=[100.0, lo], p=[0.1, NAN])
    return run(spec, inputs)


def test_a_short_entry_uses_exactly_the_initial_margin() -> None:
    state = short_at_100((100.0, 100.0, 100.0, 100.0))
    # notional = 1 x 10,000 x leverage 2 = 20,000: 200 at 100. Initial margin: 0.5 x 20,000
    # = 10,000, the whole equity: allowed (a value at the limit passes).
    assert_rows(
        rows(state, 0),
        [
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("DECISION", 0, codes.ACCEPTED, codes.ENTRY, -1.0),
            ("ORDER", 0, 1, -1, 200.0, codes.ENTRY, 100.0, 0, NAN),
            # cash: 10,000 + the sale's 20,000
            ("FILL", 0, 1, -1, 200.0, 100.0, 0.0, 0.0, 0, -200.0, 30_000.0),
        ],
    )
    assert rows(state, 1) == []  # equity 10,000 > 0.25 x 20,000: nothing happens


def test_a_short_is_liquidated_where_the_high_crosses_its_price() -> None:
    # Cash 30,000, short 200: liquidated at 30,000 / (200 x 1.25) = 120, where the equity
    # 30,000 - 24,000 = 6,000 is 0.25 x 200 x 120. The bar opens at 110 and reaches 125.
    state = short_at_100((110.0, 125.0, 105.0, 115.0))
    # Bought back at 120 with a fee of 0.5% x 24,000 = 120: cash 30,000 - 24,000 - 120.
    assert_rows(
        rows(state, 1),
        [
            ("LIQUIDATION", 0, 1, 200.0, 120.0, 0.005 * 200.0 * 120.0, 6000.0, 6000.0),
            ("ORDER", 0, 2, 1, 200.0, LIQ, 120.0, 1, 120.0),
            ("FILL", 0, 2, 1, 200.0, 120.0, 120.0, 0.0, 1, 0.0, 5880.0),
            # pnl: 200 x (100 - 120) - 120
            ("TRADE", 0, -1, 0, 1, 200.0, 100.0, 120.0, 120.0, -4120.0),
        ],
    )
    assert state.acct[L.A_EQUITY] == 5880.0  # flat: the equity is the cash, 10,000 - 4,120
    assert state.acct[L.A_HALT] == 0.0  # equity left: trading goes on
    [event] = [e for e in decoded(state) if e.kind == "liquidation"]
    assert event.value == {
        "side": 1,
        "quantity": 200.0,
        "price": 120.0,
        "fee": 120.0,  # the liquidation fee: 0.005 x 200 x 120
        "equity_before": 6000.0,
        "maintenance": 6000.0,  # the margin required then: 0.25 x 200 x 120
    }


def test_a_liquidation_pays_the_venues_slippage_and_fee_and_the_liquidation_fee() -> None:
    s, f = 0.001, 0.0005
    state = short_at_100((110.0, 125.0, 105.0, 115.0), slippage=s, fee=f)
    # Entry: 20,000 / (100 x 1.001 x 1.0005) = 199.7003 sold at 100 x 0.999 = 99.9, fee
    # 199.7003 x 99.9 x 0.0005 = 9.975: cash 10,000 + 19,950.06 - 9.975 = 29,940.09.
    q = 20_000.0 / (100.0 * (1 + s) * (1 + f))
    entry_fee = q * 99.9 * f
    cash = 10_000.0 + q * 99.9 - entry_fee
    # Liquidated at 29,940.09 / (199.7003 x 1.25) = 119.94, equity there 5,988.02 =
    # 0.25 x 199.7003 x 119.94; bought back at 119.94 x 1.001 = 120.06 with a fee of
    # (0.0005 + 0.005) x 199.7003 x 120.06 = 131.87: cash 29,940.09 - 23,976.03 - 131.87.
    level = cash / (q * 1.25)
    price = level * (1 + s)
    fee = q * price * (f + 0.005)
    after = cash - q * price - fee  # 5,832.20
    assert_rows(
        rows(state, 1),
        [
            ("LIQUIDATION", 0, 1, q, level, 0.005 * q * level, cash - q * level, 0.25 * q * level),
            ("ORDER", 0, 2, 1, q, LIQ, level, 1, level),
            ("FILL", 0, 2, 1, q, price, fee, q * level * s, 1, 0.0, after),
            # pnl: 199.7003 x (99.9 - 120.06) - 9.975 - 131.87 = -4,167.80
            ("TRADE", 0, -1, 0, 1, q, 99.9, price, entry_fee + fee, q * (99.9 - price)
             - entry_fee - fee),
        ],
    )  # fmt: skip
    assert state.acct[L.A_EQUITY] == pytest.approx(after)
    assert after == pytest.approx(5832.20, abs=0.01)


def test_a_bar_that_opens_beyond_the_liquidation_price_fills_at_the_open() -> None:
    state = short_at_100((130.0, 135.0, 128.0, 132.0))
    # The open, 130, is past 120: out at 130. Equity there 30,000 - 26,000 = 4,000, below
    # the requirement 0.25 x 200 x 130 = 6,500. Fee 0.5% x 26,000 = 130.
    assert_rows(
        rows(state, 1),
        [
            ("LIQUIDATION", 0, 1, 200.0, 130.0, 0.005 * 200.0 * 130.0, 4000.0, 6500.0),
            ("ORDER", 0, 2, 1, 200.0, LIQ, 130.0, 1, 130.0),
            ("FILL", 0, 2, 1, 200.0, 130.0, 130.0, 0.0, 1, 0.0, 3870.0),
            ("TRADE", 0, -1, 0, 1, 200.0, 100.0, 130.0, 130.0, -6130.0),  # -6,000 - 130
        ],
    )
    assert state.acct[L.A_EQUITY] == 3870.0


def test_a_leveraged_long_is_liquidated_where_the_low_crosses_its_price() -> None:
    margin = MarginKernel(initial=0.5, maintenance=0.2, leverage=2.0, liquidation_fee=0.005)
    spec = make_spec(margin=margin)
    inputs = bars(
        [100.0, 70.0], open_=[100.0, 80.0], high=[100.0, 82.0], low=[100.0, 60.0], p=[0.9, NAN]
    )
    state = run(spec, inputs)
    # 200 bought at 100 with 10,000 of equity: cash -10,000. Liquidated at
    # 10,000 / (200 x 0.8) = 62.5, where the equity -10,000 + 12,500 = 2,500 is
    # 0.2 x 200 x 62.5. Sold at 62.5 with a fee of 0.5% x 12,500 = 62.5.
    assert_rows(
        rows(state, 0)[-1:], [("FILL", 0, 1, 1, 200.0, 100.0, 0.0, 0.0, 0, 200.0, -10_000.0)]
    )
    assert_rows(
        rows(state, 1),
        [
            ("LIQUIDATION", 0, -1, 200.0, 62.5, 0.005 * 200.0 * 62.5, 2500.0, 2500.0),
            ("ORDER", 0, 2, -1, 200.0, LIQ, 62.5, 1, 62.5),
            ("FILL", 0, 2, -1, 200.0, 62.5, 62.5, 0.0, 1, 0.0, 2437.5),  # -10,000 + 12,437.5
            ("TRADE", 0, 1, 0, 1, 200.0, 100.0, 62.5, 62.5, -7562.5),  # 200 x -37.5 - 62.5
        ],
    )
    assert state.acct[L.A_EQUITY] == 2437.5


def test_an_unleveraged_long_on_a_margin_account_is_never_liquidated() -> None:
    spec = make_spec(margin=MarginKernel(initial=1.0, maintenance=0.5, liquidation_fee=0.005))
    inputs = bars([100.0, 1.0], open_=[100.0, 2.0], low=[100.0, 0.5], p=[0.9, NAN])
    state = run(spec, inputs)
    assert rows(state, 1) == []  # bought with its own cash: nothing borrowed
    assert state.sym[0, L.S_QTY] == 100.0
    assert state.acct[L.A_EQUITY] == 100.0  # cash 0 + 100 x 1


def test_a_stop_loss_nearer_the_open_goes_before_the_liquidation() -> None:
    state = short_at_100((110.0, 125.0, 105.0, 115.0), stop_loss=0.1)
    # The stop at 110 is met before the liquidation at 120: an ordinary stop, no
    # liquidation fee. Cash 30,000 - 22,000.
    assert_rows(
        rows(state, 1),
        [
            ("ORDER", 0, 2, 1, 200.0, codes.EXIT_STOP_LOSS, 110.0, 1, 110.0),
            ("FILL", 0, 2, 1, 200.0, 110.0, 0.0, 0.0, 1, 0.0, 8000.0),
            ("TRADE", 0, -1, 0, 1, 200.0, 100.0, 110.0, 0.0, -2000.0),
        ],
    )
    farther = short_at_100((110.0, 125.0, 105.0, 115.0), stop_loss=0.3)  # the stop at 130
    assert rows(farther, 1)[0].kind == "LIQUIDATION"


def test_the_other_symbols_positions_count_in_the_liquidation_price() -> None:
    margin = MarginKernel(initial=0.5, maintenance=0.25, leverage=2.0)
    spec = make_spec(allow_short=True, margin=margin, fraction=0.5)
    n = 3
    px = np.full((6, n, 2), NAN)
    px[:4, :, 0] = 100.0  # symbol 0: flat at 100
    px[:4, :, 1] = 50.0  # symbol 1: 50, then a bar reaching 85
    px[1, 2, 1], px[3, 2, 1] = 85.0, 70.0
    px[4] = 1e12
    px[5, 0, 0] = 0.9  # long symbol 0 at bar 0
    px[5, 1, 1] = 0.1  # short symbol 1 at bar 1
    inputs = BarInputs(
        px,
        np.zeros((2, n, 2), np.uint8),
        np.full((n, 2), NAN),
        T0 + HOUR * np.arange(n, dtype=np.int64),
        np.zeros(n, np.int64),
    )
    state = CoreState(spec, 2)
    assert state.run(inputs, n) == L.NEED_DONE
    # Bar 0: 0.5 x 10,000 x 2 = 10,000 buys 100 of symbol 0: cash 0. Bar 1: equity
    # 0 + 100 x 100 = 10,000; 10,000 sells 200 of symbol 1 at 50: cash 10,000 (initial
    # margin 0.5 x (10,000 + 10,000) = the equity). Bar 2: for symbol 1 the rest of the
    # account is 10,000 + 100 x 100 = 20,000: liquidated at 20,000 / (200 x 1.25) = 80.
    # (Symbol 0, checked first, rests on 10,000 - 200 x 50 = 0: nothing borrowed.)
    assert_rows(
        rows(state, 2),
        [
            ("LIQUIDATION", 1, 1, 200.0, 80.0, 0.0, 4000.0, 4000.0),
            ("ORDER", 1, 3, 1, 200.0, LIQ, 80.0, 1, 80.0),
            ("FILL", 1, 3, 1, 200.0, 80.0, 0.0, 0.0, 2, 0.0, -6000.0),
            ("TRADE", 1, -1, 1, 2, 200.0, 50.0, 80.0, 0.0, -6000.0),
        ],
    )
    assert state.acct[L.A_EQUITY] == 4000.0  # -6,000 + 100 x 100


def test_equity_below_zero_after_a_gap_halts_and_every_later_signal_is_refused() -> None:
    spec = make_spec(allow_short=True, margin=MARGIN)
    inputs = bars(
        [100.0, 165.0, 170.0, 90.0],
        open_=[100.0, 160.0, 170.0, 90.0],
        p=[0.1, 0.9, 0.1, 0.9],
    )
    state = run(spec, inputs)
    # The open, 160, is past the liquidation price (120) and past where the equity is
    # zero (30,000 / 200 = 150): bought back at 160 for 32,000 plus 0.5% (160): cash
    # 30,000 - 32,160 = -2,160, and nothing left to trade with.
    assert_rows(
        rows(state, 1),
        [
            ("LIQUIDATION", 0, 1, 200.0, 160.0, 0.005 * 200.0 * 160.0, -2000.0, 8000.0),
            ("ORDER", 0, 2, 1, 200.0, LIQ, 160.0, 1, 160.0),
            ("FILL", 0, 2, 1, 200.0, 160.0, 160.0, 0.0, 1, 0.0, -2160.0),
            ("TRADE", 0, -1, 0, 1, 200.0, 100.0, 160.0, 160.0, -12_160.0),
            ("HALT", -1, codes.NO_EQUITY, -2160.0),
            ("STATE", -1, codes.ACTIVE, codes.HALTED_STATE, codes.NO_EQUITY),
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("REJECT", 0, codes.HALTED, codes.NO_EQUITY),
        ],
    )
    for bar, direction in ((2, -1), (3, 1)):  # latched: refused, and halted only once
        assert_rows(
            rows(state, bar),
            [("SIGNAL", 0, direction, 0.8, 0.9 if direction > 0 else 0.1),
             ("REJECT", 0, codes.HALTED, codes.NO_EQUITY)],
        )  # fmt: skip
    assert state.acct[L.A_HALT] == codes.NO_EQUITY
    assert state.acct[L.A_CASH] == -2160.0
    halt = next(e.value for e in decoded(state) if e.kind == "halt")
    assert halt == Halt(
        1,
        halt.timestamp,
        "NO_EQUITY",
        "equity=-2160.00 <= 0: the account has nothing left to trade with",
        {"equity": -2160.0},
    )
    refusal = next(e.value for e in decoded(state) if e.kind == "rejection")
    assert isinstance(refusal, Rejection)
    assert str(refusal) == "HALTED: trading is halted (NO_EQUITY)"


def test_a_margin_account_refuses_an_entry_whose_initial_margin_exceeds_the_equity() -> None:
    margin = MarginKernel(initial=0.5, maintenance=0.25, leverage=2.0)
    state = _two_entries(make_spec(allow_short=True, margin=margin, fraction=0.75))
    # Bar 0: 0.75 x 10,000 x 2 = 15,000 buys 150 of symbol 0 at 100 (margin 7,500 of
    # 10,000): cash -5,000. Bar 1: equity -5,000 + 150 x 100 = 10,000; 15,000 would buy 300
    # of symbol 1 at 50, for a gross notional of 15,000 + 15,000 = 30,000 that needs
    # 0.5 x 30,000 = 15,000 of equity.
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 1, 1, 0.8, 0.9),
            ("DECISION", 1, codes.ACCEPTED, codes.ENTRY, 0.75),
            (
                "REJECT",
                1,
                codes.INSUFFICIENT_MARGIN,
                15_000.0,
                10_000.0,
                0.5,
                MARGIN_SET,
                For(codes.ENTRY),
            ),
        ],
    )
    refusal = next(e.value for e in decoded(state) if e.kind == "rejection")
    assert str(refusal) == (
        "INSUFFICIENT_MARGIN: initial margin=15000 > equity=10000 (execution.margin.initial=0.5)"
    )
    assert state.sym[1, L.S_QTY] == 0.0


def test_a_spot_account_has_no_margin_to_refuse_its_cash_limits_the_buy() -> None:
    state = _two_entries(make_spec(fraction=0.75))
    # 7,500 buys 75 of symbol 0: cash 2,500. Then 0.75 x 10,000 = 7,500 would buy 150 of
    # symbol 1 at 50; the cash pays for 50 and the rest is cancelled.
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 1, 1, 0.8, 0.9),
            ("DECISION", 1, codes.ACCEPTED, codes.ENTRY, 0.75),
            ("ORDER", 1, 2, 1, 150.0, codes.ENTRY, 50.0, 0, NAN),
            ("FILL", 1, 2, 1, 50.0, 50.0, 0.0, 0.0, 1, 50.0, 0.0),
            ("CANCEL", 1, 2, 100.0, codes.INSUFFICIENT_CASH, 1),
        ],
    )


def _two_entries(spec: object) -> CoreState:
    """Enter symbol 0 at bar 0 (close 100), then try symbol 1 at bar 1 (close 50)."""
    n = 2
    px = np.full((6, n, 2), NAN)
    px[:4, :, 0] = 100.0
    px[:4, :, 1] = 50.0
    px[4] = 1e12
    px[5, 0, 0] = 0.9
    px[5, 1, 1] = 0.9
    inputs = BarInputs(
        px,
        np.zeros((2, n, 2), np.uint8),
        np.full((n, 2), NAN),
        T0 + HOUR * np.arange(n, dtype=np.int64),
        np.zeros(n, np.int64),
    )
    state = CoreState(spec, 2)  # type: ignore[arg-type]
    assert state.run(inputs, n) == L.NEED_DONE
    return state


def test_the_kill_switch_does_not_stop_the_venue_liquidating() -> None:
    """A liquidation is the venue's, not an order the trader sends: a kill cannot stop it.

    Without it a killed short runs on past zero equity, and no NO_EQUITY halt latches
    either (the kill holds the latch).
    """
    spec = make_spec(allow_short=True, margin=MARGIN)
    inputs = bars(
        [100.0, 115.0, 190.0],
        open_=[100.0, 110.0, 180.0],
        high=[100.0, 125.0, 200.0],
        low=[100.0, 105.0, 175.0],
        p=[0.1, NAN, NAN],
    )
    state = CoreState(spec)
    state.run(inputs, 1)
    kill(state.acct)  # between bars, as `tradeloom kill` does
    state.run(inputs, 3)
    assert [r.kind for r in rows(state, 1)][:3] == ["LIQUIDATION", "ORDER", "FILL"]
    assert state.sym[0, L.S_QTY] == 0.0
    assert state.acct[L.A_EQUITY] == 5880.0  # as without the kill
