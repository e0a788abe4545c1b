"""What Python tells the core between two calls of the step: a venue's reports, a halt, a kill.

A Python venue (live, paper replay, a plugin's) reports fills and cancellations;
`feed_fill` books a fill and records its rows (the simulated venue's fills are
booked by it too), `feed_cancel` records a cancellation. The kill switch and resume
move the trading state between bars (`kill`, `resume`), and the kill cancels what it
cancels (`cancel_for_kill`; a Python venue's cancel without effect is recorded with
`cancel_unconfirmed`); a halt that Python decides (a health rule's) is latched with
`latch_halt`. `record_external` places a row that stands for a Python object (a health
change, a plugin's rejection...) at this point of the run's order.
"""

from __future__ import annotations

from tradeloom.core import codes
from tradeloom.core.accounting import CLOSED, apply_fill
from tradeloom.core.context import FillReport, State
from tradeloom.core.layout import (
    A_CASH,
    A_EXIT_HALT,
    A_FLATTEN,
    A_HALT,
    A_STATE,
    A_STATE_WHY,
    S_PA_REST,
    S_PA_SEQ,
    S_QTY,
    S_W_ACTIVE,
    S_W_BAR,
    S_W_PARENT,
    S_W_REASON,
    S_W_REMAINING,
    S_W_SEQ,
)
from tradeloom.core.risk import kill_holds, kill_spares
from tradeloom.core.rows import (
    emit_cancel,
    emit_external,
    emit_fill,
    emit_halt,
    emit_rejection,
    emit_trade,
)
from tradeloom.kernels.jit import core_kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "cancel_for_kill",
    "cancel_unconfirmed",
    "feed_cancel",
    "feed_fill",
    "kill",
    "kill_cancels",
    "latch_halt",
    "record_external",
    "resume",
]


@core_kernel
def feed_fill(st: State, t: int, s: int, fill: FillReport) -> None:
    """Book ``fill`` of symbol ``s`` at bar ``t`` and record its rows (and its trade's).

    The one booking of a fill: the simulated venue's (`tradeloom.core.orders.execute`)
    and those a Python venue reports between two calls of the step alike. A child of
    the symbol's sliced order also counts against its parent's rest.
    """
    acct, sym, trade = st.acct, st.sym, st.trade
    flags = apply_fill(acct, sym, s, t, fill, trade)
    if sym[s, S_W_PARENT] != 0.0 and sym[s, S_W_SEQ] == fill.seq:
        sym[s, S_PA_REST] -= fill.quantity  # a child of a sliced order
    emit_fill(st.ev, st.cur, t, s, fill, sym[s, S_QTY], acct[A_CASH])
    if flags & CLOSED:
        emit_trade(st.ev, st.cur, t, s, trade)


@core_kernel
def feed_cancel(
    ev: np.ndarray,
    cur: np.ndarray,
    t: int,
    s: int,
    seq: int,
    remaining: float,
    reason: int,
    decision_bar: int,
) -> None:
    """Record that a Python venue stopped working order ``seq`` (``remaining`` unfilled)."""
    emit_cancel(ev, cur, t, s, seq, remaining, reason, decision_bar)


@core_kernel
def record_external(ev: np.ndarray, cur: np.ndarray, t: int, s: int, ref: int) -> None:
    """Record a row standing for Python's object number ``ref``, at this point of the run."""
    emit_external(ev, cur, t, s, ref)


@core_kernel
def latch_halt(
    acct: np.ndarray, ev: np.ndarray, cur: np.ndarray, t: int, code: int, ref: int
) -> bool:
    """Halt trading for ``code`` (its halt is Python's object ``ref``); close every position.

    Returns:
        False, changing nothing, when trading is already halted.
    """
    if acct[A_HALT] != 0.0:
        return False
    acct[A_HALT] = code
    acct[A_EXIT_HALT] = 1.0
    emit_halt(ev, cur, t, 0, (float(ref),))
    return True


@core_kernel
def kill(acct: np.ndarray) -> int:
    """Move to HALTED for the kill switch (latched until `resume`); return the previous state.

    The halt latch takes ``KILL_SWITCH`` unless another halt holds it already. The
    caller journals the change and cancels what is working.
    """
    previous = int(acct[A_STATE])
    acct[A_STATE] = codes.HALTED_STATE
    acct[A_STATE_WHY] = codes.KILL_SWITCH
    if acct[A_HALT] == 0.0:
        acct[A_HALT] = codes.KILL_SWITCH
    return previous


@core_kernel
def kill_cancels(sym: np.ndarray, s: int) -> bool:
    """Return whether the kill switch cancels what symbol ``s`` has working at the core's
    venue: an order that is not its own flatten's exit (`kill_spares`)."""
    return sym[s, S_W_ACTIVE] != 0.0 and not kill_spares(int(sym[s, S_W_REASON]))


@core_kernel
def cancel_for_kill(
    ev: np.ndarray, cur: np.ndarray, sym: np.ndarray, t: int, reason: int, at_core: bool
) -> None:
    """Carry out the kill switch's cancel between bars (room for a row per symbol).

    Every sliced order ends: its children to come are never sent, the kill's resume
    included. With ``at_core`` (the core's own venue works the orders), each symbol's
    working order is cancelled for ``reason`` unless it is the kill's flatten's exit
    (`kill_cancels`); a Python venue's orders are the caller's to cancel, by the same
    rule (`kill_spares`).
    """
    for s in range(sym.shape[0]):
        sym[s, S_PA_SEQ] = 0.0
        if at_core and kill_cancels(sym, s):
            remaining, decided = sym[s, S_W_REMAINING], sym[s, S_W_BAR]
            emit_cancel(ev, cur, t, s, sym[s, S_W_SEQ], remaining, reason, decided)
            sym[s, S_W_ACTIVE] = 0.0


@core_kernel
def cancel_unconfirmed(
    ev: np.ndarray, cur: np.ndarray, t: int, s: int, seq: float, reason: int
) -> None:
    """Record that a Python venue works on order ``seq`` of symbol ``s`` after the kill
    switch's cancel (``reason``) took no effect at bar ``t`` (room for a row).

    ``CANCEL_UNCONFIRMED`` names the order (-1: one the engine has no number of), as a
    held exit's does (`tradeloom.core.bar`); its purpose is ``reason``. The kill cancels
    it again at each next bar while it holds (`tradeloom.engine.driver.Engine.run`).
    """
    emit_rejection(ev, cur, t, s, codes.CANCEL_UNCONFIRMED, (seq,), reason)


@core_kernel
def resume(acct: np.ndarray) -> bool:
    """Lift the kill switch: back to ACTIVE, or to HALTED when another halt is latched.

    A drawdown, health or rule halt latched before the kill outlives it: the state
    stays HALTED, for that halt. The kill's flatten ends with it: one asked and not
    carried out yet (or held, to go again at the next bar) is not, and one carried out
    no longer unwinds (`tradeloom.core.risk.halt_unwinds`); its exits still working
    work on. A halt that outlives the kill closes every position at the next bar in its
    stead (``EXIT_HALT``), its held exits' cancel first.

    Returns:
        False, changing nothing, when the kill switch does not hold the run.
    """
    if not kill_holds(acct):
        return False
    acct[A_FLATTEN] = 0.0  # its flatten no longer unwinds (`halt_unwinds`)
    if acct[A_HALT] == codes.KILL_SWITCH:
        acct[A_HALT] = 0.0
    if acct[A_EXIT_HALT] == 2.0:  # nor is it carried out (`tradeloom.core.bar._halts`):
        # the halt that outlives the kill closes every position at the next bar instead
        acct[A_EXIT_HALT] = 0.0 if acct[A_HALT] == 0.0 else 1.0
    if acct[A_HALT] != 0.0:
        acct[A_STATE_WHY] = acct[A_HALT]
    else:
        acct[A_STATE] = codes.ACTIVE
        acct[A_STATE_WHY] = codes.RESUME
    return True
