"""Many parameter sets over one series in one compiled call: the sweep's batched core.

`run_variants` runs the bar step every backtest runs (`tradeloom.core.bar.run_bars`)
once per row of a ``prm`` matrix, over the same bars, each from a fresh state. It
writes no second bar loop: the step is called as `tradeloom.core.state.CoreState.run`
calls it, and each variant's event rows are read back as the backtest's outputs read
them. What a sweep keeps of a variant is reduced from its rows before the next one
reuses the buffer:

- each bar's equity, marked as `tradeloom.core.curves.universe_curve` marks it (the
  cash after the bar's last fill plus the position times the last close), bit for bit;
- the counts of signals, orders and fills, of the bars that close with a position held
  (the exposure), the rejections per code, the last halt;
- the closed trades (`tradeloom.core.accounting.TRADE_FIELDS`).

One symbol only: a universe's rows go through the backtest itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloom.core.bar import run_bars
from tradeloom.core.layout import (
    A_CASH,
    A_FEES,
    C_BASE,
    CUR_SIZE,
    EV_FILL,
    EV_FUNDING,
    EV_HALT,
    EV_ORDER,
    EV_REJECT,
    EV_SIGNAL,
    EV_TRADE,
    EV_WIDTH,
    IO_SIZE,
    NEED_BUFFER,
    NEED_DONE,
)
from tradeloom.core.records import (
    BAR,
    FILL_CASH,
    FILL_POSITION,
    FUNDING_CASH,
    HALT_CODE,
    KIND,
    REJECT_CODE,
    TRADE_SIZE,
    TRADE_VALUES,
)
from tradeloom.core.state import BarInputs
from tradeloom.kernels.jit import kernel
from tradeloom.sweep.batch_start import VariantStart

__all__ = ["COUNTS", "MAX_CODE", "MIN_ROWS", "TRADE_WIDTH", "VariantBatch", "run_variants"]

COUNTS = 7
"""A variant's counts (`run_variants`'s ``counts`` columns)."""

MAX_CODE = 1024
"""Rejection codes counted per variant: the built-in ones (below `codes.DYNAMIC_BASE`)."""

TRADE_WIDTH = 1 + TRADE_SIZE
"""A trade row: the variant's index, then the core's trade fields."""

MIN_ROWS = 448
"""The fewest rows of an event buffer: four bars' rows beside the step's own
(`CoreState.reserve`, one symbol)."""

_SCRATCH = 16


@dataclass(frozen=True)
class VariantBatch:
    """What one call of `run_variants` runs: the bars, the variants' starts, and the arrays
    it fills with what it keeps of each.

    Attributes:
        inputs: One symbol's bars (base 0).
        start: The variants' starting arrays: ``prm`` ``[variants, PRM_SIZE]`` (each
            variant's `CoreSpec.vector`), ``acct`` ``[variants, ACCT_SIZE]``, their
            drawdown ``limits`` one after another (``limits[limits_at[v]:limits_at[v +
            1]]`` are variant ``v``'s) and ``sent_at`` (``sent_at[v + 1] - sent_at[v]``:
            the rate limiter's ring length of ``v``).
        sym: ``[1, SYM_SIZE]``: the symbol's starting row (the same for every variant).
        port: The portfolio scratch's starting value (the same for every variant).
        equity: ``[variants, bars]`` out: the equity at each bar's close.
        counts: ``[variants, COUNTS]`` out: signals, orders, fills, fees, the last
            halt's code and bar (0 and -1: none), the bars closed with a position held.
        rejections: ``[variants, MAX_CODE]`` out: rejections per code.
    """

    inputs: BarInputs
    start: VariantStart
    sym: npt.NDArray[np.float64]
    port: npt.NDArray[np.float64]
    equity: npt.NDArray[np.float64]
    counts: npt.NDArray[np.float64]
    rejections: npt.NDArray[np.int64]


def run_variants(
    batch: VariantBatch, ev: npt.NDArray[np.float64], trades: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], int, npt.NDArray[np.float64]]:
    """Run every variant of ``batch`` over its bars from its own fresh state.

    Args:
        batch: The bars, the variants' starts and the arrays to fill.
        ev: The event rows' buffer (``[rows, EV_WIDTH]``), each variant's from its
            first row; a larger one replaces it when a variant needs more (or it has
            fewer than `MIN_ROWS`).
        trades: The trade rows' buffer (``[rows, TRADE_WIDTH]``); likewise.

    Returns:
        The trade rows (`TRADE_WIDTH` columns, by variant then in order; a buffer of
        them), their count, and the event rows' buffer: a caller that runs one variant
        per call passes both buffers to the next call, which then allocates nothing
        but for a variant with more rows.
    """
    inputs, start = batch.inputs, batch.start
    buffer, n_trades, ev = _run_variants(
        inputs.px, inputs.flags, inputs.score, inputs.time_ns, inputs.trainings,
        start.prm, start.acct, batch.sym, batch.port, start.limits, start.limits_at,
        start.sent_at, batch.equity, batch.counts, batch.rejections, ev, trades,
    )  # fmt: skip
    return buffer, int(n_trades), ev


@kernel
def _run_variants(
    px: np.ndarray,
    flags: np.ndarray,
    score: np.ndarray,
    time_ns: np.ndarray,
    trainings: np.ndarray,
    prm: np.ndarray,
    acct0: np.ndarray,
    sym0: np.ndarray,
    port0: np.ndarray,
    limits: np.ndarray,
    limits_at: np.ndarray,
    sent_at: np.ndarray,
    equity: np.ndarray,
    counts: np.ndarray,
    rejections: np.ndarray,
    ev: np.ndarray,
    trades: np.ndarray,
) -> tuple[np.ndarray, int, np.ndarray]:
    """`run_variants`'s compiled body: its batch's arrays one by one, as numba takes them."""
    n_var = prm.shape[0]
    inputs = (px, flags, score, time_ns, trainings)
    n = px.shape[1]
    close = px[3, :, 0]
    n_trades = 0
    if ev.shape[0] < MIN_ROWS:
        ev = np.empty((MIN_ROWS, EV_WIDTH))
    for v in range(n_var):
        acct = acct0[v].copy()
        sym = sym0.copy()
        port = port0.copy()
        sent = np.zeros(sent_at[v + 1] - sent_at[v], np.int64)
        own_limits = limits[limits_at[v] : limits_at[v + 1]]
        cur = np.zeros(CUR_SIZE, np.int64)
        io = np.zeros(IO_SIZE)
        scratch = np.zeros(_SCRATCH)
        own = prm[v]
        cur[C_BASE] = 0
        while True:
            arrays = (acct, sym, own, own_limits, sent, port, ev, cur, io, scratch)
            need = run_bars(n, inputs, arrays)
            if need != NEED_BUFFER:
                break
            grown = np.empty((2 * ev.shape[0], EV_WIDTH))
            grown[: ev.shape[0]] = ev
            ev = grown
        if need != NEED_DONE:
            counts[v, 0] = -1.0  # the step asked for Python: not a batched variant
            continue
        used = cur[0]
        trades = _room(trades, n_trades + _count(ev, used, EV_TRADE))
        n_trades = _read_rows(
            ev, used, close, acct0[v, A_CASH], v, equity[v], counts[v], rejections[v], trades,
            n_trades,
        )  # fmt: skip
        counts[v, 3] = acct[A_FEES]
    return trades, n_trades, ev


@kernel
def _count(ev: np.ndarray, used: int, kind: int) -> int:
    """Return how many of the first ``used`` rows are of ``kind``."""
    found = 0
    for k in range(used):
        if ev[k, KIND] == kind:
            found += 1
    return found


@kernel
def _room(trades: np.ndarray, rows: int) -> np.ndarray:
    """Return ``trades``, or a copy of it with room for ``rows`` rows."""
    if rows <= trades.shape[0]:
        return trades
    more = np.empty((max(rows, 2 * trades.shape[0]), TRADE_WIDTH))
    more[: trades.shape[0]] = trades
    return more


@kernel
def _read_rows(
    ev: np.ndarray,
    used: int,
    close: np.ndarray,
    cash: float,
    v: int,
    equity: np.ndarray,
    counts: np.ndarray,
    rejections: np.ndarray,
    trades: np.ndarray,
    n_trades: int,
) -> int:
    """Reduce variant ``v``'s first ``used`` event rows; return the trade rows' count.

    Writes its equity at each bar's close (``cash``: the starting cash, before the
    first fill), its counts but the fees, its rejections per code, and its trades from
    row ``n_trades`` on (``trades`` has room for them). Its own function, over
    arguments never rebound: numba counts no references in the loop over the bars.
    """
    signals = 0
    orders = 0
    fills = 0
    halt_code = 0.0
    halt_bar = -1.0
    position = 0.0
    mark = np.nan
    held = 0
    n = close.shape[0]
    t = 0  # the first bar whose equity is not written yet
    for k in range(used + 1):
        # the bars before the row's (all of them after the last row) close at the state
        # the rows before left: rows come in bar order
        stop = n if k == used else min(int(ev[k, BAR]), n)
        if stop > t:
            if position != 0.0:
                for i in range(t, stop):
                    c = close[i]
                    if c == c:
                        mark = c
                    equity[i] = cash + position * mark
                held += stop - t
            else:
                for i in range(t, stop):
                    equity[i] = cash
                for i in range(stop - 1, t - 1, -1):  # the mark: the last close known
                    c = close[i]
                    if c == c:
                        mark = c
                        break
            t = stop
        if k == used or t == n:
            break
        kind = ev[k, KIND]
        if kind == EV_FILL:
            fills += 1
            position = ev[k, FILL_POSITION]
            cash = ev[k, FILL_CASH]
        elif kind == EV_FUNDING:  # a perpetual's funding moves the cash
            cash = ev[k, FUNDING_CASH]
        elif kind == EV_SIGNAL:
            signals += 1
        elif kind == EV_ORDER:
            orders += 1
        elif kind == EV_REJECT:
            code = int(ev[k, REJECT_CODE])
            if 0 < code < MAX_CODE:
                rejections[code] += 1
        elif kind == EV_HALT:
            halt_code = ev[k, HALT_CODE]
            halt_bar = ev[k, BAR]
        elif kind == EV_TRADE:
            trades[n_trades, 0] = v
            for j in range(TRADE_SIZE):
                trades[n_trades, 1 + j] = ev[k, TRADE_VALUES + j]
            n_trades += 1
    counts[0] = signals
    counts[1] = orders
    counts[2] = fills
    counts[4] = halt_code
    counts[5] = halt_bar
    counts[6] = held
    return n_trades
