"""The report's execution-quality table: one row per venue and order type, then the totals.

It shows ``metrics.json``'s ``execution_quality`` block
(`tradeloom.reporting.execution_quality`); a run written before the block existed is
measured from its journal when the report is made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from typing import Any

from tradeloom.errors import UserError
from tradeloom.journal import JournalError, journal_path
from tradeloom.reporting.execution_quality import journal_execution_quality
from tradeloom.reporting.labels import format_duration
from tradeloom.reporting.run_data import RunData

__all__ = ["execution_block", "execution_table"]

_COLUMNS = (
    ("orders", "orders", "count"),
    ("fill_ratio", "fill ratio", "percent"),
    ("shortfall_bps", "shortfall (bps)", "bps"),
    ("fee_bps", "fees (bps)", "bps"),
    ("total_cost_bps", "total cost (bps)", "bps"),
    ("maker_share", "maker share", "percent"),
    ("bars_to_first_fill", "bars to first fill (median / p90)", "quantiles"),
    ("bars_to_last_fill", "bars to last fill (median / p90)", "quantiles"),
    ("seconds_to_first_fill", "time to first fill (median / p90)", "durations"),
)


def execution_block(run: RunData) -> Mapping[str, Any] | None:
    """Return the run's ``execution_quality`` block (None: no orders were journaled).

    Raises:
        UserError: The journal of a run without the block cannot be read.
    """
    block = run.metrics.get("execution_quality")
    if isinstance(block, Mapping):
        return block
    path = journal_path(run.run_dir)
    if not path.exists():
        return None
    try:
        return journal_execution_quality(path, run.strategy)
    except JournalError as exc:
        raise UserError(str(exc)) from None


def execution_table(block: Mapping[str, Any] | None) -> str:
    """Return the section of the report that shows ``block`` ('' when nothing was ordered)."""
    if not block or not block.get("overall", {}).get("orders"):
        return ""
    head = "".join(f"<th>{escape(label)}</th>" for _, label, _ in _COLUMNS)
    rows = [_row(g["venue"], g["order_type"], g) for g in block.get("groups", [])]
    venues = block.get("by_venue", [])
    if len(venues) > 1:
        rows += [_row(v["venue"], "all", v, "total") for v in venues]
    types = block.get("by_order_type", [])
    if len(types) > 1 and len(venues) > 1:
        rows += [_row("all", t["order_type"], t, "total") for t in types]
    rows.append(_row("all", "all", block["overall"], "total"))
    return (
        "<section id='execution-quality'><h2>Execution quality</h2><p class='note'>"
        "Costs against the decision price, positive = cost; fees against the same notional. "
        "Quantity-weighted; time to fill over orders.</p><div class='scroll'>"
        f"<table class='execution'><tr><th>venue</th><th>order type</th>{head}</tr>"
        f"{''.join(rows)}</table></div></section>"
    )


def _row(venue: str, order_type: str, figures: Mapping[str, Any], cls: str = "") -> str:
    cells = "".join(f"<td>{_shown(figures.get(key), kind)}</td>" for key, _, kind in _COLUMNS)
    style = f" class='{cls}'" if cls else ""
    return f"<tr{style}><td>{escape(venue)}</td><td>{escape(order_type)}</td>{cells}</tr>"


def _shown(value: Any, kind: str) -> str:
    if kind == "quantiles":
        if not isinstance(value, Mapping):
            return "&ndash;"
        return f"{_number(value.get('median'), '.4g')} / {_number(value.get('p90'), '.4g')}"
    if kind == "durations":
        if not isinstance(value, Mapping):
            return "&ndash;"
        return " / ".join(_duration(value.get(q)) for q in ("median", "p90"))
    if kind == "count":
        return f"{int(value or 0):,}"
    if kind == "percent":
        return _number(None if value is None else 100.0 * float(value), ".1f", "%")
    return _number(value, "+.2f")


def _duration(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    return escape(format_duration(float(value)))


def _number(value: Any, spec: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    return f"{float(value):{spec}}{suffix}"
