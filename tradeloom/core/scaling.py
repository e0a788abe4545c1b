"""Scaling in and out of a position: partial take-profits, pyramiding and DCA adds.

Written once for every mode; `tradeloom.core.bar` calls it at two stages of a bar
(``risk.scaling``, documented on the risk reference page and in concepts/positions):

- **Partial take-profits** (`partial_exit`, at the *protect* stage). Each level of
  ``take_profit_levels`` is a stop order resting at the venue at ``gain`` in the
  position's favour from its average entry price, for ``close`` of the trade's largest
  size so far. It triggers from the bar's open, high and low as ``take_profit`` does:
  a bar that opens through it fills at the open, otherwise a bar that reaches it fills
  at the level. A bar that reaches the stop-loss (or the liquidation price) inside it
  gives that exit precedence, the conservative reading; a level the open is already
  through fills first. Levels fill in order, several in one bar if the bar reaches
  them; each is taken once per trade (adds do not reset them). A partial that would
  leave dust (`tradeloom.core.accounting.is_dust`) closes the whole position; one
  that is itself below the venue's minimum is refused ``BELOW_MINIMUM`` and the level
  is spent.
- **Adds** (`wants_add` and `accept_add`, at the *decide* stage). A signal in the
  direction already held, which is otherwise a hold, adds to the position when the
  bar's close has moved ``step`` from the last leg's price: in the position's favour
  for ``pyramid``, against it for ``dca``; at most ``max_adds`` times a trade. The
  last leg's price is the entry's average fill price, then each add's decision
  close. The add goes down the rest of the ladder as an entry (anomaly, equity,
  sizing, risk rules), is sized by the sizing rule for the signal, capped so that the
  position stays within ``max_position`` of equity at the close (no room:
  ``SCALE_IN_CAP``), and is sent as any order at the bar's close (``SCALE_IN``).

The state of the open trade's legs lives in ``sym`` (`tradeloom.core.layout`
``S_SC_*``) and starts afresh with each trade (`sync_trade`).
"""

from __future__ import annotations

import math

from tradeloom.core import codes
from tradeloom.core.accounting import is_dust
from tradeloom.core.layout import (
    A_EQUITY,
    P_LEVERAGE,
    P_SC_CAP,
    P_SC_KIND,
    P_SC_MAX_ADDS,
    P_SC_STEP,
    P_TP_CLOSE,
    P_TP_GAIN,
    P_TP_LEVELS,
    S_ENTRY_BAR,
    S_ENTRY_PRICE,
    S_I_DIR,
    S_I_REASON,
    S_I_TARGET,
    S_MARK,
    S_MAX_QTY,
    S_PA_SEQ,
    S_QTY,
    S_SC_ADDS,
    S_SC_LAST,
    S_SC_TAKEN,
    S_SC_TRADE,
    S_W_ACTIVE,
    S_X_DIR,
    SCALE_DCA,
    SCALE_NONE,
)
from tradeloom.core.rows import emit_decision, emit_rejection
from tradeloom.kernels.jit import core_kernel, core_stage
from tradeloom.runtime.lazy import numpy as np

__all__ = ["accept_add", "add_sent", "partial_exit", "sync_trade", "wants_add"]

_EPS = 1e-9


@core_kernel
def sync_trade(sym: np.ndarray, s: int) -> None:
    """Start the legs' state afresh when symbol ``s`` holds another trade than it recorded."""
    key = sym[s, S_ENTRY_BAR] + 1.0
    if sym[s, S_SC_TRADE] != key:
        sym[s, S_SC_TRADE] = key
        sym[s, S_SC_TAKEN] = 0.0
        sym[s, S_SC_ADDS] = 0.0
        sym[s, S_SC_LAST] = sym[s, S_ENTRY_PRICE]


@core_stage
def partial_exit(
    sym: np.ndarray,
    prm: np.ndarray,
    s: int,
    open_: float,
    high: float,
    low: float,
    adverse: bool,
) -> tuple[int, float, float]:
    """Return the next partial take-profit the bar fills: ``(level, price, quantity)``.

    ``level`` is -1 when none fills. Marks the level taken; the quantity is the whole
    position when the rest would be dust (or the levels so far add up to all of it).

    Args:
        sym, prm: The state and the parameters (symbol ``s`` holds a position that is
            not dust).
        s: The symbol.
        open_, high, low: The bar's prices.
        adverse: The bar reaches the stop-loss or the liquidation price inside it: only
            a level the open is through fills.
    """
    n = int(prm[P_TP_LEVELS])
    if n == 0:
        return -1, math.nan, 0.0
    sync_trade(sym, s)
    quantity = sym[s, S_QTY]
    direction = 1.0 if quantity > 0.0 else -1.0
    entry = sym[s, S_ENTRY_PRICE]
    taken = int(sym[s, S_SC_TAKEN])
    for k in range(n):
        if taken & (1 << k):
            continue
        level = entry * (1.0 + direction * prm[P_TP_GAIN + k])
        price = math.nan
        if (open_ >= level) if direction > 0.0 else (open_ <= level):
            price = open_
        elif not adverse and ((high >= level) if direction > 0.0 else (low <= level)):
            price = level
        if math.isnan(price):
            return -1, math.nan, 0.0
        sym[s, S_SC_TAKEN] = taken | (1 << k)
        held = abs(quantity)
        part = prm[P_TP_CLOSE + k] * sym[s, S_MAX_QTY]
        if part >= held * (1.0 - _EPS) or is_dust(sym, prm, s, held - part):
            part = held
        return k, price, part
    return -1, math.nan, 0.0


@core_kernel
def _room(acct: np.ndarray, sym: np.ndarray, prm: np.ndarray, s: int) -> tuple[float, float]:
    """Return the position's weight at the close and what the cap leaves for an add."""
    equity = acct[A_EQUITY] * prm[P_LEVERAGE]
    weight = abs(sym[s, S_QTY]) * sym[s, S_MARK] / equity if equity > 0.0 else math.inf
    return weight, prm[P_SC_CAP] - weight


@core_stage
def wants_add(
    acct: np.ndarray,
    sym: np.ndarray,
    prm: np.ndarray,
    ev: np.ndarray,
    cur: np.ndarray,
    t: int,
    s: int,
) -> int:
    """Return whether the bar's signal, in the direction held, adds to the position.

    1: an add. 0: a hold (scaling in is off, an order works for the symbol, the trade
    has no adds left, or the close has not moved ``step`` from the last leg). -1: an
    add the cap leaves no room for, journaled ``SCALE_IN_CAP``.
    """
    kind = int(prm[P_SC_KIND])
    quantity = sym[s, S_QTY]
    if (
        kind == SCALE_NONE
        or quantity == 0.0
        or sym[s, S_W_ACTIVE] != 0.0
        or sym[s, S_PA_SEQ] != 0.0
        or is_dust(sym, prm, s, quantity)
    ):
        return 0
    sync_trade(sym, s)
    if sym[s, S_SC_ADDS] >= prm[P_SC_MAX_ADDS]:
        return 0
    # the move from the last leg, in the position's favour (> 0) or against it
    move = (sym[s, S_MARK] / sym[s, S_SC_LAST] - 1.0) * (1.0 if quantity > 0.0 else -1.0)
    step = prm[P_SC_STEP]
    if not (move <= -step * (1.0 - _EPS) if kind == SCALE_DCA else move >= step * (1.0 - _EPS)):
        return 0
    weight, room = _room(acct, sym, prm, s)
    if room <= 0.0:
        emit_rejection(ev, cur, t, s, codes.SCALE_IN_CAP, (weight, prm[P_SC_CAP]), codes.SCALE_IN)
        return -1
    return 1


@core_stage
def accept_add(
    acct: np.ndarray,
    sym: np.ndarray,
    prm: np.ndarray,
    ev: np.ndarray,
    cur: np.ndarray,
    t: int,
    s: int,
    size: float,
) -> None:
    """The add passed every rung: its intent is ``size``, capped by the room left."""
    _, room = _room(acct, sym, prm, s)
    size = min(size, room)
    wanted = sym[s, S_X_DIR]
    sym[s, S_I_REASON] = codes.SCALE_IN
    sym[s, S_I_DIR] = wanted
    sym[s, S_I_TARGET] = wanted * size
    emit_decision(ev, cur, t, s, codes.ACCEPTED, codes.SCALE_IN, wanted * size)


@core_kernel
def add_sent(sym: np.ndarray, s: int) -> None:
    """Count an add that went to the venue; its decision close is the last leg's price."""
    sym[s, S_SC_ADDS] += 1.0
    sym[s, S_SC_LAST] = sym[s, S_MARK]
