"""``report.html``: a run's charts and tables in one page that opens offline.

plotly's JavaScript (4.7 MB) is written once into the folder of runs that holds the run
directory (``runs/plotly-<version>.min.js``), shared by every run's report there, and
loaded from it; a run directory elsewhere gets it inside its page (`report_plotly`), and
``single_file=True`` (``tradeloom report RUN_DIR --single-file``) embeds it too, for a
page to send on its own. Either way the page fetches nothing
from a network. Long series are thinned for display by `minmax_indices`; every trade marker
is drawn. The numbers in the tables are those of ``metrics.json`` and ``trades.csv``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.files.writing import OutputFolder
from tradeloom.reporting.allocation_view import (
    last_rebalance_chart,
    rebalances_table,
    weights_chart,
)
from tradeloom.reporting.attribution_charts import attribution_chart, strategy_equity_chart
from tradeloom.reporting.books_view import books_chart, books_table
from tradeloom.reporting.calibration_view import calibration_table, reliability_chart
from tradeloom.reporting.charted import charted_note
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
from tradeloom.reporting.idle import Idle, idle_label, idle_of
from tradeloom.reporting.labels import (
    ANNUALISED,
    STATISTICS,
    format_price,
    format_value,
    price_decimals,
    short_run_note,
)
from tradeloom.reporting.monitoring_charts import (
    drift_chart,
    hline,
    legend_only,
    monitoring_chart,
)
from tradeloom.reporting.price_chart import (
    charted_symbols,
    price_chart,
    symbol_menu,
)
from tradeloom.reporting.refusals import RefusalTable, exits_warning
from tradeloom.reporting.refusals_view import reasons_chart, refusals_table
from tradeloom.reporting.run_data import RunData, load_run
from tradeloom.reporting.shared_plotly import report_plotly
from tradeloom.reporting.tearsheet import Rolling
from tradeloom.reporting.tearsheet_view import rolling_chart, tearsheet_tables
from tradeloom.reporting.text_view import text_features_table
from tradeloom.reporting.timeline import halted_banner, timeline_chart
from tradeloom.reporting.trades_table import trades_table
from tradeloom.tables.grouping import positions_by_key

__all__ = [
    "PANELS",
    "REPORT_FILE",
    "render_report",
    "report_charts",
    "report_panels",
    "write_report",
]

REPORT_FILE = "report.html"

PANELS = (
    "price",
    "equity",
    "challengers",
    "probability",
    "calibration",
    "timeline",
    "rolling",
    "strategies",
    "attribution_by_strategy",
    "attribution_by_symbol",
    "allocation_weights",
    "allocation_last",
    "monitoring",
    "drift",
    "monthly_returns",
    "trade_returns",
    "reasons",
)
"""The report's charts by name, in the page's order (`report_panels`): a run draws those
it has data for."""

_GREEN, _RED, _BLUE, _GREY, _ORANGE = "#1a9850", "#d73027", "#2c7fb8", "#969696", "#fd8d3c"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def write_report(
    run_dir: Path,
    *,
    single_file: bool = False,
    written: Mapping[str, pd.DataFrame] | None = None,
    rolling: Rolling | None = None,
) -> Path:
    """Write ``report.html`` into a run directory (atomically) and return its path.

    Args:
        single_file: Embed plotly.js in the page (about 4.7 MB more) rather than load it
            from ``plotly-<version>.min.js`` in the run directory's folder of runs
            (``runs/``), written there when missing. A run directory in another folder
            (``--out results/a``, ``--out myrun``) gets a page with plotly.js embedded,
            unless that folder holds tradeloom's copy already; so does one whose
            ``runs/`` cannot hold the file (read-only, a file of that name not written
            by tradeloom).
        written: The run's tables this process has just written, by file name, drawn
            from memory rather than read back (`load_run`).
        rolling: The rolling figures this process computed for the run's metrics
            (`tradeloom.reporting.tearsheet.run_rolling`), drawn rather than computed
            again.

    Raises:
        UserError: Not a run directory, or a run that failed (see `load_run`).
    """
    run = load_run(run_dir, written=written)
    if rolling is not None:
        run = replace(run, rolling=rolling)
    src = None if single_file else report_plotly(run_dir)
    text = render_report(run, plotly_src=src)
    # a run directory's report is the report command's own file, whoever wrote it last
    folder = OutputFolder(run_dir, option="RUN_DIR", owned={REPORT_FILE})
    return folder.write_text(REPORT_FILE, text)


def report_charts(run: RunData, idle: Idle | None = None) -> list[Chart]:
    """Return the page's charts of one run, in order; one with no data has a note of why
    (`Chart.note`) and is not drawn. ``idle``: `idle_of` the run, if known."""
    return list(report_panels(run, idle).values())


def report_panels(run: RunData, idle: Idle | None = None) -> dict[str, Chart]:
    """Return `report_charts` by panel name (``price``, ``equity``...: `PANELS`), in the
    page's order."""
    m = run.metrics
    idle = idle_of(run) if idle is None else idle
    made = {
        "price": price_chart(run),
        "equity": _equity_chart(run),
        "challengers": books_chart(run),
        "probability": _probability_chart(run),
        "calibration": reliability_chart(m),
        "timeline": timeline_chart(run),
        "rolling": rolling_chart(run),
        "strategies": strategy_equity_chart(run),
        "attribution_by_strategy": attribution_chart(m, "strategy"),
        "attribution_by_symbol": attribution_chart(m, "symbol"),
        "allocation_weights": weights_chart(run),
        "allocation_last": last_rebalance_chart(run),
        "monitoring": monitoring_chart(run),
        "drift": drift_chart(run),
        "monthly_returns": _monthly_chart(m, idle),
        "trade_returns": _trade_returns_chart(run.trades),
        "reasons": reasons_chart(m),
    }
    # a chart with nothing to show is left out
    charts = {name: c for name, c in made.items() if c is not None}
    breaks = _closed_sessions(run)
    for chart in charts.values():  # a market's closures are cut out of every time axis
        if breaks and chart.link and chart.data:
            chart.layout["xaxis"] = {**chart.layout.get("xaxis", {}), "rangebreaks": breaks}
    return charts


def render_report(run: RunData, *, plotly_src: str | None = None) -> str:
    """Return the page of one run (``plotly_src``: see `tradeloom.reporting.charts.page`)."""
    m = run.metrics
    idle = idle_of(run)
    charts = report_charts(run, idle)
    title = f"{run.name}: tradeloom report"
    mode = f"{run.mode} &middot; " if run.mode != "backtest" else ""
    header = (
        f"<h1>{escape(run.name)}</h1><p class='sub'>{mode}{escape(m.get('symbol', ''))} "
        f"{escape(m.get('timeframe', ''))} &middot; {escape(m.get('period', ''))} &middot; "
        f"{escape(run.run_dir.name)}</p>"
    )
    banner = halted_banner(run)
    # the halt is said once: by the banner when the run ended halted
    # one market's closes give the decimals of a position open at the end (a universe's
    # differ by symbol); read only for one (a median of every close)
    bars = run.bars
    one = bars is not None and "close" in bars and "symbol" not in bars
    decimals = None
    if one and m.get("open_position") and bars is not None:
        decimals = price_decimals(bars["close"])
    body = [header, banner, _alerts(m, decimals, halt=not banner), _statistics_table(m)]
    if m.get("realism"):  # execution.realism (any other page is as it was, byte for byte)
        body.append(
            f"<section><h2>Execution realism</h2><p>{escape(str(m['realism']))}</p></section>"
        )
    if m.get("fills_from"):  # fill: book (any other page is as it was, byte for byte)
        body.append(f"<section><h2>Fills</h2><p>{escape(str(m['fills_from']))}</p></section>")
    body.append(refusals_table(m))
    body.append(tearsheet_tables(m, idle))
    body.append(execution_table(execution_block(run)))
    body.append(calibration_table(m))
    texts = text_features_table(m)
    if texts:  # a run with text features (any other page is as it was, byte for byte)
        body.append(texts)
    books = books_table(run)
    if books:  # a run that had challengers (any other page is as it was, byte for byte)
        body.append(books)
    drawn = [c for c in charts if c.data]
    for chart in charts:  # a chart with no data says why, as a note under its title
        body.append(chart_html(drawn.index(chart), chart) if chart.data else _untold(chart))
    rebalances = rebalances_table(run)
    if rebalances:  # a run that allocates
        body.append(rebalances)
    body.append(trades_table(run.trades, run.trades_file))
    return page(title, body, drawn, plotly_src=plotly_src)


def _untold(chart: Chart) -> str:
    return (
        f"<section class='undrawn' data-undrawn='{escape(chart.title)}'><h2>"
        f"{escape(chart.title)}</h2><p class='note'>{escape(chart.note)}</p></section>"
    )


_MOST_BREAKS = 1000
"""Closures cut out of a time axis at most (the longest): plotly draws each one."""


def _closed_sessions(run: RunData) -> list[dict[str, Any]]:
    """Return plotly's rangebreaks for the closures of a market with sessions (a
    ``data.calendar`` other than crypto): each gap of more than a bar between two bars.

    A crypto market trades around the clock: a gap in its bars is missing data, and is
    left on the axis for a person to see.
    """
    calendar = run.metrics.get("calendar")
    if calendar in (None, "crypto") or len(run.equity) < 3:
        return []
    times = np.unique(naive_times(run.equity))
    steps = np.diff(times)
    step = np.min(steps)
    gaps = np.flatnonzero(steps > step)
    if len(gaps) > _MOST_BREAKS:
        gaps = np.sort(gaps[np.argsort(steps[gaps])[-_MOST_BREAKS:]])
    starts = np.datetime_as_string(times[gaps] + step, unit="s")
    ends = np.datetime_as_string(times[gaps + 1], unit="s")
    return [{"bounds": [a, b]} for a, b in zip(starts, ends, strict=True)]


def _universe_columns(run: RunData, kind: str) -> np.ndarray:
    """Return a universe's per-symbol columns ``kind[S]`` of equity.csv (bars x symbols),
    as a run written before its per-symbol series were the positions table's rows has."""
    columns = [f"{kind}[{s}]" for s in run.metrics.get("symbols") or ()]
    return np.asarray(run.equity[columns].to_numpy(np.float64))


def _equity_chart(run: RunData) -> Chart:
    eq = run.equity
    x = naive_times(eq)
    equity = eq["equity"].to_numpy(np.float64)
    start = float(run.metrics.get("initial_cash") or (equity[0] if len(equity) else 1.0))
    # each derived series is worked out in one buffer in turn and only its drawn points
    # kept (`line`): a million bars' new array costs more in fresh pages than in sums
    buffer = np.empty(len(equity))
    if run.metrics.get("symbols"):  # a universe: its equal-weight index, its gross exposure
        if "equal_weight" in eq.columns:
            hold = np.multiply(eq["equal_weight"].to_numpy(np.float64), start, out=buffer)
        else:  # a run written before the table was long (a symbol's columns in equity.csv)
            closes = pd.DataFrame(_universe_columns(run, "close")).ffill()
            hold = start * (closes / closes.bfill().iloc[0]).fillna(1.0).mean(axis=1).to_numpy()
        benchmark = "equal weight"
    else:
        close = eq["close"].to_numpy(np.float64)
        hold = np.multiply(close, start, out=buffer)
        if len(close):
            hold /= close[0]
        benchmark = "buy and hold"
    data = [
        line(x, equity, "equity", _BLUE, yaxis="y"),
        line(x, hold, benchmark, _GREY, yaxis="y", line={"color": _GREY, "dash": "dot"}),
    ]
    drawdown = np.multiply(eq["drawdown"].to_numpy(np.float64), -100.0, out=buffer)  # -(x) * 100
    data.append(line(x, drawdown, "drawdown %", _RED, yaxis="y2", fill="tozeroy"))
    if run.metrics.get("symbols"):
        if "gross" in eq.columns:
            held = np.array(eq["gross"].to_numpy(np.float64))
        else:  # a run written before the table was long
            held = np.abs(_universe_columns(run, "value")).sum(axis=1)
    else:
        held = np.multiply(
            eq["position"].to_numpy(np.float64), eq["close"].to_numpy(np.float64), out=buffer
        )
        np.abs(held, out=held)
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = np.divide(held, equity, out=held)
    exposure *= 100.0
    exposure[~(equity > 0)] = 0.0
    data.append(line(x, exposure, "gross exposure % of equity", _ORANGE, yaxis="y3"))
    fig = layout(
        560,
        yaxis={"title": "equity", "domain": [0.45, 1.0], "gridcolor": "#e5e5e5"},
        yaxis2={"title": "drawdown %", "domain": [0.24, 0.40], "gridcolor": "#e5e5e5"},
        yaxis3={"title": "exposure %", "domain": [0.0, 0.19], "gridcolor": "#e5e5e5"},
        xaxis={"title": "time (UTC)", "anchor": "y3", "gridcolor": "#e5e5e5"},
        updatemenus=[_scale_menu(data[0]["y"], data[1]["y"], start)],
    )
    note = (
        "scale: linear, log, or % return since the start (menu, top right); "
        "gross exposure: the value of the positions held over equity, at each bar"
    )
    return Chart(f"Equity against {benchmark}, drawdown and exposure", data, fig, note, link=True)


def _scale_menu(equity: np.ndarray, hold: np.ndarray, start: float) -> dict[str, Any]:
    """Return the equity chart's menu: money on a linear or a log axis, or % return."""
    money = {"y": [equity, hold]}
    percent = {"y": [(equity / start - 1.0) * 100, (hold / start - 1.0) * 100]}
    buttons = [
        ("linear", money, {"yaxis.type": "linear", "yaxis.title.text": "equity"}),
        ("log", money, {"yaxis.type": "log", "yaxis.title.text": "equity (log scale)"}),
        ("% return", percent, {"yaxis.type": "linear", "yaxis.title.text": "return %"}),
    ]
    return {
        "type": "buttons",
        "direction": "right",
        "showactive": True,
        "active": 0,
        "x": 1.0,
        "xanchor": "right",
        "y": 1.0,
        "yanchor": "bottom",
        "pad": {"b": 28},
        "buttons": [
            {"label": label, "method": "update", "args": [restyle, relayout, [0, 1]]}
            for label, restyle, relayout in buttons
        ],
    }


def _probability_chart(run: RunData) -> Chart | None:
    features = run.features
    if "portfolio" in run.metrics:  # a portfolio file's run: its strategies' own features
        return None
    if features is None or "probability" not in features:
        if run.mode != "backtest":
            return None  # a paper run's probabilities are its journal's: none yet
        return Chart(
            "Model probability",
            [],
            layout(120, xaxis={"title": "time (UTC)"}, yaxis={"title": "P(up)"}),
            "not recorded: this run was made with outputs.features: false",
        )
    title = "Model probability and the signal thresholds"
    everyone = [str(s) for s in run.metrics.get("symbols") or ()]
    symbols = charted_symbols(run, everyone)
    x_all = naive_times(features)
    if "symbol" in features and symbols:  # a universe: a menu of symbols, as the price chart
        of_symbol = positions_by_key(features["symbol"].astype(str).to_numpy())
        p_all = features["probability"].to_numpy(np.float64)
        none = np.zeros(0, dtype=np.intp)
        mine = [of_symbol.get(s, none) for s in symbols]  # one pass, not a scan per symbol
        data = [
            dict(line(x_all[k], p_all[k], f"{s} P(up)", _BLUE), visible=i == 0)
            for i, (s, k) in enumerate(zip(symbols, mine, strict=True))
        ]
        menus = [symbol_menu(symbols, [1] * len(symbols))]
    else:
        data = [line(x_all, features["probability"].to_numpy(np.float64), "probability up", _BLUE)]
        menus = []
    shapes = []
    for level, name in _signal_levels(run.strategy):
        shapes.append(hline(level, _RED if level < 0.5 else _GREEN))
        data.append(legend_only(name, _RED if level < 0.5 else _GREEN))
    if menus:  # the thresholds stay shown whichever symbol is chosen
        legend = len(data) - len(symbols)
        menus[0]["buttons"] = [
            {**b, "args": [{"visible": b["args"][0]["visible"] + [True] * legend}]}
            for b in menus[0]["buttons"]
        ]
    fig = layout(
        300,
        shapes=shapes,
        yaxis={"title": "P(up)", "range": [0, 1], "gridcolor": "#e5e5e5"},
        xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
        updatemenus=menus,
    )
    note = _auc_note(run.metrics)
    if len(symbols) < len(everyone):
        note = f"{charted_note(len(symbols), len(everyone))}; {note}"
    if run.mode != "backtest":
        note = f"from the journal (each live bar's verdict); {note}"
    return Chart(title, data, fig, note, link=True)


def _auc_note(m: Mapping[str, Any]) -> str:
    auc, count = m.get("auc"), m.get("predictions")
    if auc is None or (isinstance(auc, float) and math.isnan(auc)):
        return "AUC: no prediction whose outcome is known yet"
    return f"AUC {float(auc):.3f} over {int(count or 0):,} predictions whose outcome is known"


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


def _monthly_chart(m: Mapping[str, Any], idle: Idle) -> Chart | None:
    monthly = m.get("monthly_returns") or {}
    if not monthly:
        return None
    years = sorted({k[:4] for k in monthly})
    z: list[list[float | None]] = [[None] * 12 for _ in years]
    text = [[""] * 12 for _ in years]
    # a month the run could not trade in: a grey cell saying why, not +0.00%
    quiet: list[list[float | None]] = [[None] * 12 for _ in years]
    quiet_text = [[""] * 12 for _ in years]
    for key, value in monthly.items():
        row, col = years.index(key[:4]), int(key[5:7]) - 1
        if value is None or not math.isfinite(value):
            continue
        why = idle_label(key, value, idle)
        if why:
            quiet[row][col] = 0.0
            quiet_text[row][col] = why
        else:
            z[row][col] = value * 100
            text[row][col] = f"{value * 100:+.2f}%"
    top = max((abs(v) for r in z for v in r if v is not None), default=1.0) or 1.0
    data: list[dict[str, Any]] = [
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
    note = ""
    if any(v is not None for r in quiet for v in r):
        data.append(
            {
                "type": "heatmap",
                "x": list(_MONTHS),
                "y": years,
                "z": quiet,
                "text": quiet_text,
                "texttemplate": "%{text}",
                "textfont": {"color": "#777777"},
                "hovertemplate": "%{y} %{x}: %{text}<extra></extra>",
                "colorscale": [[0, "#eeeeee"], [1, "#eeeeee"]],
                "showscale": False,
            }
        )
        note = (
            "grey: months in which the run could not trade (before the model's first "
            "prediction, or after the halt it ended in)"
        )
    fig = layout(
        60 + 36 * len(years) + 40,
        yaxis={"title": "year", "type": "category", "autorange": "reversed"},
        xaxis={"title": "month"},
    )
    return Chart("Monthly returns", data, fig, note)


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


def _alerts(m: Mapping[str, Any], decimals: int | None, *, halt: bool) -> str:
    lines = []
    if halt and m.get("halt"):
        lines.append(f"Trading halted: {m['halt']}.")
    if m.get("open_position"):
        lines.append(f"A position is open at the end: {_open_position(m, decimals)}.")
    refused = exits_warning(RefusalTable.of_metrics(m))
    if refused is not None:
        lines.append(f"{refused[0].upper()}{refused[1:]} (see Refusals by code and purpose).")
    if not lines:
        return ""
    return "<div class='alert'>" + "<br>".join(escape(x) for x in lines) + "</div>"


def _open_position(m: Mapping[str, Any], decimals: int | None) -> str:
    position = float(m["open_position"])
    side = "long" if position > 0 else "short"
    text = f"{side} {abs(position):.8g}"
    if m.get("open_position_entry_price") is not None:
        text += f" since {str(m.get('open_position_entry_time', ''))[:16].replace('T', ' ')}"
        text += f" at {format_price(float(m['open_position_entry_price']), decimals)}"
    if m.get("open_position_pnl") is not None:
        text += f", unrealized {float(m['open_position_pnl']):+,.2f}"
    return text


def _statistics_table(m: Mapping[str, Any]) -> str:
    short = short_run_note(m)
    parts = ["<section><h2>Statistics</h2>"]
    if short:
        parts.append(f"<p class='note short-run' id='short-run'>* {escape(short)}</p>")
    parts.append("<div class='stats'>")
    for group, rows in STATISTICS:
        cells = "".join(
            f"<tr><th>{escape(label)}{' *' if short and key in ANNUALISED else ''}</th>"
            f"<td>{escape(format_value(key, m))}</td></tr>"
            for key, label, _ in rows
        )
        parts.append(f"<table><caption>{escape(group)}</caption>{cells}</table>")
    parts.append("</div></section>")
    return "".join(parts)


if __name__ == "__main__":  # a live run's redraw, in a process of its own
    write_report(Path(sys.argv[1]))
