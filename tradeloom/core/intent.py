"""The bar's intent for a symbol: what a signal that passed, or failed, leaves to send.

The ladder (`tradeloom.core.bar`) and the portfolio checks (`tradeloom.core.portfolio`)
end a signal the same two ways: `accept` makes its entry or reversal the intent;
`fall_back` keeps the bar's exit, or exits the side the signal turned from. A refusal
journals what the signal was for (`signal_purpose`).
"""

from __future__ import annotations

from tradeloom.core import codes
from tradeloom.core.layout import (
    S_I_DIR,
    S_I_REASON,
    S_I_TARGET,
    S_X_DIR,
    S_X_HELD,
)
from tradeloom.core.rows import emit_decision
from tradeloom.kernels.jit import core_kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = ["accept", "fall_back", "signal_purpose"]


@core_kernel
def fall_back(sym: np.ndarray, s: int) -> None:
    """A refused signal: keep the bar's exit intent, or exit what the signal turns from.

    A refused add (a signal in the direction held, `tradeloom.core.scaling`) leaves the
    position as it is.
    """
    held = sym[s, S_X_HELD]
    if sym[s, S_I_REASON] == 0.0 and held != 0.0 and held != sym[s, S_X_DIR]:
        sym[s, S_I_REASON] = codes.EXIT_SIGNAL
    sym[s, S_I_DIR] = 0.0
    sym[s, S_I_TARGET] = 0.0


@core_kernel
def signal_purpose(sym: np.ndarray, s: int) -> int:
    """Return the order reason the bar's signal asks for: ``ENTRY`` from flat, ``REVERSE``
    against the side held, ``SCALE_IN`` (an add) in it.

    What a refusal of the signal journals as its purpose (`accept`'s reasons, and
    `tradeloom.core.scaling.accept_add`'s).
    """
    held = sym[s, S_X_HELD]
    if held == 0.0:
        return codes.ENTRY
    return codes.SCALE_IN if held == sym[s, S_X_DIR] else codes.REVERSE


@core_kernel
def accept(sym: np.ndarray, ev: np.ndarray, cur: np.ndarray, t: int, s: int, size: float) -> None:
    """The signal passed every rung: its intent replaces the bar's exit."""
    wanted = sym[s, S_X_DIR]
    reason = codes.REVERSE if sym[s, S_X_HELD] != 0.0 else codes.ENTRY
    sym[s, S_I_REASON] = reason
    sym[s, S_I_DIR] = wanted
    sym[s, S_I_TARGET] = wanted * size
    emit_decision(ev, cur, t, s, codes.ACCEPTED, reason, wanted * size)
