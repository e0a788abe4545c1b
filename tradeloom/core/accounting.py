"""Accounting: cash, positions keyed by symbol, fees and the round-trip trades.

Quantities are signed (+ long, - short). A fill moves the account's cash by its
notional and its fee; a position that returns to zero (or flips) closes a trade,
whose profit includes every fee paid while it was open (the fee of a fill that
flips the position is split between the trade it closes and the one it opens).
Cash is shared by every symbol; each symbol has its own position and open trade
(a row of ``sym``, see `tradeloom.core.layout`).

A position worth less than the venue's minimum order (`minimum`, `flat_within`) is
dust: no order could close it, so the core counts it as flat. The order that takes
it in (the symbol's next order in its direction, sent while it is dust) starts a
new trade at its first fill, as an entry from flat would: the trade's entry bar and
price are that fill's, and the dust's profit or loss up to that price is realized
into it, so that the trades still add up to the account's profit.
"""

from __future__ import annotations

import math

from tradeloom.core.context import FillReport
from tradeloom.core.layout import (
    A_CASH,
    A_FEES,
    A_PEAK,
    P_MIN_NOTIONAL,
    S_BEST,
    S_DUST,
    S_DUST_MERGE,
    S_DUST_NOTED,
    S_ENTRY_BAR,
    S_ENTRY_PRICE,
    S_EXIT_BAR,
    S_EXIT_QTY,
    S_EXIT_VALUE,
    S_FUNDING,
    S_MARK,
    S_MAX_QTY,
    S_MIN_COST,
    S_QTY,
    S_REALIZED,
    S_TRADE_FEES,
    S_TRAIL,
)
from tradeloom.kernels.jit import core_kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "CLOSED",
    "OPENED",
    "TRADE_FIELDS",
    "apply_fill",
    "flat_within",
    "is_dust",
    "mark_equity",
    "minimum",
]

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
"""Layout of the array `apply_fill` writes a closed trade into (a perpetual's ``pnl``
includes the funding booked while the trade was open, `tradeloom.core.funding`)."""

CLOSED = 1
"""Flag of `apply_fill`: the fill closed a trade."""
OPENED = 2
"""Flag of `apply_fill`: the fill started a trade (from flat, by flipping, or over dust)."""

_EPS = 1e-12


@core_kernel
def mark_equity(acct: np.ndarray, sym: np.ndarray, px: np.ndarray, t: int) -> float:
    """Mark every position at input row ``t``'s close; return the equity and raise the peak.

    ``px`` is `tradeloom.core.state.BarInputs.px`; a symbol whose close is NaN (no bar)
    keeps its last mark.
    """
    equity: float = acct[A_CASH]
    for s in range(sym.shape[0]):
        c = px[3, t, s]
        if c == c:
            sym[s, S_MARK] = c
        quantity = sym[s, S_QTY]
        if quantity != 0.0:
            equity += quantity * sym[s, S_MARK]
    if equity > acct[A_PEAK]:
        acct[A_PEAK] = equity
    return equity


@core_kernel
def _grow(
    sym: np.ndarray,
    s: int,
    bar: int,
    price: float,
    before: float,
    signed: float,
    fee: float,
    merge: bool,
) -> None:
    if before == 0.0 or merge:  # a new trade: its best price and trailing stop start anew
        sym[s, S_BEST] = math.nan
        sym[s, S_TRAIL] = math.nan
    if before == 0.0:
        sym[s, S_ENTRY_BAR] = bar
        sym[s, S_ENTRY_PRICE] = price
        sym[s, S_MAX_QTY] = abs(signed)
        sym[s, S_EXIT_VALUE] = 0.0
        sym[s, S_EXIT_QTY] = 0.0
        sym[s, S_TRADE_FEES] = 0.0
        sym[s, S_REALIZED] = 0.0
        sym[s, S_FUNDING] = 0.0
    elif merge:  # dust taken in: the trade starts here, with the dust's P&L to this price
        sym[s, S_REALIZED] += (price - sym[s, S_ENTRY_PRICE]) * before
        sym[s, S_ENTRY_BAR] = bar
        sym[s, S_ENTRY_PRICE] = price
        sym[s, S_MAX_QTY] = abs(before) + abs(signed)
        sym[s, S_EXIT_VALUE] = 0.0
        sym[s, S_EXIT_QTY] = 0.0
    else:
        total = abs(before) + abs(signed)
        sym[s, S_ENTRY_PRICE] = (sym[s, S_ENTRY_PRICE] * abs(before) + price * abs(signed)) / total
        sym[s, S_MAX_QTY] = max(sym[s, S_MAX_QTY], total)
    sym[s, S_TRADE_FEES] += fee


@core_kernel
def _reduce(
    sym: np.ndarray,
    s: int,
    bar: int,
    price: float,
    before: float,
    closing: float,
    fee: float,
    trade: np.ndarray,
) -> bool:
    direction = 1.0 if before > 0 else -1.0
    sym[s, S_REALIZED] += closing * (price - sym[s, S_ENTRY_PRICE]) * direction
    sym[s, S_EXIT_VALUE] += closing * price
    sym[s, S_EXIT_QTY] += closing
    sym[s, S_TRADE_FEES] += fee
    if closing < abs(before) * (1.0 - _EPS):
        return False
    trade[0] = direction
    trade[1] = sym[s, S_ENTRY_BAR]
    trade[2] = bar
    trade[3] = sym[s, S_MAX_QTY]
    trade[4] = sym[s, S_ENTRY_PRICE]
    trade[5] = sym[s, S_EXIT_VALUE] / sym[s, S_EXIT_QTY]
    trade[6] = sym[s, S_TRADE_FEES]
    trade[7] = sym[s, S_REALIZED] - sym[s, S_TRADE_FEES]
    if sym[s, S_FUNDING] != 0.0:  # a perpetual's funding while the trade was open
        trade[7] += sym[s, S_FUNDING]
    sym[s, S_EXIT_BAR] = bar
    sym[s, S_ENTRY_BAR] = -1.0
    sym[s, S_ENTRY_PRICE] = math.nan
    return True


@core_kernel
def apply_fill(
    acct: np.ndarray, sym: np.ndarray, s: int, bar: int, fill: FillReport, trade: np.ndarray
) -> int:
    """Apply a fill: the account's cash and fees, the symbol's position and trade.

    A fill that grows a position the order was sent over as dust (``S_DUST_MERGE``)
    starts the trade anew (module docstring).

    Args:
        acct: The account, updated in place.
        sym: The symbols' rows, updated in place (row ``s``).
        s: The fill's symbol.
        bar: The fill's bar.
        fill: The fill (its side, quantity, price and fee are booked here).
        trade: Receives a closed trade (`TRADE_FIELDS`) when the result has `CLOSED`.

    Returns:
        Flags: `CLOSED` if a trade closed, `OPENED` if one started.
    """
    price, fee = fill.price, fill.fee
    signed = fill.side * fill.quantity
    acct[A_CASH] -= signed * price + fee
    acct[A_FEES] += fee
    before = sym[s, S_QTY]
    after = before + signed
    if abs(after) <= _EPS * max(abs(before), abs(signed)):
        after = 0.0  # a close that leaves rounding dust; relative, so tiny positions count
    flags = 0
    merge = sym[s, S_DUST_MERGE] != 0.0
    sym[s, S_DUST_MERGE] = 0.0
    sym[s, S_DUST_NOTED] = 0.0
    if before == 0.0 or (before > 0) == (signed > 0):
        _grow(sym, s, bar, price, before, signed, fee, merge)
        if before == 0.0 or merge:
            flags |= OPENED
    else:
        closing = min(abs(signed), abs(before))
        share = closing / abs(signed)
        if _reduce(sym, s, bar, price, before, closing, fee * share, trade):
            flags |= CLOSED
        if after != 0.0 and (after > 0) != (before > 0):
            _grow(sym, s, bar, price, 0.0, after, fee * (1.0 - share), False)
            flags |= OPENED
    sym[s, S_QTY] = after
    return flags


@core_kernel
def minimum(sym: np.ndarray, prm: np.ndarray, s: int) -> float:
    """Return the smallest order notional symbol ``s``'s venue takes (quote).

    The strategy's ``execution.min_notional``, or its market's minimum order cost
    (a live market's ``limits.cost.min``), whichever is more.
    """
    return float(max(prm[P_MIN_NOTIONAL], sym[s, S_MIN_COST]))


@core_kernel
def is_dust(sym: np.ndarray, prm: np.ndarray, s: int, quantity: float) -> bool:
    """Return whether a position of ``quantity`` of symbol ``s`` counts as flat.

    No order could be sent for it: the rule of an order below the minimum
    (`tradeloom.core.dust.below_minimum`) applied to the whole position, within its
    market's lot or worth less than the venue's minimum at the mark (a position worth
    exactly the minimum is a position). Before the symbol has a mark, only the lot.
    """
    held = abs(quantity)
    if held <= sym[s, S_DUST]:
        return True
    mark = sym[s, S_MARK]
    return bool(mark > 0.0 and held * mark < minimum(sym, prm, s))


@core_kernel
def flat_within(sym: np.ndarray, prm: np.ndarray, s: int) -> float:
    """Return how near zero symbol ``s``'s position counts as flat.

    Its market's lot (a live venue's; 0 on the simulated venue), or what the venue's
    minimum order notional buys at the mark, whichever is more: the band a restart's
    reconciliation allows around the journal's position. Whether a position is dust is
    `is_dust`.
    """
    dust: float = sym[s, S_DUST]
    mark: float = sym[s, S_MARK]
    if mark > 0.0:
        least = minimum(sym, prm, s) / mark
        if least > dust:
            return least
    return dust
