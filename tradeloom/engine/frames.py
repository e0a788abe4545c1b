"""The run's tables from its arrays, the same for every driver: equity, positions, benchmark.

The backtest and the live runtime build ``equity.csv``, ``positions.csv`` and the
equal-weight benchmark from the same ``[bars, symbols]`` arrays with these functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.kernels.jit import python_form, released_kernel
from tradeloom.reporting.drawdowns import drawdown_curve

__all__ = [
    "UNIVERSE_EQUITY",
    "curve_out",
    "equal_weight",
    "equity_block",
    "equity_frame",
    "position_rows",
]


def _equity_names(symbols: tuple[str, ...]) -> list[str]:
    if len(symbols) == 1:
        return ["close", "position", "cash", "equity", "drawdown"]
    # a universe's per-symbol series are rows of the positions table (long form), not
    # three columns a symbol here: 500 symbols made 1,503 columns, most of a run folder
    return list(UNIVERSE_EQUITY)


UNIVERSE_EQUITY = ("cash", "equity", "drawdown", "gross", "equal_weight")
"""The columns of a universe's equity table after its ``timestamp``: the account's cash,
equity and drawdown, ``gross`` (the value of every position at its symbol's last close,
summed in absolute value) and ``equal_weight`` (the equal-weight index of the symbols,
`equal_weight`, 1 at the start). Each symbol's close, position and value are in the
positions table and ``bars.parquet``."""


def equity_block(bars: int, symbols: tuple[str, ...]) -> list[np.ndarray]:
    """Return `equity_frame`'s columns, an array each, not written yet.

    An array each, not one block: a million bars' five columns are 40 MB, above what
    the C allocator serves from its heap (`tradeloom.runtime.memory`); a block that size is
    mapped anew for each run, a page fault for each of its pages, where a column of
    8 MB reuses the memory an earlier run's arrays freed."""
    return [np.empty(bars) for _ in _equity_names(symbols)]


def curve_out(
    block: Sequence[np.ndarray], symbols: tuple[str, ...]
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Return the rows of ``block`` (`equity_block`) that `universe_curve` may write its
    curve into (its ``out``): the position (one symbol's; None for several, whose rows
    are by symbol), the cash and the equity. The curve written there is not copied
    into the frame (at a million bars, 24 MB neither allocated nor copied)."""
    column = dict(zip(_equity_names(symbols), block, strict=True))
    one = column["position"].reshape(-1, 1) if len(symbols) == 1 else None
    return one, column["cash"], column["equity"]


def equity_frame(
    index: pd.DatetimeIndex,
    symbols: tuple[str, ...],
    close: np.ndarray,
    positions: np.ndarray,
    cash: np.ndarray,
    equity: np.ndarray,
    initial_cash: float,
    block: Sequence[np.ndarray] | None = None,
) -> pd.DataFrame:
    """Return the equity curve: one symbol's close and position, or every symbol's.

    One symbol: ``close position cash equity drawdown``. Several: `UNIVERSE_EQUITY`
    (each symbol's close, position and value are the positions table's rows,
    `position_rows`). ``close`` and ``positions`` are
    ``[bars, symbols]``. ``block``: the `equity_block` to hold the columns, whose rows
    the curve may have been written into already (`curve_out`); None: a new one.
    """
    names = _equity_names(symbols)
    # the columns written into one block, the frame's own (no copy into it)
    if block is None:
        block = equity_block(len(index), symbols)
    column = dict(zip(names, block, strict=True))
    _put(column["cash"], cash)
    _put(column["equity"], equity)
    drawdown_curve(equity, initial_cash, out=column["drawdown"])
    if len(symbols) == 1:
        column["close"][:] = close[:, 0]
        _put(column["position"], positions[:, 0])
    else:
        _account_marks(close, positions, column["gross"], column["equal_weight"])
    return pd.DataFrame(dict(zip(names, block, strict=True)), index=index, copy=False)


def _put(row: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` into ``row`` unless they are already there (`curve_out`)."""
    if not (
        row.__array_interface__["data"][0] == values.__array_interface__["data"][0]
        and row.strides == values.strides
        and row.shape == values.shape
    ):
        row[:] = values


def equal_weight(close: np.ndarray, index: pd.DatetimeIndex) -> pd.Series:
    """Return the equal-weight index of the symbols (each from 1 at its first bar)."""
    values = np.empty(len(index))
    _account_marks(close, None, None, values)
    return pd.Series(values, index=index)


_ROWS = 512
"""The bars `_account_marks` works on at a time (500 symbols: 2 MB a buffer)."""


def _account_marks(
    close: npt.NDArray[np.float64],
    positions: npt.NDArray[np.float64] | None,
    gross: npt.NDArray[np.float64] | None,
    index: npt.NDArray[np.float64],
) -> None:
    """Write each bar's equal-weight index of the columns of ``close`` (``[bars,
    columns]``) into ``index``: the mean of each column's last close over its first
    (1.0 before its first close); and (``positions`` given) the absolute values of the
    non-zero positions at their columns' last closes, summed, into ``gross``.

    A few hundred bars at a time: pandas' forward fill, division and mean over the
    whole ``[bars, columns]`` made five arrays that size (500 symbols x 10,000 bars:
    200 MB at the run's peak). Each bar's index is numpy's sum over a contiguous row,
    the pairwise sum of pandas' mean over a frame's rows; its gross is summed over the
    columns in order, as the report summed the ``value[S]`` columns of a universe's
    equity.csv when it had them: the same bits, both."""
    closes = np.ascontiguousarray(close, np.float64)
    bars, columns = closes.shape
    valid = ~np.isnan(closes)
    first = np.where(valid.any(axis=0), closes[valid.argmax(axis=0), np.arange(columns)], np.nan)
    del valid
    last = np.full(columns, np.nan)
    rows = min(_ROWS, max(bars, 1))
    ratios = np.empty((rows, columns))
    held = np.ascontiguousarray(positions, np.float64) if positions is not None else closes[:0]
    out = gross if gross is not None else index[:0]
    for start in range(0, bars, rows):
        stop = min(start + rows, bars)
        _marked_rows(closes, held, start, stop, first, last, ratios, out)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, as pandas
            np.divide(ratios[: stop - start].sum(axis=1), columns, out=index[start:stop])


@released_kernel
def _marked_rows(
    closes: npt.NDArray[np.float64],
    positions: npt.NDArray[np.float64],
    start: int,
    stop: int,
    first: npt.NDArray[np.float64],
    last: npt.NDArray[np.float64],
    ratios: npt.NDArray[np.float64],
    gross: npt.NDArray[np.float64],
) -> None:
    """Carry ``last`` (each column's last close) over bars ``start`` to ``stop``; write
    each bar's ratios to ``first`` (1.0: no close yet) and, where ``positions`` has rows,
    the absolute values of its non-zero positions at their last closes, summed in
    column order, to ``gross``."""
    columns = closes.shape[1]
    for i in range(start, stop):
        k = i - start
        held = 0.0
        for c in range(columns):
            close = closes[i, c]
            if not np.isnan(close):
                last[c] = close
            ratio = last[c] / first[c]
            ratios[k, c] = 1.0 if np.isnan(ratio) else ratio
            if len(positions):
                p = positions[i, c]
                held += abs(p * last[c]) if p != 0.0 else 0.0
        if len(gross):
            gross[i] = held


def position_rows(
    index: pd.DatetimeIndex,
    closes: npt.NDArray[np.float64],
    positions: npt.NDArray[np.float64],
    symbols: Sequence[str],
    labels: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Return ``positions.csv``: every bar's non-zero position of each column, marked at
    its last close (``closes`` and ``positions`` are ``[bars, columns]``).

    Args:
        symbols: Each column's market.
        labels: More columns named before ``symbol``, each a value per column
            (a portfolio's ``strategy``).
    """
    positions = np.ascontiguousarray(positions, np.float64)
    count = np.count_nonzero(positions)  # a NaN is held (np.nonzero's rule)
    # the columns in one block, filled by the kernel: numpy asks the OS for huge pages
    # for a block of 4 MiB or more, where a column each of 500k rows took a page fault
    # every 4 KiB (~4,000 faults, ~10 ms)
    block = np.empty((5, count), np.float64)
    at, which = block[0].view(np.int64), block[1].view(np.int64)
    held, marks, value = block[2], block[3], block[4]
    _held(np.ascontiguousarray(closes, np.float64), positions, at, which, held, marks)
    np.multiply(held, marks, out=value)
    named = {k: _taken(v, which) for k, v in (labels or {}).items()}
    return pd.DataFrame(
        {
            "timestamp": index[at],
            "bar": at,
            **named,
            "symbol": _taken(symbols, which),
            "position": held,
            "close": marks,
            "value": value,
        },
        copy=False,  # arrays of its own: a block each, not copied into one (a million rows: 12 ms)
    )


@released_kernel
def _held(
    closes: npt.NDArray[np.float64],
    positions: npt.NDArray[np.float64],
    at: npt.NDArray[np.int64],
    which: npt.NDArray[np.int64],
    held: npt.NDArray[np.float64],
    marks: npt.NDArray[np.float64],
) -> None:
    """Write the bar and column of each non-zero position (a NaN is one) in
    ``np.nonzero``'s order, the position, and its column's last close (NaN before the
    first) into ``at``, ``which``, ``held`` and ``marks``.

    Compiled, without the GIL (the backtest's worker writes the table beside the run's
    thread): pandas' ``ffill`` of the closes, ``np.nonzero`` and the takes cost a
    million bars ~25 ms."""
    bars, columns = positions.shape
    last = np.full(columns, np.nan)
    k = 0
    for i in range(bars):
        for c in range(columns):
            close = closes[i, c]
            if not np.isnan(close):
                last[c] = close
            if positions[i, c] != 0.0:
                at[k], which[k], held[k], marks[k] = i, c, positions[i, c], last[c]
                k += 1


@python_form(_held)
def _held_as_python(
    closes: npt.NDArray[np.float64],
    positions: npt.NDArray[np.float64],
    at: npt.NDArray[np.int64],
    which: npt.NDArray[np.int64],
    held: npt.NDArray[np.float64],
    marks: npt.NDArray[np.float64],
) -> None:
    """`_held` as Python (`tradeloom.kernels.jit.python_form`): ``np.nonzero`` of the
    positions, and each column's last known close by the bar of the last close known so
    far (a running maximum of the bars that have one)."""
    rows, columns = np.nonzero(positions != 0.0)  # a NaN is not 0: held
    known = np.where(np.isnan(closes), -1, np.arange(len(closes))[:, None])
    last = np.maximum.accumulate(known, axis=0)[rows, columns]
    k = len(rows)
    at[:k], which[:k], held[:k] = rows, columns, positions[rows, columns]
    marks[:k] = np.where(last >= 0, closes[np.maximum(last, 0), columns], np.nan)


def _taken(names: Sequence[str], which: npt.NDArray[np.intp]) -> pd.Categorical:
    """Return ``names[which]`` as categories: a code per row, each name held once."""
    codes, distinct = pd.factorize(np.asarray(names, dtype=object))
    return pd.Categorical.from_codes(codes[which], categories=distinct)
