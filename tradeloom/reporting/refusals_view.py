"""The report's refusals: one table by code and purpose, and the chart by code.

Both are drawn from ``metrics.json``'s ``refusals`` (`tradeloom.reporting.refusals`),
the table every surface shows: a row per stage and code, a column per purpose (the order
reason of what was refused), the exits refused marked (a protective one, a stop's, the
more so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloom.reporting.charts import Chart, escape, layout
from tradeloom.reporting.refusals import STAGES, RefusalRow, RefusalTable

__all__ = ["reasons_chart", "refusals_table"]

_COLORS = {"rejected": "#d73027", "cut": "#fd8d3c", "cancelled": "#7b3294", "exits": "#2c7fb8"}


def refusals_table(m: Mapping[str, Any]) -> str:
    """Return the section of the run's refusals by stage, code and purpose; a run without
    any says so."""
    table = RefusalTable.of_metrics(m)
    head = (
        "<section id='refusals'><h2>Refusals by code and purpose</h2><p class='note'>"
        "Every intent or order that did not do what it was for: rejected by the risk "
        "layer, cut by the venue's cash or minimum, or cancelled short (no venue could "
        "take it, never sent, refused by the venue); by the purpose of what was refused. "
        "<span class='exit'>Marked</span>: exits that left open the position they were to "
        "close.</p>"
    )
    if not table.rows:
        return head + "<p id='no-refusals'>None: nothing was refused.</p></section>"
    purposes = sorted({r.purpose for r in table.rows}, key=lambda p: (-_total(table, p), p))
    cells: dict[tuple[str, str], dict[str, RefusalRow]] = {}
    for r in table.rows:
        cells.setdefault((r.stage, r.code), {})[r.purpose] = r
    ranked = sorted(
        cells.items(),
        key=lambda item: (
            STAGES.index(item[0][0]),
            -sum(r.count for r in item[1].values()),
            item[0][1],
        ),
    )
    header = "".join(f"<th>{escape(p)}</th>" for p in purposes)
    rows = []
    for (stage, code), by_purpose in ranked:
        total = sum(r.count for r in by_purpose.values())
        tds = "".join(_cell(by_purpose.get(p)) for p in purposes)
        rows.append(
            f"<tr><td>{escape(stage)}</td><td>{escape(code)}</td><td>{total:,}</td>{tds}</tr>"
        )
    return (
        head + "<div class='scroll'><table class='refusals'><tr><th>stage</th><th>code</th>"
        f"<th>total</th>{header}</tr>{''.join(rows)}</table></div></section>"
    )


def reasons_chart(m: Mapping[str, Any]) -> Chart | None:
    """Return the bars of the refusals by stage and code, and the exits by reason (None:
    neither)."""
    table = RefusalTable.of_metrics(m)
    exits = m.get("exits") or {}
    groups = [(stage, table.by_code(stage)) for stage in STAGES]
    groups.append(("exits", dict(exits)))
    groups = [(name, counts) for name, counts in groups if counts]
    if not groups:
        return None
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "x": list(counts.values()),
            "y": [f"{name}: {k}" for k in counts],
            "marker": {"color": _COLORS[name]},
        }
        for name, counts in groups
    ]
    rows = sum(len(counts) for _, counts in groups)
    fig = layout(80 + 28 * rows, xaxis={"title": "count", "gridcolor": "#e5e5e5"})
    longest = max(len(f"{name}: {k}") for name, counts in groups for k in counts)
    fig["margin"] = {**fig["margin"], "l": 50 + 7 * longest}  # the codes, then the title
    fig["yaxis"] = {"title": "code or reason", "autorange": "reversed"}
    return Chart("Refusals by code, exits by reason", data, fig)


def _cell(row: RefusalRow | None) -> str:
    if row is None:
        return "<td></td>"
    kind = " class='exit protective'" if row.protective else " class='exit'" if row.exit else ""
    return f"<td{kind}>{row.count:,}</td>"


def _total(table: RefusalTable, purpose: str) -> int:
    return sum(r.count for r in table.rows if r.purpose == purpose)
