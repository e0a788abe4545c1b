"""Rank a sweep's variants by its objective and show the best in the console.

The objective is an expression over the metrics of `tradeloom.sweep.batch.METRIC_KEYS`
(`tradeloom.sweep.objective`: ``sharpe``, ``sharpe - 0.5 * max_drawdown``...),
maximized unless the direction is ``minimize``. A variant whose objective is NaN (or
missing: a Calmar ratio without a drawdown) ranks after every number, and a variant a
constraint rejects after every variant that meets them all; both are counted in the
summary. With several objectives (`pareto_fronts`) the variants rank by their Pareto
front, then by the first objective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradeloom.sweep.objective import OBJECTIVES, Constraint, Objective, parse_objective, rejections

__all__ = ["OBJECTIVES", "check_objective", "leaderboard_table", "pareto_fronts", "rank"]

Direction = Literal["maximize", "minimize"]


def check_objective(name: str, where: str = "--objective") -> str:
    """Return ``name`` if a sweep can rank by it (an objective expression).

    Raises:
        UserError: A syntax error or an unknown metric (with a did-you-mean and the choices).
    """
    parse_objective(name, where)
    return name


def rank(
    frame: pd.DataFrame,
    objective: str | Objective,
    direction: Direction,
    constraints: Sequence[Constraint] = (),
    objectives: Sequence[Objective] = (),
) -> pd.DataFrame:
    """Return ``frame`` with ``objective_value`` and ``rank`` (1 best), sorted.

    A NaN objective ranks after every number; a variant a constraint rejects (its
    reason in ``rejected``, written when there are constraints) after every variant that
    meets them. With ``objectives`` (two or more, each maximized), ``objective_1``... hold
    their values, ``pareto_front`` each variant's front (1: no variant is better in every
    objective; NaN objectives and rejected variants have none), and the variants rank by
    front, then by the first objective. Ties keep the variants' order.
    """
    goal = objective if isinstance(objective, Objective) else parse_objective(objective)
    values = goal.values(frame)
    signed = -values if direction == "maximize" else values
    refused = np.zeros(len(frame), bool)
    reasons = None
    if constraints:
        reasons = rejections(frame, constraints)
        refused = (reasons != "").to_numpy()
    front = np.zeros(len(frame))
    columns: list[np.ndarray] = []
    if objectives:
        columns = [o.values(frame) for o in objectives]
        matrix = np.column_stack(columns) if columns else np.empty((len(frame), 0))
        usable = ~refused & ~np.isnan(matrix).any(axis=1)
        front = np.full(len(frame), np.inf)
        front[usable] = pareto_fronts(matrix[usable])
    nan = np.isnan(signed)
    order = np.lexsort((np.arange(len(values)), np.where(nan, np.inf, signed), nan, front, refused))
    ranked = frame.iloc[order].copy()
    ranked.insert(0, "rank", np.arange(1, len(order) + 1))
    ranked["objective_value"] = values[order]
    for k, column in enumerate(columns, start=1):
        ranked[f"objective_{k}"] = column[order]
    if objectives:
        ranked["pareto_front"] = np.where(np.isinf(front), np.nan, front)[order]
    if reasons is not None:
        ranked["rejected"] = reasons.to_numpy()[order]
    return ranked


def pareto_fronts(values: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Return each row's Pareto front (1, 2, ...) of ``[variants, objectives]``, all maximized.

    Front 1 holds the rows no other row dominates (at least as good in every objective,
    better in one); front 2 those only front 1 dominates, and so on (non-dominated
    sorting, as NSGA-II ranks). Compared ``chunk`` rows at a time.
    """
    n = len(values)
    front = np.zeros(n)
    left = np.arange(n)
    level = 0
    while len(left):
        level += 1
        points = values[left]
        dominated: np.ndarray = np.zeros(len(left), bool)
        for start in range(0, len(left), chunk):
            block = points[start : start + chunk, np.newaxis, :]  # [chunk, 1, k]
            better_eq = (points[np.newaxis, :, :] >= block).all(axis=2)
            better = (points[np.newaxis, :, :] > block).any(axis=2)
            dominated[start : start + chunk] = np.any(better_eq & better, axis=1)
        front[left[~dominated]] = level
        left = left[dominated]
    return front


def leaderboard_table(
    ranked: pd.DataFrame,
    params: Sequence[str],
    objective: str,
    *,
    top: int = 10,
    marked: pd.Series | None = None,
    objectives: Sequence[str] = (),
) -> Any:
    """Return a rich table of the ``top`` variants: rank, params, objective and headline metrics.

    Args:
        marked: Per row of ``ranked`` (by index), whether to flag it (deflated Sharpe
            ratio under 0.95: ``*``).
        objectives: Several objectives (`rank`'s): the variants rank by their Pareto
            front, then by ``objective`` (the first); the title says so and a column
            gives each variant's front.
    """
    from rich.table import Table

    by = objective
    if objectives:
        by = f"Pareto front of {', '.join(objectives)}, then {objective}"
    table = Table(title=f"best {min(top, len(ranked))} of {len(ranked)} by {by}")
    table.add_column("#", justify="right")
    rows = "variant" in ranked
    if rows:  # the row `tradeloom run FILE --variant SWEEP_DIR:ROW` takes
        table.add_column("row", justify="right")
    fronts = bool(objectives) and "pareto_front" in ranked
    if fronts:
        table.add_column("front", justify="right")
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
    refused = "rejected" in ranked
    if refused:  # the constraint a variant missed (ranked last)
        table.add_column("rejected")
    for index, row in ranked.head(top).iterrows():
        cells = [str(row["rank"])]
        if rows:
            cells.append(str(int(row["variant"])))
        if fronts:
            cells.append(_front(row["pareto_front"]))
        cells += [_cell(row[p]) for p in params]
        cells += [_cell(row.get(name, row.get("objective_value"))) for name in shown]
        if marked is not None:
            cells.append("*" if bool(marked.get(index, False)) else "")
        if refused:
            cells.append(str(row["rejected"]))
        table.add_row(*cells)
    return table


def _front(value: Any) -> str:
    """A variant's Pareto front, or ``-`` (a NaN objective or a rejected variant: none)."""
    return "-" if value is None or math.isnan(float(value)) else str(int(value))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
