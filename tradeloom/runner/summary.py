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


def format_summary(metrics: Mapping[str, Any]) -> str:
    """Return a two-column table of the main figures of a run."""
    lines = [f"tradeloom backtest: {metrics.get('strategy', '?')}"]
    width = max(len(label) for _, label, _ in _ROWS)
    for key, label, fmt in _ROWS:
        value = metrics.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            text = "-"
        else:
            text = fmt.format(value)
        lines.append(f"  {label:<{width}}  {text}")
    return "\n".join(lines)
