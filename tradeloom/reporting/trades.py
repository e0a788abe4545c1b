"""The trades table of ``trades.csv``: each round trip with its side, holding time, return
and the reason of the order that closed it.

The exit reason is the ``reason`` of the order whose fill closed the trade (``EXIT_SIGNAL``,
``EXIT_STOP_LOSS``, ``EXIT_MAX_HOLDING``, ``EXIT_HALT``, ``REVERSE``...). It is found by
replaying the fills against a signed position with the portfolio kernel's own rounding
rule (`tradeloom.core.accounting.apply_fill`): each fill that brings the position to
zero or flips it closes the next trade, so the n-th such fill belongs to the n-th trade.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

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


class _Order(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def reason(self) -> str: ...


class _Fill(Protocol):
    @property
    def order_id(self) -> str: ...
    @property
    def side(self) -> int: ...
    @property
    def quantity(self) -> float: ...


def exit_reasons(
    orders: Iterable[_Order],
    fills: Iterable[_Fill],
    symbols: Mapping[str, str] | None = None,
) -> list[str]:
    """Return the reason of each fill that closed a trade, in the order the trades closed.

    Args:
        orders: Every order (``id``, ``reason``).
        fills: Every fill, in journal order.
        symbols: The symbol of each order, by id (None: one symbol); each symbol's
            position is followed apart.
    """
    reason = {str(o.id): str(o.reason) for o in orders}
    positions: dict[str, float] = {}
    closed: list[str] = []
    for fill in fills:
        order_id = str(fill.order_id)
        symbol = "" if symbols is None else symbols[order_id]
        signed = float(fill.side) * float(fill.quantity)
        before = positions.get(symbol, 0.0)
        after = before + signed
        if abs(after) <= _EPS * max(abs(before), abs(signed)):
            after = 0.0
        if before != 0.0 and (after == 0.0 or (after > 0) != (before > 0)):
            closed.append(reason.get(order_id, ""))
        positions[symbol] = after
    return closed


def trade_frame(
    trades: Sequence[Any],
    orders: Iterable[_Order],
    fills: Iterable[_Fill],
    symbols: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Return the trades as the ``trades.csv`` table (`TRADE_COLUMNS`).

    Args:
        trades: Closed round trips (`tradeloom.domain.Trade` or rows with the
            same attributes), in the order they closed.
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
    columns = (
        *("direction", "entry_bar", "entry_time", "exit_bar", "exit_time", "quantity"),
        *("entry_price", "exit_price", "fees", "pnl"),
    )
    frame = pd.DataFrame([[getattr(t, c) for c in columns] for t in trades], columns=columns)
    frame["symbol"] = [str(getattr(t, "symbol", "")) for t in trades]
    frame["direction"] = frame["direction"].astype(np.int64)
    frame["entry_bar"] = frame["entry_bar"].astype(np.int64)
    frame["exit_bar"] = frame["exit_bar"].astype(np.int64)
    frame["side"] = np.where(frame["direction"] > 0, "long", "short")
    frame["holding_bars"] = frame["exit_bar"] - frame["entry_bar"]
    notional = frame["quantity"].to_numpy(np.float64) * frame["entry_price"].to_numpy(np.float64)
    frame["return"] = frame["pnl"].to_numpy(np.float64) / notional if len(frame) else []
    frame["exit_reason"] = reasons
    return frame[list(TRADE_COLUMNS)]
