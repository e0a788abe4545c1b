"""A run's life from its journal, for the report's timeline and its banner.

Walk-forward folds, retrains, halts, health changes and trading-state changes (the
kill switch, a resume, a drawdown halt) in every mode; for a paper or live run also its
starts and restarts, its stops, the operator's kill and resume requests, and the strategy
file's reloads (and refused reloads).

Each event is placed at its bar's time: the time the journal gives it, else the bar's
row of ``equity.csv`` (a backtest), else the last bar the run processed before it (a
start, a stop, an operator's request; the first bar after it for the run's first start).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tradeloom.journal import (
    ConfigReloaded,
    ConfigReloadRefused,
    ControlRequest,
    HaltEvent,
    HealthActionFired,
    HealthChanged,
    LiveBar,
    ModelSwapped,
    ModelSwapRefused,
    ModelTrained,
    Restarted,
    RunStarted,
    RunStopped,
    TradingStateChanged,
    read_sequenced,
)

__all__ = ["RunEvent", "final_state", "run_events"]


@dataclass(frozen=True)
class RunEvent:
    """Something that happened at a bar, for the report's timeline.

    Attributes:
        kind: ``fold``, ``retrain``, ``halt``, ``health``, ``health_action``,
            ``trading_state``, ``start``, ``stop``, ``control``, ``reload`` or ``swap``.
        bar: The bar it happened at (-1: placed by the bars around it).
        timestamp: That bar's time.
        label: A short text (a code, a status, a reason).
        detail: The rest, for hover text.
        state: For ``trading_state``, the state after it (``HALTED``...).
        code: For ``trading_state`` and ``halt``, the reason code (``KILL_SWITCH``,
            ``MAX_DRAWDOWN_HALT``...).
    """

    kind: str
    bar: int
    timestamp: pd.Timestamp
    label: str
    detail: str = ""
    state: str = ""
    code: str = ""


_BACKTEST_KINDS = ("model_trained", "halt", "health", "health_action", "trading_state")
_LIFE_KINDS = (
    "run_started",
    "restarted",
    "run_stopped",
    "control_request",
    "config_reloaded",
    "config_reload_refused",
    "model_swapped",
    "model_swap_refused",
    "live_bar",
)


def run_events(path: Path, equity: pd.DataFrame, mode: str) -> list[RunEvent]:
    """Return the run's events in journal order, each placed at its time ([] without a
    journal)."""
    if not path.exists():
        return []
    # a backtest's bars are equity.csv's rows; a paper run's journal counts warm-up bars too
    backtest = mode == "backtest"
    times = equity["timestamp"] if backtest and "timestamp" in equity.columns else None
    kinds = _BACKTEST_KINDS + (() if backtest else _LIFE_KINDS)
    events: list[RunEvent] = []
    unplaced: list[RunEvent] = []  # before the first bar: placed at it
    last: pd.Timestamp | None = None
    starts = 0
    for _, event in read_sequenced(path, list(kinds)):
        if isinstance(event, LiveBar):
            last = event.timestamp
            if unplaced:
                events.extend(_at(e, last) for e in unplaced)
                unplaced.clear()
            continue
        made = _made(event, times, starts)
        if made is None:
            continue
        starts += isinstance(event, RunStarted | Restarted)
        if pd.isna(made.timestamp):
            if last is None:
                unplaced.append(made)
                continue
            made = _at(made, last)
        events.append(made)
    return [e for e in events if not pd.isna(e.timestamp)]


def final_state(events: list[RunEvent]) -> RunEvent | None:
    """Return the last trading-state change when it left the run HALTED (None otherwise)."""
    changes = [e for e in events if e.kind == "trading_state"]
    if changes and changes[-1].state == "HALTED":
        return changes[-1]
    return None


def _at(event: RunEvent, when: pd.Timestamp) -> RunEvent:
    return RunEvent(event.kind, event.bar, when, event.label, event.detail, event.state, event.code)


def _made(event: Any, times: pd.Series | None, starts: int) -> RunEvent | None:
    """Return the timeline's event of a journal event (None: not one the timeline shows)."""
    own = event.timestamp
    if isinstance(event, ModelTrained):
        if event.skipped:
            return None
        retrain = event.reason != "scheduled"
        label = f"fold {event.fold}" + (f" (retrain: {event.reason})" if retrain else "")
        detail = f"trained on bars {event.train_start}..{event.train_end}"
        kind = "retrain" if retrain else "fold"
        return _placed(kind, event.predict_start, own, times, label, detail)
    if isinstance(event, HaltEvent):
        made = _placed("halt", event.bar, own, times, event.code, event.message)
        return RunEvent(
            made.kind, made.bar, made.timestamp, made.label, made.detail, "", event.code
        )
    if isinstance(event, HealthChanged):
        label = f"{event.monitor}: {event.previous} -> {event.status}"
        return _placed("health", event.bar, own, times, label, f"{event.metric}={event.value}")
    if isinstance(event, HealthActionFired):
        label = f"health rule: {event.action}"
        return _placed("health_action", event.bar, own, times, label, event.reason)
    if isinstance(event, TradingStateChanged):
        label = f"{event.previous} -> {event.state} ({event.code})"
        made = _placed("trading_state", event.bar, own, times, label, event.message)
        return RunEvent(
            made.kind, made.bar, made.timestamp, label, made.detail, event.state, event.code
        )
    if isinstance(event, RunStarted):
        label = "started" if starts == 0 else f"restarted ({starts})"
        detail = f"tradeloom {event.tradeloom}, {_wall(event.wall_time)}"
        return RunEvent("start", -1, pd.NaT, label, detail)
    if isinstance(event, Restarted):
        detail = (
            f"replayed {event.bars_replayed} bars from the journal; position {event.position:g}, "
            f"cash {event.cash:,.2f}, {event.state}; {_wall(event.wall_time)}"
        )
        return RunEvent("start", -1, pd.NaT, f"restarted ({starts})", detail)
    if isinstance(event, RunStopped):
        detail = f"after {event.bars} bars, {_wall(event.wall_time)}"
        return RunEvent("stop", -1, pd.NaT, f"stopped: {event.reason}", detail)
    if isinstance(event, ControlRequest):
        detail = f"by {event.by}" + (f": {event.reason}" if event.reason else "")
        return RunEvent("control", -1, pd.NaT, f"{event.action} requested", detail)
    if isinstance(event, ConfigReloaded):
        detail = "; ".join(event.changes)
        label = "reloaded: " + ", ".join(event.changed)
        return _placed("reload", event.bar, own, times, label, detail)
    if isinstance(event, ConfigReloadRefused):
        return _placed("reload", event.bar, own, times, "reload refused", "; ".join(event.errors))
    if isinstance(event, ModelSwapped):
        detail = f"from {event.source} (sha256 {event.sha256[:12]}), by {event.by}: {event.reason}"
        label = f"model of {event.strategy} swapped" if event.strategy else "model swapped"
        return _placed("swap", event.bar, own, times, label, detail)
    if isinstance(event, ModelSwapRefused):
        detail = f"{event.source}, by {event.by}: " + "; ".join(event.errors)
        of = f" of {event.strategy}" if event.strategy else ""
        return _placed("swap", event.bar, own, times, f"model swap{of} refused", detail)
    return None


def _wall(when: pd.Timestamp) -> str:
    return "" if pd.isna(when) else f"wall clock {when:%Y-%m-%d %H:%M:%S}"


def _placed(
    kind: str, bar: Any, own: pd.Timestamp, times: pd.Series | None, label: str, detail: str
) -> RunEvent:
    index = -1 if bar is None else int(bar)
    if times is not None and 0 <= index < len(times) and pd.isna(own):
        return RunEvent(kind, index, times.iloc[index], label, detail)
    if kind in ("fold", "retrain") and times is not None and 0 <= index < len(times):
        return RunEvent(kind, index, times.iloc[index], label, detail)  # where it predicts from
    return RunEvent(kind, index, own, label, detail)
