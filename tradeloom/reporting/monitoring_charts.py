"""The report's monitoring charts: each monitor's figures against its health thresholds,
and the drift (PSI) of every feature over time as a heatmap.

Both read ``monitoring.parquet``: one column per monitor and metric, and for a drift
monitor one column per feature (``<monitor>.psi.<column>``); over a universe, one per
symbol's monitor (``<monitor>[<symbol>].<metric>``, `tradeloom.reporting.monitor_labels`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tradeloom.reporting.charted import charted_note
from tradeloom.reporting.charts import Chart, layout, line, naive_times
from tradeloom.reporting.monitor_labels import split_column
from tradeloom.reporting.price_chart import charted_symbols, symbol_menu
from tradeloom.reporting.run_data import RunData

__all__ = ["DRIFT_COLUMNS_SHOWN", "drift_chart", "hline", "legend_only", "monitoring_chart"]

_GREEN, _RED, _BLUE, _GREY, _ORANGE = "#1a9850", "#d73027", "#2c7fb8", "#969696", "#fd8d3c"
_CHARTED_METRICS = ("auc", "brier", "psi_max")
"""Monitor metrics always charted; any other is charted when a health rule reads it (every
metric of every monitor is in monitoring.parquet)."""

DRIFT_COLUMNS_SHOWN = 400
"""Time buckets of the drift heatmap at most: each cell is the largest PSI of its bars."""


def hline(level: float, color: str, yref: str = "y") -> dict[str, Any]:
    """Return a dashed horizontal line across the plot at ``level``."""
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


def legend_only(name: str, color: str) -> dict[str, Any]:
    """Return a trace with no points: a legend entry for a line drawn as a shape."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [None],
        "y": [None],
        "name": name,
        "line": {"color": color, "dash": "dash"},
    }


def monitoring_chart(run: RunData) -> Chart | None:
    """Return each charted monitor metric in a panel of its own, with its thresholds.

    Over a universe a panel is a monitor's metric, not a symbol's: a menu shows one
    symbol's lines at a time, so the page keeps its panels whatever the symbols.
    """
    frame = run.monitoring
    if frame is None:
        return None
    watched = _watched(run.strategy)
    columns = [
        c
        for c in frame.columns
        if (split_column(c)[2] in _CHARTED_METRICS or _rule_metric(c) in watched)
        and frame[c].notna().any()
    ]
    if not columns:
        return None
    by_symbol: dict[str, list[str]] = {}
    for column in columns:
        by_symbol.setdefault(split_column(column)[1], []).append(column)
    everyone = list(by_symbol)
    if everyone != [""]:  # a universe's monitors: the charted symbols'
        charted = set(charted_symbols(run, everyone))
        by_symbol = {s: c for s, c in by_symbol.items() if s in charted}
        columns = [c for s in by_symbol for c in by_symbol[s]]
    if list(by_symbol) == [""]:
        panels = {column: [column] for column in columns}
    else:  # a universe: a panel per monitor and metric, a line per symbol
        panels = {}
        for column in columns:
            name, _, metric = split_column(column)
            panels.setdefault(f"{name}.{metric}", []).append(column)
    x = naive_times(frame)
    rows = len(panels)
    gap = min(0.06, 0.3 / max(rows - 1, 1))  # the gaps take at most 30% of the height
    height = (1.0 - gap * (rows - 1)) / rows
    lines: dict[str, dict[str, Any]] = {}
    legend: list[list[dict[str, Any]]] = []
    shapes: list[dict[str, Any]] = []
    fig = layout(180 * rows + 60)
    colors = (_BLUE, _ORANGE, "#6a3d9a", _GREEN, "#b15928", _GREY)
    for i, (title, members) in enumerate(panels.items()):
        axis = "y" if i == 0 else f"y{i + 1}"
        top = 1.0 - i * (height + gap)
        fig["yaxis" if i == 0 else f"yaxis{i + 1}"] = {
            "title": {"text": title, "font": {"size": 11}},
            "tickformat": ".4~g",
            "domain": [max(0.0, top - height), min(1.0, top)],  # float residue: -5.6e-17
            "gridcolor": "#e5e5e5",
        }
        for column in members:
            values = frame[column].to_numpy(np.float64)
            lines[column] = line(x, values, column, colors[i % len(colors)], yaxis=axis)
        levels = _health_levels(run.strategy, members[0])
        shapes.extend(hline(level, color, axis) for level, _, color in levels)
        legend.append([legend_only(f"{title} {name}", color) for _, name, color in levels])
    fig["shapes"] = shapes
    fig["xaxis"] = {
        "title": {"text": "time (UTC)"},
        "anchor": f"y{rows}" if rows > 1 else "y",
        "gridcolor": "#e5e5e5",
    }
    if list(by_symbol) == [""]:  # each panel's line, then its thresholds' legend
        data = [
            t
            for column, levels in zip(columns, legend, strict=True)
            for t in (lines[column], *levels)
        ]
        return Chart("Monitoring and the health thresholds", data, fig, link=True)
    symbols = list(by_symbol)
    data = [
        lines[column] if k == 0 else dict(lines[column], visible=False)
        for k, symbol in enumerate(symbols)
        for column in by_symbol[symbol]
    ]
    thresholds = [t for levels in legend for t in levels]  # shown whichever symbol is chosen
    menu = symbol_menu(symbols, [len(by_symbol[s]) for s in symbols])
    menu["buttons"] = [
        {**b, "args": [{"visible": b["args"][0]["visible"] + [True] * len(thresholds)}]}
        for b in menu["buttons"]
    ]
    fig["updatemenus"] = [menu]
    note = f"one symbol at a time ({len(symbols)}; menu, top right)"
    if len(symbols) < len(everyone):
        note = f"{charted_note(len(symbols), len(everyone))}; {note}"
    return Chart("Monitoring and the health thresholds", data + thresholds, fig, note, link=True)


def drift_chart(run: RunData) -> Chart | None:
    """Return the PSI of each feature over time (a drift monitor's per-feature metrics)."""
    frame = run.monitoring
    if frame is None:
        return None
    columns = [c for c in frame.columns if ".psi." in c and frame[c].notna().any()]
    if not columns:
        return None
    times = naive_times(frame)
    values = frame[columns].to_numpy(np.float64)
    n = len(values)
    size = max(1, -(-n // DRIFT_COLUMNS_SHOWN))
    buckets = -(-n // size)
    padded = np.full((buckets * size, len(columns)), np.nan)
    padded[:n] = values
    with np.errstate(all="ignore"):
        blocks = padded.reshape(buckets, size, len(columns))
        seen = ~np.isnan(blocks).all(axis=1)
        z = np.where(seen, np.max(np.where(np.isnan(blocks), -np.inf, blocks), axis=1), np.nan)
    names = [c.split(".psi.", 1)[1] for c in columns]
    order = np.argsort(-np.nanmax(np.where(np.isnan(z), -np.inf, z), axis=0))  # worst on top
    data = [
        {
            "type": "heatmap",
            "x": times[::size],
            "y": [names[i] for i in order],
            "z": z[:, order].T,
            "zmin": 0.0,
            "zmax": max(0.25, float(np.nanmax(z)) if np.isfinite(z).any() else 0.25),
            "colorscale": [[0, "#ffffff"], [0.4, "#fee08b"], [1, _RED]],
            "colorbar": {"title": {"text": "PSI"}},
            "hovertemplate": "%{y}<br>%{x}<br>PSI %{z:.3f}<extra></extra>",
        }
    ]
    fig = layout(
        60 + 24 * len(columns),
        yaxis={"title": "feature", "type": "category", "autorange": "reversed"},
        xaxis={"title": "time (UTC)"},
    )
    fig["margin"] = {**fig["margin"], "l": 50 + 7 * max(len(n) for n in names)}
    note = "PSI of each feature's recent window against its training window; worst at the top"
    if size > 1:
        note += f"; each cell is the largest PSI of its {size} bars"
    return Chart("Drift per feature (PSI)", data, fig, note, link=True)


def _watched(strategy: Mapping[str, Any]) -> set[str]:
    rules = strategy.get("health") or []
    return {str(r.get("metric")) for r in rules if isinstance(r, Mapping)}


def _rule_metric(column: str) -> str:
    """Return the ``<monitor>.<metric>`` a health rule names for a column (any symbol's)."""
    name, _, metric = split_column(column)
    return f"{name}.{metric}"


def _health_levels(strategy: Mapping[str, Any], column: str) -> list[tuple[float, str, str]]:
    """Return the thresholds drawn on a monitor's metric: its own and the health rules'."""
    monitor = split_column(column)[0]
    metric = _rule_metric(column)
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
        if isinstance(rule, Mapping) and rule.get("metric") == metric:
            for key in ("above", "below"):
                if isinstance(rule.get(key), int | float):
                    name = f"{rule.get('action')} when {key} {rule[key]:g}"
                    levels.append((float(rule[key]), name, _RED))
    return levels
