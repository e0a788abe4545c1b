"""What Python tells the core between two calls of the step: a venue's reports, a halt, a kill.

A Python venue (live, paper replay, a plugin's) reports fills and cancellations;
`feed_fill` books a fill and records its rows (the simulated venue's fills are
booked by it too), `feed_cancel` records a cancellation. The kill switch and resume
move the trading state between bars (`kill`, `resume`); a halt that Python decides
(a health rule's) is latched with `latch_halt`. `record_external` places a row that
stands for a Python object (a health change, a plugin's rejection...) at this point
of the run's order.
"""

from __future__ import annotations

import numpy as np

from tradeloom.core import codes
from tradeloom.core.accounting import CLOSED, apply_fill
from tradeloom.core.context import FillReport, State
from tradeloom.core.layout import (
    A_CASH,
    A_EXIT_HALT,
    A_HALT,
    A_STATE,
    A_STATE_WHY,
    S_PA_REST,
    S_QTY,
    S_W_PARENT,
    S_W_SEQ,
)
from tradeloom.core.risk import kill_holds
from tradeloom.core.rows import emit_cancel, emit_external, emit_fill, emit_halt, emit_trade
from tradeloom.jit import core_kernel

__all__ = ["feed_cancel", "feed_fill", "kill", "latch_halt", "record_external", "resume"]


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
def resume(acct: np.ndarray) -> bool:
    """Lift the kill switch: back to ACTIVE, or to HALTED when another halt is latched.

    A drawdown, health or rule halt latched before the kill outlives it: the state
    stays HALTED, for that halt.

    Returns:
        False, changing nothing, when the kill switch does not hold the run.
    """
    if not kill_holds(acct):
        return False
    if acct[A_HALT] == codes.KILL_SWITCH:
        acct[A_HALT] = 0.0
    if acct[A_HALT] != 0.0:
        acct[A_STATE_WHY] = acct[A_HALT]
    else:
        acct[A_STATE] = codes.ACTIVE
        acct[A_STATE_WHY] = codes.RESUME
    return True
