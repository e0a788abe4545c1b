"""The readable summary printed at the end of a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradeloom.reporting.labels import (
    allocation_value,
    format_price,
    format_value,
    label_of,
    short_run,
)
from tradeloom.reporting.refusals import RefusalTable, exits_warning, refusal_lines

__all__ = ["format_summary"]

_ROWS: tuple[str, ...] = (
    "bars",
    "period",
    "total_return",
    "buy_and_hold_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_days",
    "trades",
    "win_rate",
    "avg_trade_return",
    "best_trade",
    "worst_trade",
    "profit_factor",
    "expectancy",
    "sqn",
    "avg_holding_seconds",
    "exposure",
    "turnover",
    "fees",
    "realism",
    "fills_from",
    "final_equity",
    "open_position",
    "exits",
    "refusals",
    "allocation",
    "auc",
    "health",
    "halt",
    "tables",
    "run_dir",
)
"""Figures shown, in order; labels and formats come from `tradeloom.reporting.labels`."""

_SHOWN_RETRAINS = 5
"""Retrains listed one per line; the rest are counted (metrics.json lists them all)."""


def format_summary(metrics: Mapping[str, Any]) -> str:
    """Return a two-column table of the main figures of a run.

    It names the position still open at the end, the exits by reason and the run's
    refusals by code and purpose (`tradeloom.reporting.refusals`), with a warning line
    when exits were refused; health is the monitors' status at the end with the worst one
    reached, so that a halt for health never sits beside a bare ``HEALTHY``; a model that
    never trained makes it CRITICAL, with a warning line that says why. With
    health rules, it also says how often they fired and, when the model was
    retrained, when and why (the first few retrains, one per line). Over several
    symbols, one line per symbol gives its P&L, fees, exposure, trades and open
    position (``attribution``); for a portfolio file, one line per strategy first
    (``attribution_by_strategy``, with its weight at the end).
    """
    lines = [f"tradeloom backtest: {metrics.get('strategy', '?')}"]
    rows: list[tuple[str, str]] = []
    for key in _ROWS:
        if key == "tables" and key not in metrics:  # a paper run's: CSV, always
            continue
        if key in ("realism", "fills_from"):  # execution.realism's profile, fill: book's
            if metrics.get(key):
                rows.append((key.replace("_", " "), str(metrics[key])))
            continue
        if key == "refusals":
            rows.extend(_refusal_rows(metrics))
            continue
        if key == "allocation":
            rows.extend(_allocation_rows(metrics))
            continue
        rows.append(_row(key, metrics))
        if key == "fees" and "funding" in metrics:  # a perpetual's
            rows.append(_row("funding", metrics))
        if key == "health" and metrics.get("model_never_trained"):
            rows.append(("warning", str(metrics["model_never_trained"])))
        if key == "health" and metrics.get("calibration_warning"):
            rows.append(("warning", str(metrics["calibration_warning"])))
        if key == "health" and metrics.get("sides_warning"):
            rows.append(("warning", str(metrics["sides_warning"])))
        if key == "health" and metrics.get("text_leakage_warning"):
            rows.append(("warning", str(metrics["text_leakage_warning"])))
        if key == "halt":
            rows.extend(_health_rows(metrics))
        short = short_run(metrics) if key == "calmar" else None
        if short is not None:  # the four figures above extrapolate a short run to a year
            text = (
                f"the figures above extrapolate {short[0]:,} bars ({short[1]:,.1f} days) to a year"
            )
            rows.append(("  short run", text))
        if key == "final_equity":
            rows.extend(_symbol_rows(metrics.get("attribution_by_strategy") or {}, "strategy "))
        if key == "final_equity" and metrics.get("symbols"):
            rows.extend(_symbol_rows(metrics.get("attribution") or {}))
    width = max(len(label) for label, _ in rows)
    lines.extend(f"  {label:<{width}}  {text}" for label, text in rows)
    return "\n".join(lines)


def _allocation_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The allocator, its rebalances, and those that failed or were late (each kept the
    last feasible weights); nothing without an allocation layer."""
    figures = metrics.get("allocation")
    if not figures:
        return []
    failed = int(figures.get("failed", 0))
    by_status = figures.get("failed_by_status") or {}
    why = f" ({_counts(by_status)})" if by_status else ""
    text = (
        f"{figures.get('allocator', '?')}: {int(figures.get('rebalances', 0)):,} rebalances, "
        f"{failed:,} failed{why}, {int(figures.get('late', 0)):,} late"
    )
    rows = [("allocation", text)]
    if failed:
        rows.append(("  failed", "each kept the last feasible weights (allocation_decided)"))
    if "mean_turnover" in figures:
        moved = (
            f"{allocation_value('mean_turnover', metrics)} of the equity a rebalance (mean), "
            f"{allocation_value('total_turnover', metrics)} in all"
        )
        rows.append(("  turnover", moved))
    if "refused_orders" in figures:
        rows.append(("  orders refused", allocation_value("refused_orders", metrics)))
    return rows


def _row(key: str, metrics: Mapping[str, Any]) -> tuple[str, str]:
    if key == "run_dir":
        return "run directory", str(metrics.get(key, "-"))
    if key == "open_position":
        return "open at the end", _open_position(metrics)
    if key == "exits":
        return "exits by reason", _counts(metrics.get(key) or {})
    if key == "health":
        return "health", _health(metrics)
    if key == "halt":
        halt = metrics.get("halt")
        return "halt", f"{halt} (no new positions after it)" if halt else "-"
    if key == "tables":
        return "per-bar tables", _tables(str(metrics[key]))
    return label_of(key), format_value(key, metrics)


def _refusal_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    table = RefusalTable.of_metrics(metrics)
    rows = refusal_lines(table)
    warning = exits_warning(table)
    if warning is not None:
        rows.append(("WARNING", warning))
    return rows


def _symbol_rows(
    attribution: Mapping[str, Mapping[str, Any]], kind: str = ""
) -> list[tuple[str, str]]:
    rows = []
    for symbol, a in attribution.items():
        text = (
            f"P&L {a['pnl']:+,.2f}, fees {a['fees']:,.2f}, "
            f"mean gross exposure {a['exposure']:.2%}, "
            f"{a['trades']} trades"
        )
        if a.get("open_position"):
            text += f", open {a['open_position']:+.8g}"
        if "weight" in a:
            text += f", weight {a['weight']:.2%}"
        rows.append((f"  {kind}{symbol}", text))
    return rows


def _open_position(metrics: Mapping[str, Any]) -> str:
    if metrics.get("symbols"):
        attribution = metrics.get("attribution") or {}
        if any(a.get("open_position") for a in attribution.values()):
            return "by symbol, above"
        return "nothing (flat)"
    position = metrics.get("open_position") or 0.0
    if not position:
        return "nothing (flat)"
    text = f"{'long' if position > 0 else 'short'} {abs(position):.8g}"
    entry, when = metrics.get("open_position_entry_price"), metrics.get("open_position_entry_time")
    if entry is not None and when:
        text += f" since {str(when)[:16].replace('T', ' ')} at {format_price(entry)}"
    pnl = metrics.get("open_position_pnl")
    if pnl is not None:
        text += f", unrealized {pnl:+,.2f}"
    return text


def _tables(form: str) -> str:
    """Return the files of the run's per-bar tables (`tradeloom.reporting.run_tables`): a
    script that reads equity.csv learns here that a run wrote Parquet, and how not to."""
    # (run_tables' EQUITY and POSITIONS, whose module would load pandas for two names)
    files = ", ".join(f"{table}.{form}" for table in ("equity", "positions"))
    return files if form == "csv" else f"{files} (outputs.tables: csv writes CSV)"


def _counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{n:,} {code}" for code, n in counts.items())


def _health(metrics: Mapping[str, Any]) -> str:
    status, worst = metrics.get("health"), metrics.get("health_worst")
    if status is None:
        return "-"
    why = " (the model never trained)" if metrics.get("model_never_trained") else ""
    if worst is None or worst == status:
        return f"{status} at the end{why}"
    at = metrics.get("health_worst_at")
    return f"{status} at the end, {worst} at worst{f': {at}' if at else ''}{why}"


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
