"""``sweep.html``: a sweep's variants, its walk-forward run and its overfitting statistics
in one self-contained page, drawn as the run report draws (`tradeloom.reporting.charts`).

The page holds, each when there is something to show:

- the objective over the parameters: a line for one parameter, a heatmap for two (the
  best variant of each cell; a scatter when the values are too many for cells), parallel
  coordinates for more (the best `PARALLEL_LINES` variants);
- the leaderboard: the best `LEADERBOARD_ROWS` variants by the objective (NaN last),
  their parameters and metrics, and their deflated Sharpe ratio, marked under 0.95;
- walk-forward optimisation: the stitched out-of-sample equity with each window's
  chosen parameters, and the stability of the choice;
- the overfitting statistics with their inputs: the deflated Sharpe ratio of the best
  variant, the probability of backtest overfitting, the histogram of its logits and the
  in-sample against out-of-sample performance of the chosen variants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.reporting.charts import Chart, chart_html, escape, layout, page
from tradeloom.reporting.downsample import minmax_indices
from tradeloom.reporting.labels import STATISTICS, format_value, label_of
from tradeloom.reporting.outputs import atomic_file
from tradeloom.sweep.overfitting import DSR_THRESHOLD, PBO, Overfitting
from tradeloom.sweep.walk_forward import WalkForwardResult

__all__ = [
    "LEADERBOARD_ROWS",
    "PARALLEL_LINES",
    "SWEEP_REPORT_FILE",
    "render_sweep_report",
    "write_sweep_report",
]

SWEEP_REPORT_FILE = "sweep.html"
LEADERBOARD_ROWS = 50
"""Variants listed in the page's leaderboard (results.parquet has them all)."""
PARALLEL_LINES = 5000
"""Variants drawn in the parallel coordinates chart, the best by the objective."""

_HEATMAP_CELLS = 60
"""Distinct values of a parameter up to which the two-parameter chart is a heatmap."""

_GREEN, _RED, _BLUE, _GREY, _ORANGE = "#1a9850", "#d73027", "#2c7fb8", "#969696", "#fd8d3c"
_SCALE = [[0, _RED], [0.5, "#ffffbf"], [1, _GREEN]]
_KNOWN = {key for _, rows in STATISTICS for key, _, _ in rows}


def write_sweep_report(path: Path, results: pd.DataFrame, **options: Any) -> Path:
    """Write the page ``render_sweep_report(results, **options)`` returns to ``path``
    (atomically); return ``path``.

    Raises:
        ValueError: As `render_sweep_report`.
    """
    text = render_sweep_report(results, **options)
    with atomic_file(path) as file:
        file.write(text)
    return path


def render_sweep_report(
    results: pd.DataFrame,
    *,
    params: Sequence[str],
    objective: str,
    overfitting: Overfitting | None = None,
    walk_forward: WalkForwardResult | None = None,
    title: str = "sweep",
    plotly_src: str | None = None,
) -> str:
    """Return the page of a sweep, ``sweep.html``'s text.

    Args:
        results: One row per variant: a column per parameter (its dotted key) and per
            metric. Its rows are in the order of the variants' returns that
            ``overfitting`` was computed from.
        params: The parameter columns, in the order they are shown.
        objective: The metric column the variants are ranked by (higher is better).
        overfitting: The sweep's overfitting statistics (`overfitting_statistics`).
        walk_forward: A walk-forward optimisation; each window's parameters are taken
            from its ``params`` or else from the ``results`` row its variant labels.
        title: The page's heading (the strategy's name).
        plotly_src: The relative URL of plotly.js for the page to load (`shared_plotly`);
            None embeds it.

    Raises:
        ValueError: A parameter or the objective is not a column of ``results``, or
            ``overfitting`` has a DSR count different from the rows.
    """
    missing = [c for c in (*params, objective) if c not in results.columns]
    if missing:
        raise ValueError(f"results has no column {', '.join(repr(c) for c in missing)}")
    dsr = None
    if overfitting is not None:
        if len(overfitting.variant_dsr) != len(results):
            raise ValueError(
                f"overfitting has {len(overfitting.variant_dsr)} variants, results "
                f"{len(results)} rows"
            )
        dsr = pd.Series(overfitting.variant_dsr, index=results.index)
    elif "dsr" in results.columns:
        dsr = results["dsr"].astype(np.float64)
    ranked = _ranked(results, objective)
    charts: list[Chart] = []
    sections: list[str] = []

    def add(chart: Chart | None) -> None:
        if chart is not None:
            sections.append(chart_html(len(charts), chart))
            charts.append(chart)

    add(_parameters_chart(ranked, list(params), objective))
    sections.append(_leaderboard(ranked, list(params), objective, dsr))
    if walk_forward is not None:
        add(_walk_forward_chart(walk_forward, results, list(params)))
        sections.append(_walk_forward_table(walk_forward, results, list(params)))
    if overfitting is not None:
        sections.append(_overfitting_tables(overfitting, results, list(params)))
        if overfitting.pbo is not None:
            add(_logits_chart(overfitting.pbo))
            add(_degradation_chart(overfitting.pbo))
    nan = int(results[objective].isna().sum())
    sub = f"{len(results):,} variants ranked by {label_of(objective)}"
    if nan:
        sub += f"; {nan:,} with no {label_of(objective)} (NaN) rank last"
    header = f"<h1>{escape(title)}</h1><p class='sub'>{escape(sub)}</p>"
    remedy = (
        "Run the sweep again into its folder (its variants are not run again), or with "
        "--single-file for a page that stands alone."
    )
    return page(
        f"{title}: tradeloom sweep",
        [header, *sections],
        charts,
        plotly_src=plotly_src,
        remedy=remedy,
    )


_RANKING_COLUMNS = ("rank", "objective_value", "rejected")
"""The leaderboard's own columns in a ranked sweep's results: its order (the ``#``), the
objective's value (its column) and the constraint a variant missed (a column of its own)."""


def _ranked(results: pd.DataFrame, objective: str) -> pd.DataFrame:
    """Rows in the sweep's ``rank`` where it has one (constraints and Pareto fronts
    ranked it, `tradeloom.sweep.leaderboard.rank`), else by the objective, best first,
    NaN last; ties keep the variants' order."""
    if "rank" in results.columns:
        return results.iloc[np.argsort(results["rank"].to_numpy(), kind="stable")]
    key = results[objective].astype(np.float64).fillna(-np.inf)
    order = np.argsort(-key.to_numpy(), kind="stable")
    return results.iloc[order]


def _parameters_chart(ranked: pd.DataFrame, params: list[str], objective: str) -> Chart | None:
    scored = ranked[ranked[objective].notna()]
    if not params or not len(scored):
        return None
    name = label_of(objective)
    if len(params) == 1:
        return _one_parameter(scored, params[0], objective, name)
    if len(params) == 2:
        x, y = params
        if scored[x].nunique() <= _HEATMAP_CELLS and scored[y].nunique() <= _HEATMAP_CELLS:
            return _heatmap(scored, x, y, objective, name)
        return _scatter(scored, x, y, objective, name)
    return _parallel(scored, params, objective, name)


def _one_parameter(scored: pd.DataFrame, x: str, objective: str, name: str) -> Chart:
    best = scored.groupby(x, sort=True)[objective].max()
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": _plain(best.index),
            "y": best.to_numpy(np.float64),
            "name": name,
            "line": {"color": _BLUE},
        }
    ]
    fig = layout(360, xaxis={"title": x}, yaxis={"title": name, "gridcolor": "#e5e5e5"})
    return Chart(f"{name} by {x}", data, fig, "the best variant at each value")


def _heatmap(scored: pd.DataFrame, x: str, y: str, objective: str, name: str) -> Chart:
    grid = scored.pivot_table(index=y, columns=x, values=objective, aggfunc="max", sort=True)
    z = grid.to_numpy(np.float64)
    text = [[_number(v) for v in row] for row in z]
    data = [
        {
            "type": "heatmap",
            "x": [_label(v) for v in grid.columns],
            "y": [_label(v) for v in grid.index],
            "z": [[None if math.isnan(v) else float(v) for v in row] for row in z],
            "text": text,
            "texttemplate": "%{text}" if z.size <= 400 else "",
            "hovertemplate": f"{x}=%{{x}}<br>{y}=%{{y}}<br>{name} %{{text}}<extra></extra>",
            "colorscale": _SCALE,
            "colorbar": {"title": {"text": name}},
        }
    ]
    fig = layout(
        max(320, 60 + 28 * len(grid.index)),
        xaxis={"title": x, "type": "category"},
        yaxis={"title": y, "type": "category"},
    )
    note = "the best variant of each cell" if len(scored) > z.size else ""
    return Chart(f"{name} by {x} and {y}", data, fig, note)


def _scatter(scored: pd.DataFrame, x: str, y: str, objective: str, name: str) -> Chart:
    shown = scored.iloc[:PARALLEL_LINES]
    values = shown[objective].to_numpy(np.float64)
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "x": _plain(shown[x]),
            "y": _plain(shown[y]),
            "marker": {
                "color": values,
                "colorscale": _SCALE,
                "showscale": True,
                "size": 7,
                "colorbar": {"title": {"text": name}},
            },
            "text": [_number(v) for v in values],
            "hovertemplate": f"{x}=%{{x}}<br>{y}=%{{y}}<br>{name} %{{text}}<extra></extra>",
            "name": name,
        }
    ]
    fig = layout(420, xaxis={"title": x}, yaxis={"title": y, "gridcolor": "#e5e5e5"})
    return Chart(f"{name} by {x} and {y}", data, fig, _shown_note(len(shown), len(scored)))


def _parallel(scored: pd.DataFrame, params: list[str], objective: str, name: str) -> Chart:
    shown = scored.iloc[:PARALLEL_LINES]
    dimensions = [_dimension(shown[p], p) for p in params]
    values = shown[objective].to_numpy(np.float64)
    dimensions.append({"label": name, "values": values})
    data = [
        {
            "type": "parcoords",
            "line": {"color": values, "colorscale": _SCALE, "showscale": True},
            "dimensions": dimensions,
        }
    ]
    fig = layout(460, margin={"l": 80, "r": 80, "t": 110, "b": 30})
    note = "each line a variant, coloured by " + name + "; " + _shown_note(len(shown), len(scored))
    return Chart(f"{name} across the parameters", data, fig, note.rstrip("; "))


def _dimension(column: pd.Series, label: str) -> dict[str, Any]:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return {"label": label, "values": column.to_numpy(np.float64)}
    categories = sorted({_label(v) for v in column})
    codes = [categories.index(_label(v)) for v in column]
    return {
        "label": label,
        "values": codes,
        "tickvals": list(range(len(categories))),
        "ticktext": categories,
    }


def _shown_note(shown: int, total: int) -> str:
    return f"the best {shown:,} of {total:,} variants" if shown < total else ""


def _leaderboard(
    ranked: pd.DataFrame, params: list[str], objective: str, dsr: pd.Series | None
) -> str:
    metrics = [
        c
        for c in ranked.columns
        if c not in params
        and c not in (objective, "dsr", *_RANKING_COLUMNS)
        and pd.api.types.is_numeric_dtype(ranked[c])
        and not pd.api.types.is_bool_dtype(ranked[c])
    ]
    head = ["#", *params, label_of(objective), *(label_of(m) for m in metrics)]
    if dsr is not None:
        head.append("deflated Sharpe")
    rejected = ranked["rejected"].fillna("") if "rejected" in ranked.columns else None
    if rejected is not None:
        head.append("constraint missed")
    rows = []
    shown = ranked.iloc[:LEADERBOARD_ROWS]
    marked = 0
    for rank, (label, row) in enumerate(shown.iterrows(), start=1):
        cells = [str(rank), *(escape(_label(row[p])) for p in params)]
        cells.append(f"<b>{escape(_metric(objective, row[objective]))}</b>")
        cells.extend(escape(_metric(m, row[m])) for m in metrics)
        if dsr is not None:
            value = float(dsr.loc[label])
            low = math.isfinite(value) and value < DSR_THRESHOLD
            marked += low
            mark = f"<span class='neg' title='under {DSR_THRESHOLD}'>{value:.3f} &#9888;</span>"
            cells.append(mark if low else escape(_number(value, ".3f")))
        if rejected is not None:
            cells.append(escape(str(rejected.loc[label])))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    note = f"the best {len(shown):,} of {len(ranked):,} variants by {label_of(objective)}"
    if rejected is not None:
        note += (
            f"; {int((rejected != '').sum()):,} miss a constraint and rank after every "
            "variant that meets them"
        )
    if dsr is not None:
        under = int((dsr < DSR_THRESHOLD).sum())
        note += (
            f"; &#9888; marks a deflated Sharpe ratio under {DSR_THRESHOLD} "
            f"({under:,} of {int(dsr.notna().sum()):,} variants): the Sharpe ratio may be "
            "a fluke of the search"
        )
    head_html = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        f"<section><h2>Leaderboard</h2><p class='note'>{note}</p><div class='scroll'>"
        f"<table class='trades leaderboard'><tr>{head_html}</tr>{''.join(rows)}</table>"
        "</div></section>"
    )


def _walk_forward_chart(wf: WalkForwardResult, results: pd.DataFrame, params: list[str]) -> Chart:
    x = _walk_forward_x(wf)
    keep = minmax_indices(wf.equity)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": x[keep],
            "y": wf.equity[keep],
            "name": "out-of-sample equity",
            "line": {"color": _BLUE, "width": 1.4},
        }
    ]
    lengths = [w.window.out_stop - w.window.out_start for w in wf.windows]
    offsets = np.cumsum([0, *lengths])[:-1]  # each window's first bar in the stitched curve
    starts = x[offsets]
    labels = [
        f"window {w.window.index + 1}: {_choice(wf, w.window.index, results, params)}"
        for w in wf.windows
    ]
    start_equity = np.concatenate(([wf.initial_equity], wf.equity))
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": starts,
            "y": start_equity[offsets],
            "name": "window start (chosen parameters)",
            "marker": {"symbol": "line-ns-open", "size": 14, "color": _ORANGE},
            "text": labels,
            "hovertemplate": "%{text}<extra></extra>",
        }
    )
    shapes = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": s,
            "x1": s,
            "y0": 0,
            "y1": 1,
            "line": {"color": _GREY, "width": 1, "dash": "dot"},
        }
        for s in starts[1:]
    ]
    fig = layout(
        420,
        shapes=shapes,
        yaxis={"title": "equity", "gridcolor": "#e5e5e5"},
        xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
    )
    note = (
        f"{len(wf.windows)} windows; each traded the variant chosen on its in-sample bars "
        f"by {label_of(wf.objective)} (hover a window's start for its parameters)"
    )
    return Chart("Walk-forward optimisation: out-of-sample equity", data, fig, note)


def _walk_forward_x(wf: WalkForwardResult) -> np.ndarray:
    if wf.timestamps is None:
        return wf.bars
    times = pd.DatetimeIndex(wf.timestamps)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return np.asarray(times.to_numpy())


def _walk_forward_table(wf: WalkForwardResult, results: pd.DataFrame, params: list[str]) -> str:
    head = ["window", "in-sample", "out-of-sample", *params]
    head += [f"{label_of(wf.objective)} in", f"{label_of(wf.objective)} out"]
    rows = []
    for w in wf.windows:
        win = w.window
        cells = [
            str(win.index + 1),
            _bounds(win.in_start, win.in_stop, w.in_sample_times),
            _bounds(win.out_start, win.out_stop, w.out_of_sample_times),
            *("-" if w.empty else _label(_param(wf, win.index, results, p)) for p in params),
            _metric(wf.objective, w.in_sample_objective),
            _metric(wf.objective, w.out_of_sample_objective),
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    s = wf.stability
    facts = [
        f"the chosen variant changed {s.changes} times in {len(wf.windows)} windows "
        f"({s.change_rate:.0%} of the chances), {s.distinct} different variants"
    ]
    if s.empty:
        facts.append(
            f"{s.empty} windows had no prediction in-sample: nothing chosen, not traded (-)"
        )
    for p in s.params:
        text = f"{p.name}: {p.distinct} values, changed {p.changes} times"
        if p.std is not None:
            text += f", standard deviation {p.std:.4g}"
        if p.relative_spread is not None:
            text += f" ({p.relative_spread:.0%} of the range offered)"
        facts.append(text)
    total = float(wf.equity[-1] / wf.initial_equity - 1.0)
    facts.append(f"out-of-sample return {total:+.2%} over {len(wf.returns):,} bars")
    head_html = "".join(f"<th>{escape(h)}</th>" for h in head)
    items = "".join(f"<li>{escape(f)}</li>" for f in facts)
    return (
        "<section><h2>Walk-forward windows and the stability of the choice</h2>"
        f"<ul class='note'>{items}</ul><div class='scroll'><table class='trades'>"
        f"<tr>{head_html}</tr>{''.join(rows)}</table></div></section>"
    )


def _bounds(start: int, stop: int, times: tuple[Any, Any] | None) -> str:
    text = f"bars {start:,}-{stop - 1:,}"
    if times is not None:
        first, last = (pd.Timestamp(t) for t in times)
        text += f" ({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M})"
    return text


def _choice(wf: WalkForwardResult, window: int, results: pd.DataFrame, params: list[str]) -> str:
    return ", ".join(f"{p}={_label(_param(wf, window, results, p))}" for p in params)


def _param(wf: WalkForwardResult, window: int, results: pd.DataFrame, name: str) -> Any:
    """The window's chosen value of a parameter: from the walk-forward's own record when
    it was given the variants' params, else from the results row the variant labels."""
    for stability in wf.stability.params:
        if stability.name == name:
            return stability.values[window]
    variant = wf.windows[window].chosen
    return results.at[variant, name] if variant in results.index else None


def _overfitting_tables(o: Overfitting, results: pd.DataFrame, params: list[str]) -> str:
    d = o.deflated
    best = results.iloc[o.best]
    chosen = ", ".join(f"{p}={_label(best[p])}" for p in params)
    verdict = "under" if not d.dsr >= DSR_THRESHOLD else "at or above"
    dsr_rows = [
        ("variant", f"the chosen one: {chosen}" if chosen else "the chosen one"),
        ("Sharpe ratio per bar (SR)", f"{d.sharpe:.5f}"),
        ("Sharpe ratio, annualised", _number(d.sharpe_annualised)),
        ("trials (N)", f"{d.n_trials:,}"),
        ("variance of the trials' Sharpe ratios (V)", f"{d.trial_sharpe_variance:.4g}"),
        ("expected maximum Sharpe ratio with no skill (SR0)", f"{d.sr0:.5f}"),
        ("SR0, annualised", _number(d.sr0_annualised)),
        ("returns (T)", f"{d.n_obs:,}"),
        ("skewness", f"{d.skewness:.3f}"),
        ("kurtosis (normal: 3)", f"{d.kurtosis:.3f}"),
        ("z", _number(d.z, ".3f")),
        ("deflated Sharpe ratio (DSR)", f"{_number(d.dsr, '.4f')} ({verdict} {DSR_THRESHOLD})"),
    ]
    tables = [_facts("Deflated Sharpe ratio", dsr_rows)]
    if o.pbo is not None:
        tables.append(_facts("Probability of backtest overfitting", _pbo_rows(o.pbo)))
        note = (
            "PBO: how often the variant best in-sample ranks in the bottom half "
            "out-of-sample, over every split of the bars into halves (CSCV). "
        )
    else:
        note = f"The probability of backtest overfitting was not computed: {o.pbo_problem}. "
    note += (
        "DSR: the probability that the best variant's true Sharpe ratio beats the best of "
        f"{d.n_trials:,} variants with no skill, given its skewness, kurtosis and length."
    )
    return (
        "<section><h2>Overfitting statistics</h2>"
        f"<p class='note'>{escape(note)}</p><div class='stats'>{''.join(tables)}</div></section>"
    )


def _pbo_rows(pbo: PBO) -> list[tuple[str, str]]:
    slope, _ = pbo.degradation
    return [
        ("probability of backtest overfitting (PBO)", f"{pbo.probability:.3f}"),
        ("partitions (S)", f"{pbo.n_partitions}"),
        ("combinations", f"{pbo.n_combinations:,}"),
        ("variants compared (N)", f"{pbo.n_variants:,}"),
        ("variants left out (NaN returns)", f"{len(pbo.excluded):,}"),
        ("bars used", f"{pbo.rows_used:,} ({pbo.rows_dropped:,} oldest left out)"),
        ("metric", pbo.metric),
        ("probability of an out-of-sample loss", f"{pbo.probability_of_loss:.3f}"),
        ("degradation slope (out on in)", _number(slope, ".3f")),
    ]


def _facts(caption: str, rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table><caption>{escape(caption)}</caption>{cells}</table>"


def _logits_chart(pbo: PBO) -> Chart:
    logits = pbo.logits[np.isfinite(pbo.logits)]
    data = [
        {
            "type": "histogram",
            "x": logits[logits <= 0.0],
            "name": "overfit (logit <= 0)",
            "marker": {"color": _RED},
        },
        {
            "type": "histogram",
            "x": logits[logits > 0.0],
            "name": "not overfit",
            "marker": {"color": _GREEN},
        },
    ]
    fig = layout(300, barmode="overlay", xaxis={"title": "logit of the out-of-sample rank"})
    fig["yaxis"] = {"title": "combinations", "gridcolor": "#e5e5e5"}
    note = f"PBO {pbo.probability:.3f}: the share of the {pbo.n_combinations:,} logits <= 0"
    return Chart("Probability of backtest overfitting: logits", data, fig, note)


def _degradation_chart(pbo: PBO) -> Chart:
    slope, intercept = pbo.degradation
    data: list[dict[str, Any]] = [
        {
            "type": "scattergl" if len(pbo.in_sample) > 5000 else "scatter",
            "mode": "markers",
            "x": pbo.in_sample,
            "y": pbo.out_of_sample,
            "name": "chosen variant, per combination",
            "marker": {"color": _BLUE, "size": 5, "opacity": 0.5},
        }
    ]
    if math.isfinite(slope):
        xs = np.array([np.nanmin(pbo.in_sample), np.nanmax(pbo.in_sample)])
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": xs,
                "y": intercept + slope * xs,
                "name": f"fit: slope {slope:.3f}",
                "line": {"color": _RED, "dash": "dash"},
            }
        )
    fig = layout(
        360,
        xaxis={"title": f"in-sample {pbo.metric}", "gridcolor": "#e5e5e5"},
        yaxis={"title": f"out-of-sample {pbo.metric}", "gridcolor": "#e5e5e5"},
    )
    note = "a negative slope: the better in-sample, the worse out-of-sample"
    return Chart("Performance degradation: in-sample against out-of-sample", data, fig, note)


def _metric(key: str, value: Any) -> str:
    if key in _KNOWN:
        return format_value(key, {key: value})
    return _number(value)


def _number(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return format(number, spec) if math.isfinite(number) else "-"


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def _plain(values: Any) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values]
