"""Rank a sweep's variants by its objective and show the best in the console.

The objective is a metric of `tradeloom.sweep.batch.METRIC_KEYS` (``sharpe``,
``sortino``, ``calmar``, ``total_return``...), maximized unless the direction is
``minimize``. A variant whose objective is NaN (or missing: a Calmar ratio without a
drawdown) ranks last, after every number, and is counted in the summary.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradeloom.errors import UserError
from tradeloom.sweep.batch import METRIC_KEYS

__all__ = ["OBJECTIVES", "check_objective", "leaderboard_table", "rank"]

_NOT_NUMBERS = frozenset({"rejections", "halt"})
OBJECTIVES = tuple(k for k in METRIC_KEYS if k not in _NOT_NUMBERS)
"""The metrics a sweep can rank by."""

Direction = Literal["maximize", "minimize"]


def check_objective(name: str, where: str = "--objective") -> str:
    """Return ``name`` if a sweep can rank by it.

    Raises:
        UserError: It is not a numeric metric (with a did-you-mean and the choices).
    """
    if name in OBJECTIVES:
        return name
    close = difflib.get_close_matches(name, OBJECTIVES, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UserError(f"{where}: unknown objective '{name}' ({hint}one of: {', '.join(OBJECTIVES)})")


def objective_values(frame: pd.DataFrame, objective: str) -> np.ndarray:
    """Return the objective of each row as floats (NaN: none)."""
    return pd.to_numeric(frame[objective], errors="coerce").to_numpy(np.float64)


def rank(frame: pd.DataFrame, objective: str, direction: Direction) -> pd.DataFrame:
    """Return ``frame`` with ``objective_value`` and ``rank`` (1 best, NaN last), sorted.

    Ties keep the variants' order.
    """
    values = objective_values(frame, objective)
    signed = -values if direction == "maximize" else values
    order = np.lexsort(
        (np.arange(len(values)), np.where(np.isnan(signed), np.inf, signed), np.isnan(signed))
    )
    ranked = frame.iloc[order].copy()
    ranked.insert(0, "rank", np.arange(1, len(order) + 1))
    ranked["objective_value"] = values[order]
    return ranked


def leaderboard_table(
    ranked: pd.DataFrame,
    params: Sequence[str],
    objective: str,
    *,
    top: int = 10,
    marked: pd.Series | None = None,
) -> Any:
    """Return a rich table of the ``top`` variants: rank, params, objective and headline metrics.

    Args:
        marked: Per row of ``ranked`` (by index), whether to flag it (deflated Sharpe
            ratio under 0.95: ``*``).
    """
    from rich.table import Table

    table = Table(title=f"best {min(top, len(ranked))} of {len(ranked)} by {objective}")
    table.add_column("#", justify="right")
    rows = "variant" in ranked
    if rows:  # the row `tradeloom run FILE --variant SWEEP_DIR:ROW` takes
        table.add_column("row", justify="right")
    for param in params:
        table.add_column(param.removeprefix("param."))
    shown = [
        objective,
        *(k for k in ("sharpe", "total_return", "max_drawdown", "trades") if k != objective),
    ]
    for name in shown:
        table.add_column(name, justify="right")
    if marked is not None:
        table.add_column("DSR<0.95", justify="center")
    for index, row in ranked.head(top).iterrows():
        cells = [str(row["rank"])]
        if rows:
            cells.append(str(int(row["variant"])))
        cells += [_cell(row[p]) for p in params]
        cells += [_cell(row.get(name)) for name in shown]
        if marked is not None:
            cells.append("*" if bool(marked.get(index, False)) else "")
        table.add_row(*cells)
    return table


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
