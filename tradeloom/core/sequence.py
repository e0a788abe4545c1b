"""The order in which a bar's working orders fill, across every symbol of an account.

At a bar's open (``fill: next_open``, and limit orders working during the bar) and at
its close (``fill: close``), the orders due fill one after the other against the one
cash of the account. The order is written here once:

1. **exits and reductions first**: an order whose side is against the position held
   (a sell of a long, a buy of a short, a reversal) fills before any entry or
   increase, so an entry decided at the same bar as an exit is filled with the cash
   the exit freed (its quantity was sized at the decision on the equity, which counts
   that position: `tradeloom.core.portfolio`'s "a position this bar exits counts as
   gone");
2. **then entries and increases**;
3. within each, by the order's signed value at the fill price (side x quantity x
   price), lowest first: the largest sale first, the smallest purchase first; equal
   values keep the symbols' order.

The orders a bar's close sends go out in the same two groups (`sends_first`), so that
a live exchange, which fills a market order when it receives it, sells before it buys
too.

On a long-only account this is vectorbt's ``call_seq="auto"`` (sells before buys, each
by its value): `tests/core/test_fill_sequence.py` checks the fills against
``Portfolio.from_orders(..., cash_sharing=True, call_seq="auto")``. A purchase the cash
left cannot cover is cut (``INSUFFICIENT_CASH``, or ``BELOW_MINIMUM`` if what it could
buy is below the venue's minimum), journaled as the order's cancellation and counted
in ``metrics.json`` (``cut_orders``).
"""

from __future__ import annotations

from tradeloom.core import codes
from tradeloom.core.layout import (
    S_I_DIR,
    S_I_REASON,
    S_I_TARGET,
    S_MARK,
    S_PA_SEQ,
    S_PA_SIDE,
    S_QTY,
    S_W_REMAINING,
    S_W_SIDE,
)
from tradeloom.kernels.jit import core_kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = ["fill_before", "sends_first", "sequence_fills"]


@core_kernel
def _key(sym: np.ndarray, s: int, price: float) -> tuple[int, float]:
    side = sym[s, S_W_SIDE]
    group = 0 if side * sym[s, S_QTY] < 0.0 else 1
    return group, side * sym[s, S_W_REMAINING] * price


@core_kernel
def fill_before(sym: np.ndarray, a: int, price_a: float, b: int, price_b: float) -> bool:
    """Return whether symbol ``a``'s working order fills before symbol ``b``'s (``a < b``
    on a tie).

    Args:
        sym: The symbols' state (`tradeloom.core.layout`).
        a, b: Two symbols with a working order.
        price_a, price_b: The price each would fill at (before slippage).
    """
    group_a, value_a = _key(sym, a, price_a)
    group_b, value_b = _key(sym, b, price_b)
    if group_a != group_b:
        return group_a < group_b
    if value_a != value_b:
        return value_a < value_b
    return a < b


@core_kernel
def sequence_fills(
    sym: np.ndarray, px: np.ndarray, row: int, i: int, order: np.ndarray, n: int
) -> None:
    """Sort ``order[:n]`` (symbols whose working order fills now) into the fill order.

    An insertion sort in place (no allocation; a bar has few such orders), on the keys
    of the state before any of them fills.

    Args:
        sym: The symbols' state.
        px: The bars (`tradeloom.core.state.BarInputs.px`).
        row: The price row the orders fill at (0: the open, 3: the close).
        i: The input row of the bar.
        order: The symbols, as floats; ``order[:n]`` is sorted.
        n: How many.
    """
    for k in range(1, n):
        s = int(order[k])
        j = k - 1
        while j >= 0:
            other = int(order[j])
            if not fill_before(sym, s, px[row, i, s], other, px[row, i, other]):
                break
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = s


@core_kernel
def sends_first(sym: np.ndarray, s: int, buying_power: float) -> bool:
    """Return whether the order symbol ``s`` sends at this bar's close is an exit or a
    reduction (an exit, a reversal, a sliced exit's next child, a rebalance that lowers
    the side held), sent before the others.

    ``buying_power`` is the quantity-times-price a target weight of 1 buys after costs
    (the equity times the leverage over the slippage and fee factors, as the send sizes
    it): a rebalance whose target is worth less than the position held reduces it.
    """
    quantity = sym[s, S_QTY]
    reason = sym[s, S_I_REASON]
    if reason != 0.0:
        # (a refused reversal that only exits has no direction left)
        direction = sym[s, S_I_DIR]
        if sym[s, S_I_TARGET] == 0.0 or direction == 0.0 or direction * quantity < 0.0:
            return True
        if reason == codes.REBALANCE:
            return bool(abs(sym[s, S_I_TARGET]) * buying_power < abs(quantity) * sym[s, S_MARK])
        return False
    return bool(sym[s, S_PA_SEQ] != 0.0 and sym[s, S_PA_SIDE] * quantity < 0.0)
