"""The tearsheet in the report: rolling Sharpe and volatility as a chart; the worst
drawdowns, returns by year and the figures against the benchmark as tables.

The numbers are ``metrics.json``'s ``tearsheet`` (`tradeloom.reporting.tearsheet`); the
rolling chart draws the series it summarises: those the run handed over
(`RunData.rolling`), else computed again with the same window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tradeloom.reporting.charts import Chart, escape, layout, line, naive_times
from tradeloom.reporting.idle import Idle, idle_label
from tradeloom.reporting.run_data import RunData
from tradeloom.reporting.tearsheet import bar_returns, rolling_figures

__all__ = ["rolling_chart", "tearsheet_tables"]

_BLUE, _ORANGE = "#2c7fb8", "#fd8d3c"


def rolling_chart(run: RunData) -> Chart | None:
    """Return the rolling Sharpe ratio and volatility (None: no tearsheet in the run)."""
    sheet = run.metrics.get("tearsheet")
    if not isinstance(sheet, Mapping) or len(run.equity) < 2:
        return None
    window = int(sheet["rolling_window_bars"])
    periods = float(sheet["periods_per_year"])
    equity = run.equity["equity"]
    start = float(run.metrics.get("initial_cash") or equity.iloc[0])
    title = "Rolling Sharpe and volatility"
    if len(equity) < window:  # not one full window: every rolling figure would be empty
        note = (
            f"not enough bars: the run has {len(equity):,}, the rolling figures need "
            f"{window:,} ({window / periods * 365:,.0f} days)"
        )
        return Chart(title, [], {}, note)
    given = run.rolling
    if given is not None and given.window == window and given.periods_per_year == periods:
        rolling = given.figures  # the run's own, computed for its metrics
    else:
        rolling = rolling_figures(bar_returns(equity, start), window, periods)
    x = naive_times(run.equity)
    data = [
        line(x, rolling["sharpe"].to_numpy(np.float64), "rolling Sharpe", _BLUE, yaxis="y"),
        line(
            x,
            rolling["volatility"].to_numpy(np.float64) * 100,
            "rolling volatility %",
            _ORANGE,
            yaxis="y2",
        ),
    ]
    fig = layout(
        380,
        yaxis={"title": "Sharpe (ann.)", "domain": [0.55, 1.0], "gridcolor": "#e5e5e5"},
        yaxis2={"title": "volatility % (ann.)", "domain": [0.0, 0.45], "gridcolor": "#e5e5e5"},
        xaxis={"title": "time (UTC)", "anchor": "y2", "gridcolor": "#e5e5e5"},
    )
    days = window / periods * 365
    note = (
        f"over the last {window:,} bars ({days:,.0f} days) at each bar; annualised with "
        f"{periods:,.0f} bars a year, no risk-free rate"
    )
    return Chart(title, data, fig, note, link=True)


def tearsheet_tables(metrics: Mapping[str, Any], idle: Idle | None = None) -> str:
    """Return the worst drawdowns, yearly returns and benchmark figures as HTML tables.

    Args:
        idle: When the run could not trade: a year of it says why instead of +0.00%.
    """
    sheet = metrics.get("tearsheet")
    if not isinstance(sheet, Mapping):
        return ""
    parts = ["<section><h2>Tearsheet</h2><div class='stats'>"]
    parts.append(_drawdowns(sheet.get("drawdowns") or []))
    parts.append(_yearly(sheet.get("yearly_returns") or {}, idle or Idle()))
    parts.append(_versus(sheet))
    parts.append(_tail(sheet))
    parts.append("</div></section>")
    return "".join(parts)


def _drawdowns(rows: list[Mapping[str, Any]]) -> str:
    head = (
        "<tr><th>#</th><th>start</th><th>trough</th><th>recovery</th><th>depth</th>"
        "<th>length</th></tr>"
    )
    body = []
    for i, row in enumerate(rows, 1):
        recovery = _when(row.get("recovery")) if row.get("recovery") else "not recovered"
        # the calendar time from the peak, as the summary's drawdown duration
        length = f"{int(row['bars']):,} bars" + (
            f" ({float(row['days']):,.1f} days)" if row.get("days") is not None else ""
        )
        body.append(
            f"<tr><td>{i}</td><td>{_when(row['start'])}</td><td>{_when(row['trough'])}</td>"
            f"<td>{escape(recovery)}</td><td class='neg'>-{float(row['depth']):.2%}</td>"
            f"<td>{escape(length)}</td></tr>"
        )
    if not body:
        body.append("<tr><td colspan='6'>no drawdown</td></tr>")
    return (
        f"<table class='drawdowns'><caption>Worst drawdowns</caption>{head}{''.join(body)}</table>"
    )


def _yearly(years: Mapping[str, Any], idle: Idle) -> str:
    rows = []
    for year, v in years.items():
        why = idle_label(str(year), None if v is None else float(v), idle)
        if why:
            cell = f"<td class='idle'>{escape(why)}</td>"
        elif v is None:
            cell = "<td></td>"
        else:
            cls = "pos" if v > 0 else "neg" if v < 0 else ""
            cell = f"<td class='{cls}'>{float(v):+.2%}</td>"
        rows.append(f"<tr><th>{escape(year)}</th>{cell}</tr>")
    return f"<table class='yearly'><caption>Returns by year</caption>{''.join(rows)}</table>"


def _versus(sheet: Mapping[str, Any]) -> str:
    def fmt(key: str, form: str) -> str:
        value = sheet.get(key)
        return "-" if value is None else format(float(value), form)

    rolling_sharpe = sheet.get("rolling_sharpe") or {}
    rolling_vol = sheet.get("rolling_volatility") or {}

    def span(summary: Mapping[str, Any], form: str) -> str:
        if summary.get("min") is None:
            return "-"
        return f"{float(summary['min']):{form}} .. {float(summary['max']):{form}}"

    rows = (
        (f"alpha vs {sheet.get('benchmark', 'benchmark')} (ann.)", fmt("alpha", "+.2%")),
        ("beta", fmt("beta", ".3f")),
        ("correlation", fmt("correlation", ".3f")),
        ("rolling Sharpe, range", span(rolling_sharpe, ".2f")),
        ("rolling volatility, range", span(rolling_vol, ".1%")),
    )
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table><caption>Against the benchmark</caption>{cells}</table>"


def _tail(sheet: Mapping[str, Any]) -> str:
    if "var_95" not in sheet:  # a run written before tail figures existed
        return ""

    def fmt(key: str, form: str) -> str:
        value = sheet.get(key)
        return "-" if value is None else format(float(value), form)

    rows = (
        # a bar's loss is small: three decimals, so that -0.004% does not read -0.00%
        ("VaR 95% (historical)", fmt("var_95", "+.3%")),
        ("CVaR 95% (historical)", fmt("cvar_95", "+.3%")),
        ("VaR 95% (normal)", fmt("var_95_normal", "+.3%")),
        ("skew", fmt("skew", ".3f")),
        ("excess kurtosis", fmt("kurtosis", ".3f")),
    )
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='tail'><caption>Tail risk of a bar's return</caption>{cells}</table>"


def _when(value: Any) -> str:
    return escape(str(value)[:16].replace("T", " "))
