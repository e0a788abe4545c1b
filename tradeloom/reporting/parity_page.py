"""``parity.html``: a run against its replay (`tradeloom.diagnostics.parity`) as one page:
both equity curves, the gap by cause over time, the causes and every divergent bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.reporting.charts import Chart, chart_html, escape, layout, line, naive_times, page

__all__ = ["parity_page"]

_COLORS = ("#d73027", "#1a9850", "#6a3d9a", "#fd8d3c", "#b15928", "#e7298a", "#66a61e", "#999")


def parity_page(
    bars: pd.DataFrame,
    differences: pd.DataFrame,
    causes: pd.DataFrame,
    summary: Mapping[str, Any],
    meanings: Mapping[str, str],
    *,
    plotly_src: str | None = None,
) -> str:
    """Return the page.

    Args:
        bars: Each bar's ``timestamp``, ``run_equity``, ``reference_equity``, ``gap``
            and a column of cumulative P&L per cause.
        differences: Every difference (``timestamp``, ``bar``, ``symbol``, ``venue``,
            ``field``, ``run``, ``reference``, ``cause``, ``code``, ``pnl``).
        causes: Each cause's ``count``, ``pnl``, ``limit`` and ``within``.
        summary: The comparison's summary (``parity.json``'s).
        meanings: What each cause means.
        plotly_src: The relative URL of plotly.js (None: embedded).
    """
    times = naive_times(bars)
    equity = Chart(
        "Equity: the run and its replay",
        [
            line(times, bars["run_equity"].to_numpy(np.float64), "run", "#2c7fb8"),
            line(times, bars["reference_equity"].to_numpy(np.float64), "replay", "#555"),
        ],
        layout(
            400,
            yaxis={"title": "equity", "gridcolor": "#e5e5e5"},
            xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
        ),
    )
    traces = [line(times, bars["gap"].to_numpy(np.float64), "gap", "#000", line={"width": 2})]
    for i, cause in enumerate(c for c in meanings if c in bars.columns):
        traces.append(
            line(times, bars[cause].to_numpy(np.float64), cause, _COLORS[i % len(_COLORS)])
        )
    gap = Chart(
        "The equity gap (run - replay) by cause",
        traces,
        layout(
            400,
            yaxis={"title": "P&L", "gridcolor": "#e5e5e5"},
            xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
        ),
    )
    verdict = (
        "every difference explained and within its tolerance"
        if summary["passed"]
        else "FAILED: " + ", ".join(str(c) for c, r in causes.iterrows() if not r["within"])
    )
    head = (
        f"<h1>Parity: {escape(summary['symbol'])}, {escape(summary['mode'])} run</h1>"
        f"<p>{summary['bars']} bars ({summary['first_bar']}..{summary['last_bar']}) replayed "
        f"as a backtest ({escape(summary['reference'])}); equity gap "
        f"{summary['equity_gap']:+,.2f}. <b>{escape(verdict)}</b></p>"
    )
    sections = [
        head,
        chart_html(0, equity),
        chart_html(1, gap),
        _causes_table(causes, meanings),
        _differences_table(differences),
    ]
    return page(
        f"tradeloom parity: {summary['symbol']}",
        sections,
        [equity, gap],
        plotly_src=plotly_src,
        remedy="Run tradeloom parity again.",
    )


def _causes_table(causes: pd.DataFrame, meanings: Mapping[str, str]) -> str:
    rows = "".join(
        f"<tr><th>{escape(cause)}</th><td>{int(r['count'])}</td><td>{r['pnl']:+,.2f}</td>"
        f"<td>{_limit(float(r['limit']))}</td>"
        f"<td>{escape(meanings.get(str(cause), ''))}</td></tr>"
        for cause, r in causes.iterrows()
    )
    if not rows:
        return "<section><h2>Causes</h2><p class='note'>no difference</p></section>"
    return (
        "<section><h2>Causes</h2><div class='scroll'><table class='trades'>"
        "<tr><th>cause</th><th>count</th><th>P&amp;L</th><th>limit</th><th>meaning</th></tr>"
        f"{rows}</table></div></section>"
    )


def _differences_table(differences: pd.DataFrame) -> str:
    columns: Sequence[str] = (
        "timestamp",
        "bar",
        "symbol",
        "venue",
        "field",
        "run",
        "reference",
        "cause",
        "code",
    )
    body = []
    for row in differences.itertuples(index=False):
        values = row._asdict()
        cells = "".join(f"<td>{escape(_shown(values[c]))}</td>" for c in columns)
        body.append(f"<tr>{cells}<td>{values['pnl']:+,.2f}</td></tr>")
    if not body:
        return "<section><h2>Divergent bars</h2><p class='note'>none</p></section>"
    head = "".join(f"<th>{c}</th>" for c in columns)
    return (
        "<section><h2>Divergent bars</h2><div class='scroll'><table class='trades'>"
        f"<tr>{head}<th>P&amp;L</th></tr>{''.join(body)}</table></div></section>"
    )


def _limit(value: float) -> str:
    return "none" if math.isinf(value) else f"{value:g}"


def _shown(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return str(value.strftime("%Y-%m-%d %H:%M"))
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)
