"""The account as the core holds it, read back: cash, positions, entries and stops.

`Book` is the run's account as a reader outside the core sees it: read-only views of
the arrays of the run's `tradeloom.core.state.CoreState` (the engine's
`tradeloom.engine.driver.Engine.portfolio`), and the closed trades the engine keeps.
The risk rules see one symbol of it (`Book.view`); a live run's protective orders read
the stop resting under a position (`Book.stop_of`). Nothing here writes the account.
"""

from __future__ import annotations

import math

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.exits import OpenTrade, StopSettings, resting_stop
from tradeloom.core.state import CoreState
from tradeloom.domain import PortfolioView, Trade
from tradeloom.tables.kept import Kept

__all__ = ["Book"]


class Book:
    """The account as the core holds it: read-only views of its arrays.

    The per-symbol figures (`position`, `entry_bar`, `entry_price`) are the first
    symbol's, the one symbol of a one-symbol strategy; `position_of` and `view` take
    any symbol's index.
    """

    def __init__(self, state: CoreState, initial_cash: float, trades: Kept[Trade]) -> None:
        self._state = state
        self.initial_cash = initial_cash
        self.trades = trades

    def position_of(self, symbol: int) -> float:
        """Return the signed position of the ``symbol``-th symbol."""
        return float(self._state.sym[symbol, L.S_QTY])

    def entry_of(self, symbol: int) -> tuple[int | None, float | None]:
        """Return the ``symbol``-th symbol's entry bar and average price (None: flat)."""
        row = self._state.sym[symbol]
        bar, price = int(row[L.S_ENTRY_BAR]), float(row[L.S_ENTRY_PRICE])
        return (None if bar < 0 else bar), (None if math.isnan(price) else price)

    def stop_of(self, symbol: int) -> tuple[str, float] | None:
        """Return the stop resting under the ``symbol``-th symbol's position for the next
        bar: its exit reason and level (`tradeloom.core.exits.resting_stop`).

        None: flat, or no stop-loss, break-even or trailing stop rests (an ATR stop
        before its average has its bars).
        """
        row, prm = self._state.sym[symbol], self._state.prm
        quantity = float(row[L.S_QTY])
        if quantity == 0.0:
            return None
        window = int(prm[L.P_TRAIL_ATR])
        atr = math.nan
        if window > 0 and row[L.S_ATR + 2] >= window:
            atr = float(row[L.S_ATR + 3])
        trade = OpenTrade(
            1 if quantity > 0.0 else -1,
            float(row[L.S_ENTRY_PRICE]),
            float(row[L.S_BEST]),
            float(row[L.S_TRAIL]),
            atr,
        )
        stops = StopSettings(
            float(prm[L.P_STOP_LOSS]),
            float(prm[L.P_BREAK_EVEN]),
            float(prm[L.P_TRAILING]),
            float(prm[L.P_TRAIL_MULTIPLE]),
        )  # read at each call: a hot reload rewrites prm in place
        reason, level = resting_stop(trade, stops)
        if reason == 0 or math.isnan(level):
            return None
        return codes.CodeTable().name(int(reason)), float(level)

    @property
    def cash(self) -> float:
        """Return the cash in quote currency."""
        return float(self._state.acct[L.A_CASH])

    @property
    def position(self) -> float:
        """Return the signed position (of the first symbol)."""
        return self.position_of(0)

    @property
    def peak_equity(self) -> float:
        """Return the highest equity marked so far."""
        return float(self._state.acct[L.A_PEAK])

    @property
    def fees(self) -> float:
        """Return every fee paid."""
        return float(self._state.acct[L.A_FEES])

    @property
    def entry_bar(self) -> int | None:
        """Return the bar of the fill that opened the position, or None when flat."""
        return self.entry_of(0)[0]

    @property
    def entry_price(self) -> float | None:
        """Return the position's average entry price, or None when flat."""
        return self.entry_of(0)[1]

    def equity(self, price: float) -> float:
        """Return cash plus the position marked at ``price``."""
        return self.cash + self.position * price

    def view(self, price: float, symbol: int = 0) -> PortfolioView:
        """Return the portfolio as a risk rule sees it at ``price``, for one symbol."""
        entry_bar, entry_price = self.entry_of(symbol)
        return PortfolioView(
            cash=self.cash,
            position=self.position_of(symbol),
            equity=float(self._state.acct[L.A_EQUITY]),
            peak_equity=self.peak_equity,
            price=price,
            entry_bar=entry_bar,
            entry_price=entry_price,
        )
