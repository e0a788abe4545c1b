"""The sizing rung of the ladder: how large a signal's position is, in every mode.

`size_signal` answers for the built-in sizings the compiled core runs (``risk.sizing``
kinds ``fixed_fraction``, ``kelly``, ``volatility_target``, ``risk_per_trade``), as a
fraction of equity before the account's leverage multiplies it:

- ``fixed_fraction``: the fraction.
- ``kelly``: `tradeloom.core.kernels.sizing.kelly_size`; no edge: ``KELLY_NO_EDGE``.
- ``volatility_target``: ``min(target / (sigma * leverage), max_position)`` where
  ``sigma = sqrt(variance * periods_per_year)`` and the variance is the symbol's EWMA
  of squared log returns up to the decision bar's close
  (`tradeloom.core.kernels.sizing.volatility_update`, taken at every bar by
  `observe_volatility`); not warmed up yet: ``NO_RISK_ESTIMATE``.
- ``risk_per_trade``: ``min(risk / (distance * leverage), max_position)`` where
  ``distance`` is the tightest stop an entry at the decision bar's close would rest
  under, as a fraction of that close: ``risk.stop_loss``, a fractional
  ``risk.trailing_stop``, or ``multiple`` ATRs of ``risk.trailing_stop: {atr, multiple}``
  (the ATR up to the decision bar, as the stop itself reads it). So the stop costs
  ``risk`` of the equity (less the fee and slippage the quantity pays for). No stop
  known yet (an ATR stop still warming up and no other): ``NO_RISK_ESTIMATE``.
"""

from __future__ import annotations

import math

from tradeloom.core import codes
from tradeloom.core.kernels.sizing import (
    kelly_size,
    risk_size,
    stop_distance,
    volatility_target_size,
    volatility_update,
)
from tradeloom.core.layout import (
    P_FRACTION,
    P_LEVERAGE,
    P_MAX_POSITION,
    P_PAYOFF,
    P_PERIODS_PER_YEAR,
    P_SIZING_KIND,
    P_STOP_LOSS,
    P_TRAIL_ATR,
    P_TRAIL_MULTIPLE,
    P_TRAILING,
    P_VOL_WINDOW,
    S_ATR,
    S_MARK,
    S_VOL,
    S_VOL_END,
    S_X_DIR,
    S_X_P,
    SIZING_KELLY,
    SIZING_RISK,
    SIZING_VOL_TARGET,
)
from tradeloom.kernels.jit import core_kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = ["observe_volatility", "size_signal"]


@core_kernel
def observe_volatility(sym: np.ndarray, prm: np.ndarray, px: np.ndarray, i: int) -> None:
    """Take input row ``i``'s closes into each symbol's variance (volatility_target only).

    A bar a symbol lacks is skipped: its next return spans the gap.
    """
    if prm[P_SIZING_KIND] != SIZING_VOL_TARGET:
        return
    window = int(prm[P_VOL_WINDOW])
    for s in range(sym.shape[0]):
        close = px[3, i, s]
        if close == close:
            volatility_update(sym[s, S_VOL:S_VOL_END], close, window)


@core_kernel
def size_signal(sym: np.ndarray, prm: np.ndarray, s: int) -> tuple[float, int, float, float, float]:
    """Return symbol ``s``'s signal's size and, when 0, the rejection's code and values.

    Under ``stops: bar_close`` the engine watches the stop-loss at the close: it still
    sets the distance.
    """
    kind = prm[P_SIZING_KIND]
    max_position = prm[P_MAX_POSITION]
    if kind == SIZING_KELLY:
        payoff = prm[P_PAYOFF]
        size, full, p_win = kelly_size(
            sym[s, S_X_P], int(sym[s, S_X_DIR]), prm[P_FRACTION], payoff, max_position
        )
        if size == 0.0:
            return 0.0, codes.KELLY_NO_EDGE, full, p_win, payoff
        return size, 0, 0.0, 0.0, 0.0
    if kind == SIZING_VOL_TARGET:
        window = prm[P_VOL_WINDOW]
        variance = sym[s, S_VOL + 3] if sym[s, S_VOL + 2] >= window else math.nan
        size = volatility_target_size(
            variance, prm[P_PERIODS_PER_YEAR], prm[P_FRACTION], prm[P_LEVERAGE], max_position
        )
        if size != size:
            return 0.0, codes.NO_RISK_ESTIMATE, kind, sym[s, S_VOL + 2], window
        return size, 0, 0.0, 0.0, 0.0
    if kind == SIZING_RISK:
        atr_window = prm[P_TRAIL_ATR]
        atr = math.nan
        if atr_window > 0.0 and sym[s, S_ATR + 2] >= atr_window:
            atr = sym[s, S_ATR + 3]
        distance = stop_distance(
            sym[s, S_MARK], prm[P_STOP_LOSS], prm[P_TRAILING], atr, prm[P_TRAIL_MULTIPLE]
        )
        size = risk_size(distance, prm[P_FRACTION], prm[P_LEVERAGE], max_position)
        if size != size:
            return 0.0, codes.NO_RISK_ESTIMATE, kind, sym[s, S_ATR + 2], atr_window
        return size, 0, 0.0, 0.0, 0.0
    return prm[P_FRACTION], 0, 0.0, 0.0, 0.0
