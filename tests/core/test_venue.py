"""The simulated venue inside the compiled bar: fill timing, slippage, fees, volume, cash, stops.

The behaviours tests/plugins/execution/test_simulated.py pins on `SimulatedVenue`,
here through `run_bars` with crafted bars and probabilities, reading the event rows.
Every expected number is written out from the venue's rules: a buy fills at
``price x (1 + slippage)``, a sell at ``price x (1 - slippage)``, the fee is
``fee_rate`` of the filled notional, and an order is sized so that its notional,
slippage and fee included, is the target (``notional / (close (1 + s) (1 + f))``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.kernels.specs import MarginKernel
from tradeloom.core.state import BarInputs, CoreState

from .harness import HOUR, T0, assert_rows, bars, make_spec, rows, run

NAN = math.nan
ENTRY, ACCEPTED = codes.ENTRY, codes.ACCEPTED


def test_next_open_fills_at_the_next_bar_open_with_slippage_and_fee() -> None:
    s, f = 0.001, 0.0005  # 10 and 5 bps
    spec = make_spec(fill_at_close=False, slippage=s, fee=f, fraction=0.5)
    state = run(spec, bars([100.0, 103.0], open_=[99.0, 102.0], p=[0.9, NAN]))
    q = 0.5 * 10_000.0 / (100.0 * (1 + s) * (1 + f))  # sized at the decision's close
    assert_rows(
        rows(state, 0),
        [
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("DECISION", 0, ACCEPTED, ENTRY, 0.5),
            ("ORDER", 0, 1, 1, q, ENTRY, 100.0, 0, NAN),  # not filled at its own bar
        ],
    )
    price = 102.0 * (1 + s)  # the next open, slipped up
    fee = q * price * f
    assert_rows(
        rows(state, 1),
        [("FILL", 0, 1, 1, q, price, fee, q * 102.0 * s, 0, q, 10_000.0 - q * price - fee)],
    )
    assert state.sym[0, L.S_W_ACTIVE] == 0.0


def test_close_fills_at_the_decision_bars_close() -> None:
    state = run(make_spec(fill_at_close=True), bars([95.0, 96.0], open_=[90.0, 99.0], p=[0.9, NAN]))
    q = 10_000.0 / 95.0
    assert_rows(
        rows(state, 0),
        [
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("DECISION", 0, ACCEPTED, ENTRY, 1.0),
            ("ORDER", 0, 1, 1, q, ENTRY, 95.0, 0, NAN),
            ("FILL", 0, 1, 1, q, 95.0, 0.0, 0.0, 0, q, 0.0),
        ],
    )
    assert rows(state, 1) == []


def test_sells_slip_down() -> None:
    s = 0.005  # 50 bps
    state = run(make_spec(allow_short=True, slippage=s), bars([200.0], p=[0.1]))
    q = 10_000.0 / (200.0 * (1 + s))
    [*_, order, fill] = rows(state, 0)
    assert (order.kind, order.values[1], order.values[2]) == ("ORDER", -1.0, pytest.approx(q))
    assert fill.kind == "FILL"
    assert fill.values[3] == pytest.approx(199.0)  # 200 x (1 - 0.005)
    assert fill.values[5] == pytest.approx(q * 1.0)  # slippage cost: q x 1.0
    assert fill.values[8] == pytest.approx(10_000.0 + q * 199.0)  # the short sale's proceeds


@pytest.mark.parametrize("fill_at_close", [False, True])
def test_an_order_takes_a_share_of_each_bars_volume_until_done(fill_at_close: bool) -> None:
    # 10,000 x 0.25 at 100: an order of 25; at most 10% of a bar's volume fills.
    spec = make_spec(fill_at_close=fill_at_close, fraction=0.25, max_volume_fraction=0.1)
    volumes = [50.0, 100.0, 0.0, 100.0, 1000.0]
    state = run(spec, bars([100.0] * 5, volume=volumes, p=[0.9, NAN, NAN, NAN, NAN]))
    fills = [(r.bar, r.values[2]) for r in rows(state) if r.kind == "FILL"]
    if fill_at_close:  # from the decision bar's close: 5, 10, nothing, the last 10
        assert fills == [(0, 5.0), (1, 10.0), (3, 10.0)]
    else:  # from the next bar's open: 10, nothing, 10, the last 5
        assert fills == [(1, 10.0), (3, 10.0), (4, 5.0)]
    assert not any(r.kind == "CANCEL" for r in rows(state))
    assert state.sym[0, L.S_QTY] == 25.0
    assert state.acct[L.A_CASH] == pytest.approx(10_000.0 - 25.0 * 100.0)
    assert state.sym[0, L.S_W_ACTIVE] == 0.0


def test_a_working_order_holds_the_side_it_will_reach() -> None:
    # The order of 25 works over the bars; a long signal meanwhile is held, not resent.
    spec = make_spec(fill_at_close=False, fraction=0.25, max_volume_fraction=0.1)
    state = run(spec, bars([100.0] * 3, volume=[0.0, 50.0, 50.0], p=[0.9, 0.9, NAN]))
    assert_rows(
        rows(state, 1),
        [
            ("FILL", 0, 1, 1, 5.0, 100.0, 0.0, 0.0, 0, 5.0, 9500.0),
            ("SIGNAL", 0, 1, 0.8, 0.9),
            ("DECISION", 0, codes.HOLD),
        ],
    )


def test_a_spot_buy_fills_as_far_as_the_cash_goes_and_the_rest_is_cancelled() -> None:
    f = 0.001
    spec = make_spec(fill_at_close=False, fee=f)
    # Sized at the close 100, filled at the next open 110: it costs 10% more than the cash.
    state = run(spec, bars([100.0, 110.0], open_=[100.0, 110.0], p=[0.9, NAN]))
    q = 10_000.0 / (100.0 * (1 + f))
    affordable = 10_000.0 / (110.0 * (1 + f))  # every penny, fee included
    assert_rows(
        rows(state, 1),
        [
            ("FILL", 0, 1, 1, affordable, 110.0, affordable * 110.0 * f, 0.0, 0, affordable, 0.0),
            ("CANCEL", 0, 1, q - affordable, codes.INSUFFICIENT_CASH, 0),
        ],
    )
    assert state.acct[L.A_CASH] == pytest.approx(0.0, abs=1e-9)
    assert state.sym[0, L.S_W_ACTIVE] == 0.0


def test_a_margin_account_buys_without_the_cash_limit() -> None:
    f = 0.001
    spec = make_spec(fill_at_close=False, fee=f, margin=MarginKernel())
    state = run(spec, bars([100.0, 110.0], open_=[100.0, 110.0], p=[0.9, NAN]))
    q = 10_000.0 / (100.0 * (1 + f))
    # q x 110 x 1.001 = 10,000 x 1.1 = 11,000: 1,000 borrowed.
    assert_rows(rows(state, 1), [("FILL", 0, 1, 1, q, 110.0, q * 110.0 * f, 0.0, 0, q, -1000.0)])


def test_a_stop_order_fills_during_its_bar_at_its_level_with_slippage_and_fee() -> None:
    s, f = 0.001, 0.001
    spec = make_spec(slippage=s, fee=f, stop_loss=0.05, max_volume_fraction=0.5)
    inputs = bars(
        [100.0, 99.0],
        open_=[100.0, 100.0],
        high=[100.0, 101.0],
        low=[100.0, 90.0],
        volume=[1e9, 0.0],  # a stop is not limited by the volume
        p=[0.9, NAN],
    )
    state = run(spec, inputs)
    q = 10_000.0 / (100.0 * (1 + s) * (1 + f))
    entry = 100.0 * (1 + s)  # the entry fill's price: the stop is 5% below it
    entry_fee = q * entry * f
    level = entry * (1 - 0.05)
    price = level * (1 - s)
    fee = q * price * f
    cash = 10_000.0 - q * entry - entry_fee + q * price - fee
    assert_rows(
        rows(state, 1),
        [
            ("ORDER", 0, 2, -1, q, codes.EXIT_STOP_LOSS, level, 1, level),
            ("FILL", 0, 2, -1, q, price, fee, q * level * s, 1, 0.0, cash),
            ("TRADE", 0, 1, 0, 1, q, entry, price, entry_fee + fee, q * (price - entry) - fee
             - entry_fee),
        ],
    )  # fmt: skip


def test_quantity_leaves_room_for_slippage_and_fee() -> None:
    s, f = 0.002, 0.001
    state = run(make_spec(slippage=s, fee=f), bars([50.0], p=[0.9]))
    q = 10_000.0 / (50.0 * (1 + s) * (1 + f))
    [*_, fill] = rows(state, 0)
    assert fill.kind == "FILL"
    assert fill.values[2] == pytest.approx(q, rel=1e-15)  # all of it: the cash covers it
    assert fill.values[2] * 50.0 * (1 + s) * (1 + f) == pytest.approx(10_000.0, rel=1e-15)
    assert state.acct[L.A_CASH] == pytest.approx(0.0, abs=1e-9)
    assert not any(r.kind == "CANCEL" for r in rows(state))


def test_an_exit_sells_the_whole_position_at_the_close() -> None:
    f = 0.001
    state = run(make_spec(fee=f), bars([100.0, 120.0], p=[0.9, 0.1]))
    q = 10_000.0 / (100.0 * (1 + f))
    entry_fee = q * 100.0 * f
    fee = q * 120.0 * f
    cash = q * 120.0 - fee
    assert_rows(
        rows(state, 1),
        [
            ("SIGNAL", 0, -1, 0.8, 0.1),
            ("ORDER", 0, 2, -1, q, codes.EXIT_SIGNAL, 120.0, 0, NAN),
            ("FILL", 0, 2, -1, q, 120.0, fee, 0.0, 1, 0.0, cash),
            ("TRADE", 0, 1, 0, 1, q, 100.0, 120.0, entry_fee + fee, q * 20.0 - entry_fee - fee),
        ],
    )


@pytest.mark.parametrize("fill_at_close", [False, True])
def test_an_order_waits_for_its_symbols_next_bar(fill_at_close: bool) -> None:
    """A symbol without a bar (NaN prices) fills nothing: its order waits for the next one."""
    spec = make_spec(fill_at_close=fill_at_close, fraction=0.5, max_volume_fraction=0.1)
    n = 3
    px = np.full((6, n, 2), NAN)
    px[:4, :, 0] = 100.0
    px[4, :, 0] = 1e12
    px[:4, 0, 1], px[:4, 2, 1] = 50.0, 55.0  # symbol 1: no bar at bar 1
    px[4, 0, 1], px[4, 2, 1] = 500.0, 1e12
    px[5, 0, 1] = 0.9
    inputs = BarInputs(
        px,
        np.zeros((2, n, 2), np.uint8),
        np.full((n, 2), NAN),
        T0 + HOUR * np.arange(n, dtype=np.int64),
        np.zeros(n, np.int64),
    )
    state = CoreState(spec, 2)
    assert state.run(inputs, n) == L.NEED_DONE
    # 0.5 x 10,000 buys 100 at 50; at most 10% of bar 0's volume (50) at its close.
    fills = [(r.bar, r.values[2], r.values[3]) for r in rows(state) if r.kind == "FILL"]
    if fill_at_close:
        assert fills == [(0, 50.0, 50.0), (2, 50.0, 55.0)]
        cash = 10_000.0 - 50.0 * 50.0 - 50.0 * 55.0
    else:
        assert fills == [(2, 100.0, 55.0)]
        cash = 10_000.0 - 100.0 * 55.0
    assert state.acct[L.A_CASH] == cash
    assert state.sym[1, L.S_QTY] == 100.0


# --- the venue's rules hold for any bars ------------------------------------------------------


@st.composite
def markets(draw: st.DrawFn) -> tuple[BarInputs, dict[str, object]]:
    n = draw(st.integers(2, 14))
    closes = draw(st.lists(st.floats(50.0, 150.0), min_size=n, max_size=n))
    opens = draw(st.lists(st.floats(50.0, 150.0), min_size=n, max_size=n))
    spread = draw(st.lists(st.floats(0.0, 30.0), min_size=n, max_size=n))
    volumes = draw(st.lists(st.sampled_from([0.0, 10.0, 50.0, 1e9]), min_size=n, max_size=n))
    p = draw(st.lists(st.sampled_from([NAN, 0.05, 0.3, 0.5, 0.7, 0.95]), min_size=n, max_size=n))
    high = [max(o, c) + w for o, c, w in zip(opens, closes, spread, strict=True)]
    low = [min(o, c) - w for o, c, w in zip(opens, closes, spread, strict=True)]
    margin = draw(
        st.one_of(
            st.none(),
            st.builds(
                MarginKernel,
                initial=st.just(0.5),
                maintenance=st.sampled_from([0.0, 0.1, 0.3]),
                leverage=st.sampled_from([1.0, 2.0]),
                liquidation_fee=st.sampled_from([0.0, 0.01]),
            ),
        )
    )
    settings_: dict[str, object] = {
        "fill_at_close": draw(st.booleans()),
        "slippage": draw(st.sampled_from([0.0, 0.001, 0.01])),
        "fee": draw(st.sampled_from([0.0, 0.0005, 0.01])),
        "fraction": draw(st.sampled_from([0.3, 1.0])),
        "max_volume_fraction": draw(st.sampled_from([None, 0.1, 1.0])),
        "allow_short": margin is not None,
        "margin": margin,
        "stop_loss": draw(st.sampled_from([None, 0.05])),
        "take_profit": draw(st.sampled_from([None, 0.1])),
    }
    inputs = bars(closes, open_=opens, high=high, low=low, volume=volumes, p=p)
    return inputs, settings_


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market=markets())
def test_every_fill_follows_the_venues_rules(market: tuple[BarInputs, dict[str, object]]) -> None:
    """Price, fee, slippage, volume, cash and the account after each fill, for any bars."""
    inputs, kw = market
    spec = make_spec(**kw)  # type: ignore[arg-type]
    state = run(spec, inputs)
    s, f = float(kw["slippage"]), float(kw["fee"])  # type: ignore[arg-type]
    cap = kw["max_volume_fraction"]
    margin = kw["margin"]
    liquidation_fee = 0.0 if margin is None else margin.liquidation_fee  # type: ignore[attr-defined]
    spot = margin is None
    px = inputs.px[:, :, 0]
    cash, position = 10_000.0, 0.0
    orders: dict[int, dict[str, float]] = {}
    for row in rows(state):
        v = row.values
        if row.kind == "ORDER":
            orders[int(v[0])] = {
                "bar": row.bar, "side": v[1], "quantity": v[2], "left": v[2], "reason": v[3],
                "stop": v[5], "level": v[6],
            }  # fmt: skip
            assert v[2] > 0.0
        elif row.kind == "FILL":
            order = orders[int(v[0])]
            side, quantity, price, fee, slipped = int(v[1]), v[2], v[3], v[4], v[5]
            assert side == order["side"] and v[6] == order["bar"]
            assert 0.0 < quantity <= order["left"] * (1 + 1e-12)
            if order["stop"]:  # during its bar, at its level, whatever the volume
                assert row.bar == order["bar"]
                now = order["level"]
            elif kw["fill_at_close"]:
                assert row.bar >= order["bar"]
                now = px[3, row.bar]
            else:  # never at its own bar
                assert row.bar > order["bar"]
                now = px[0, row.bar]
            if cap is not None and not order["stop"]:
                assert quantity <= float(cap) * px[4, row.bar]  # type: ignore[arg-type]
            assert price == pytest.approx(now * (1 + side * s), rel=1e-15)
            rate = f + (liquidation_fee if order["reason"] == codes.EXIT_LIQUIDATION else 0.0)
            assert fee == pytest.approx(quantity * price * rate, rel=1e-12, abs=1e-300)
            assert slipped == pytest.approx(quantity * abs(price - now), rel=1e-9, abs=1e-12)
            order["left"] -= quantity
            cash -= side * quantity * price + fee
            position += side * quantity
            assert v[7] == pytest.approx(position, rel=1e-9, abs=1e-9)
            assert v[8] == pytest.approx(cash, rel=1e-9, abs=1e-6)
            if spot:  # a spot account never spends cash it does not have
                assert v[8] >= -1e-9 and v[7] >= -1e-9
        elif row.kind == "CANCEL":
            order = orders[int(v[0])]
            assert v[1] == pytest.approx(order["left"], rel=1e-9, abs=1e-9)
            assert v[3] == order["bar"]
            if v[2] == codes.INSUFFICIENT_CASH:
                assert spot and order["side"] > 0
            order["left"] = 0.0
    assert state.acct[L.A_CASH] == pytest.approx(cash, rel=1e-9, abs=1e-6)
    assert state.sym[0, L.S_QTY] == pytest.approx(position, rel=1e-9, abs=1e-9)
    working = [k for k, o in orders.items() if o["left"] > o["quantity"] * 1e-9]
    if state.sym[0, L.S_W_ACTIVE]:  # at most one order works, the last one
        assert working == [max(orders)]
    else:
        assert working == []
    fees = sum(r.values[4] for r in rows(state) if r.kind == "FILL")
    assert state.acct[L.A_FEES] == pytest.approx(fees, rel=1e-12, abs=1e-12)
    assert np.isfinite(state.acct[L.A_CASH])
