"""A run's figures as a pandas Series in a tearsheet's order (`tradeloom.Run.stats`).

``metrics.json`` is written with its keys sorted, so that ``sharpe`` sits a hundred rows
down between ``rejections`` and ``short_trades``. `run_stats` orders its figures as the
report's statistics read (`tradeloom.reporting.labels.STATISTICS`): the returns first
(total return, CAGR, Sharpe, Sortino, max drawdown...), then the risk of the tearsheet
(`tradeloom.reporting.tearsheet`), the trades, the model and the run, returns by year and
by month, and every other figure after them in the file's order. A nested figure is
under its dotted key (``tearsheet.beta``); each value is the file's, as it is (a number
stays a number).

In Jupyter the Series shows itself as the report's tables (`stats_html`): a section per
group, each figure with its label, its value as the report prints it and its key, the
long sections folded away.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from html import escape
from typing import Any

import pandas as pd

from tradeloom.reporting.labels import STATISTICS, format_value, label_of

__all__ = ["SECTIONS", "Stats", "flat_metrics", "run_stats", "stats_html"]

_Format = Callable[[Any], str]


def _pct(value: float) -> str:
    return f"{value:+.2%}"


def _fixed(places: int, sign: str = "") -> _Format:
    return lambda value: f"{value:{sign}.{places}f}"


_TEARSHEET: tuple[tuple[str, str, _Format], ...] = (
    ("tearsheet.alpha", "alpha (ann.)", _pct),
    ("tearsheet.beta", "beta", _fixed(3)),
    ("tearsheet.correlation", "correlation", _fixed(3)),
    ("tearsheet.benchmark", "benchmark", str),
    # a bar's loss is small: three decimals, as the report's tail table prints it
    ("tearsheet.var_95", "VaR 95% (historical)", lambda v: f"{v:+.3%}"),
    ("tearsheet.cvar_95", "CVaR 95% (historical)", lambda v: f"{v:+.3%}"),
    ("tearsheet.var_95_normal", "VaR 95% (normal)", lambda v: f"{v:+.3%}"),
    ("tearsheet.skew", "skew", _fixed(3)),
    ("tearsheet.kurtosis", "excess kurtosis", _fixed(3)),
    ("tearsheet.rolling_sharpe.last", "rolling Sharpe, last", _fixed(2)),
    ("tearsheet.rolling_sharpe.min", "rolling Sharpe, min", _fixed(2)),
    ("tearsheet.rolling_sharpe.median", "rolling Sharpe, median", _fixed(2)),
    ("tearsheet.rolling_sharpe.max", "rolling Sharpe, max", _fixed(2)),
    ("tearsheet.rolling_volatility.last", "rolling volatility, last", lambda v: f"{v:.1%}"),
    ("tearsheet.rolling_volatility.min", "rolling volatility, min", lambda v: f"{v:.1%}"),
    ("tearsheet.rolling_volatility.median", "rolling volatility, median", lambda v: f"{v:.1%}"),
    ("tearsheet.rolling_volatility.max", "rolling volatility, max", lambda v: f"{v:.1%}"),
    ("tearsheet.rolling_window_bars", "rolling window (bars)", lambda v: f"{int(v):,}"),
)
"""The tearsheet's figures (``metrics.json``'s ``tearsheet``), labelled and printed as
the report's tearsheet tables print them (`tradeloom.reporting.tearsheet_view`)."""


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _time(value: str) -> str:
    return str(value)[:16].replace("T", " ")


_RUN: tuple[tuple[str, str, _Format], ...] = (
    ("avg_win", "average win", _money),
    ("avg_loss", "average loss", _money),
    ("open_position", "open at the end", lambda v: f"{v:+.8g}"),
    ("open_position_entry_time", "entered at", _time),
    ("open_position_entry_price", "entry price", lambda v: f"{v:,.8g}"),
    ("open_position_pnl", "unrealized P&L", lambda v: f"{v:+,.2f}"),
    ("unfilled_orders", "unfilled orders", lambda v: f"{int(v):,}"),
    ("strategy", "strategy", str),
    ("mode", "mode", str),
    ("symbol", "symbol", str),
    ("symbols", "symbols", lambda v: ", ".join(map(str, v))),
    ("timeframe", "timeframe", str),
    ("calendar", "calendar", str),
    ("periods_per_year", "bars a year", lambda v: f"{v:,.6g}"),
    ("start", "first bar", _time),
    ("end", "last bar", _time),
    ("initial_cash", "initial cash", _money),
    ("halt", "halt", str),
    ("health", "health at the end", str),
    ("health_worst", "health at worst", str),
    ("tables", "per-bar tables", str),
    ("run_dir", "run directory", str),
)
"""Figures of ``metrics.json`` that the report's statistics table does not print."""

_GROUP_KEYS = {group: tuple(key for key, _, _ in rows) for group, rows in STATISTICS}
_RUN_KEYS = tuple(key for key, _, _ in _RUN)

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Returns", _GROUP_KEYS["Returns"]),
    ("Risk", tuple(key for key, _, _ in _TEARSHEET)),
    (
        "Trades",
        (
            *_GROUP_KEYS["Trades"],
            *_RUN_KEYS[: _RUN_KEYS.index("strategy")],
            "exits.",
            "rejections.",
            "cut_orders.",
        ),
    ),
    (
        "Model and run",
        (
            *_GROUP_KEYS["Model and run"],
            *_RUN_KEYS[_RUN_KEYS.index("strategy") :],
        ),
    ),
    ("Returns by year", ("yearly_returns.",)),
    ("Returns by month", ("monthly_returns.",)),
)
"""The sections of `run_stats`, in order, each its keys in order; a key ending in ``.``
takes every figure under it (``exits.EXIT_SIGNAL``), in the file's order. The figures
of no section follow, under ``More``."""

_MORE = "More"
_FOLDED = frozenset({"Returns by month", _MORE})
"""The sections Jupyter shows folded (`stats_html`): long, and read less often."""

_FORMATS: dict[str, _Format] = {key: fmt for key, _, fmt in (*_TEARSHEET, *_RUN)}
_LABELS: dict[str, str] = {key: label for key, label, _ in (*_TEARSHEET, *_RUN)}
_STATISTICS = frozenset(key for _, rows in STATISTICS for key, _, _ in rows)
_COUNTS = ("exits.", "rejections.", "cut_orders.")
_BY_PERIOD = ("yearly_returns.", "monthly_returns.", "tearsheet.yearly_returns.")
_TEXT_CHARS = 80


class Stats(pd.Series):
    """A run's figures (`run_stats`): a pandas Series whose HTML in Jupyter is the report's
    tables (`stats_html`). Indexing, selecting and every Series method work as on any
    Series; a selection (``stats[["sharpe", "trades"]]``) shows itself the same way."""

    @property
    def _constructor(self) -> type[Stats]:
        return Stats

    @property
    def _constructor_expanddim(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str:
        return stats_html(self)


def flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield each figure of ``metrics`` under its dotted key (``tearsheet.beta``); an
    empty mapping is a figure of its own."""
    for key, value in metrics.items():
        if isinstance(value, Mapping) and value:
            yield from flat_metrics(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def run_stats(metrics: Mapping[str, Any], name: str | None = None) -> Stats:
    """Return every figure of ``metrics`` as a `Stats` Series, in the sections' order.

    Args:
        metrics: A run's ``metrics.json``.
        name: The Series' name (the strategy's).
    """
    flat = dict(flat_metrics(metrics))
    order = [key for _, keys in _sections(flat) for key in keys]
    return Stats([flat[key] for key in order], index=order, dtype=object, name=name)


def _sections(flat: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """Return the keys of ``flat`` by section (`SECTIONS`, then ``More``), in order."""
    taken: set[str] = set()
    found: list[tuple[str, list[str]]] = []
    for section, wanted in SECTIONS:
        keys: list[str] = []
        for want in wanted:
            if want.endswith("."):
                keys.extend(k for k in flat if k.startswith(want) and k not in taken)
            elif want in flat and want not in taken:
                keys.append(want)
            # an empty mapping under a prefix (``exits: {}``) is a figure of its own
            if want.endswith(".") and want[:-1] in flat and want[:-1] not in taken:
                keys.append(want[:-1])
            taken.update(keys)
        found.append((section, keys))
    found.append((_MORE, [k for k in flat if k not in taken]))
    return [(section, keys) for section, keys in found if keys]


def stats_html(stats: pd.Series) -> str:
    """Return a run's figures as HTML tables: a section each, a row per figure (its label,
    its value as the report prints it, its key); the long sections folded."""
    values = {str(k): v for k, v in stats.items()}
    shown: list[tuple[str, int, str]] = []
    folded: list[tuple[str, int, str]] = []
    for section, keys in _sections(values):
        rows = "".join(_row(key, values) for key in keys)
        table = (
            "<table style='border-collapse:collapse;margin:0'>"
            "<caption style='text-align:left;font-weight:600;padding:4px 0'>"
            f"{escape(section)}</caption>{rows}</table>"
        )
        (folded if section in _FOLDED else shown).append((section, len(keys), table))
    title = escape(str(stats.name)) if stats.name is not None else "figures"
    parts = [
        f"<div class='tradeloom-stats'><p style='margin:4px 0'><b>{title}</b> "
        f"&middot; {len(values):,} figures</p>",
        _flex(table for _, _, table in shown),
    ]
    if folded:
        what = ", ".join(f"{escape(section.lower())} ({count:,})" for section, count, _ in folded)
        parts.append(
            f"<details><summary style='cursor:pointer'>{what}</summary>"
            f"{_flex(table for _, _, table in folded)}</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _flex(tables: Iterator[str] | Any) -> str:
    return (
        "<div style='display:flex;flex-wrap:wrap;gap:8px 32px;align-items:flex-start'>"
        + "".join(tables)
        + "</div>"
    )


def _row(key: str, values: Mapping[str, Any]) -> str:
    cell = "padding:1px 12px 1px 0;text-align:"
    label = _label(key)
    # the key a figure is read by (stats["sharpe"]), unless it is its label already
    shown = "" if label == key else f"<code>{escape(key)}</code>"
    return (
        f"<tr><th style='{cell}left;font-weight:400'>{escape(label)}</th>"
        f"<td style='{cell}right;font-variant-numeric:tabular-nums'>"
        f"{escape(_value(key, values[key]))}</td>"
        f"<td style='{cell}left;color:#888'>{shown}</td></tr>"
    )


def _label(key: str) -> str:
    if key in _LABELS:
        return _LABELS[key]
    if key.startswith(_BY_PERIOD):
        return key.rsplit(".", 1)[1]  # 2024, 2024-03
    if key.startswith(_COUNTS):
        group, _, code = key.partition(".")
        return f"{group.replace('_', ' ')}: {code}"
    return label_of(key) if key in _STATISTICS else key


def _value(key: str, value: Any) -> str:
    """Return a figure as the report prints it (`format_value`), a return by period as a
    signed percentage, any other as its text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if key in _STATISTICS:  # a figure of the report's statistics table
        return format_value(key, {key: value})
    if key in _FORMATS or key.startswith(_BY_PERIOD):
        fmt = _FORMATS.get(key, _pct)
        try:
            return fmt(value)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, Mapping | list) and not value:
        return "none"
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return text if len(text) <= _TEXT_CHARS else text[: _TEXT_CHARS - 3] + "..."
    return f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"
