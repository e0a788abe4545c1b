"""The simulated venue: fill timing, slippage, fees, partial fills, cash, stops."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.plugins.execution.simulated import (
    CUT_CASH,
    CUT_MINIMUM,
    CUT_NONE,
    FillTerms,
    Offer,
    SimulatedVenue,
    SimulatedVenueParams,
    fill_order,
)

T = pd.Timestamp("2024-01-01", tz="UTC")


def bar(i: int, o: float, c: float) -> Bar:
    return Bar(i, T + pd.Timedelta(hours=i), o, max(o, c), min(o, c), c, 1.0)


def order(i: int, side: int, qty: float = 2.0) -> Order:
    return Order(f"o{i}", i, T, side, qty, "ENTRY", 100.0)


def test_next_open_fills_at_the_next_bar_open_with_slippage_and_fee() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(fill="next_open", slippage_bps=10, fee_bps=5))
    venue.submit(order(3, +1))
    assert venue.match(bar(3, 99.0, 100.0), "close") == []
    assert venue.match(bar(3, 99.0, 100.0), "open") == []  # not before the next bar
    [fill] = venue.match(bar(4, 102.0, 103.0), "open")
    assert (fill.bar, fill.side, fill.quantity) == (4, 1, 2.0)
    assert fill.price == pytest.approx(102.0 * 1.001)
    assert fill.fee == pytest.approx(2.0 * 102.0 * 1.001 * 0.0005)
    assert fill.slippage == pytest.approx(2.0 * 0.102)
    assert venue.pending() == []


def test_sells_slip_down() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(fill="next_open", slippage_bps=50))
    venue.submit(order(0, -1))
    [fill] = venue.match(bar(1, 200.0, 200.0), "open")
    assert fill.price == pytest.approx(199.0)


def test_close_fill_convention() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(fill="close"))
    venue.submit(order(5, +1))
    assert venue.match(bar(5, 90.0, 95.0), "open") == []
    [fill] = venue.match(bar(5, 90.0, 95.0), "close")
    assert (fill.bar, fill.price, fill.fee) == (5, 95.0, 0.0)


def test_unfilled_orders_stay_pending() -> None:
    venue = SimulatedVenue(SimulatedVenueParams())
    venue.submit(order(9, +1))
    assert [o.id for o in venue.pending()] == ["o9"]


def vbar(i: int, price: float, volume: float) -> Bar:
    return Bar(i, T + pd.Timedelta(hours=i), price, price, price, price, volume)


def test_partial_fills_take_a_share_of_each_bars_volume_until_done() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(max_volume_fraction=0.1, initial_cash=1e9))
    venue.submit(order(0, +1, qty=25.0))
    volumes = [50.0, 100.0, 0.0, 1000.0]
    fills = [venue.match(vbar(i + 1, 100.0, v), "open") for i, v in enumerate(volumes)]
    assert [[f.quantity for f in batch] for batch in fills] == [[5.0], [10.0], [], [10.0]]
    assert venue.pending() == []
    assert venue.cash == pytest.approx(1e9 - 25.0 * 100.0)


def test_a_spot_buy_fills_as_far_as_the_cash_goes_and_the_rest_is_cancelled() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(initial_cash=1000.0, fee_bps=10))
    venue.submit(order(0, +1, qty=20.0))
    fill, cancelled = venue.match(vbar(1, 100.0, 1.0), "open")
    assert isinstance(fill, Fill) and isinstance(cancelled, Cancellation)
    assert fill.quantity == pytest.approx(1000.0 / (100.0 * 1.001))
    assert fill.quantity * fill.price + fill.fee == pytest.approx(1000.0)
    assert (cancelled.reason, cancelled.remaining) == ("INSUFFICIENT_CASH", 20.0 - fill.quantity)
    assert venue.pending() == [] and venue.cash == pytest.approx(0.0, abs=1e-9)


def test_a_margin_account_buys_without_the_cash_limit() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(initial_cash=1000.0, allow_short=True))
    venue.submit(order(0, +1, qty=20.0))
    [fill] = venue.match(vbar(1, 100.0, 1.0), "open")
    assert fill.quantity == 20.0 and venue.cash == -1000.0


def test_cancel_returns_what_was_left_and_forgets_the_order() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(max_volume_fraction=0.5))
    venue.submit(order(0, +1, qty=4.0))
    venue.match(vbar(1, 100.0, 2.0), "open")
    cancelled = venue.cancel("o0", vbar(1, 100.0, 2.0), "REPLACED")
    assert cancelled == Cancellation("o0", 1, T + pd.Timedelta(hours=1), 3.0, "REPLACED")
    assert venue.cancel("o0", vbar(1, 100.0, 2.0), "REPLACED") is None
    assert venue.pending() == []


def test_a_stop_order_fills_during_its_bar_at_its_level_with_slippage() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(slippage_bps=10, fee_bps=10))
    stop = Order("s", 3, T, -1, 2.0, "EXIT_STOP_LOSS", 95.0, kind="stop", stop_price=95.0)
    venue.submit(stop)
    assert venue.match(vbar(3, 100.0, 0.0), "open") == []
    [fill] = venue.match(vbar(3, 100.0, 0.0), "intrabar")  # volume does not limit a stop
    assert (fill.quantity, fill.price) == (2.0, pytest.approx(95.0 * 0.999))
    assert fill.fee == pytest.approx(2.0 * 95.0 * 0.999 * 0.001)


def test_quantity_for_leaves_room_for_slippage_and_fee() -> None:
    venue = SimulatedVenue(SimulatedVenueParams(slippage_bps=20, fee_bps=10))
    quantity = venue.quantity_for(1000.0, 50.0)
    assert quantity * 50.0 * 1.002 * 1.001 == pytest.approx(1000.0, rel=1e-15)


@settings(max_examples=examples(300), deadline=None)
@given(
    side=st.sampled_from([-1, 1]),
    remaining=st.floats(1e-6, 1e6),
    price=st.floats(1e-6, 1e6),
    volume=st.floats(0.0, 1e6),
    slippage=st.floats(0.0, 0.5),
    fee_rate=st.floats(0.0, 0.5),
    cap=st.one_of(st.just(-1.0), st.floats(1e-3, 1.0)),
    cash=st.floats(-1e6, 1e9),
    spot=st.booleans(),
    minimum=st.sampled_from([0.0, 1e-4, 10.0]),
)
# a slice whose rest, remaining - quantity, rounded to a hair under the minimum's worth
@example(-1, 1025.0, 3.0, 1025.0, 0.0, 0.0, 0.9999999999999999, 0.0, False, 1e-4)
def test_fill_order_properties(
    side, remaining, price, volume, slippage, fee_rate, cap, cash, spot, minimum
) -> None:
    quantity, fill_price, fee, slipped, cut = fill_order(
        side,
        remaining,
        Offer(price, volume, cap),
        FillTerms(slippage, fee_rate, minimum, spot),
        cash,
    )
    assert 0.0 <= quantity <= remaining
    if cap > 0:
        assert quantity <= cap * volume
    assert fill_price == price * (1 + side * slippage)
    assert fee == pytest.approx(quantity * fill_price * fee_rate, rel=1e-12, abs=1e-300)
    assert slipped == quantity * abs(fill_price - price)
    # one rule for every fill: none, or at least the minimum's worth
    assert quantity == 0.0 or quantity * fill_price >= minimum
    assert cut != CUT_MINIMUM or quantity == 0.0
    if cut == CUT_NONE and 0.0 < quantity < remaining:  # a volume slice leaves no dust:
        assert (remaining - quantity) * fill_price >= minimum  # its rest passes this check
    if spot and side > 0:
        # never spends more than the cash (to rounding)
        assert quantity * fill_price + fee <= max(cash, 0.0) * (1 + 1e-12) + 1e-12
        if cut == CUT_CASH:
            assert quantity * fill_price * (1 + fee_rate) == pytest.approx(max(cash, 0.0))
    else:
        assert cut != CUT_CASH
