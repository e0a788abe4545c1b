"""Portfolio accounting: cash, position, peak equity, fees and the round-trip trades.

One instrument, quantities signed (+ long, - short). A fill moves cash by its
notional and its fee; a position that returns to zero (or flips) closes a trade,
whose profit includes every fee paid while it was open (the fee of a fill that
flips the position is split between the trade it closes and the one it opens).

The arithmetic is one compiled kernel over an explicit state array (`apply_fill`,
`mark_equity`); `Portfolio` wraps it for the per-bar driver and the batch driver
calls it inside its loop, so both account to the same bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeloom.domain import Fill, PortfolioView
from tradeloom.jit import kernel

__all__ = [
    "CASH",
    "CLOSED",
    "ENTRY_BAR",
    "ENTRY_PRICE",
    "FEES",
    "OPENED",
    "PEAK",
    "POSITION",
    "TRADE_FIELDS",
    "Portfolio",
    "Trade",
    "apply_fill",
    "mark_equity",
    "new_portfolio_state",
]

CASH, POSITION, PEAK, FEES, ENTRY_BAR, ENTRY_PRICE = 0, 1, 2, 3, 4, 5
_MAX_QTY, _EXIT_VALUE, _EXIT_QTY, _TRADE_FEES, _REALIZED = 6, 7, 8, 9, 10
_STATE_SIZE = 11

TRADE_FIELDS = (
    "direction",
    "entry_bar",
    "exit_bar",
    "quantity",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
)
"""Layout of the array `apply_fill` writes a closed trade into."""

CLOSED = 1
"""Flag of `apply_fill`: the fill closed a trade."""
OPENED = 2
"""Flag of `apply_fill`: the fill opened a position (from flat, or by flipping)."""

_EPS = 1e-12


@kernel
def new_portfolio_state(cash: float) -> np.ndarray:
    """Return the state of a flat portfolio holding ``cash``."""
    state = np.zeros(_STATE_SIZE)  # a module constant: numba freezes it at compile time
    state[CASH] = cash
    state[PEAK] = cash
    state[ENTRY_BAR] = -1.0
    state[ENTRY_PRICE] = math.nan
    return state


@kernel
def mark_equity(state: np.ndarray, price: float) -> float:
    """Return cash plus the position marked at ``price``; raise the peak if it is higher."""
    equity = state[CASH] + state[POSITION] * price
    state[PEAK] = max(state[PEAK], equity)
    return equity


@kernel
def _grow(
    state: np.ndarray, bar: int, price: float, before: float, signed: float, fee: float
) -> None:
    if before == 0.0:
        state[ENTRY_BAR] = bar
        state[ENTRY_PRICE] = price
        state[_MAX_QTY] = abs(signed)
        state[_EXIT_VALUE] = 0.0
        state[_EXIT_QTY] = 0.0
        state[_TRADE_FEES] = 0.0
        state[_REALIZED] = 0.0
    else:
        total = abs(before) + abs(signed)
        state[ENTRY_PRICE] = (state[ENTRY_PRICE] * abs(before) + price * abs(signed)) / total
        state[_MAX_QTY] = max(state[_MAX_QTY], total)
    state[_TRADE_FEES] += fee


@kernel
def _reduce(
    state: np.ndarray,
    bar: int,
    price: float,
    before: float,
    closing: float,
    fee: float,
    trade: np.ndarray,
) -> bool:
    direction = 1.0 if before > 0 else -1.0
    state[_REALIZED] += closing * (price - state[ENTRY_PRICE]) * direction
    state[_EXIT_VALUE] += closing * price
    state[_EXIT_QTY] += closing
    state[_TRADE_FEES] += fee
    if closing < abs(before) * (1.0 - _EPS):
        return False
    trade[0] = direction
    trade[1] = state[ENTRY_BAR]
    trade[2] = bar
    trade[3] = state[_MAX_QTY]
    trade[4] = state[ENTRY_PRICE]
    trade[5] = state[_EXIT_VALUE] / state[_EXIT_QTY]
    trade[6] = state[_TRADE_FEES]
    trade[7] = state[_REALIZED] - state[_TRADE_FEES]
    state[ENTRY_BAR] = -1.0
    state[ENTRY_PRICE] = math.nan
    return True


@kernel
def apply_fill(
    state: np.ndarray,
    bar: int,
    side: int,
    quantity: float,
    price: float,
    fee: float,
    trade: np.ndarray,
) -> int:
    """Apply a fill to ``state``: cash, fees, position, and the trade it opens, grows or closes.

    Args:
        state: `new_portfolio_state`, updated in place.
        bar: The fill's bar.
        side: +1 buy, -1 sell.
        quantity: Filled quantity (> 0).
        price: Fill price.
        fee: Fee in quote currency.
        trade: Receives a closed trade (`TRADE_FIELDS`) when the result has `CLOSED`.

    Returns:
        Flags: `CLOSED` if a trade closed, `OPENED` if a position opened.
    """
    signed = side * quantity
    state[CASH] -= signed * price + fee
    state[FEES] += fee
    before = state[POSITION]
    after = before + signed
    if abs(after) <= _EPS * max(abs(before), abs(signed)):
        after = 0.0  # a close that leaves rounding dust; relative, so tiny positions count
    flags = 0
    if before == 0.0 or (before > 0) == (signed > 0):
        _grow(state, bar, price, before, signed, fee)
        if before == 0.0:
            flags |= OPENED
    else:
        closing = min(abs(signed), abs(before))
        share = closing / abs(signed)
        if _reduce(state, bar, price, before, closing, fee * share, trade):
            flags |= CLOSED
        if after != 0.0 and (after > 0) != (before > 0):
            _grow(state, bar, price, 0.0, after, fee * (1.0 - share))
            flags |= OPENED
    state[POSITION] = after
    return flags


@dataclass(frozen=True)
class Trade:
    """A round trip: from the fill that opened a position to the one that closed it."""

    direction: int
    entry_bar: int
    entry_time: pd.Timestamp
    exit_bar: int
    exit_time: pd.Timestamp
    quantity: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float

    @property
    def return_pct(self) -> float:
        """Return the profit as a fraction of the entry notional."""
        return self.pnl / (self.quantity * self.entry_price)

    @classmethod
    def from_kernel(
        cls, values: np.ndarray, entry_time: pd.Timestamp, exit_time: pd.Timestamp
    ) -> Trade:
        """Build a trade from the array `apply_fill` wrote (`TRADE_FIELDS`)."""
        return cls(
            direction=int(values[0]),
            entry_bar=int(values[1]),
            entry_time=entry_time,
            exit_bar=int(values[2]),
            exit_time=exit_time,
            quantity=float(values[3]),
            entry_price=float(values[4]),
            exit_price=float(values[5]),
            fees=float(values[6]),
            pnl=float(values[7]),
        )


class Portfolio:
    """Account for fills against cash and a single signed position.

    Args:
        cash: Starting cash in quote currency.
        state: A kernel state to wrap instead of a fresh one (the batch driver's result).
        trades: The trades closed so far, with ``state``.
    """

    def __init__(
        self, cash: float, state: np.ndarray | None = None, trades: list[Trade] | None = None
    ) -> None:
        self.initial_cash = cash
        self.state = new_portfolio_state(cash) if state is None else state
        self.trades: list[Trade] = [] if trades is None else trades
        self._trade = np.zeros(len(TRADE_FIELDS))
        self._entry_time: pd.Timestamp | None = None

    @property
    def cash(self) -> float:
        """Return the cash in quote currency."""
        return float(self.state[CASH])

    @property
    def position(self) -> float:
        """Return the signed position."""
        return float(self.state[POSITION])

    @property
    def peak_equity(self) -> float:
        """Return the highest equity marked so far (at least the starting cash)."""
        return float(self.state[PEAK])

    @property
    def fees(self) -> float:
        """Return every fee paid."""
        return float(self.state[FEES])

    @property
    def entry_bar(self) -> int | None:
        """Return the bar of the fill that opened the position, or None when flat."""
        bar = int(self.state[ENTRY_BAR])
        return None if bar < 0 else bar

    @property
    def entry_price(self) -> float | None:
        """Return the average entry price of the position, or None when flat."""
        price = float(self.state[ENTRY_PRICE])
        return None if math.isnan(price) else price

    def equity(self, price: float) -> float:
        """Return cash plus the position marked at ``price``."""
        return float(self.state[CASH] + self.state[POSITION] * price)

    def mark(self, price: float) -> PortfolioView:
        """Mark to ``price``, raise the peak equity if it is higher, and return the view."""
        equity = float(mark_equity(self.state, price))
        return PortfolioView(
            cash=self.cash,
            position=self.position,
            equity=equity,
            peak_equity=self.peak_equity,
            price=price,
            entry_bar=self.entry_bar,
            entry_price=self.entry_price,
        )

    def apply(self, fill: Fill) -> None:
        """Apply a fill: cash, fees, position, and the trade it opens, grows or closes."""
        flags = apply_fill(
            self.state, fill.bar, fill.side, fill.quantity, fill.price, fill.fee, self._trade
        )
        if flags & CLOSED:
            assert self._entry_time is not None
            self.trades.append(Trade.from_kernel(self._trade, self._entry_time, fill.timestamp))
        if flags & OPENED:
            self._entry_time = fill.timestamp
