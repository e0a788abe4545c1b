"""The report's allocation panels: the target weights over time, target against held
weights at the last rebalance, and the table of rebalances.

Drawn from the journal's ``allocation_decided`` rows (`RunData.allocations`); a run
without an allocation layer gets none of them. Past `MOST_SHOWN` symbols the largest
weights are drawn one by one and the rest summed (`top_columns`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradeloom.reporting.allocation_figures import top_columns
from tradeloom.reporting.charts import Chart, escape, layout, naive_times
from tradeloom.reporting.run_data import RunData

__all__ = ["last_rebalance_chart", "rebalances_table", "weights_chart"]

_PALETTE = (
    "#2c7fb8", "#fd8d3c", "#6a3d9a", "#1a9850", "#b15928", "#e7298a", "#666666",
    "#a6cee3", "#b2df8a", "#fb9a99", "#cab2d6", "#ffff99", "#1f78b4", "#33a02c",
)  # fmt: skip
_REST = "#bdbdbd"
_TARGET, _HELD = "#2c7fb8", "#969696"


def weights_chart(run: RunData) -> Chart | None:
    """Return each symbol's target weight over time, a step at each rebalance (None: the
    run does not allocate)."""
    history = run.allocations
    if history is None:
        return None
    x = history.times.tz_localize(None).to_numpy()
    # each target holds until the next rebalance, the last one until the run's last bar
    ends = naive_times(run.equity)
    steps = np.append(x, ends[-1:]) if len(ends) and ends[-1] > x[-1] else x
    target = history.target[np.minimum(np.arange(len(steps)), len(x) - 1)]
    columns = top_columns(history.target)
    data: list[dict[str, Any]] = []
    for n, j in enumerate(columns):
        color = _PALETTE[n % len(_PALETTE)]
        data.append(_step(steps, target[:, j], history.symbols[j], color))
    rest = _rest(target, columns)
    if rest is not None:
        count = len(history.symbols) - len(columns)
        data.append(_step(steps, rest, f"the other {count} summed", _REST, dash="dot"))
    kept = history.kept
    if kept.any():  # the rebalances that kept the last weights, on the axis
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "kept the last weights",
                "x": x[kept],
                "y": np.zeros(int(kept.sum())),
                "marker": {"symbol": "x", "color": "#d73027", "size": 8},
                "text": [
                    f"{s}: {m}"
                    for s, m, k in zip(history.statuses, history.messages, kept, strict=True)
                    if k
                ],
                "hoverinfo": "text+x",
            }
        )
    fig = layout(
        360,
        yaxis={"title": "target weight (of equity)", "tickformat": ".0%", "gridcolor": "#e5e5e5"},
        xaxis={"title": "time (UTC)", "gridcolor": "#e5e5e5"},
    )
    note = (
        f"{history.allocators[-1]}: the target weight of each symbol from each of the "
        f"{len(history):,} rebalances until the next; a red x is a rebalance that kept the "
        "last weights"
    )
    if rest is not None:
        note += f"; the {len(columns)} largest mean weights drawn, the rest summed"
    return Chart("Target weights over time", data, fig, note, link=True)


def last_rebalance_chart(run: RunData) -> Chart | None:
    """Return target against held weight per symbol at the last rebalance (None: the run
    does not allocate)."""
    history = run.allocations
    if history is None:
        return None
    target, held = history.target[-1], history.held[-1]
    both = np.vstack([target, held])
    columns = top_columns(both)
    names = [history.symbols[j] for j in columns]
    shown_target = [float(target[j]) for j in columns]
    shown_held = [float(held[j]) for j in columns]
    rest = _rest(both, columns)
    if rest is not None:
        names.append(f"the other {len(history.symbols) - len(columns)}")
        shown_target.append(float(rest[0]))
        shown_held.append(float(rest[1]))
    data = [
        _bars(names, shown_target, "target", _TARGET),
        _bars(names, shown_held, "held at the decision", _HELD),
    ]
    fig = layout(
        80 + 34 * len(names),
        barmode="group",
        yaxis={"title": "symbol", "type": "category", "autorange": "reversed"},
        xaxis={"title": "weight (of equity)", "tickformat": ".0%", "gridcolor": "#e5e5e5"},
    )
    status = history.statuses[-1]
    when = history.times[-1].strftime("%Y-%m-%d %H:%M")
    note = f"bar {int(history.bars[-1]):,} ({when} UTC), {history.allocators[-1]}: {status}"
    if status != "ok":
        note += f" ({history.messages[-1]}); the last weights held, nothing was traded"
    return Chart("Target and held weights at the last rebalance", data, fig, note)


def rebalances_table(run: RunData) -> str:
    """Return the table of rebalances (empty: the run does not allocate)."""
    history = run.allocations
    if history is None:
        return ""
    rows = []
    for i in range(len(history)):
        status = history.statuses[i]
        weights = "held" if status != "ok" else "new"
        why = f" title='{escape(history.messages[i])}'" if history.messages[i] else ""
        rows.append(
            f"<tr><td>{int(history.bars[i]):,}</td>"
            f"<td>{history.times[i].strftime('%Y-%m-%d %H:%M')}</td>"
            f"<td>{escape(history.allocators[i])}</td><td{why}>{escape(status)}</td>"
            f"<td>{weights}</td><td>{history.turnover[i]:.2%}</td></tr>"
        )
    kept = int(history.kept.sum())
    mean = float(history.turnover.mean())
    return (
        "<section class='rebalances'><h2>Rebalances</h2><p class='note'>"
        f"{len(history):,} rebalances, {kept:,} kept the last weights; turnover is the "
        f"weight a rebalance asked to move, the sum of |target - held| (mean {mean:.2%})"
        "</p><div class='scroll'><table class='refusals'><tr><th>bar</th><th>time (UTC)</th>"
        "<th>allocator</th><th>status</th><th>weights</th><th>turnover</th></tr>"
        f"{''.join(rows)}</table></div></section>"
    )


def _rest(values: np.ndarray, columns: list[int]) -> np.ndarray | None:
    others = [j for j in range(values.shape[1]) if j not in set(columns)]
    if not others:
        return None
    return np.asarray(np.nansum(values[:, others], axis=1), dtype=np.float64)


def _step(x: np.ndarray, y: np.ndarray, name: str, color: str, **line: Any) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": x,
        "y": y,
        "name": name,
        "line": {"color": color, "width": 1.4, "shape": "hv", **line},
        "hovertemplate": f"{escape(name)}: %{{y:.2%}}<extra></extra>",
    }


def _bars(names: list[str], values: list[float], name: str, color: str) -> dict[str, Any]:
    return {
        "type": "bar",
        "orientation": "h",
        "name": name,
        "y": names,
        "x": values,
        "marker": {"color": color},
        "hovertemplate": f"%{{y}} {name}: %{{x:.2%}}<extra></extra>",
    }
