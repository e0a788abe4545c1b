"""The trades table of ``trades.csv``: each round trip with its side, holding time, return
and the reason of the order that closed it.

The exit reason is the ``reason`` of the order whose fill closed the trade (``EXIT_SIGNAL``,
``EXIT_STOP_LOSS``, ``EXIT_MAX_HOLDING``, ``EXIT_HALT``, ``REVERSE``...). It is found by
replaying the fills against a signed position with the portfolio kernel's own rounding
rule (`tradeloom.core.accounting.apply_fill`): each fill that brings the position to
zero or flips it closes the next trade, so the n-th such fill belongs to the n-th trade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.kernels.jit import kernel
from tradeloom.tables.kept import Kept, column, times
from tradeloom.tables.text_columns import labelled, texts

__all__ = ["TRADE_COLUMNS", "exit_reasons", "trade_frame"]

TRADE_COLUMNS = (
    "symbol",
    "direction",
    "side",
    "entry_bar",
    "entry_time",
    "exit_bar",
    "exit_time",
    "holding_bars",
    "quantity",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
    "return",
    "exit_reason",
)
"""Columns of ``trades.csv``: ``direction`` is +1 or -1, ``side`` says ``long`` or ``short``,
``return`` is the P&L after fees over the entry notional."""

_EPS = 1e-12  # the portfolio kernel's: a close leaving relative rounding dust is flat


def exit_reasons(
    orders: Sequence[Any],
    fills: Sequence[Any],
    symbols: Mapping[str, str] | None = None,
) -> list[str]:
    """Return the reason of each fill that closed a trade, in the order the trades closed.

    Args:
        orders: Every order (``id``, ``reason``): objects, or a `tradeloom.tables.kept.Kept`
            read by its columns.
        fills: Every fill (``order_id``, ``side``, ``quantity``), in journal order.
        symbols: The symbol of each order, by id (None: one symbol); each symbol's
            position is followed apart.
    """
    fill_ids = column(fills, "order_id")
    if not len(fill_ids):
        return []
    if symbols is None or len(set(symbols.values())) <= 1:  # one book
        book = np.zeros(len(fill_ids), np.int64)
    else:  # each symbol's position apart: a number per symbol
        markets = np.asarray([symbols[i] for i in fill_ids.tolist()], dtype=object)
        book = pd.factorize(markets)[0]
    closing = _closing(
        book.astype(np.int64, copy=False),
        column(fills, "side").astype(np.float64),
        column(fills, "quantity").astype(np.float64),
    )
    if not len(closing):
        return []
    return _reasons_of(column(orders, "id"), column(orders, "reason"), fill_ids[closing])


def _reasons_of(
    ids: npt.NDArray[Any], reasons: npt.NDArray[Any], wanted: npt.NDArray[Any]
) -> list[str]:
    """Return the reason of the order of each of ``wanted`` (order ids; an id twice: its
    last order's; an unknown one: ``""``), each id and reason as its text."""
    columns = [ids.tolist(), reasons.tolist(), wanted.tolist()]
    for k, values in enumerate((ids, reasons, wanted)):
        if pd.api.types.infer_dtype(values, skipna=False) != "string":
            columns[k] = list(map(str, columns[k]))  # (texts already: as they are)
    reason = dict(zip(columns[0], columns[1], strict=True))
    return [reason.get(i, "") for i in columns[2]]


@kernel
def _closing(
    book: npt.NDArray[np.int64], side: npt.NDArray[np.float64], quantity: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Return the fills (their indices) that bring their book's position to zero or
    across it, replayed with the portfolio kernel's rounding rule."""
    n = len(book)
    positions = np.zeros(book.max() + 1 if n else 0, np.float64)
    closed = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        signed = side[i] * quantity[i]
        before = positions[book[i]]
        after = before + signed
        if abs(after) <= _EPS * max(abs(before), abs(signed)):
            after = 0.0
        if before != 0.0 and (after == 0.0 or (after > 0) != (before > 0)):
            closed[count] = i
            count += 1
        positions[book[i]] = after
    return closed[:count]


_INTS = ("direction", "entry_bar", "exit_bar")
_FLOATS = ("quantity", "entry_price", "exit_price", "fees", "pnl")


def trade_frame(
    trades: Sequence[Any],
    orders: Sequence[Any],
    fills: Sequence[Any],
    symbols: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Return the trades as the ``trades.csv`` table (`TRADE_COLUMNS`).

    Args:
        trades: Closed round trips (`tradeloom.domain.Trade` or rows with the
            same attributes, or a `tradeloom.tables.kept.Kept` of them), in the order they
            closed.
        orders: Every order of the run (``id``, ``reason``).
        fills: Every fill of the run in journal order (``order_id``, ``side``, ``quantity``).
        symbols: The symbol of each order, by id (None: one symbol, see `exit_reasons`).

    Raises:
        RuntimeError: The fills close another number of trades than were recorded.
    """
    reasons = exit_reasons(orders, fills, symbols)
    if len(reasons) != len(trades):
        raise RuntimeError(
            f"the fills close {len(reasons)} trades, the portfolio recorded {len(trades)}"
        )
    if not len(trades):  # no rows: columns of no type, as from no objects
        frame = pd.DataFrame([], columns=[*_INTS, "entry_time", "exit_time", *_FLOATS])
        frame["symbol"] = []
        frame = frame.astype({c: np.int64 for c in _INTS})
        frame["side"] = np.where(frame["direction"] > 0, "long", "short")
        frame["holding_bars"] = frame["exit_bar"] - frame["entry_bar"]
        frame["return"] = []
        frame["exit_reason"] = reasons
        return frame[list(TRADE_COLUMNS)]
    # every column made first, the frame built once (a column added at a time cost more)
    data: dict[str, Any] = {c: column(trades, c).astype(np.int64) for c in _INTS}
    data["entry_time"] = times(trades, "entry_time")
    data["exit_time"] = times(trades, "exit_time")
    for c in _FLOATS:
        data[c] = column(trades, c).astype(np.float64)
    if isinstance(trades, Kept):
        data["symbol"] = texts(trades.column("symbol"))
    else:
        data["symbol"] = [str(getattr(t, "symbol", "")) for t in trades]
    # the texts as pandas infers them, without its inference (`tradeloom.tables.text_columns`)
    data["side"] = labelled((data["direction"] > 0).astype(np.int8), ("short", "long"))
    data["holding_bars"] = data["exit_bar"] - data["entry_bar"]
    data["return"] = data["pnl"] / (data["quantity"] * data["entry_price"])
    data["exit_reason"] = texts(reasons)
    return pd.DataFrame({c: data[c] for c in TRADE_COLUMNS})
