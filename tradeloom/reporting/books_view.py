"""The report's champion against challengers: the books' equity curves overlaid and their
figures side by side (`tradeloom.reporting.book_figures`), drawn only for a run that had
challengers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tradeloom.reporting.book_figures import CHAMPION
from tradeloom.reporting.charts import Chart, escape, layout, line, naive_times
from tradeloom.reporting.run_data import RunData

__all__ = ["BOOK_COLUMNS", "books_chart", "books_table"]

_COLORS = ("#2c7fb8", "#fd8d3c", "#1a9850", "#984ea3", "#d73027", "#a65628", "#f781bf")

BOOK_COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("first_bar", "from bar", lambda v: f"{v:.0f}"),
    ("bars", "bars", lambda v: f"{v:.0f}"),
    ("equity", "equity", lambda v: f"{v:,.2f}"),
    ("total_return", "return", lambda v: f"{v:+.2%}"),
    ("sharpe", "Sharpe", lambda v: f"{v:.2f}"),
    ("max_drawdown", "max drawdown", lambda v: f"{v:.2%}"),
    ("fills", "fills", lambda v: f"{v:.0f}"),
    ("turnover", "turnover", lambda v: f"{v:.2f}x"),
    ("auc", "AUC", lambda v: f"{v:.3f}"),
    ("ece", "ECE", lambda v: f"{v:.4f}"),
)
"""The table's columns: the `BookFigures` field, its heading and how a value is shown."""


def books_table(run: RunData) -> str:
    """Return the figures of the champion and each challenger ('' without challengers):
    each cell holds the figure's value (``data-value``) and shows it rounded."""
    if run.books is None:
        return ""
    figures = run.books.figures
    gated = any(b.gate is not None for b in figures)
    head = "".join(f"<th>{escape(title)}</th>" for _, title, _ in BOOK_COLUMNS)
    rows = "".join(
        f"<tr data-book='{escape(b.name)}'><td>{escape(b.name)}</td>"
        + "".join(_cell(getattr(b, key), shown) for key, _, shown in BOOK_COLUMNS)
        + (f"<td>{escape(b.gate or '-')}</td>" if gated else "")
        + "</tr>"
        for b in figures
    )
    return (
        "<section id='books'><h2>Champion and challengers</h2><p class='note'>Each book "
        "over its own bars (a challenger added to the running run: from the bar it was "
        "added at); AUC and ECE (expected calibration error, 10 bins) of the model's "
        "journaled probabilities whose label is known (a universe: every symbol's, "
        "pooled).</p>"
        f"<div class='scroll'><table class='books'><tr><th>book</th>{head}"
        + ("<th>gate</th>" if gated else "")
        + f"</tr>{rows}</table></div></section>"
    )


def _cell(value: float | None, shown: Callable[[float], str]) -> str:
    if value is None:
        return "<td data-value=''>-</td>"
    return f"<td class='num' data-value='{value!r}'>{escape(shown(value))}</td>"


def books_chart(run: RunData) -> Chart | None:
    """Return the champion's and each challenger's equity at each bar, overlaid (None:
    the run had no challenger)."""
    if run.books is None:
        return None
    equity = run.equity["equity"].to_numpy(np.float64)
    data = [line(naive_times(run.equity), equity, CHAMPION, _COLORS[0])]
    shadow = run.books.shadow
    for i, (name, rows) in enumerate(shadow.groupby("challenger", sort=False), start=1):
        color = _COLORS[i % len(_COLORS)]
        data.append(line(naive_times(rows), rows["equity"].to_numpy(np.float64), str(name), color))
    fig = layout(
        360,
        yaxis={"title": "equity", "gridcolor": "#e5e5e5"},
        xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
    )
    note = "each challenger's shadow book (simulated fills, never sent) beside the champion's"
    return Chart("Champion and challengers: equity", data, fig, note, link=True)
