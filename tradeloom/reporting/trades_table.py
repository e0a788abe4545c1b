"""The report's table of trades, with a filter per column that tells trades apart.

A universe's or portfolio's trades carry their ``symbol`` (and a portfolio's their
``strategy``): both are columns of the table, and with the side and the exit reason
each gets a menu above it that shows only the matching rows (a few lines of
JavaScript in the page; nothing is fetched). A long run's table holds the first and
the last trades (the trades file has them all).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tradeloom.reporting.charts import escape
from tradeloom.reporting.time_text import time_texts
from tradeloom.tables.grouping import per_distinct

__all__ = ["TRADES_SHOWN", "trades_table"]

TRADES_SHOWN = 2000
"""Trades listed in the page's table; a longer run shows the first and last half of these
(the trades file has them all)."""

_COLUMNS = (
    ("strategy", "strategy"),
    ("symbol", "symbol"),
    ("side", "side"),
    ("entry_time", "entry (UTC)"),
    ("exit_time", "exit (UTC)"),
    ("holding_bars", "bars"),
    ("entry_price", "entry price"),
    ("exit_price", "exit price"),
    ("quantity", "quantity"),
    ("pnl", "P&L"),
    ("return", "return"),
    ("entry_reason", "entry reason"),
    ("exit_reason", "exit reason"),
)
_FILTERED = ("strategy", "symbol", "side", "exit_reason")

_SCRIPT = """<script>
function filterTrades() {
  var menus = document.querySelectorAll('select.trade-filter');
  var shown = 0;
  document.querySelectorAll('table.trades tr.trade').forEach(function (row) {
    var keep = Array.prototype.every.call(menus, function (menu) {
      return !menu.value || row.dataset[menu.dataset.key] === menu.value;
    });
    row.style.display = keep ? '' : 'none';
    shown += keep ? 1 : 0;
  });
  document.getElementById('trades-shown').textContent = shown.toLocaleString() + ' shown';
}
</script>"""


def trades_table(trades: pd.DataFrame, source: str = "trades.csv") -> str:
    """Return the trades section of the page; ``source`` names the file that holds every
    trade (``trades.csv`` or ``trades.parquet``)."""
    n = len(trades)
    if not n:
        return "<section><h2>Trades</h2><p class='note'>no closed trades</p></section>"
    half = TRADES_SHOWN // 2
    rows_shown = [*range(half), *range(n - half, n)] if n > TRADES_SHOWN else list(range(n))
    note = f"{n:,} trades"
    if n > TRADES_SHOWN:
        note = f"{n:,} trades: the first and last {half:,} ({source} has them all)"
    columns = [(k, label) for k, label in _COLUMNS if _has(trades, k)]
    head = "".join(f"<th>{escape(label)}</th>" for _, label in columns)
    # only the rows shown are boxed (an Arrow text column boxes a str per value), and
    # each row is written by one template: its cells' formats, filled a column at a time
    shown = trades.iloc[np.array(rows_shown, dtype=np.intp)]  # one take for every column
    values = {key: shown[key] for key, _ in columns}
    filtered = [k for k in _FILTERED if k in values and trades[k].nunique() > 1]
    template = "<tr class='trade'"
    fields: list[Sequence[object]] = []
    for k in filtered:
        template += f" data-{_data_key(k)}='{{}}'"
        fields.append(per_distinct(values[k], _text))
    template += "><td>{}</td>"
    fields.append([i + 1 for i in rows_shown])
    for key, _ in columns:
        cell, parts = _cells(key, values[key])
        template += cell
        fields.extend(parts)
    rows = list(map(f"{template}</tr>".format, *fields))
    if n > TRADES_SHOWN:
        rows.insert(half, f"<tr><td colspan='{len(columns) + 1}'>...</td></tr>")
    menus = "".join(_menu(k, trades[k]) for k in filtered)
    controls = (
        f"<p class='filters'>{menus} <span id='trades-shown' class='note'></span></p>{_SCRIPT}"
        if filtered
        else ""
    )
    return (
        f"<section><h2>Trades</h2><p class='note'>{escape(note)}</p>{controls}"
        "<div class='scroll'>"
        f"<table class='trades'><tr><th>#</th>{head}</tr>{''.join(rows)}</table></div></section>"
    )


def _has(trades: pd.DataFrame, key: str) -> bool:
    if key not in trades:
        return False
    if key in ("entry_reason",):
        return bool((trades[key].astype(str) != "").any())
    return True


def _data_key(key: str) -> str:
    return key.replace("_", "-")


def _menu(key: str, column: pd.Series) -> str:
    label = key.replace("_", " ")
    options = "".join(
        f"<option value='{escape(v)}'>{escape(v)}</option>"
        for v in sorted(column.astype(str).unique())
    )
    dataset = "".join(p if i == 0 else p.capitalize() for i, p in enumerate(key.split("_")))
    return (
        f"<label>{escape(label)} <select class='trade-filter' data-key='{dataset}' "
        f"onchange='filterTrades()'><option value=''>all</option>{options}</select></label> "
    )


def _cells(key: str, column: pd.Series) -> tuple[str, list[Sequence[object]]]:
    """Return a column's cell as a `str.format` template and the values that fill it,
    one list per field, for the rows shown."""
    if key in ("entry_time", "exit_time"):  # digits and separators: nothing to escape
        texts = time_texts(column.dt.tz_localize(None).to_numpy(), "m", sep=" ")
        if texts is None:  # a year of more (or fewer) than four digits: as pandas writes it
            texts = column.dt.strftime("%Y-%m-%d %H:%M").tolist()
        return "<td>{}</td>", [[text if isinstance(text, str) else "" for text in texts]]
    values = column.to_numpy()
    if key in ("return", "pnl"):
        signs = np.where(values > 0, "pos", "neg").tolist()
        if key == "return":
            return "<td><span class='{}'>{:+.2f}%</span></td>", [signs, (values * 100).tolist()]
        return "<td><span class='{}'>{:+,.2f}</span></td>", [signs, values.tolist()]
    if key in ("entry_price", "exit_price"):
        return "<td>{:,.6g}</td>", [values.tolist()]
    if key == "quantity":
        return "<td>{:.6g}</td>", [values.tolist()]
    return "<td>{}</td>", [per_distinct(column, _text)]


def _text(value: object) -> str:
    """Return a value as escaped text."""
    if isinstance(value, int):  # digits: nothing to escape
        return str(value)
    return escape(value)
