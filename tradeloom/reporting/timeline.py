"""The report's timeline of a run's life and its HALTED banner (`tradeloom.reporting.run_events`).

One row per kind of event (walk-forward folds, retrains, health changes and actions,
halts, trading-state changes; for a paper or live run also starts and restarts, stops,
the operator's requests and reloads), each event a tick at its bar's time with what
happened in its hover text. A run whose last trading-state change left it HALTED (the
kill switch, a drawdown halt) gets a banner at the top of the page saying since when
and why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeloom.reporting.charts import Chart, escape, layout, naive_times
from tradeloom.reporting.run_data import RunData
from tradeloom.reporting.run_events import RunEvent, final_state

__all__ = ["halted_banner", "timeline_chart"]

_GREEN, _RED, _BLUE, _GREY, _ORANGE, _PURPLE = (
    "#1a9850",
    "#d73027",
    "#2c7fb8",
    "#969696",
    "#fd8d3c",
    "#6a3d9a",
)
_ROWS = {
    "start": ("starts and restarts", _GREEN),
    "stop": ("stops", _GREY),
    "control": ("operator requests (kill, resume)", _PURPLE),
    "reload": ("strategy reloads", _BLUE),
    "swap": ("model swaps", _PURPLE),
    "fold": ("walk-forward folds", _GREY),
    "retrain": ("retrains", _BLUE),
    "health": ("health changes", _ORANGE),
    "health_action": ("health actions", _ORANGE),
    "halt": ("halts", _RED),
    "trading_state": ("trading state / kill switch", _RED),
}


def timeline_chart(run: RunData) -> Chart | None:
    """Return the timeline of the run's events (None when it has none)."""
    events = [e for e in run.events if e.kind in _ROWS]
    if not events:
        return None
    data = []
    for kind, (name, color) in _ROWS.items():
        chosen = [e for e in events if e.kind == kind]
        if not chosen:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name} ({len(chosen)})",
                "x": np.array([_naive(e.timestamp) for e in chosen]),
                "y": [name] * len(chosen),
                "marker": {"symbol": "line-ns-open", "size": 14, "color": color},
                "text": [_text(e) for e in chosen],
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    times = naive_times(run.equity)
    span = [times[0], times[-1]] if len(times) else None
    longest = max(len(name) for name, _ in _ROWS.values())
    fig = layout(
        90 + 40 * len(data),
        yaxis={"title": "event", "type": "category", "gridcolor": "#e5e5e5"},
        # the run's period, as the charts above
        xaxis={"title": "time (UTC)", "range": span, "gridcolor": "#e5e5e5"},
        showlegend=False,
    )
    fig["margin"] = {**fig["margin"], "l": 50 + 7 * longest}  # the row names, then the title
    what = (
        "the run's life: starts, stops, kills, resumes, reloads, " if run.mode != "backtest" else ""
    )
    return Chart(
        f"Timeline: {what}folds, retrains, health, halts and the kill switch",
        data,
        fig,
        "hover an event for what happened",
        link=True,
    )


def halted_banner(run: RunData) -> str:
    """Return the page's HALTED banner when the run ended halted, else ''.

    It says since when and why, with the halt's values (``drawdown=0.153, limit=0.15``),
    and what lifts it in the run's mode: nothing in a backtest; ``tradeloom resume`` for
    the kill switch of a paper or live run, which lifts nothing else (a drawdown, health
    or rule halt latched before the kill holds the run for the rest of it).
    """
    events = list(run.events)
    last = final_state(events)
    if last is None:
        return ""
    when = last.timestamp.strftime("%Y-%m-%d %H:%M") if not pd.isna(last.timestamp) else ""
    halts = [e for e in events if e.kind == "halt" and e.code and e.code != "KILL_SWITCH"]
    code = last.code or last.label
    why = escape(code)
    own = [e for e in halts if e.code == code]
    detail = (own[-1].detail if own else "") or (last.detail if last.detail != code else "")
    if detail:
        why += f" ({escape(detail)})"
    if run.mode == "backtest":
        lifts = (
            "A backtest's halt lasts to its end: no new position after it, only the halt's exits."
        )
    elif code == "KILL_SWITCH":
        lifts = (
            "The kill switch: no order at all, exits included, until <code>tradeloom resume</code>."
        )
        if halts:  # the latch the kill found: resume lifts the kill switch only
            lifts += (
                f" The run then stays halted for {escape(halts[-1].label)}, latched before "
                "the kill: no new position for the rest of the run."
            )
    else:
        lifts = (
            "No new position for the rest of the run, only the halt's exits; "
            "<code>tradeloom resume</code> lifts the kill switch only, not this halt."
        )
    return (
        "<div class='halted' id='halted-banner' role='alert'><strong>HALTED</strong> since "
        f"{escape(when)} UTC: {why}. {lifts}</div>"
    )


def _naive(ts: pd.Timestamp) -> np.datetime64:
    return np.datetime64(ts.tz_convert("UTC").tz_localize(None), "ns")


def _text(event: RunEvent) -> str:
    when = event.timestamp.strftime("%Y-%m-%d %H:%M")
    detail = f"<br>{escape(event.detail)}" if event.detail else ""
    bar = f"bar {event.bar}, " if event.bar >= 0 else ""
    return f"{escape(event.label)}<br>{bar}{when}{detail}"
