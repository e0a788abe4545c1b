"""Performance attribution by symbol: where a run's P&L, fees, exposure and trades came from.

Definitions, per symbol:

- ``pnl``: every fill's cash flow (sales minus purchases, net of fees) plus the open
  position marked at the symbol's last close. The symbols' P&L add up to the run's
  (final equity minus the initial cash), up to float rounding.
- ``fees``: the fees of its fills.
- ``exposure``: the mean over the bars of its position's value (at its last close) in
  absolute terms, as a fraction of the equity.
- ``trades``: its closed round trips; ``open_position``: its position at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import Fill, Trade
from tradeloom.tables.kept import column

__all__ = ["group_attribution", "symbol_attribution"]


def symbol_attribution(
    symbols: Sequence[str],
    fills: Sequence[Fill],
    order_symbols: Mapping[str, str],
    trades: Sequence[Trade],
    positions: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    equity: npt.NDArray[np.float64],
) -> dict[str, dict[str, Any]]:
    """Return ``{symbol: {pnl, fees, exposure, trades, open_position}}``; see the module.

    Args:
        symbols: The symbols, in order.
        fills: Every fill.
        order_symbols: The symbol of each order, by client order id.
        trades: The closed trades (``Trade.symbol`` set).
        positions: ``[bars, symbols]``: each bar's positions.
        close: ``[bars, symbols]``: each bar's closes (NaN: no bar).
        equity: Each bar's equity.
    """
    # each symbol's last close (a symbol without a bar keeps its last)
    marks = pd.DataFrame(close).ffill().to_numpy() if np.isnan(close).any() else close
    at = {symbol: k for k, symbol in enumerate(symbols)}
    one = len(symbols) == 1  # every fill and trade its: no symbol looked up per row
    book = (
        np.zeros(len(fills), np.int64)
        if one
        else np.array([at[order_symbols[i]] for i in column(fills, "order_id").tolist()], np.int64)
    )
    side = column(fills, "side").astype(np.float64)
    flow = side * column(fills, "quantity").astype(np.float64)
    flow = flow * column(fills, "price").astype(np.float64)
    fee = column(fills, "fee").astype(np.float64)
    # summed fill by fill in order, as a running total would be (bincount adds in order)
    paid = np.bincount(book, weights=flow + fee, minlength=len(symbols))
    flows = dict(zip(symbols, (0.0 - paid).tolist(), strict=True))
    fees = dict(zip(symbols, np.bincount(book, fee, minlength=len(symbols)).tolist(), strict=True))
    traded = (
        np.zeros(len(trades), np.int64)
        if one
        else np.array([at[s] for s in column(trades, "symbol").tolist()], np.int64)
    )
    counts = dict(zip(symbols, np.bincount(traded, minlength=len(symbols)).tolist(), strict=True))
    out: dict[str, dict[str, Any]] = {}
    for s, symbol in enumerate(symbols):
        # each bar's share of the equity, one array written in place
        share = np.multiply(positions[:, s], marks[:, s])
        share[positions[:, s] == 0.0] = 0.0
        last = float(positions[-1, s])
        open_value = last * float(marks[-1, s]) if last != 0.0 else 0.0
        np.abs(share, out=share)
        with np.errstate(divide="ignore", invalid="ignore"):
            share /= equity
        share[~(equity > 0.0)] = 0.0
        out[symbol] = {
            "pnl": flows[symbol] + open_value,
            "fees": fees[symbol],
            "exposure": float(share.mean()) if len(share) else 0.0,
            "trades": counts[symbol],
            "open_position": last,
        }
    return out


def group_attribution(
    attribution: Mapping[str, Mapping[str, Any]], groups: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Sum `symbol_attribution`'s rows by group (a portfolio's books by strategy or market).

    Args:
        attribution: One row per book, in book order.
        groups: Each book's group, in the same order.

    ``pnl``, ``fees``, ``exposure`` (each a fraction of the same equity) and ``trades``
    add up; ``open_position`` is left out (positions on different markets do not add).
    """
    out: dict[str, dict[str, Any]] = {}
    for row, group in zip(attribution.values(), groups, strict=True):
        total = out.setdefault(group, {"pnl": 0.0, "fees": 0.0, "exposure": 0.0, "trades": 0})
        for key in total:
            total[key] += row[key]
    return out
