"""The closed trades' counts and sums the metrics read, in one compiled call.

``metrics.json``'s ``win_rate``, ``avg_trade_return`` and ``profit_factor`` read the
winning trades' count, the gross profit and loss, and the mean trade return. As numpy
calls (masks, compressions, ``sum``, ``np.mean``) that was a few microseconds each,
which a sweep paid per variant. `trade_sums` counts and adds them in one call, each sum
numpy's pairwise sum of the same items in the same order
(`tradeloom.reporting.pairwise`), so every figure is numpy's bit for bit; its Python form
is the numpy expressions (tests/reporting/test_curve_moments.py compares both).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import kernel, python_form
from tradeloom.reporting.pairwise import pairwise_sum

__all__ = ["TradeSums", "trade_sums", "trade_sums_into"]

TradeSums = tuple[int, float, int, float, float]
"""`trade_sums`' figures: the winning trades' count and P&L sum, the losing trades'
count and P&L sum, the sum of every trade's return."""


@kernel
def trade_sums(pnl: npt.NDArray[np.float64], trade_returns: npt.NDArray[np.float64]) -> TradeSums:
    """Return the counts and sums of the trades' ``pnl`` and ``trade_returns`` (`TradeSums`).

    Args:
        pnl: Each trade's P&L (contiguous float64).
        trade_returns: Each trade's return (contiguous float64).

    The figures are numpy's: ``len(pnl[pnl > 0])``, ``pnl[pnl > 0].sum()``, the same
    two of ``pnl < 0``, and ``trade_returns.sum()``.
    """
    return trade_sums_into(pnl, trade_returns, np.empty(len(pnl)))


@kernel
def trade_sums_into(
    pnl: npt.NDArray[np.float64],
    trade_returns: npt.NDArray[np.float64],
    kept: npt.NDArray[np.float64],
) -> TradeSums:
    """`trade_sums` in a buffer the caller keeps (``kept``: at least ``len(pnl)``
    floats; the winners, then the losers, in order)."""
    wins = 0
    for i in range(len(pnl)):
        if pnl[i] > 0:
            kept[wins] = pnl[i]
            wins += 1
    profit = pairwise_sum(kept, 0, wins)
    losses = 0
    for i in range(len(pnl)):
        if pnl[i] < 0:
            kept[losses] = pnl[i]
            losses += 1
    loss = pairwise_sum(kept, 0, losses)
    return wins, profit, losses, loss, pairwise_sum(trade_returns, 0, len(trade_returns))


@python_form(trade_sums)
def _trade_sums_as_python(
    pnl: npt.NDArray[np.float64], trade_returns: npt.NDArray[np.float64]
) -> TradeSums:
    """`trade_sums` as Python (`tradeloom.kernels.jit.python_form`): numpy's own."""
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    return (
        len(wins),
        float(wins.sum()),
        len(losses),
        float(losses.sum()),
        float(trade_returns.sum()),
    )
