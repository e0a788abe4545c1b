"""A perpetual future's funding: booked at the bar whose interval holds the funding time.

A perpetual swap (``execution.market: swap``) exchanges funding between longs and
shorts at each funding time (every 8 hours on most exchanges). The core books it at
the start of the bar whose interval ``[open, open + timeframe)`` holds the funding
time, before anything else of the bar (before the fills due at the open), on the
position carried into the bar, at the bar's open:

    amount = -position x open x rate      (cash += amount)

so a long pays and a short receives when the rate is positive. The open is the first
price at or after the funding time (a bar that starts at the funding time opens at
it); the position is the one held at that moment: an order decided at the previous
close reaches the exchange after it. The inputs carry, per bar and symbol, the sum of
the rates of the funding times the bar holds (`tradeloom.engine.funding`), 0 where
none; NaN is read as 0 (no rate known: nothing booked).

Each booking is an ``EV_FUNDING`` row (`tradeloom.core.layout`); its position and the
cash after it sit where a fill's do, so that the equity curve
(`tradeloom.core.curves.fill_marks`) sees the cash move. The open trade adds it up
(``S_FUNDING``); a closed trade's profit includes it (`tradeloom.core.accounting`).
"""

from __future__ import annotations

from tradeloom.core.layout import A_CASH, FUNDING_ROW, S_FUNDING, S_QTY
from tradeloom.core.rows import Funding, emit_funding
from tradeloom.kernels.jit import core_stage
from tradeloom.runtime.lazy import numpy as np

__all__ = ["FUNDING_ROW", "book_funding"]


@core_stage
def book_funding(
    acct: np.ndarray,
    sym: np.ndarray,
    ev: np.ndarray,
    cur: np.ndarray,
    t: int,
    s: int,
    rate: float,
    price: float,
) -> None:
    """Book symbol ``s``'s funding at bar ``t``: ``rate`` on its position at ``price``.

    Nothing is booked (nor journaled) for a flat position, a rate of 0 or NaN, or a
    symbol without a bar (``price`` NaN).
    """
    quantity = sym[s, S_QTY]
    if quantity == 0.0 or rate == 0.0 or rate != rate or price != price:
        return
    amount = -quantity * price * rate
    acct[A_CASH] += amount
    sym[s, S_FUNDING] += amount
    emit_funding(ev, cur, t, s, Funding(rate, price, quantity, amount), quantity, acct[A_CASH])
