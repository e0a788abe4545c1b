"""Which symbols of a universe its report charts: the most traded, past a count.

Apart from the charts (no plotly here): a backtest's run folder keeps the bars and
features of these symbols alone, and a run that draws no report must not import plotly
to learn which they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["CHARTED_SYMBOLS", "charted_note", "most_traded"]

CHARTED_SYMBOLS = 50
"""A universe's charts draw at most this many symbols (a menu of them); the tables list
every one. A menu entry shows its symbol's traces and hides every other's, so the page
grew with the square of the symbols charted."""


def most_traded(trades: pd.DataFrame, symbols: Sequence[str]) -> list[str]:
    """Return the symbols a universe's charts draw, given its trades table: all of them
    up to `CHARTED_SYMBOLS`, else that many with the most trades (ties: the universe's
    order), in the universe's order. The run folder of a larger universe keeps these
    symbols' bars and features alone (`tradeloom.backtest.run`), the charts' own."""
    if len(symbols) <= CHARTED_SYMBOLS:
        return list(symbols)
    counts = (
        trades["symbol"].astype(str).value_counts().to_dict()
        if len(trades) and "symbol" in trades.columns
        else {}
    )
    ranked = sorted(range(len(symbols)), key=lambda i: (-counts.get(symbols[i], 0), i))
    return [symbols[i] for i in sorted(ranked[:CHARTED_SYMBOLS])]


def charted_note(shown: int, symbols: int) -> str:
    """Return the note of a chart drawing ``shown`` of ``symbols`` symbols."""
    return f"the {shown} most traded of {symbols} symbols (every one is in the tables)"
