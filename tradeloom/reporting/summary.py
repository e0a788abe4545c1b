"""The readable summary printed at the end of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["format_summary"]

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("bars", "bars", "{:,}"),
    ("period", "period", "{}"),
    ("total_return", "total return", "{:+.2%}"),
    ("cagr", "CAGR", "{:+.2%}"),
    ("sharpe", "Sharpe (ann.)", "{:.2f}"),
    ("sortino", "Sortino (ann.)", "{:.2f}"),
    ("max_drawdown", "max drawdown", "{:.2%}"),
    ("trades", "trades", "{:,}"),
    ("win_rate", "win rate", "{:.1%}"),
    ("exposure", "exposure", "{:.1%}"),
    ("fees", "fees", "{:,.2f}"),
    ("final_equity", "final equity", "{:,.2f}"),
    ("auc", "AUC (all predictions)", "{:.4f}"),
    ("health", "health", "{}"),
    ("halt", "halt", "{}"),
    ("run_dir", "run directory", "{}"),
)


_SHOWN_RETRAINS = 5
"""Retrains listed one per line; the rest are counted (metrics.json lists them all)."""


def format_summary(metrics: Mapping[str, Any]) -> str:
    """Return a two-column table of the main figures of a run.

    With health rules, it also says how often they fired and, when the model was
    retrained, when and why (the first few retrains, one per line).
    """
    lines = [f"tradeloom backtest: {metrics.get('strategy', '?')}"]
    rows: list[tuple[str, str]] = []
    for key, label, fmt in _ROWS:
        value = metrics.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            text = "-"
        else:
            text = fmt.format(value)
        rows.append((label, text))
        if key == "halt":
            rows.extend(_health_rows(metrics))
    width = max(len(label) for label, _ in rows)
    lines.extend(f"  {label:<{width}}  {text}" for label, text in rows)
    return "\n".join(lines)


def _health_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    rules = metrics.get("health_actions") or []
    if not rules:
        return []
    fired: dict[str, int] = {}
    for rule in rules:
        fired[rule["action"]] = fired.get(rule["action"], 0) + rule["fired"]
    total = sum(fired.values())
    detail = ", ".join(f"{n} {action}" for action, n in fired.items() if n)
    rows = [("health actions", f"{total}" + (f" ({detail})" if detail else ""))]
    retrains = metrics.get("retrains") or []
    rows.append(("model retrains", f"{len(retrains)}"))
    for retrain in retrains[:_SHOWN_RETRAINS]:
        when = retrain["timestamp"][:16].replace("T", " ")
        rows.append((f"  at {when}", retrain["reason"]))
    if len(retrains) > _SHOWN_RETRAINS:
        rows.append(("  ...", f"{len(retrains) - _SHOWN_RETRAINS} more in metrics.json"))
    return rows
