"""The page around plotly charts: one self-contained HTML file with plotly.js embedded,
shared by report.html and the compare page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from tradeloom import __version__
from tradeloom.reporting.downsample import minmax_indices

__all__ = ["CSS", "Chart", "chart_html", "escape", "layout", "line", "naive_times", "page"]


class Chart:
    """One plotly chart of the page: a title, its traces and layout, and a note."""

    def __init__(
        self, title: str, data: list[dict[str, Any]], layout: dict[str, Any], note: str = ""
    ) -> None:
        self.title = title
        self.data = data
        self.layout = layout
        self.note = note


def page(title: str, body: Sequence[str], charts: Sequence[Chart]) -> str:
    """Return a full HTML page with plotly embedded and ``charts`` drawn into their divs.

    Each chart's div is ``<div class="chart" id="chart-<i>">``, numbered as in ``charts``;
    once drawn, it gets ``data-rendered="true"`` (the browser test waits for it).
    """
    figures = ",".join(
        to_json_plotly({"data": c.data, "layout": c.layout}).replace("</", "<\\/") for c in charts
    )
    script = (
        "const FIGURES = [" + figures + "];\n"
        "FIGURES.forEach(function (fig, i) {\n"
        "  var div = document.getElementById('chart-' + i);\n"
        "  Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false})\n"
        "    .then(function () { div.setAttribute('data-rendered', 'true'); });\n"
        "});\n"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{CSS}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>\n"
        + "\n".join(body)
        + f"\n<p class='foot'>tradeloom {escape(__version__)}</p>"
        + f"\n<script>{script}</script></body></html>\n"
    )


def chart_html(i: int, chart: Chart) -> str:
    note = f"<p class='note'>{escape(chart.note)}</p>" if chart.note else ""
    return (
        f"<section><h2>{escape(chart.title)}</h2>{note}"
        f"<div class='chart' id='chart-{i}' data-title='{escape(chart.title)}'></div></section>"
    )


def layout(height: int, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        "hovermode": "closest",
        "plot_bgcolor": "#fbfbfb",
        "paper_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        "xaxis": {"gridcolor": "#e5e5e5"},
        "yaxis": {"gridcolor": "#e5e5e5"},
    }
    out.update(extra)
    return out


def naive_times(frame: pd.DataFrame) -> np.ndarray:
    """Return the timestamps as naive UTC datetime64 (shorter in the page than with +00:00)."""
    return frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()


def line(x: np.ndarray, y: np.ndarray, name: str, color: str, **extra: Any) -> dict[str, Any]:
    keep = minmax_indices(y)
    trace = {
        "type": "scatter",
        "mode": "lines",
        "x": x[keep],
        "y": y[keep],
        "name": name,
        "line": {"color": color, "width": 1.2},
    }
    trace.update(extra)
    return trace


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1280px;padding:16px 24px;color:#222;background:#fff}
h1{margin:8px 0 0;font-size:24px}h2{font-size:17px;margin:24px 0 6px;color:#333}
.sub{color:#666;margin:2px 0 12px}.note{color:#777;font-size:13px;margin:2px 0 6px}
.alert{background:#fff4e5;border-left:4px solid #fd8d3c;padding:8px 12px;margin:8px 0}
.stats{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.stats table{border-collapse:collapse;min-width:300px}
.stats caption{text-align:left;font-weight:600;padding:4px 0;color:#444}
.stats th{text-align:left;font-weight:400;color:#555;padding:2px 16px 2px 0}
.stats td{text-align:right;font-variant-numeric:tabular-nums;padding:2px 0}
.scroll{max-height:480px;overflow:auto;border:1px solid #eee}
table.trades{border-collapse:collapse;font-size:13px;width:100%}
table.trades th{position:sticky;top:0;background:#f5f5f5;text-align:right;padding:4px 8px}
table.trades td{text-align:right;padding:2px 8px;font-variant-numeric:tabular-nums;
border-top:1px solid #f0f0f0}
table.trades th.group,table.trades tr th:first-child{text-align:left}
table.execution{border-collapse:collapse;font-size:13px;width:100%}
table.execution th{background:#f5f5f5;text-align:right;padding:4px 8px}
table.execution td{text-align:right;padding:2px 8px;font-variant-numeric:tabular-nums;
border-top:1px solid #f0f0f0}
table.execution td:nth-child(-n+2),table.execution th:nth-child(-n+2){text-align:left}
table.execution tr.total td{font-weight:600}
.pos{color:#1a9850}.neg{color:#d73027}.foot{color:#aaa;font-size:12px;margin-top:24px}
"""
