"""A sweep of several objectives: its Pareto front, printed and drawn (``pareto.html``).

The front is the variants no other variant beats in every objective (each maximized;
`tradeloom.sweep.leaderboard.pareto_fronts`), among those every constraint accepts and
whose objectives are numbers. Each point is printed with its deflated Sharpe ratio (how
likely its Sharpe ratio is a fluke of the search, `tradeloom.sweep.overfitting`); the
probability of backtest overfitting is the search's, one figure beside the front. The
page draws the first two objectives: every variant, the front joined in order, each
point's parameters and DSR on hover; a table lists every point of the front.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tradeloom.reporting.charts import Chart, chart_html, escape, layout, page

if TYPE_CHECKING:
    from tradeloom.files.writing import OutputFolder
    from tradeloom.sweep.settings import Settings

__all__ = ["PARETO_FILE", "PRINTED_POINTS", "front_of", "pareto_lines", "write_pareto_page"]

PARETO_FILE = "pareto.html"
PRINTED_POINTS = 20
"""Points of the front printed in the console (the page and results.parquet hold all)."""

_GREY, _BLUE = "#bdbdbd", "#2c7fb8"


def front_of(ranked: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of the first Pareto front, in the ranking's order."""
    return ranked[ranked["pareto_front"] == 1]


def pareto_lines(
    ranked: pd.DataFrame, settings: Settings, overfitting: dict[str, Any] | None
) -> list[str]:
    """Return the summary's lines on the front: its size, each point, the search's PBO."""
    front = front_of(ranked)
    names = settings.objectives
    outside = int(ranked["pareto_front"].isna().sum())
    lines = [
        f"Pareto front of {', '.join(names)} (each maximized): {len(front)} of {len(ranked)} "
        f"variants; {outside} with a NaN objective or rejected have no front"
    ]
    params = [c for c in ranked.columns if c.startswith("param.")]
    for _, row in front.head(PRINTED_POINTS).iterrows():
        values = ", ".join(
            f"{name}={_number(row[f'objective_{k}'])}" for k, name in enumerate(names, start=1)
        )
        where = ", ".join(f"{c.removeprefix('param.')}={_plain(row[c])!r}" for c in params)
        dsr = _number(row["dsr"], ".4f") if "dsr" in row else "n/a"
        lines.append(f"  row {int(row['variant'])} ({where}): {values}; DSR {dsr}")
    if len(front) > PRINTED_POINTS:
        lines.append(f"  ... {len(front) - PRINTED_POINTS} more in results.parquet and the page")
    pbo = (overfitting or {}).get("pbo")
    if pbo is not None:
        lines.append(
            f"  the search's probability of backtest overfitting: {pbo['probability']:.4f} "
            "(one figure for the sweep, by the variants' Sharpe ratios)"
        )
    return lines


def write_pareto_page(
    ranked: pd.DataFrame, settings: Settings, folder: OutputFolder, plotly_src: str | None
) -> Any:
    """Write ``pareto.html`` into the sweep directory; return its path."""
    names = list(settings.objectives)
    front = front_of(ranked)
    params = [c for c in ranked.columns if c.startswith("param.")]
    charts = [_front_chart(ranked, front, names, params)]
    body = [
        f"<h1>{escape(f'Pareto front of {settings.strategy.stem}')}</h1>"
        f"<p class='sub'>{escape(_subtitle(ranked, front, names))}</p>",
        chart_html(0, charts[0]),
        _table(front, names, params),
    ]
    text = page(
        "Pareto front: tradeloom sweep",
        body,
        charts,
        plotly_src=plotly_src,
        remedy="Run the sweep again into its folder, or with --single-file.",
    )
    return folder.write_text(PARETO_FILE, text)


def _subtitle(ranked: pd.DataFrame, front: pd.DataFrame, names: list[str]) -> str:
    return (
        f"{len(front):,} of {len(ranked):,} variants on the front of {', '.join(names)}, "
        "each maximized; DSR: the deflated Sharpe ratio of each point"
    )


def _hover(rows: pd.DataFrame, params: list[str]) -> list[str]:
    texts = []
    for _, row in rows.iterrows():
        parts = [f"row {int(row['variant'])}"]
        parts += [f"{c.removeprefix('param.')}={_plain(row[c])}" for c in params]
        if "dsr" in row:
            parts.append(f"DSR {_number(row['dsr'], '.4f')}")
        texts.append("<br>".join(escape(p) for p in parts))
    return texts


def _front_chart(
    ranked: pd.DataFrame, front: pd.DataFrame, names: list[str], params: list[str]
) -> Chart:
    x, y = "objective_1", "objective_2"
    line = front.sort_values(x)
    data: list[dict[str, Any]] = [
        {
            "type": "scattergl" if len(ranked) > 5000 else "scatter",
            "mode": "markers",
            "x": _floats(ranked[x]),
            "y": _floats(ranked[y]),
            "marker": {"color": _GREY, "size": 5},
            "name": "every variant",
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": _floats(line[x]),
            "y": _floats(line[y]),
            "marker": {"color": _BLUE, "size": 9},
            "line": {"color": _BLUE, "shape": "hv"},
            "name": "Pareto front",
            "text": _hover(line, params),
            "hovertemplate": f"{names[0]}=%{{x}}<br>{names[1]}=%{{y}}<br>%{{text}}<extra></extra>",
        },
    ]
    fig = layout(460, xaxis={"title": names[0]}, yaxis={"title": names[1]})
    note = "" if len(names) == 2 else f"the first two of {len(names)} objectives drawn"
    return Chart(f"{names[0]} against {names[1]}", data, fig, note)


def _table(front: pd.DataFrame, names: list[str], params: list[str]) -> str:
    head = ["row", *(p.removeprefix("param.") for p in params), *names, "DSR"]
    cells = ["".join(f"<th>{escape(h)}</th>" for h in head)]
    for _, row in front.iterrows():
        values = [str(int(row["variant"]))]
        values += [str(_plain(row[p])) for p in params]
        values += [_number(row[f"objective_{k}"]) for k in range(1, len(names) + 1)]
        values.append(_number(row["dsr"], ".4f") if "dsr" in row else "n/a")
        cells.append("".join(f"<td>{escape(v)}</td>" for v in values))
    rows = "".join(f"<tr>{c}</tr>" for c in cells)
    return f"<h2>The front's points</h2><table class='table'>{rows}</table>"


def _floats(column: pd.Series) -> list[float | None]:
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    return [None if not math.isfinite(v) else float(v) for v in values]


def _number(value: Any, spec: str = ".6g") -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "nan"
    return "nan" if math.isnan(number) else format(number, spec)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
