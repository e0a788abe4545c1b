"""``report.html``: a run's charts and tables in one self-contained page.

plotly's JavaScript is embedded, so the page opens offline in any browser and fetches
nothing. Long series are thinned for display by `minmax_indices`; every trade marker
is drawn. The numbers in the tables are those of ``metrics.json`` and ``trades.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.reporting.attribution_charts import attribution_chart, strategy_equity_chart
from tradeloom.reporting.charts import (
    Chart,
    chart_html,
    escape,
    layout,
    line,
    naive_times,
    page,
)
from tradeloom.reporting.execution_table import execution_block, execution_table
from tradeloom.reporting.labels import STATISTICS, format_value
from tradeloom.reporting.price_chart import price_chart, symbol_menu
from tradeloom.reporting.run_data import RunData, RunEvent, load_run
from tradeloom.safe_writes import OutputFolder

__all__ = ["REPORT_FILE", "render_report", "write_report"]

REPORT_FILE = "report.html"

_TRADES_SHOWN = 2000
"""Trades listed in the page's table; a longer run shows the first and last half of these
(trades.csv has them all)."""

_GREEN, _RED, _BLUE, _GREY, _ORANGE = "#1a9850", "#d73027", "#2c7fb8", "#969696", "#fd8d3c"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EVENT_ROWS = {
    "fold": ("walk-forward folds", _GREY),
    "retrain": ("retrains", _BLUE),
    "health": ("health changes", _ORANGE),
    "health_action": ("health actions", _ORANGE),
    "halt": ("halts", _RED),
    "trading_state": ("trading state / kill switch", _RED),
}


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` into a run directory (atomically) and return its path.

    Raises:
        UserError: Not a run directory, or a run that failed (see `load_run`).
    """
    text = render_report(load_run(run_dir))
    # a run directory's report is the report command's own file, whoever wrote it last
    folder = OutputFolder(run_dir, option="RUN_DIR", owned={REPORT_FILE})
    return folder.write_text(REPORT_FILE, text)


def render_report(run: RunData) -> str:
    """Return the page of one run."""
    m = run.metrics
    made = (
        price_chart(run),
        _equity_chart(run),
        strategy_equity_chart(run),
        attribution_chart(m, "strategy"),
        attribution_chart(m, "symbol"),
        _probability_chart(run),
        _monitoring_chart(run),
        _events_chart(run),
        _monthly_chart(m),
        _trade_returns_chart(run.trades),
        _reasons_chart(m),
    )
    charts = [c for c in made if c is not None]  # a chart with nothing to show is left out
    title = f"{run.name}: tradeloom report"
    header = (
        f"<h1>{escape(run.name)}</h1><p class='sub'>{escape(m.get('symbol', ''))} "
        f"{escape(m.get('timeframe', ''))} &middot; {escape(m.get('period', ''))} &middot; "
        f"{escape(run.run_dir.name)}</p>"
    )
    body = [header, _alerts(m), _statistics_table(m), execution_table(execution_block(run))]
    body.extend(chart_html(i, c) for i, c in enumerate(charts))
    body.append(_trades_table(run.trades))
    return page(title, body, charts)


def _universe_columns(run: RunData, kind: str) -> np.ndarray:
    """Return a universe's per-symbol columns ``kind[S]`` of equity.csv (bars x symbols)."""
    columns = [f"{kind}[{s}]" for s in run.metrics.get("symbols") or ()]
    return run.equity[columns].to_numpy(np.float64)


def _equity_chart(run: RunData) -> Chart:
    eq = run.equity
    x = naive_times(eq)
    equity = eq["equity"].to_numpy(np.float64)
    start = float(run.metrics.get("initial_cash") or (equity[0] if len(equity) else 1.0))
    if run.metrics.get("symbols"):  # a universe: its equal-weight index, its gross exposure
        closes = pd.DataFrame(_universe_columns(run, "close")).ffill()
        hold = start * (closes / closes.bfill().iloc[0]).fillna(1.0).mean(axis=1).to_numpy()
        held = np.abs(_universe_columns(run, "value")).sum(axis=1)
        benchmark = "equal weight"
    else:
        close = eq["close"].to_numpy(np.float64)
        hold = start * close / close[0] if len(close) else close
        held = eq["position"].to_numpy(np.float64) * close
        benchmark = "buy and hold"
    drawdown = -eq["drawdown"].to_numpy(np.float64) * 100
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = np.where(equity > 0, held / equity, 0.0)
    data = [
        line(x, equity, "equity", _BLUE, yaxis="y"),
        line(x, hold, benchmark, _GREY, yaxis="y", line={"color": _GREY, "dash": "dot"}),
        line(x, drawdown, "drawdown %", _RED, yaxis="y2", fill="tozeroy"),
        line(x, exposure * 100, "exposure %", _ORANGE, yaxis="y3"),
    ]
    fig = layout(
        560,
        yaxis={"title": "equity", "domain": [0.45, 1.0], "gridcolor": "#e5e5e5"},
        yaxis2={"title": "drawdown %", "domain": [0.22, 0.41], "gridcolor": "#e5e5e5"},
        yaxis3={"title": "exposure %", "domain": [0.0, 0.18], "gridcolor": "#e5e5e5"},
        xaxis={"anchor": "y3", "gridcolor": "#e5e5e5"},
    )
    return Chart(f"Equity against {benchmark}, drawdown and exposure", data, fig)


def _probability_chart(run: RunData) -> Chart | None:
    features = run.features
    if "portfolio" in run.metrics:  # a portfolio file's run: its strategies' own features
        return None
    if features is None or "probability" not in features:
        return Chart(
            "Model probability",
            [],
            layout(120),
            "not recorded: this run was made with outputs.features: false",
        )
    title = "Model probability and the signal thresholds"
    symbols = [str(s) for s in run.metrics.get("symbols") or ()]
    x_all = naive_times(features)
    if "symbol" in features and symbols:  # a universe: a menu of symbols, as the price chart
        owner = features["symbol"].astype(str).to_numpy()
        p_all = features["probability"].to_numpy(np.float64)
        data = [
            dict(line(x_all[owner == s], p_all[owner == s], f"{s} P(up)", _BLUE), visible=i == 0)
            for i, s in enumerate(symbols)
        ]
        menus = [symbol_menu(symbols, [1] * len(symbols))]
    else:
        data = [line(x_all, features["probability"].to_numpy(np.float64), "probability up", _BLUE)]
        menus = []
    shapes = []
    for level, name in _signal_levels(run.strategy):
        shapes.append(_hline(level, _RED if level < 0.5 else _GREEN))
        data.append(_legend_only(name, _RED if level < 0.5 else _GREEN))
    if menus:  # the thresholds stay shown whichever symbol is chosen
        legend = len(data) - len(symbols)
        menus[0]["buttons"] = [
            {**b, "args": [{"visible": b["args"][0]["visible"] + [True] * legend}]}
            for b in menus[0]["buttons"]
        ]
    fig = layout(300, shapes=shapes, yaxis={"title": "P(up)", "range": [0, 1]}, updatemenus=menus)
    if menus:
        fig["margin"] = {**fig["margin"], "t": 40}
    return Chart(title, data, fig)


def _signal_levels(strategy: Mapping[str, Any]) -> list[tuple[float, str]]:
    signal = strategy.get("signal")
    if not isinstance(signal, Mapping):
        return []
    threshold = signal.get("threshold")
    if signal.get("kind") == "threshold" and isinstance(threshold, int | float):
        return [
            (0.5 + threshold / 2, f"long at p >= {0.5 + threshold / 2:g}"),
            (0.5 - threshold / 2, f"short at p <= {0.5 - threshold / 2:g}"),
        ]
    return []


def _hline(level: float, color: str, yref: str = "y") -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "yref": yref,
        "y0": level,
        "y1": level,
        "line": {"color": color, "dash": "dash", "width": 1},
    }


def _legend_only(name: str, color: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [None],
        "y": [None],
        "name": name,
        "line": {"color": color, "dash": "dash"},
    }


def _monitoring_chart(run: RunData) -> Chart | None:
    frame = run.monitoring
    if frame is None:
        return None
    watched = _watched(run.strategy)
    columns = [
        c
        for c in frame.columns
        if (c.partition(".")[2] in _CHARTED_METRICS or c in watched) and frame[c].notna().any()
    ]
    if not columns:
        return None
    x = naive_times(frame)
    rows = len(columns)
    gap = 0.04
    height = (1.0 - gap * (rows - 1)) / rows
    data, shapes = [], []
    fig = layout(180 * rows + 60)
    colors = (_BLUE, _ORANGE, "#6a3d9a", _GREEN, "#b15928", _GREY)
    for i, column in enumerate(columns):
        axis = "y" if i == 0 else f"y{i + 1}"
        top = 1.0 - i * (height + gap)
        fig["yaxis" if i == 0 else f"yaxis{i + 1}"] = {
            "title": {"text": column, "font": {"size": 11}},
            "tickformat": ".4~g",
            "domain": [top - height, top],
            "gridcolor": "#e5e5e5",
        }
        values = frame[column].to_numpy(np.float64)
        data.append(line(x, values, column, colors[i % len(colors)], yaxis=axis))
        for level, name, color in _health_levels(run.strategy, column):
            shapes.append(_hline(level, color, axis))
            data.append(_legend_only(f"{column} {name}", color))
    fig["shapes"] = shapes
    fig["xaxis"] = {"anchor": f"y{rows}" if rows > 1 else "y", "gridcolor": "#e5e5e5"}
    return Chart("Monitoring and the health thresholds", data, fig)


_CHARTED_METRICS = ("auc", "brier", "psi_max")
"""Monitor metrics always charted; any other is charted when a health rule reads it (every
metric of every monitor is in monitoring.parquet)."""


def _watched(strategy: Mapping[str, Any]) -> set[str]:
    rules = strategy.get("health") or []
    return {str(r.get("metric")) for r in rules if isinstance(r, Mapping)}


def _health_levels(strategy: Mapping[str, Any], column: str) -> list[tuple[float, str, str]]:
    """Return the thresholds drawn on a monitor's metric: its own and the health rules'."""
    monitor = column.partition(".")[0]
    levels: list[tuple[float, str, str]] = []
    for item in strategy.get("monitoring") or []:
        if not isinstance(item, Mapping):
            continue
        if (item.get("name") or item.get("kind")) != monitor:
            continue
        for key, color in (("warning_below", _ORANGE), ("critical_below", _RED)):
            if isinstance(item.get(key), int | float):
                levels.append((float(item[key]), key.replace("_", " "), color))
        if item.get("kind") == "rolling_auc" and not levels:
            levels = [(0.52, "warning below", _ORANGE), (0.48, "critical below", _RED)]
    for rule in strategy.get("health") or []:
        if isinstance(rule, Mapping) and rule.get("metric") == column:
            for key in ("above", "below"):
                if isinstance(rule.get(key), int | float):
                    name = f"{rule.get('action')} when {key} {rule[key]:g}"
                    levels.append((float(rule[key]), name, _RED))
    return levels


def _events_chart(run: RunData) -> Chart | None:
    events = [e for e in run.events if e.kind in _EVENT_ROWS]
    if not events:
        return None
    data = []
    for kind, (name, color) in _EVENT_ROWS.items():
        chosen = [e for e in events if e.kind == kind]
        if not chosen:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name} ({len(chosen)})",
                "x": np.array([_naive(e.timestamp) for e in chosen]),
                "y": [name] * len(chosen),
                "marker": {"symbol": "line-ns-open", "size": 14, "color": color},
                "text": [_event_text(e) for e in chosen],
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    times = naive_times(run.equity)
    span = [times[0], times[-1]] if len(times) else None
    fig = layout(
        90 + 40 * len(data),
        yaxis={"type": "category", "automargin": True, "gridcolor": "#e5e5e5"},
        xaxis={"range": span, "gridcolor": "#e5e5e5"},  # the run's period, as the charts above
    )
    return Chart("Timeline: folds, retrains, health, halts and the kill switch", data, fig)


def _naive(ts: pd.Timestamp) -> np.datetime64:
    return np.datetime64(ts.tz_convert("UTC").tz_localize(None), "ns")


def _event_text(event: RunEvent) -> str:
    when = event.timestamp.strftime("%Y-%m-%d %H:%M")
    detail = f"<br>{escape(event.detail)}" if event.detail else ""
    return f"{escape(event.label)}<br>bar {event.bar}, {when}{detail}"


def _monthly_chart(m: Mapping[str, Any]) -> Chart | None:
    monthly = m.get("monthly_returns") or {}
    if not monthly:
        return None
    years = sorted({k[:4] for k in monthly})
    z: list[list[float | None]] = [[None] * 12 for _ in years]
    text = [[""] * 12 for _ in years]
    for key, value in monthly.items():
        row, col = years.index(key[:4]), int(key[5:7]) - 1
        if value is not None and math.isfinite(value):
            z[row][col] = value * 100
            text[row][col] = f"{value * 100:+.2f}%"
    top = max((abs(v) for r in z for v in r if v is not None), default=1.0) or 1.0
    data = [
        {
            "type": "heatmap",
            "x": list(_MONTHS),
            "y": years,
            "z": z,
            "text": text,
            "texttemplate": "%{text}",
            "hovertemplate": "%{y} %{x}: %{text}<extra></extra>",
            "colorscale": [[0, _RED], [0.5, "#ffffff"], [1, _GREEN]],
            "zmin": -top,
            "zmax": top,
            "colorbar": {"title": {"text": "%"}},
        }
    ]
    fig = layout(60 + 36 * len(years) + 40, yaxis={"type": "category", "autorange": "reversed"})
    return Chart("Monthly returns", data, fig)


def _trade_returns_chart(trades: pd.DataFrame) -> Chart | None:
    if not len(trades):
        return None
    returns = trades["return"].to_numpy(np.float64) * 100
    returns = returns[np.isfinite(returns)]
    if not len(returns):
        return None
    size = _bin_size(returns)
    # one set of bins for both, with an edge at 0 so that no bin mixes wins and losses
    low = float(returns.min())
    start = math.floor(low / size) * size
    if start > low:  # a loss so small that low / size rounded to -0.0
        start -= size
    bins = {
        "start": start,
        "end": float(returns.max()) + size,
        "size": size,
    }
    data = [
        {
            "type": "histogram",
            "x": returns[returns > 0],
            "name": "winners",
            "marker": {"color": _GREEN},
            "xbins": bins,
        },
        {
            "type": "histogram",
            "x": returns[returns <= 0],
            "name": "losers",
            "marker": {"color": _RED},
            "xbins": bins,
        },
    ]
    fig = layout(300, barmode="overlay", xaxis={"title": "trade return %"})
    fig["yaxis"] = {"title": "trades", "gridcolor": "#e5e5e5"}
    return Chart("Trade returns", data, fig)


def _bin_size(returns: np.ndarray) -> float:
    """numpy's "auto" bin width, or 1 (%) when the trades' returns are (nearly) all equal.

    Returns a float apart, such as two stop-loss exits at the same distance, would ask
    numpy for bins narrower than a float can hold.
    """
    if float(returns.max() - returns.min()) < 1e-6:
        return 1.0
    edges = np.histogram_bin_edges(returns, bins="auto")
    return float(edges[1] - edges[0])


def _reasons_chart(m: Mapping[str, Any]) -> Chart | None:
    rejections = m.get("rejections") or {}
    exits = m.get("exits") or {}
    if not rejections and not exits:
        return None
    data = []
    for name, counts, color in (("rejections", rejections, _RED), ("exits", exits, _BLUE)):
        if counts:
            data.append(
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": name,
                    "x": list(counts.values()),
                    "y": [f"{name[:-1]}: {k}" for k in counts],
                    "marker": {"color": color},
                }
            )
    rows = len(rejections) + len(exits)
    fig = layout(80 + 28 * rows, margin={"l": 260, "r": 20, "t": 10, "b": 40})
    fig["yaxis"] = {"automargin": True, "autorange": "reversed"}
    return Chart("Rejections by code and exits by reason", data, fig)


def _alerts(m: Mapping[str, Any]) -> str:
    lines = []
    if m.get("halt"):
        lines.append(f"Trading halted: {m['halt']}.")
    if m.get("open_position"):
        lines.append(f"A position is open at the end: {_open_position(m)}.")
    if not lines:
        return ""
    return "<div class='alert'>" + "<br>".join(escape(x) for x in lines) + "</div>"


def _open_position(m: Mapping[str, Any]) -> str:
    position = float(m["open_position"])
    side = "long" if position > 0 else "short"
    text = f"{side} {abs(position):.8g}"
    if m.get("open_position_entry_price") is not None:
        text += f" since {str(m.get('open_position_entry_time', ''))[:16].replace('T', ' ')}"
        text += f" at {float(m['open_position_entry_price']):,.2f}"
    if m.get("open_position_pnl") is not None:
        text += f", unrealized {float(m['open_position_pnl']):+,.2f}"
    return text


def _statistics_table(m: Mapping[str, Any]) -> str:
    parts = ["<section><h2>Statistics</h2><div class='stats'>"]
    for group, rows in STATISTICS:
        cells = "".join(
            f"<tr><th>{escape(label)}</th><td>{escape(format_value(key, m))}</td></tr>"
            for key, label, _ in rows
        )
        parts.append(f"<table><caption>{escape(group)}</caption>{cells}</table>")
    parts.append("</div></section>")
    return "".join(parts)


_TRADE_TABLE = (
    ("side", "side"),
    ("entry_time", "entry"),
    ("exit_time", "exit"),
    ("holding_bars", "bars"),
    ("entry_price", "entry price"),
    ("exit_price", "exit price"),
    ("quantity", "quantity"),
    ("pnl", "P&L"),
    ("return", "return"),
    ("exit_reason", "exit reason"),
)


def _trades_table(trades: pd.DataFrame) -> str:
    n = len(trades)
    if not n:
        return "<section><h2>Trades</h2><p class='note'>no closed trades</p></section>"
    shown: Iterable[int] = range(n)
    note = f"{n:,} trades"
    if n > _TRADES_SHOWN:
        half = _TRADES_SHOWN // 2
        shown = [*range(half), -1, *range(n - half, n)]
        note = f"{n:,} trades: the first and last {half:,} (trades.csv has them all)"
    head = "".join(f"<th>{escape(label)}</th>" for _, label in _TRADE_TABLE)
    rows = []
    columns = {key: trades[key].to_numpy() for key, _ in _TRADE_TABLE if key in trades}
    for i in shown:
        if i < 0:
            rows.append(f"<tr><td colspan='{len(_TRADE_TABLE) + 1}'>...</td></tr>")
            continue
        cells = "".join(f"<td>{_cell(key, columns.get(key), i)}</td>" for key, _ in _TRADE_TABLE)
        rows.append(f"<tr><td>{i + 1}</td>{cells}</tr>")
    return (
        f"<section><h2>Trades</h2><p class='note'>{escape(note)}</p><div class='scroll'>"
        f"<table class='trades'><tr><th>#</th>{head}</tr>{''.join(rows)}</table></div></section>"
    )


def _cell(key: str, column: np.ndarray | None, i: int) -> str:
    if column is None:
        return ""
    value = column[i]
    if key in ("entry_time", "exit_time"):
        return escape(pd.Timestamp(value).strftime("%Y-%m-%d %H:%M"))
    if key == "return":
        cls = "pos" if value > 0 else "neg"
        return f"<span class='{cls}'>{value * 100:+.2f}%</span>"
    if key == "pnl":
        cls = "pos" if value > 0 else "neg"
        return f"<span class='{cls}'>{value:+,.2f}</span>"
    if key in ("entry_price", "exit_price"):
        return f"{value:,.6g}"
    if key == "quantity":
        return f"{value:.6g}"
    return escape(str(value))
