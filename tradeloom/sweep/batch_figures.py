"""What a batched variant's metrics read of its curve and trades, in one compiled call.

`tradeloom.sweep.batch.run_batch` measures each variant with
`tradeloom.reporting.metrics.values_performance`'s figures and
`tradeloom.reporting.statistics.drawdown_duration`'s longest drawdown. Called per
variant those were three compiled calls (the curve's moments, the trades' sums, the
longest drawdown), each allocating its scratch (the longest drawdown five arrays of
half the bars), and Python around them. `variant_figures` makes the same calls, in
buffers the batch keeps (`FigureBuffers`), from the batch's own trade rows, and writes
the variant's bar returns into its row of the batch's result: the very kernels
(`curve_moments_into`, `trade_sums_into`, `longest_drawdown_into`) on the same values,
so every figure is the same float (tests/sweep/test_batch_figures.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradeloom.core.records import TRADE
from tradeloom.kernels.jit import kernel
from tradeloom.reporting.curve_moments import Moments, curve_moments_into
from tradeloom.reporting.drawdowns import longest_drawdown_into, stretch_room
from tradeloom.reporting.trade_sums import TradeSums, trade_sums_into

__all__ = ["FigureBuffers", "Figures", "variant_figures"]

Figures = tuple[Moments, TradeSums, int, int]
"""`variant_figures`' answer: the curve's moments (`curve_moments`), the trades' sums
(`trade_sums`), the longest drawdown in bars and in nanoseconds (`longest_drawdown`)."""

_PNL = 1 + TRADE.place("pnl")
_QUANTITY = 1 + TRADE.place("quantity")
_ENTRY_PRICE = 1 + TRADE.place("entry_price")


class FigureBuffers:
    """The scratch `variant_figures` works in, one batch's (its bars and days).

    Args:
        bars: The batch's bars.
        days: Its days (the daily returns' count).

    Attributes:
        returns: ``bars`` floats: a variant's bar returns, where the batch's result is
            not float64.
        daily: A float per day: the daily returns.
        stretches: ``[4, stretch_room(bars)]``: the drawdowns' bars.
        highs: ``stretch_room(bars)`` floats: the drawdowns' peaks.
    """

    def __init__(self, bars: int, days: int) -> None:
        most = stretch_room(bars)
        self.returns = np.empty(bars)
        self.daily = np.empty(days)
        self.stretches = np.empty((4, most), np.int64)
        self.highs = np.empty(most)
        self._trades = np.empty((3, 64))

    def trades(self, count: int) -> npt.NDArray[np.float64]:
        """Return ``[3, >= count]`` floats: the trades' P&L, returns, and their sums'
        scratch (grown for a variant with more trades than any before)."""
        if count > self._trades.shape[1]:
            self._trades = np.empty((3, max(count, 2 * self._trades.shape[1])))
        return self._trades


@kernel
def variant_figures(
    equity: npt.NDArray[np.float64],
    initial_cash: float,
    returns: npt.NDArray[np.float64],
    out: npt.NDArray[np.floating],
    copy: bool,
    ends: npt.NDArray[np.intp],
    times_ns: npt.NDArray[np.int64],
    trades: npt.NDArray[np.float64],
    n_trades: int,
    trade_scratch: npt.NDArray[np.float64],
    daily: npt.NDArray[np.float64],
    stretches: npt.NDArray[np.int64],
    highs: npt.NDArray[np.float64],
) -> Figures:
    """Return one variant's `Figures`; write its bar returns.

    Args:
        equity: Its equity at each bar's close (contiguous float64).
        initial_cash: Its equity before the first bar.
        returns: Where its `simple_returns` are written (``len(equity)`` float64s).
        out: Its row of the batch's returns: ``returns`` cast to its type is copied
            there when ``copy`` (a float32 result; a float64 one passes it as
            ``returns``).
        ends: The days' last bars its daily moments read (`NO_DAYS`: none).
        times_ns: Each bar's time (UTC, ns).
        trades: The batch's trade rows (`tradeloom.sweep.batch_kernel.TRADE_WIDTH`
            columns); the variant's are the first ``n_trades``.
        trade_scratch: `FigureBuffers.trades` of ``n_trades``.
        daily, stretches, highs: `FigureBuffers`' arrays.

    Each figure is the kernel's that ``values_performance`` and ``drawdown_duration``
    call, on the values they were given: the trades' P&L, and their returns as
    ``pnl / (quantity * entry_price)`` (`Trade.return_pct`).
    """
    pnl = trade_scratch[0, :n_trades]
    trade_returns = trade_scratch[1, :n_trades]
    for k in range(n_trades):
        gain = trades[k, _PNL]
        pnl[k] = gain
        trade_returns[k] = gain / (trades[k, _QUANTITY] * trades[k, _ENTRY_PRICE])
    sums = trade_sums_into(pnl, trade_returns, trade_scratch[2])
    moments = curve_moments_into(equity, initial_cash, returns, True, ends, daily)
    if copy:
        for i in range(len(returns)):
            out[i] = returns[i]
    bars, longest = longest_drawdown_into(equity, initial_cash, times_ns, stretches, highs)
    return moments, sums, bars, longest
