"""Accounting kernels: cash, positions by symbol, fees and round-trip trades.

Ported from tests/runner/test_portfolio.py (the Python `Portfolio` the core replaces):
the same cases, against `apply_fill` and `mark_equity` over the core's own arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.core import layout as L
from tradeloom.core.accounting import CLOSED, OPENED, TRADE_FIELDS, apply_fill, mark_equity
from tradeloom.core.context import FillReport


class Ledger:
    """The account and symbol rows as `tradeloom.core.state.CoreState` starts them."""

    def __init__(self, cash: float, symbols: int = 1) -> None:
        self.initial = cash
        self.acct = np.zeros(L.ACCT_SIZE)
        self.acct[L.A_CASH] = cash
        self.acct[L.A_PEAK] = cash
        self.sym = np.zeros((symbols, L.SYM_SIZE))
        self.sym[:, L.S_ENTRY_BAR] = -1.0
        self.sym[:, L.S_ENTRY_PRICE] = math.nan
        self.sym[:, L.S_MARK] = math.nan
        self.trades: list[dict[str, float]] = []

    def fill(
        self,
        bar: int,
        side: int,
        quantity: float,
        price: float,
        fee: float = 0.0,
        s: int = 0,
        merge: bool = False,
    ) -> int:
        """Apply a fill; ``merge``: its order was sent over dust (`L.S_DUST_MERGE`)."""
        self.sym[s, L.S_DUST_MERGE] = merge
        trade = np.full(len(TRADE_FIELDS), -99.0)
        fill = FillReport(0, side, float(quantity), float(price), float(fee), 0.0, bar, L.LIQ_TAKER)
        flags = int(apply_fill(self.acct, self.sym, s, bar, fill, trade))
        if flags & CLOSED:
            self.trades.append(dict(zip(TRADE_FIELDS, (float(v) for v in trade), strict=True)))
        else:
            assert (trade == -99.0).all(), "a fill that closes nothing wrote a trade"
        return flags

    def mark(self, *closes: float) -> float:
        px = np.full((6, 1, self.sym.shape[0]), math.nan)
        px[3, 0, :] = closes
        return float(mark_equity(self.acct, self.sym, px, 0))

    @property
    def cash(self) -> float:
        return float(self.acct[L.A_CASH])

    @property
    def fees(self) -> float:
        return float(self.acct[L.A_FEES])

    @property
    def peak(self) -> float:
        return float(self.acct[L.A_PEAK])

    def position(self, s: int = 0) -> float:
        return float(self.sym[s, L.S_QTY])

    def entry(self, s: int = 0) -> tuple[int, float]:
        return int(self.sym[s, L.S_ENTRY_BAR]), float(self.sym[s, L.S_ENTRY_PRICE])


def test_long_round_trip_with_fees() -> None:
    book = Ledger(1000.0)
    assert book.fill(1, +1, 2.0, 100.0, fee=0.2) == OPENED
    assert book.cash == pytest.approx(1000.0 - 200.0 - 0.2)
    assert book.position() == 2.0
    assert book.entry() == (1, 100.0)
    assert book.mark(110.0) == pytest.approx(799.8 + 220.0)
    assert book.fill(5, -1, 2.0, 110.0, fee=0.22) == CLOSED
    assert book.position() == 0.0
    assert book.cash == pytest.approx(1000.0 + 20.0 - 0.42)
    [trade] = book.trades
    assert trade == pytest.approx(
        {
            "direction": 1.0,
            "entry_bar": 1.0,
            "exit_bar": 5.0,
            "quantity": 2.0,
            "entry_price": 100.0,
            "exit_price": 110.0,
            "fees": 0.42,
            "pnl": 20.0 - 0.42,
        }
    )
    assert book.fees == pytest.approx(0.42)
    assert book.entry()[0] == -1 and math.isnan(book.entry()[1])


def test_short_profit_when_price_falls() -> None:
    book = Ledger(1000.0)
    book.fill(1, -1, 1.0, 100.0)
    assert book.position() == -1.0
    assert book.cash == 1100.0  # the short sale's proceeds
    assert book.mark(90.0) == pytest.approx(1010.0)
    book.fill(2, +1, 1.0, 90.0)
    [trade] = book.trades
    assert (trade["direction"], trade["pnl"]) == (-1.0, pytest.approx(10.0))


def test_flip_splits_the_fee_between_the_two_trades() -> None:
    book = Ledger(1000.0)
    book.fill(1, +1, 1.0, 100.0, fee=0.0)
    # Sell 3 at 105 with a fee of 3: 1 closes the long (a third of the fee), 2 open a short.
    assert book.fill(2, -1, 3.0, 105.0, fee=3.0) == CLOSED | OPENED
    assert book.position() == pytest.approx(-2.0)
    assert book.entry() == (2, 105.0)
    [closed] = book.trades
    assert (closed["fees"], closed["pnl"]) == (pytest.approx(1.0), pytest.approx(5.0 - 1.0))
    assert book.sym[0, L.S_TRADE_FEES] == pytest.approx(2.0)  # the short carries the rest
    assert book.sym[0, L.S_MAX_QTY] == pytest.approx(2.0)
    book.fill(3, +1, 2.0, 100.0, fee=0.0)
    second = book.trades[1]
    assert (second["direction"], second["entry_bar"], second["exit_bar"]) == (-1.0, 2.0, 3.0)
    assert second["pnl"] == pytest.approx(2 * 5.0 - 2.0)
    assert book.fees == pytest.approx(3.0)


def test_adding_averages_the_entry_and_the_trade_reports_its_largest_size() -> None:
    book = Ledger(10_000.0)
    book.fill(0, +1, 1.0, 100.0, fee=0.1)
    assert book.fill(1, +1, 1.0, 110.0, fee=0.1) == 0  # grows: neither opens nor closes
    assert book.entry() == (0, pytest.approx(105.0))
    assert book.fill(2, -1, 0.5, 120.0, fee=0.1) == 0  # a partial close
    assert book.sym[0, L.S_REALIZED] == pytest.approx(0.5 * (120.0 - 105.0))
    assert book.fill(3, -1, 1.5, 90.0, fee=0.1) == CLOSED
    [trade] = book.trades
    # Exit price: (0.5 x 120 + 1.5 x 90) / 2 = 97.5; pnl: 0.5 x 15 - 1.5 x 15 - 4 x 0.1.
    assert trade == pytest.approx(
        {
            "direction": 1.0,
            "entry_bar": 0.0,
            "exit_bar": 3.0,
            "quantity": 2.0,
            "entry_price": 105.0,
            "exit_price": 97.5,
            "fees": 0.4,
            "pnl": 7.5 - 22.5 - 0.4,
        }
    )


def test_peak_equity_only_rises() -> None:
    book = Ledger(1000.0)
    book.fill(0, +1, 1.0, 100.0)
    assert book.mark(150.0) == pytest.approx(1050.0)
    assert book.peak == pytest.approx(1050.0)
    assert book.mark(50.0) == pytest.approx(950.0)
    assert book.peak == pytest.approx(1050.0)
    assert 1.0 - 950.0 / book.peak == pytest.approx(1.0 - 950.0 / 1050.0)


def test_cash_is_shared_and_each_symbol_is_marked_at_its_own_close() -> None:
    book = Ledger(1000.0, symbols=2)
    book.fill(0, +1, 2.0, 100.0, s=0)
    book.fill(0, -1, 3.0, 50.0, s=1)
    assert book.cash == pytest.approx(1000.0 - 200.0 + 150.0)
    assert (book.position(0), book.position(1)) == (2.0, -3.0)
    # 950 + 2 x 110 - 3 x 40
    assert book.mark(110.0, 40.0) == pytest.approx(950.0 + 220.0 - 120.0)
    # Symbol 1 has no bar (NaN close): it keeps its last mark, 40.
    assert book.mark(120.0, math.nan) == pytest.approx(950.0 + 240.0 - 120.0)
    assert book.sym[1, L.S_MARK] == 40.0


def test_a_tiny_position_is_a_position() -> None:
    book = Ledger(1e-6)
    book.fill(1, +1, 5e-13, 1000.0)
    assert book.position() == 5e-13 and book.entry() == (1, 1000.0)
    assert book.cash == pytest.approx(1e-6 - 5e-10)
    book.fill(2, -1, 5e-13 * (1 + 1e-14), 1000.0)  # the close, with rounding dust
    assert book.position() == 0.0 and book.entry()[0] == -1 and len(book.trades) == 1


@pytest.mark.parametrize("dust", [1e-13, -1e-13, 9e-13, -9e-13])
def test_rounding_dust_of_a_close_snaps_to_flat(dust: float) -> None:
    book = Ledger(10_000.0)
    book.fill(0, -1, 0.3, 100.0)
    assert book.fill(1, +1, 0.3 * (1.0 + dust), 90.0, fee=0.5) == CLOSED
    assert book.position() == 0.0
    assert book.entry()[0] == -1
    [trade] = book.trades
    assert trade["fees"] == pytest.approx(0.5)


@pytest.mark.parametrize("rest", [1e-9, -1e-9])
def test_a_real_remainder_is_not_dust(rest: float) -> None:
    book = Ledger(10_000.0)
    book.fill(0, +1, 2.0, 100.0)
    flags = book.fill(1, -1, 2.0 * (1.0 - rest), 100.0)
    assert book.position() == pytest.approx(2.0 * rest, rel=1e-6)
    assert book.position() != 0.0
    # Less than the position: a partial close; more: the trade closes and a new one opens.
    assert flags == (0 if rest > 0 else CLOSED | OPENED)


def test_a_fill_over_dust_starts_the_trade_with_the_dusts_pnl() -> None:
    """1 unit bought at 100 is dust at 40; an order sent over it buys 1.485 at 40: the
    trade starts there (bar 5, at 40, 2.485 units) and its P&L keeps the dust's -60."""
    book = Ledger(10_000.0)
    book.fill(0, +1, 1.0, 100.0, fee=0.1)
    assert book.fill(5, +1, 1.485, 40.0, fee=0.05, merge=True) == OPENED
    assert book.entry() == (5, 40.0)
    assert book.sym[0, L.S_MAX_QTY] == pytest.approx(2.485)
    assert book.sym[0, L.S_DUST_MERGE] == 0.0  # the order's first fill only
    book.fill(6, +1, 0.515, 50.0)  # a later fill grows the trade as any fill does
    assert book.entry() == (5, pytest.approx((2.485 * 40.0 + 0.515 * 50.0) / 3.0))
    assert book.fill(8, -1, 3.0, 44.0) == CLOSED
    [trade] = book.trades
    assert trade == pytest.approx(
        {
            "direction": 1.0,
            "entry_bar": 5.0,
            "exit_bar": 8.0,
            "quantity": 3.0,
            "entry_price": (2.485 * 40.0 + 0.515 * 50.0) / 3.0,
            "exit_price": 44.0,
            "fees": 0.15,
            "pnl": -60.0 + 2.485 * 4.0 - 0.515 * 6.0 - 0.15,
        }
    )
    assert sum(t["pnl"] for t in book.trades) == pytest.approx(book.cash - 10_000.0)


_steps = st.lists(
    st.tuples(
        st.integers(0, 1),  # symbol
        st.sampled_from([-1, 1]),
        st.floats(0.01, 50.0),
        st.floats(1.0, 1000.0),
        st.floats(0.0, 2.0),
        st.booleans(),  # its order was sent over dust (a fill that grows it merges)
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=examples(300), deadline=None)
@given(steps=_steps, final=st.tuples(st.floats(1.0, 1000.0), st.floats(1.0, 1000.0)))
def test_accounting_identities(
    steps: list[tuple[int, int, float, float, float, bool]], final: tuple[float, float]
) -> None:
    """Against an independent ledger: cash and positions; equity moves only by fees and
    price changes; fees add up; once flat, the trades' pnl is the change of cash, also
    when fills take dust in (a trade restarted at such a fill keeps the dust's P&L)."""
    book = Ledger(10_000.0, symbols=2)
    cash, position, fees = 10_000.0, [0.0, 0.0], 0.0
    marks = [100.0, 100.0]
    equity = book.mark(*marks)
    scale = 10_000.0  # the size of the numbers involved, for the rounding tolerance
    for bar, (s, side, quantity, price, fee, merge) in enumerate(steps):
        # The price moves to the fill's: equity moves by the position x the change.
        moved = equity + position[s] * (price - marks[s])
        marks[s] = price
        equity = book.mark(*marks)
        scale += quantity * price
        assert equity == pytest.approx(moved, rel=1e-9, abs=1e-9 * scale)
        # The fill: equity at the same marks moves by its fee, and only by it.
        book.fill(bar, side, quantity, price, fee, s, merge)
        cash -= side * quantity * price + fee
        position[s] += side * quantity
        fees += fee
        after = book.mark(*marks)
        assert after == pytest.approx(equity - fee, rel=1e-9, abs=1e-9 * scale)
        equity = after
    assert book.cash == pytest.approx(cash, rel=1e-9, abs=1e-9 * scale)
    for s in (0, 1):
        assert book.position(s) == pytest.approx(position[s], rel=1e-9, abs=1e-9)
    assert book.fees == pytest.approx(fees)
    open_fees = book.sym[:, L.S_TRADE_FEES] * (book.sym[:, L.S_QTY] != 0.0)
    assert sum(t["fees"] for t in book.trades) + open_fees.sum() == pytest.approx(
        fees, rel=1e-9, abs=1e-12
    )
    # Close whatever is open at the final prices: every penny is in the trades.
    for s in (0, 1):
        if book.position(s) != 0.0:
            side = -1 if book.position(s) > 0 else 1
            book.fill(len(steps), side, abs(book.position(s)), final[s], s=s)
        assert book.position(s) == 0.0
    assert sum(t["pnl"] for t in book.trades) == pytest.approx(
        book.cash - 10_000.0, rel=1e-7, abs=1e-9 * scale
    )
    assert sum(t["fees"] for t in book.trades) == pytest.approx(fees, rel=1e-9, abs=1e-12)


@settings(max_examples=examples(200), deadline=None)
@given(
    held=st.floats(0.01, 100.0),
    side=st.sampled_from([-1, 1]),
    excess=st.floats(0.01, 100.0),
    entry_fee=st.floats(0.0, 5.0),
    fee=st.floats(0.0, 5.0),
)
def test_a_flip_splits_its_fee_by_the_quantity_on_each_side(
    held: float, side: int, excess: float, entry_fee: float, fee: float
) -> None:
    book = Ledger(10_000.0)
    book.fill(0, side, held, 100.0, entry_fee)
    flags = book.fill(1, -side, held + excess, 90.0, fee)
    assert flags == CLOSED | OPENED
    share = held / (held + excess)
    [closed] = book.trades
    assert closed["fees"] == pytest.approx(entry_fee + fee * share, abs=1e-12)
    assert closed["quantity"] == pytest.approx(held)
    assert book.sym[0, L.S_TRADE_FEES] == pytest.approx(fee * (1.0 - share), abs=1e-12)
    assert book.position() == pytest.approx(-side * excess, rel=1e-9, abs=1e-12)
    assert book.entry() == (1, 90.0)


@settings(max_examples=examples(200), deadline=None)
@given(
    sizes=st.lists(st.floats(1e-9, 1e6), min_size=1, max_size=6),
    side=st.sampled_from([-1, 1]),
    noise=st.floats(-5e-13, 5e-13),
)
def test_closing_a_position_built_in_pieces_leaves_no_dust(
    sizes: list[float], side: int, noise: float
) -> None:
    """A close of the sum of the pieces, within rounding, is flat and closes the trade."""
    book = Ledger(1e9)
    for bar, size in enumerate(sizes):
        book.fill(bar, side, size, 50.0)
    total = math.fsum(sizes) * (1.0 + noise)
    assert book.fill(len(sizes), -side, total, 50.0) & CLOSED
    assert book.position() == 0.0
    assert book.entry()[0] == -1
    assert len(book.trades) == 1
