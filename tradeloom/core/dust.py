"""Dust: orders below the venue's minimum, and positions no order could close.

One rule, in every mode and driver (`tradeloom.core.bar` applies it wherever an
order is decided; a live run's venue brings its market's limits into the state):

- **The minimum.** An order whose quantity is within its market's lot (a live
  market's amount step or ``limits.amount.min``; none on the simulated venue), or
  whose notional at the mark is below the venue's minimum order notional
  (`tradeloom.core.accounting.minimum`: ``execution.min_notional``, or a live
  market's ``limits.cost.min``), is refused before it is an order: a
  ``BELOW_MINIMUM`` rejection row naming the order's reason, its quantity and
  notional, the minimum and the lot. It is never sent. So is an order whose target
  is below the minimum (a reversal to a small short sends more than its target):
  the row names the target, and a refused reversal still exits what is held. (A
  fill the cash or a bar's volume cuts below the minimum is refused by the venue's
  fill rule, `tradeloom.core.kernels.fills.fill_order`.)
- **A rebalance's target below the minimum is a target of zero.** An allocator's
  weight at its lower bound comes back as ~1e-12, not 0; a position of that size
  is one no order could open or close. So a rebalance whose target position (the
  weight's quantity, as the send sizes it) is below the minimum closes the position
  instead (`zero_target`), in every mode: its order is the whole position, sent with
  the bar's exits and reductions. A rebalance whose target is zero over a flat or
  dust position has reached it: nothing is sent and nothing is journaled
  (`at_zero_target`). A rebalance whose target is tradable but whose change is below
  the minimum is refused ``BELOW_MINIMUM`` as any order: the position stays within
  one minimum order of its target, the nearest amount the venue can trade to.
- **Dust.** A position no order could be sent for (`tradeloom.core.accounting.is_dust`:
  within its lot, or worth less than the minimum at the mark) is dust: flat for
  the signal, the sizing, the exits, the halts and the portfolio limits. An exit it
  meets cannot be sent (its order would be the whole position, below the
  minimum): a long-only exit signal is journaled as ``BELOW_MINIMUM`` with reason
  ``EXIT_SIGNAL`` each time (every signal is journaled with its outcome); an exit
  the engine decides itself (a halt's, the holding limit's, a stop-loss or
  take-profit) once per dust episode and exit reason, an episode lasting until the
  symbol's next fill (`note_dust`).
- **What becomes of it.** It stays on the account (the venue holds it; the equity
  counts it at its mark) until the symbol's next order takes it in. An order in its
  direction is sized as from flat (the target is the same fraction of the same
  equity) and buys the target less the dust, and its first fill starts a new trade
  (`tradeloom.core.accounting.apply_fill`): the holding limit and the stops count
  from that fill, as they would from flat. An order the other way closes the dust
  through zero with the rest of its quantity.
"""

from __future__ import annotations

from tradeloom.core import codes
from tradeloom.core.accounting import is_dust, minimum
from tradeloom.core.layout import (
    S_DUST,
    S_DUST_NOTED,
    S_I_DIR,
    S_I_TARGET,
    S_MARK,
    S_QTY,
    S_W_DIR,
)
from tradeloom.core.rows import emit_rejection
from tradeloom.kernels.jit import core_kernel, core_loop
from tradeloom.runtime.lazy import numpy as np

__all__ = ["at_zero_target", "below_minimum", "note_dust", "refuse_below_minimum", "zero_target"]


@core_kernel
def below_minimum(sym: np.ndarray, prm: np.ndarray, s: int, quantity: float) -> bool:
    """Return whether an order of ``quantity`` (> 0) of symbol ``s`` is below the minimum.

    Within the market's lot, or worth less than the minimum at the mark: the rule of
    a dust position (`tradeloom.core.accounting.is_dust`), applied to the order.
    """
    return is_dust(sym, prm, s, quantity)


@core_kernel
def zero_target(sym: np.ndarray, s: int) -> float:
    """Make symbol ``s``'s rebalance a target of zero; return its order's signed quantity
    (the whole position, the other way).

    The rule for a rebalance whose target position is below the venue's minimum (see the
    module): the intent becomes an exit, its order closes what is held.
    """
    sym[s, S_I_TARGET] = 0.0
    sym[s, S_I_DIR] = 0.0
    sym[s, S_W_DIR] = 0.0
    return -sym[s, S_QTY]  # type: ignore[no-any-return]


@core_kernel
def at_zero_target(sym: np.ndarray, s: int, reason: int, delta: float) -> bool:
    """Return whether symbol ``s``'s order below the minimum is a rebalance to zero over
    a flat or dust position: its target is reached, nothing is refused."""
    return reason == codes.REBALANCE and sym[s, S_QTY] + delta == 0.0


@core_loop
def refuse_below_minimum(
    sym: np.ndarray,
    prm: np.ndarray,
    ev: np.ndarray,
    cur: np.ndarray,
    t: int,
    s: int,
    quantity: float,
    reason: int,
) -> None:
    """Journal that an order of ``quantity`` for ``reason`` is refused: below the minimum.

    The row's values: the quantity, its notional at the mark, the minimum, the lot,
    and the order's reason (`tradeloom.core.codes` ``BELOW_MINIMUM``).
    """
    notional = quantity * sym[s, S_MARK]
    values = (quantity, notional, minimum(sym, prm, s), sym[s, S_DUST], float(reason))
    emit_rejection(ev, cur, t, s, codes.BELOW_MINIMUM, values, reason)


@core_loop
def note_dust(
    sym: np.ndarray,
    prm: np.ndarray,
    ev: np.ndarray,
    cur: np.ndarray,
    t: int,
    s: int,
    reason: int,
) -> None:
    """Journal that the engine's exit ``reason`` meets symbol ``s``'s dust, once an episode.

    Nothing is journaled when the same exit met the same dust before, since the
    symbol's last fill (a holding limit or a stop holds bar after bar): the slot keeps
    one bit per exit reason journaled.
    """
    bit = 1 << reason
    noted = int(sym[s, S_DUST_NOTED])
    if noted & bit:
        return
    sym[s, S_DUST_NOTED] = noted | bit
    refuse_below_minimum(sym, prm, ev, cur, t, s, abs(sym[s, S_QTY]), reason)
