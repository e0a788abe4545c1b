"""The report's price chart: each market's close with every trade marked.

One market is drawn as is. A universe draws every symbol's close and trades, one symbol
shown at a time, chosen in a menu above the chart (`symbol_menu`); the first symbol is
shown when the page opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.reporting.charts import Chart, layout, line, naive_times
from tradeloom.reporting.run_data import RunData

__all__ = ["price_chart", "symbol_menu"]

_GREEN, _RED, _GREY = "#1a9850", "#d73027", "#555555"


def price_chart(run: RunData) -> Chart:
    """Return the price and trades chart of a run (a menu of symbols for a universe)."""
    eq, trades = run.equity, run.trades
    x = naive_times(eq)
    symbols = [str(s) for s in run.metrics.get("symbols") or ()]
    if not symbols:
        data = market_traces(x, eq["close"].to_numpy(np.float64), trades)
        market = str(run.metrics.get("symbol", ""))
        return Chart(
            f"Price and trades ({market})",
            data,
            layout(420, yaxis={"title": "price", "gridcolor": "#e5e5e5"}),
            f"{len(trades):,} trades, every one marked; the close is drawn from its lows and highs",
        )
    groups: list[list[dict[str, Any]]] = []
    for symbol in symbols:
        own = trades[trades["symbol"] == symbol].reset_index(drop=True) if len(trades) else trades
        groups.append(market_traces(x, eq[f"close[{symbol}]"].to_numpy(np.float64), own))
    fig = layout(
        450,
        yaxis={"title": "price", "gridcolor": "#e5e5e5"},
        updatemenus=[symbol_menu(symbols, [len(g) for g in groups])],
    )
    fig["margin"] = {**fig["margin"], "t": 40}
    return Chart(
        "Price and trades",
        [dict(trace, visible=s == 0) for s, group in enumerate(groups) for trace in group],
        fig,
        f"{len(symbols)} symbols: choose one in the menu; {len(trades):,} trades, every one "
        "marked; each close is drawn from its lows and highs",
    )


def symbol_menu(symbols: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
    """Return a plotly dropdown that shows one symbol's traces at a time.

    Args:
        symbols: The symbols, in the order of their traces.
        counts: How many consecutive traces each symbol has.
    """
    owner = np.repeat(np.arange(len(symbols)), counts)
    buttons = [
        {"label": symbol, "method": "restyle", "args": [{"visible": (owner == s).tolist()}]}
        for s, symbol in enumerate(symbols)
    ]
    return {
        "buttons": buttons,
        "direction": "down",
        "showactive": True,
        "x": 0.5,
        "xanchor": "center",
        "y": 1.12,
        "yanchor": "top",
    }


def market_traces(x: np.ndarray, close: np.ndarray, trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Return one market's traces: its close, its entries by side and its exits."""
    data = [line(x, close, "close", _GREY)]
    if not len(trades):
        return data
    long = trades["side"] == "long" if "side" in trades else trades["direction"] > 0
    entry_t = trades["entry_time"].dt.tz_localize(None).to_numpy()
    exit_t = trades["exit_time"].dt.tz_localize(None).to_numpy()
    reason = trades["exit_reason"].astype(str) if "exit_reason" in trades else ""
    text = (
        pd.Series(np.where(long, "long", "short"))
        + " #"
        + pd.Series(np.arange(1, len(trades) + 1)).astype(str)
    )
    for side, mask, marker, color in (
        ("long entry", long.to_numpy(), "triangle-up", _GREEN),
        ("short entry", ~long.to_numpy(), "triangle-down", _RED),
    ):
        if mask.any():
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": side,
                    "x": entry_t[mask],
                    "y": trades["entry_price"].to_numpy(np.float64)[mask],
                    "marker": {"symbol": marker, "size": 9, "color": color},
                    "text": text[mask].to_numpy(),
                    "hovertemplate": "%{text}<br>entry %{y}<extra></extra>",
                }
            )
    pnl = trades["pnl"].to_numpy(np.float64)
    exit_text = (
        text
        + "<br>exit: "
        + reason
        + "<br>return "
        + pd.Series(trades["return"].to_numpy(np.float64) * 100).map("{:+.2f}%".format)
    )
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "exit",
            "x": exit_t,
            "y": trades["exit_price"].to_numpy(np.float64),
            "marker": {
                "symbol": "x",
                "size": 8,
                "color": np.where(pnl > 0, _GREEN, _RED),
                "line": {"width": 1},
            },
            "text": exit_text.to_numpy(),
            "hovertemplate": "%{text}<br>exit %{y}<extra></extra>",
        }
    )
    return data
