"""The live parity check kept up as the run trades (`ParityFollower`), not replayed from
bar one at every check.

The whole check (`tradeloom.diagnostics.live_parity.check_apart`) replays the run so far
as a backtest, compares it row by row and explains every difference by its cause: its
cost grows with the run. A run that agrees with its replay needs none of that: its
window's figures are all 0 and its verdict ``ok``. `ParityFollower` keeps that replay
beside the run, as a `tradeloom.live.lifecycle.parity_twin.ParityTwin` (the run's
strategy, its paper venue in the compiled core, the run's journaled verdicts), and at
each check steps it only over the bars journaled since the last one (``live_bar`` rows,
read by an `tradeloom.journal.EventFollower`), then compares, bar by bar, the run's
decisions (`COMPARED`: signals, risk rejections, orders, fills, cancellations, halts),
to the bit but their ids, and its equity in ``equity.csv`` (appended rows, read from
where the last check stopped) with the replay's. Orders still filling at the check's
last bar are on both sides unfilled: their fills are compared at the check that reaches
them.

Where every row and every equity agrees from the first live bar on, the whole check
would find no difference, no gap and no unexplained P&L (the replay is the same kernel,
driven bar by bar: the project's batch == live promise), so the follower answers the
window's fields as it would (`tradeloom.live.lifecycle.parity_fields.window_fields`,
written to ``parity/live.json`` as it writes them), at the cost of the bars since the
last check. Anything else goes to the whole check,
from then on for the rest of the process: a row or an equity that differs, a journaled
fact the replay does not model bar by bar (`WHOLE`: a hot reload, a model swap, a kill
or a flatten, a canary, a venue's fills, a router, funding, allocation), ``equity.csv``
rewritten, a portfolio file. A restart (or the journal's outage) starts the follower
again (`ParityFollower.start`): its first check replays every live bar the journal
holds, once, and compares them all; a restart's own rows change no figure of a run that
agrees with its replay (they only explain differences).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tradeloom.core import layout as L
from tradeloom.journal import EventFollower, journal_path
from tradeloom.live.lifecycle.parity_fields import window_fields, write_live
from tradeloom.live.lifecycle.parity_monitor import Check
from tradeloom.live.lifecycle.parity_twin import ParityTwin, journaled_ticks
from tradeloom.live.lifecycle.verdict import BarInput
from tradeloom.live.recovery.journal_state import LiveBarRow
from tradeloom.runtime.lazy import logger

__all__ = ["COMPARED", "WHOLE", "ParityFollower"]

COMPARED = (
    "signal",
    "rejection",
    "order",
    "fill",
    "order_cancelled",
    "order_expired",
    "halt",
    "liquidation",
)
"""The run's rows compared with its replay's, bar by bar, to the bit but their ids."""

WHOLE = (
    "config_reloaded",
    "model_swapped",
    "control_request",
    "trading_state",
    "kill_cancel",
    "canary_started",
    "canary_passed",
    "canary_rolled_back",
    "watch_started",
    "promotion_rolled_back",
    "venue_fill",
    "order_state",
    "route_decision",
    "venue_at_start",
    "strategy_at_start",
    "sliced_order",
    "funding",
    "allocation_decided",
)
"""Journaled facts the follower does not model: from the first, the whole check runs."""

_IDS = frozenset({"id", "order_id", "parent_id", "correlation_id"})
"""A row's fields that name it rather than say what it did (the replay's own ids)."""

_log = logger("tradeloom.live")


class ParityFollower:
    """A `Check` that follows the run with its replay and runs ``whole`` only when it
    must (see the module).

    Args:
        run_dir: The run folder.
        whole: The whole check (the diagnostics layer's replay).

    Attributes:
        twin: The replay (set in the trading thread by the stage, `start`; None: not
            started, every check is whole).
        lost: Why the follower hands every check to ``whole`` ('' while it follows).
        followed: The checks answered without the whole replay.
    """

    def __init__(self, run_dir: Path, whole: Check) -> None:
        self.run_dir = run_dir
        self.whole = whole
        self.followed = 0
        self.start(None, ())

    def start(self, twin: ParityTwin | None, names: Sequence[str]) -> None:
        """Follow the run from its first live bar with ``twin`` (its replay before that
        bar; None: none, every check whole) over the symbols ``names``: the first check
        replays every live bar the journal holds."""
        self.twin, self._names, self.lost = twin, list(names), ""
        self._events = EventFollower(journal_path(self.run_dir), ("live_bar", *COMPARED, *WHOLE))
        self._held: list[Any] = []  # rows of bars after the last check's
        self._bars: list[int] = []  # the live bars checked, in order
        self._equity = _EquityTail(self.run_dir / "equity.csv")

    def drop(self, why: str) -> None:
        """Hand every check to the whole replay from now on (``why``: logged)."""
        if not self.lost:
            self.lost = why
            _log.info("parity_follow_lost", why=why)

    def check(
        self, run_dir: Path, until_bar: int, window_bars: int, limit: float
    ) -> dict[str, Any]:
        """Return the check's fields at ``until_bar`` (a `Check`)."""
        if self.twin is None:
            self.drop("no replay beside the run")
        if not self.lost:
            try:
                fields = self._follow(until_bar, window_bars, limit)
            except Exception as exc:  # the whole check says what is wrong, if anything
                fields = None
                self.drop(f"{type(exc).__name__}: {exc}")
            if fields is not None:
                self.followed += 1
                return fields
        return self.whole(run_dir, until_bar, window_bars, limit)

    def _follow(self, until_bar: int, window_bars: int, limit: float) -> dict[str, Any] | None:
        twin = self.twin
        assert twin is not None
        rows = self._held + self._events.read()
        now = [r for r in rows if r.bar <= until_bar]
        self._held = [r for r in rows if r.bar > until_bar]
        kinds = {r.KIND for r in now}
        if kinds & set(WHOLE):
            self.drop(f"the journal holds {', '.join(sorted(kinds & set(WHOLE)))}")
            return None
        bars = [r for r in now if r.KIND == "live_bar"]
        ticks = journaled_ticks([_tick_row(r) for r in bars], self._names)
        run_rows = _by_bar(r for r in now if r.KIND != "live_bar")
        equity = self._equity.read()
        if equity is None:
            self.drop("equity.csv was rewritten")
            return None
        session, scratch = twin.session, twin.scratch
        for bar, time, prices, verdicts in ticks:
            if bar <= twin.last_bar:
                continue  # stepped already (a bar the journal holds twice: none)
            scratch.events.clear()
            session.step(time, prices, given=list(verdicts))
            mine = run_rows.pop(bar, [])
            theirs = [_said(e) for e in scratch.events if e.KIND in COMPARED]
            scratch.events.clear()
            if [_said(e) for e in mine] != theirs:
                self.drop(f"bar {bar}: the run's rows are not its replay's")
                return None
            run_equity = equity.pop(int(time.value), None)  # read once: kept no longer
            replay_equity = float(session.engine.state.acct[L.A_EQUITY])
            if run_equity is None or run_equity != replay_equity:
                self.drop(f"bar {bar}: the run's equity is not its replay's")
                return None
            self._bars.append(bar)
        if run_rows or not self._bars:  # rows of a bar with no live bar; or no bar yet
            self.drop("rows beside no live bar")
            return None
        del self._bars[:-window_bars]  # the window is all a later check reads
        window = self._bars
        fields = window_fields(
            window[0],
            window[-1],
            equity_gap=0.0,
            window_gap=0.0,
            unexplained=0.0,
            first="",
            max_unexplained=limit,
        )
        write_live(self.run_dir, fields)
        return fields


def _tick_row(event: Any) -> LiveBarRow:
    """The ``live_bar`` row as a restart reads it (`journaled_ticks`' input)."""
    return LiveBarRow(
        event.bar,
        event.timestamp,
        np.array([event.open, event.high, event.low, event.close, event.volume]),
        BarInput(event.probability, event.anomalous, event.anomaly_score),
        event.wall_time,
        event.symbol,
    )


def _by_bar(rows: Any) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(row.bar, []).append(row)
    return found


def _said(event: Any) -> tuple[Any, ...]:
    """What a row says, to the bit, but its ids (a NaN equal to a NaN)."""
    fields = dataclasses.asdict(event)
    return (
        event.KIND,
        *((k, _bits(v)) for k, v in sorted(fields.items()) if k not in _IDS),
    )


def _bits(value: Any) -> Any:
    if isinstance(value, float):
        return value.hex() if not math.isnan(value) else "nan"
    if isinstance(value, Mapping):
        return tuple(sorted((k, _bits(v)) for k, v in value.items()))
    if isinstance(value, pd.Timestamp):
        return value.value
    return value


class _EquityTail:
    """``equity.csv``'s ``equity`` by bar time (UTC ns), read from where the last read
    stopped (the file is appended bar by bar: `tradeloom.live.outputs.equity_file`);
    None from `read` when the file was rewritten since (another file, or shorter)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.at = 0  # bytes read
        self.inode: int | None = None
        self.column = -1
        self.values: dict[int, float] = {}

    def read(self) -> dict[int, float] | None:
        if not self.file.exists():
            return self.values
        stat = os.stat(self.file)
        if self.inode is not None and (stat.st_ino != self.inode or stat.st_size < self.at):
            return None
        self.inode = stat.st_ino
        with self.file.open("rb") as f:
            f.seek(self.at)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # whole lines only: an append may be under way
        self.at += end
        lines = chunk[:end].decode("utf-8").splitlines()
        if self.column < 0 and lines:
            self.column = lines.pop(0).split(",").index("equity")
        for line in lines:
            cells = line.split(",")
            self.values[pd.Timestamp(cells[0]).value] = float(cells[self.column])
        return self.values
