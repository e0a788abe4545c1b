"""Portfolio accounting: cash, position, peak equity, fees and the round-trip trades.

One instrument, quantities signed (+ long, - short). A fill moves cash by its
notional and its fee; a position that returns to zero (or flips) closes a trade,
whose profit includes every fee paid while it was open (the fee of a fill that
flips the position is split between the trade it closes and the one it opens).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tradeloom.domain import Fill, PortfolioView

__all__ = ["Portfolio", "Trade"]

_EPS = 1e-12


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


class Portfolio:
    """Account for fills against cash and a single signed position.

    Args:
        cash: Starting cash in quote currency.
    """

    def __init__(self, cash: float) -> None:
        self.initial_cash = cash
        self.cash = cash
        self.position = 0.0
        self.peak_equity = cash
        self.fees = 0.0
        self.trades: list[Trade] = []
        self.entry_bar: int | None = None
        self._entry_time: pd.Timestamp | None = None
        self.entry_price: float | None = None
        self._max_quantity = 0.0
        self._exit_value = 0.0
        self._exit_quantity = 0.0
        self._trade_fees = 0.0
        self._realized = 0.0

    def equity(self, price: float) -> float:
        """Return cash plus the position marked at ``price``."""
        return self.cash + self.position * price

    def mark(self, price: float) -> PortfolioView:
        """Mark to ``price``, raise the peak equity if it is higher, and return the view."""
        equity = self.equity(price)
        self.peak_equity = max(self.peak_equity, equity)
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
        signed = fill.side * fill.quantity
        self.cash -= signed * fill.price + fill.fee
        self.fees += fill.fee
        before = self.position
        after = before + signed
        if abs(after) <= _EPS * max(abs(before), abs(signed), 1.0):
            after = 0.0
        if before == 0.0 or (before > 0) == (signed > 0):
            self._grow(fill, before, signed, fill.fee)
        else:
            closing = min(abs(signed), abs(before))
            share = closing / abs(signed)
            self._reduce(fill, before, closing, fill.fee * share)
            if after != 0.0 and (after > 0) != (before > 0):
                self._grow(fill, 0.0, after, fill.fee * (1.0 - share))
        self.position = after

    def _grow(self, fill: Fill, before: float, signed: float, fee: float) -> None:
        if before == 0.0:
            self.entry_bar = fill.bar
            self._entry_time = fill.timestamp
            self.entry_price = fill.price
            self._max_quantity = abs(signed)
            self._exit_value = self._exit_quantity = self._trade_fees = self._realized = 0.0
        else:
            total = abs(before) + abs(signed)
            assert self.entry_price is not None
            self.entry_price = (self.entry_price * abs(before) + fill.price * abs(signed)) / total
            self._max_quantity = max(self._max_quantity, total)
        self._trade_fees += fee

    def _reduce(self, fill: Fill, before: float, closing: float, fee: float) -> None:
        assert self.entry_price is not None and self.entry_bar is not None
        direction = 1 if before > 0 else -1
        self._realized += closing * (fill.price - self.entry_price) * direction
        self._exit_value += closing * fill.price
        self._exit_quantity += closing
        self._trade_fees += fee
        if closing < abs(before) * (1.0 - _EPS):
            return
        assert self._entry_time is not None
        self.trades.append(
            Trade(
                direction=direction,
                entry_bar=self.entry_bar,
                entry_time=self._entry_time,
                exit_bar=fill.bar,
                exit_time=fill.timestamp,
                quantity=self._max_quantity,
                entry_price=self.entry_price,
                exit_price=self._exit_value / self._exit_quantity,
                fees=self._trade_fees,
                pnl=self._realized - self._trade_fees,
            )
        )
        self.entry_bar = None
        self._entry_time = None
        self.entry_price = None
