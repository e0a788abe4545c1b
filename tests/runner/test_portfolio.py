"""Portfolio accounting: cash, position, trades and fees, against an independent ledger."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.domain import Fill
from tradeloom.runner.portfolio import Portfolio

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def fill(bar: int, side: int, qty: float, price: float, fee: float = 0.0) -> Fill:
    return Fill(f"o{bar}", bar, T0 + pd.Timedelta(hours=bar), side, qty, price, fee, 0.0)


def test_long_round_trip_with_fees() -> None:
    p = Portfolio(1000.0)
    p.apply(fill(1, +1, 2.0, 100.0, fee=0.2))
    assert p.cash == pytest.approx(1000.0 - 200.0 - 0.2)
    assert p.position == 2.0
    assert p.equity(110.0) == pytest.approx(799.8 + 220.0)
    p.apply(fill(5, -1, 2.0, 110.0, fee=0.22))
    assert p.position == 0.0
    assert p.cash == pytest.approx(1000.0 + 20.0 - 0.42)
    [trade] = p.trades
    assert (trade.direction, trade.entry_bar, trade.exit_bar) == (1, 1, 5)
    assert trade.pnl == pytest.approx(20.0 - 0.42)
    assert trade.fees == pytest.approx(0.42)
    assert trade.return_pct == pytest.approx((20.0 - 0.42) / 200.0)
    assert p.fees == pytest.approx(0.42)


def test_short_profit_when_price_falls() -> None:
    p = Portfolio(1000.0)
    p.apply(fill(1, -1, 1.0, 100.0))
    assert p.position == -1.0
    assert p.equity(90.0) == pytest.approx(1010.0)
    p.apply(fill(2, +1, 1.0, 90.0))
    [trade] = p.trades
    assert trade.direction == -1
    assert trade.pnl == pytest.approx(10.0)


def test_flip_splits_the_fee_between_the_two_trades() -> None:
    p = Portfolio(1000.0)
    p.apply(fill(1, +1, 1.0, 100.0, fee=0.0))
    p.apply(fill(2, -1, 3.0, 105.0, fee=3.0))  # closes 1 long, opens 2 short
    assert p.position == pytest.approx(-2.0)
    [closed] = p.trades
    assert closed.pnl == pytest.approx(5.0 - 1.0)
    p.apply(fill(3, +1, 2.0, 100.0, fee=0.0))
    second = p.trades[1]
    assert second.direction == -1
    assert second.pnl == pytest.approx(2 * 5.0 - 2.0)


def test_peak_equity_only_rises() -> None:
    p = Portfolio(1000.0)
    p.apply(fill(0, +1, 1.0, 100.0))
    assert p.mark(150.0).peak_equity == pytest.approx(1050.0)
    view = p.mark(50.0)
    assert view.peak_equity == pytest.approx(1050.0)
    assert view.drawdown == pytest.approx(1.0 - 950.0 / 1050.0)


_steps = st.lists(
    st.tuples(
        st.sampled_from([-1, 1]),
        st.floats(0.01, 50.0),
        st.floats(1.0, 1000.0),
        st.floats(0.0, 2.0),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps=_steps, final_price=st.floats(1.0, 1000.0))
def test_accounting_identities(steps, final_price) -> None:
    """Cash and position match an independent ledger; closed P&L plus the open mark is
    the change of equity; fees add up."""
    p = Portfolio(10_000.0)
    cash, position, fees = 10_000.0, 0.0, 0.0
    for bar, (side, qty, price, fee) in enumerate(steps):
        p.apply(fill(bar, side, qty, price, fee))
        cash -= side * qty * price + fee
        position += side * qty
        fees += fee
    assert p.cash == pytest.approx(cash, rel=1e-9, abs=1e-6)
    assert p.position == pytest.approx(position, rel=1e-9, abs=1e-9)
    assert p.fees == pytest.approx(fees)
    # close whatever is open, at final_price, and every penny is in the trades
    if p.position != 0.0:
        p.apply(fill(len(steps), -1 if p.position > 0 else 1, abs(p.position), final_price))
    assert p.position == 0.0
    total_pnl = sum(t.pnl for t in p.trades)
    assert total_pnl == pytest.approx(p.cash - 10_000.0, rel=1e-7, abs=1e-5)
    assert sum(t.fees for t in p.trades) == pytest.approx(fees, rel=1e-9, abs=1e-9)


def test_a_tiny_position_is_a_position() -> None:
    p = Portfolio(1e-6)
    p.apply(fill(1, +1, 5e-13, 1000.0))
    assert p.position == 5e-13 and p.entry_bar == 1
    assert p.cash == pytest.approx(1e-6 - 5e-10)
    p.apply(fill(2, -1, 5e-13 * (1 + 1e-14), 1000.0))  # the close, with rounding dust
    assert p.position == 0.0 and p.entry_bar is None and len(p.trades) == 1
