"""The simulated venue: fill timing, slippage and fees."""

from __future__ import annotations

import pandas as pd
import pytest

from tradeloom.domain import Bar, Order
from tradeloom.plugins.execution.simulated import SimulatedVenue, SimulatedVenueParams

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
