"""The report's attribution charts: where a universe's or a portfolio's P&L came from.

Drawn from ``metrics.json``'s ``attribution`` (by symbol) and ``attribution_by_strategy``
(a portfolio file's strategies), and from ``equity.csv``'s ``equity[S]`` columns (each
strategy's equity). A single-market run has none of these and gets none of the charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tradeloom.reporting.charts import Chart, layout, line, naive_times
from tradeloom.reporting.run_data import RunData

__all__ = ["attribution_chart", "strategy_equity_chart"]

_GREEN, _RED, _GREY = "#1a9850", "#d73027", "#969696"
_PALETTE = ("#2c7fb8", "#fd8d3c", "#6a3d9a", "#1a9850", "#b15928", "#e7298a", "#666666")


def attribution_chart(metrics: Mapping[str, Any], by: str = "symbol") -> Chart | None:
    """Return P&L and fees by symbol (or by strategy), largest contribution first.

    Args:
        metrics: The run's metrics.
        by: ``symbol`` (``attribution``) or ``strategy`` (``attribution_by_strategy``).
    """
    key = "attribution" if by == "symbol" else "attribution_by_strategy"
    rows: Mapping[str, Mapping[str, Any]] = metrics.get(key) or {}
    if len(rows) < 2:  # one market: the statistics table already says it all
        return None
    names = sorted(rows, key=lambda n: float(rows[n].get("pnl") or 0.0))
    pnl = np.array([float(rows[n].get("pnl") or 0.0) for n in names])
    fees = np.array([float(rows[n].get("fees") or 0.0) for n in names])
    hover = [_hover(name, rows[name]) for name in names]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "P&L (after fees)",
            "y": names,
            "x": pnl,
            "marker": {"color": np.where(pnl >= 0, _GREEN, _RED)},
            "hovertext": hover,
            "hoverinfo": "text",
        },
        {
            "type": "bar",
            "orientation": "h",
            "name": "fees paid",
            "y": names,
            "x": fees,
            "marker": {"color": _GREY},
            "hovertemplate": "%{y}: fees %{x:,.2f}<extra></extra>",
        },
    ]
    fig = layout(
        80 + 26 * len(names),
        barmode="group",
        yaxis={"title": by, "type": "category", "automargin": True, "gridcolor": "#e5e5e5"},
        xaxis={"title": "P&L and fees", "gridcolor": "#e5e5e5", "zeroline": True},
    )
    total = float(pnl.sum())
    return Chart(
        f"Attribution by {by}",
        data,
        fig,
        f"each {by}'s P&L after its fees, and the fees it paid (grey); the P&L sums to "
        f"{total:,.2f}",
    )


def _hover(name: str, row: Mapping[str, Any]) -> str:
    return (
        f"{name}<br>P&L {float(row.get('pnl') or 0.0):,.2f}"
        f"<br>fees {float(row.get('fees') or 0.0):,.2f}<br>trades {int(row.get('trades') or 0)}"
        f"<br>mean gross exposure {float(row.get('exposure') or 0.0) * 100:.1f}% of equity"
    )


def strategy_equity_chart(run: RunData) -> Chart | None:
    """Return each strategy's equity (a portfolio file's ``equity[S]`` columns), if any."""
    portfolio = run.metrics.get("portfolio") or {}
    strategies = [str(s) for s in portfolio.get("strategies") or ()]
    columns = [f"equity[{s}]" for s in strategies]
    if not strategies or any(c not in run.equity for c in columns):
        return None
    x = naive_times(run.equity)
    data = [
        line(x, run.equity[c].to_numpy(np.float64), s, _PALETTE[i % len(_PALETTE)])
        for i, (s, c) in enumerate(zip(strategies, columns, strict=True))
    ]
    data.append(line(x, run.equity["equity"].to_numpy(np.float64), "account", "#222222"))
    return Chart(
        "Equity by strategy",
        data,
        layout(
            360,
            yaxis={"title": "equity", "gridcolor": "#e5e5e5"},
            xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
        ),
        "each strategy's equity: its capital at the first bar plus its books' P&L",
        link=True,
    )
