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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from tradeloom.journal import (
    ConfigReloaded,
    ConfigReloadRefused,
    ControlRefused,
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
from tradeloom.journal.events import dispatch, kinds_read_by

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


_KINDS = kinds_read_by("timeline")
"""The kinds the timeline shows in every mode (declared ``timeline``)."""
_LIFE_KINDS = kinds_read_by("live_timeline")
"""The kinds it shows too for a paper or live run (declared ``live_timeline``)."""


def run_events(path: Path, equity: pd.DataFrame, mode: str) -> list[RunEvent]:
    """Return the run's events in journal order, each placed at its time ([] without a
    journal)."""
    if not path.exists():
        return []
    # a backtest's bars are equity.csv's rows; a paper run's journal counts warm-up bars too
    backtest = mode == "backtest"
    times = equity["timestamp"] if backtest and "timestamp" in equity.columns else None
    kinds = _KINDS + (() if backtest else _LIFE_KINDS)
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
        made = _ENTRIES[event.KIND](event, times, starts)
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


_Times: TypeAlias = "pd.Series | None"


def _trained(event: ModelTrained, times: _Times, starts: int) -> RunEvent | None:
    if event.skipped:
        return None
    retrain = event.reason != "scheduled"
    label = f"fold {event.fold}" + (f" (retrain: {event.reason})" if retrain else "")
    detail = f"trained on bars {event.train_start}..{event.train_end}"
    kind = "retrain" if retrain else "fold"
    return _placed(kind, event.predict_start, event.timestamp, times, label, detail)


def _halt(event: HaltEvent, times: _Times, starts: int) -> RunEvent:
    made = _placed("halt", event.bar, event.timestamp, times, event.code, event.message)
    return RunEvent(made.kind, made.bar, made.timestamp, made.label, made.detail, "", event.code)


def _health(event: HealthChanged, times: _Times, starts: int) -> RunEvent:
    label = f"{event.monitor}: {event.previous} -> {event.status}"
    detail = f"{event.metric}={event.value}"
    return _placed("health", event.bar, event.timestamp, times, label, detail)


def _health_action(event: HealthActionFired, times: _Times, starts: int) -> RunEvent:
    label = f"health rule: {event.action}"
    return _placed("health_action", event.bar, event.timestamp, times, label, event.reason)


def _trading_state(event: TradingStateChanged, times: _Times, starts: int) -> RunEvent:
    label = f"{event.previous} -> {event.state} ({event.code})"
    made = _placed("trading_state", event.bar, event.timestamp, times, label, event.message)
    return RunEvent(
        made.kind, made.bar, made.timestamp, label, made.detail, event.state, event.code
    )


def _started(event: RunStarted, times: _Times, starts: int) -> RunEvent:
    label = "started" if starts == 0 else f"restarted ({starts})"
    detail = f"tradeloom {event.tradeloom}, {_wall(event.wall_time)}"
    return RunEvent("start", -1, pd.NaT, label, detail)


def _restarted(event: Restarted, times: _Times, starts: int) -> RunEvent:
    detail = (
        f"replayed {event.bars_replayed} bars from the journal; position {event.position:g}, "
        f"cash {event.cash:,.2f}, {event.state}; {_wall(event.wall_time)}"
    )
    return RunEvent("start", -1, pd.NaT, f"restarted ({starts})", detail)


def _stopped(event: RunStopped, times: _Times, starts: int) -> RunEvent:
    detail = f"after {event.bars} bars, {_wall(event.wall_time)}"
    return RunEvent("stop", -1, pd.NaT, f"stopped: {event.reason}", detail)


def _control(event: ControlRequest, times: _Times, starts: int) -> RunEvent:
    detail = f"by {event.by}" + (f": {event.reason}" if event.reason else "")
    return RunEvent("control", -1, pd.NaT, f"{event.action} requested", detail)


def _refused(event: ControlRefused, times: _Times, starts: int) -> RunEvent:
    more = f" (and {event.dropped} more not journaled)" if event.dropped else ""
    detail = f"{event.command} by {event.by}: {event.reason}{more}"
    return RunEvent("control", -1, pd.NaT, "command refused", detail)


def _reloaded(event: ConfigReloaded, times: _Times, starts: int) -> RunEvent:
    detail = "; ".join(event.changes)
    label = "reloaded: " + ", ".join(event.changed)
    return _placed("reload", event.bar, event.timestamp, times, label, detail)


def _reload_refused(event: ConfigReloadRefused, times: _Times, starts: int) -> RunEvent:
    detail = "; ".join(event.errors)
    return _placed("reload", event.bar, event.timestamp, times, "reload refused", detail)


def _swapped(event: ModelSwapped, times: _Times, starts: int) -> RunEvent:
    detail = f"from {event.source} (sha256 {event.sha256[:12]}), by {event.by}: {event.reason}"
    label = f"model of {event.strategy} swapped" if event.strategy else "model swapped"
    return _placed("swap", event.bar, event.timestamp, times, label, detail)


def _swap_refused(event: ModelSwapRefused, times: _Times, starts: int) -> RunEvent:
    detail = f"{event.source}, by {event.by}: " + "; ".join(event.errors)
    of = f" of {event.strategy}" if event.strategy else ""
    return _placed("swap", event.bar, event.timestamp, times, f"model swap{of} refused", detail)


def _bar(event: LiveBar, times: _Times, starts: int) -> None:
    return None  # no entry: `run_events` places the others at its time


_ENTRIES: dict[str, Callable[[Any, _Times, int], RunEvent | None]] = dispatch(
    {
        ModelTrained: _trained,
        HaltEvent: _halt,
        HealthChanged: _health,
        HealthActionFired: _health_action,
        TradingStateChanged: _trading_state,
        RunStarted: _started,
        Restarted: _restarted,
        RunStopped: _stopped,
        ControlRequest: _control,
        ControlRefused: _refused,
        ConfigReloaded: _reloaded,
        ConfigReloadRefused: _reload_refused,
        ModelSwapped: _swapped,
        ModelSwapRefused: _swap_refused,
        LiveBar: _bar,
    },
    "timeline",
    "live_timeline",
)
"""The timeline's entry of each kind it shows (None: none), given the bars' times of a
backtest and how many starts came before it."""


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
