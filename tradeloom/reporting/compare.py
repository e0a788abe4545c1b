"""``tradeloom compare RUN_DIR...``: runs side by side, as a table and as one HTML page with
their equity curves overlaid.

Both start with the settings that differ between the runs (`differing_settings` of
their resolved strategy files), then the figures: what changed, then what it did; where
a run allocates, its allocation's figures last (rebalances, turnover, refused orders).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tradeloom.files.writing import OutputFolder
from tradeloom.reporting.charts import Chart, chart_html, escape, layout, line, naive_times, page
from tradeloom.reporting.labels import ALLOCATION, STATISTICS, allocation_value, format_value
from tradeloom.reporting.run_data import RunData, load_run
from tradeloom.reporting.settings_diff import differing_settings, with_defaults
from tradeloom.reporting.shared_plotly import RUNS, shared_plotly

__all__ = [
    "COMPARE_FILE",
    "Comparison",
    "compare_page",
    "compare_runs",
    "compare_table",
    "compare_values",
    "default_compare_out",
]

COMPARE_FILE = "compare.html"
"""The comparison page's name where ``--out`` names none."""

_COLORS = ("#2c7fb8", "#d73027", "#1a9850", "#6a3d9a", "#fd8d3c", "#b15928", "#e7298a")


@dataclass(frozen=True)
class Comparison:
    """What `compare_runs` made: the printed table, the page's path and the values the
    table shows (`compare_values`)."""

    table: str
    page: Path
    values: dict[str, Any]


def compare_runs(run_dirs: Sequence[Path], out: Path, *, single_file: bool = False) -> Comparison:
    """Read the runs, write the comparison page to ``out``; return the table, the page's
    path and the values compared.

    Args:
        single_file: Embed plotly.js in the page rather than load the copy the runs'
            reports share (``plotly-<version>.min.js`` in a run directory's folder), or
            else one written beside the page in a folder of runs (`RUNS`); a page
            elsewhere that finds none has plotly.js inside (`shared_plotly`).

    Raises:
        UserError: A directory is not a finished run (`load_run`).
    """
    runs = [load_run(path, per_bar=False) for path in run_dirs]
    folder = OutputFolder(out.parent, option="--out")
    src = None
    if not single_file:
        reuse = list(dict.fromkeys(path.absolute().parent for path in run_dirs))
        of_runs = out.parent if out.parent.absolute().name == RUNS else None
        src = shared_plotly(out.parent, of_runs, option="--out", reuse=reuse)
    page = folder.write_text(out.name, compare_page(runs, plotly_src=src))
    return Comparison(compare_table(runs), page, compare_values(runs))


def compare_values(runs: Sequence[RunData]) -> dict[str, Any]:
    """Return what `compare_table` shows as values: each run's directory, strategy and
    figures (the metrics' numbers, not their text), and each setting that differs with
    its value per run (as written in the resolved strategy files, in the runs' order)."""
    keys = [key for _, group in STATISTICS for key, _, _ in group]
    listed = []
    for run in runs:
        figures = {key: run.metrics.get(key) for key in keys}
        allocation = run.metrics.get("allocation")
        listed.append(
            {
                "run_dir": str(run.run_dir),
                "strategy": run.name,
                "metrics": figures,
                "allocation": allocation if isinstance(allocation, dict) else None,
            }
        )
    settings = [{"key": key, "values": values} for key, values in _differing(runs)]
    return {"runs": listed, "settings_that_differ": settings}


def default_compare_out(run_dirs: Sequence[Path]) -> Path:
    """Return where the page goes without ``--out``: `COMPARE_FILE` beside the first run
    directory, in the folder that holds it (``runs/compare.html``), never the current
    folder as such; the same runs compared again replace it."""
    first = run_dirs[0]
    named = first if first.name not in ("", "..") else first.absolute().resolve()
    return named.parent / COMPARE_FILE


def _names(runs: Sequence[RunData]) -> list[str]:
    return [run.run_dir.name for run in runs]


def compare_table(runs: Sequence[RunData]) -> str:
    """Return the settings that differ, then the runs' figures side by side: one row per
    setting or figure, one column per run."""
    names = _names(runs)
    settings = _differing(runs)
    rows = [("", names), ("strategy", [run.name for run in runs])]
    for _, group in STATISTICS:
        for key, label, _ in group:
            rows.append((label, [format_value(key, run.metrics) for run in runs]))
    if _allocates(runs):
        for key, label, _ in ALLOCATION:
            rows.append((f"allocation {label}", [allocation_value(key, r.metrics) for r in runs]))
    heading = ("settings that differ", names)
    every = [heading, *settings, *rows] if settings else rows
    label_width = max(len(label) for label, _ in every)
    widths = [max(len(values[i]) for _, values in every) for i in range(len(runs))]

    def text(label: str, values: list[str]) -> str:
        cells = "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))
        return f"{label:<{label_width}}  {cells}".rstrip()

    lines = []
    if settings:
        lines = [text(*heading), *(text(k, v) for k, v in settings), ""]
    elif all(run.strategy for run in runs):
        lines = ["settings that differ: none (the same resolved strategy file)", ""]
    lines.extend(text(label, values) for label, values in rows)
    return "\n".join(lines)


def compare_page(runs: Sequence[RunData], *, plotly_src: str | None = None) -> str:
    """Return the comparison page: the table and the equity curves, each run's starting
    equity set to 100 so that runs with different cash compare. ``plotly_src``: the
    relative URL of plotly.js for the page to load (None: embedded)."""
    data = []
    for i, run in enumerate(runs):
        equity = run.equity["equity"].to_numpy(np.float64)
        start = float(run.metrics.get("initial_cash") or equity[0])
        data.append(
            line(naive_times(run.equity), equity / start * 100, run.run_dir.name, _COLORS[i % 7])
        )
    chart = Chart(
        "Equity (100 = starting cash)",
        data,
        layout(
            460,
            yaxis={"title": "equity, start = 100", "gridcolor": "#e5e5e5"},
            xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
        ),
    )
    names = _names(runs)
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = []
    for group, rows in STATISTICS:
        body.append(f"<tr><th class='group' colspan='{len(runs) + 1}'>{escape(group)}</th></tr>")
        for key, label, _ in rows:
            cells = "".join(f"<td>{escape(format_value(key, run.metrics))}</td>" for run in runs)
            body.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    if _allocates(runs):
        body.append(f"<tr><th class='group' colspan='{len(runs) + 1}'>Allocation</th></tr>")
        for key, label, _ in ALLOCATION:
            cells = "".join(f"<td>{escape(allocation_value(key, r.metrics))}</td>" for r in runs)
            body.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    table = (
        "<section><h2>Figures</h2><div class='scroll'><table class='trades'>"
        f"<tr><th></th>{head}</tr>{''.join(body)}</table></div></section>"
    )
    title = f"tradeloom compare: {', '.join(names)}"
    sections = [
        f"<h1>Compare {len(runs)} runs</h1>",
        _settings_table(runs),
        chart_html(0, chart),
        table,
    ]
    remedy = "Run tradeloom compare again, or with --single-file for a page that stands alone."
    return page(title, sections, [chart], plotly_src=plotly_src, remedy=remedy)


def _allocates(runs: Sequence[RunData]) -> bool:
    """Return whether a run allocates (its ``metrics.json`` has an ``allocation`` block):
    the figures then end with the allocation's (`ALLOCATION`), ``-`` for a run without."""
    return any(isinstance(run.metrics.get("allocation"), dict) for run in runs)


def _differing(runs: Sequence[RunData]) -> list[tuple[str, list[str]]]:
    """Return the settings that differ, a default left out equal to its value written."""
    documents = [run.strategy for run in runs]
    flats = [with_defaults(run.run_dir / "strategy.yaml", run.strategy) for run in runs]
    return differing_settings(documents, flats)


def _settings_table(runs: Sequence[RunData]) -> str:
    settings = _differing(runs)
    if not settings:
        return (
            "<section><h2>Settings that differ</h2><p class='note'>none: the runs have the "
            "same resolved strategy file</p></section>"
        )
    head = "".join(f"<th>{escape(n)}</th>" for n in _names(runs))
    rows = "".join(
        f"<tr><th>{escape(key)}</th>{''.join(f'<td>{escape(v)}</td>' for v in values)}</tr>"
        for key, values in settings
    )
    return (
        "<section><h2>Settings that differ</h2><p class='note'>the keys of the runs' resolved "
        "strategy files (strategy.yaml) whose values are not the same in every run; "
        "- : not set</p><div class='scroll'><table class='trades settings'>"
        f"<tr><th>key</th>{head}</tr>{rows}</table></div></section>"
    )
