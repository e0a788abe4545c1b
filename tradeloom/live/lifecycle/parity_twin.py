"""The run's replay, bar by bar, beside it: what ``max_parity_gap`` compares the run with.

A rollback rule ``max_parity_gap`` (a canary's, `tradeloom.live.lifecycle.canary`, or a watch's
after a full promotion, `tradeloom.live.lifecycle.promotion_watch`) reads how far the run's
booking has drifted from what the strategy should have booked on the same bars since
the stage started. What it should have booked is what ``tradeloom parity`` replays: the
run's bars and the model's probabilities as the run journaled them, decided by the
strategy's signal, sizing and risk rules and filled by its paper venue (the strategy's
``execution`` fill model: its prices, fees and slippage), each canary's share of the
size at its bars.

`ParityTwin` is that replay kept up to date one bar at a time, not run again at every
close: a `LiveSession` over the run's history that trades the strategy's own venue in
the compiled core (as a paper run does), is handed each bar the run just closed with the
verdicts the run's model gave (it predicts nothing, trains nothing) and journals to
memory. It is started when a stage with the rule starts, by stepping it over the run's
live bars so far as the journal holds them (its ``live_bar`` rows and canaries'
fractions: `journaled_ticks`), which is also how a restart takes it up again, and is
then stepped after each of the run's bars at the run's share of the size. One core step
a bar: the cost of one challenger in shadow, without its model.

The figure (`ParityTwin.gap`) is the run's return since the stage's start bar minus the
twin's over the same bars, each from its own equity at that close: the stage's P&L gap as
a fraction of equity, what its live fills (prices, fees, partial fills, rejections,
late bars) lost (< 0) or gained (> 0) against the replay. Returns, not amounts: a live
run's capital is its account's (``live.capital`` or the balance), the paper venue's the
file's ``initial_cash``. On a paper run the twin books what the run books, bar for bar,
and the gap is 0. The twin follows the strategy in force when it started and knows
nothing of the kill switch: after a hot reload during the stage, or with the kill switch
holding the run, it would book what the run did not, so it stops there
(`ParityTwin.lost`: the stage journals one ``parity_gap_lost`` row and its rule reads no
gap until the stage ends) rather than give a wrong gap.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core import layout as L
from tradeloom.domain import Universe
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import universe_features
from tradeloom.journal import journal_path
from tradeloom.live.lifecycle.verdict import BarInput
from tradeloom.live.recovery.journal_state import LiveBarRow, read_state
from tradeloom.live.recovery.replay import ScratchJournal, SilentHook
from tradeloom.live.tick.history import MarketHistory
from tradeloom.live.tick.session import LiveSession
from tradeloom.plugins.protocols_steps import LiveRows

__all__ = ["TICK_KINDS", "ParityTwin", "journaled_ticks", "open_twin", "reload_lost"]

TICK_KINDS = ("live_bar", "canary_started", "canary_passed", "canary_rolled_back")
"""The journal's rows a twin is stepped from: the bars and the canaries' fractions."""

Tick = tuple[int, pd.Timestamp, npt.NDArray[np.float64], list[BarInput | None]]
"""A journaled tick: its bar, its open time, each symbol's OHLCV and verdict."""


def reload_lost(bar: int) -> tuple[str, str]:
    """Return the ``(cause, message)`` of the ``parity_gap_lost`` row of a hot reload
    journaled at bar ``bar`` (its ``config_reloaded`` row's), during a stage: the live
    run's (`ParityTwin.lost`) and a restart's
    (`tradeloom.live.lifecycle.watched.restore_watched`)."""
    return "reload", (
        f"a hot reload at bar {bar} changed the strategy the replay trades; "
        "max_parity_gap reads no gap until the stage ends"
    )


@dataclass
class ParityTwin:
    """The run's replay since its first live bar, a bar at a time (see the module).

    Attributes:
        session: The replay's session (the strategy's paper venue, journaling to memory).
        scratch: Where it journals.
        start: The stage's start bar (the gap is measured from its close).
        run_equity: The run's equity at that close.
        twin_equity: The replay's equity at that close (NaN: not stepped there yet).
    """

    session: LiveSession
    scratch: ScratchJournal
    start: int
    run_equity: float
    twin_equity: float = float("nan")
    strategy: object = None
    """The run's strategy when the twin started (a hot reload puts in another)."""

    @property
    def last_bar(self) -> int:
        """Return the last bar the twin has stepped."""
        return len(self.session.history) - 1

    def step(
        self,
        bar: int,
        time: pd.Timestamp,
        prices: npt.ArrayLike,
        verdicts: Sequence[BarInput | None],
        scale: float,
    ) -> None:
        """Step the twin on clock bar ``bar`` (opening at ``time``) with the run's verdicts,
        each entry at ``scale`` of the sizing's size; a bar stepped already is skipped."""
        if bar <= self.last_bar:
            return
        engine = self.session.engine
        if engine.size_scale != scale:
            engine.scale_sizes(scale)
        self.session.step(time, prices, given=list(verdicts))
        self.scratch.events.clear()
        if bar == self.start:
            self.twin_equity = self.equity

    def follow(self, run: LiveSession) -> None:
        """Step the twin on the bar ``run`` just closed (its verdicts, its share of the
        size in force at that bar)."""
        history = run.history
        t = len(history) - 1
        self.step(t, history.time(t), history.prices(t), run.verdicts, run.engine.size_scale)

    def lost(self, run: LiveSession) -> tuple[str, str] | None:
        """Return why the twin cannot follow ``run`` at the bar it is about to be stepped
        on, as ``(cause, message)`` (`tradeloom.journal.ParityGapLost`); None: it can."""
        if run.p.config is not self.strategy:
            return reload_lost(run.reloaded_at)  # the reload's bar, not the first it traded
        bar = len(run.history) - 1
        if run.killed:
            return "kill", (
                f"the kill switch holds the run at bar {bar}, its replay knows nothing of "
                "it; max_parity_gap reads no gap until the stage ends"
            )
        return None

    @property
    def equity(self) -> float:
        """Return the twin's equity at its last bar's close."""
        return float(self.session.engine.state.acct[L.A_EQUITY])

    def gap(self, run: LiveSession) -> float:
        """Return the run's return since the start bar's close minus the twin's, at the
        last bar's close (NaN: an equity at the start that is not positive)."""
        run_now = float(run.engine.state.acct[L.A_EQUITY])
        if not (self.run_equity > 0.0 and self.twin_equity > 0.0):
            return float("nan")
        return (run_now / self.run_equity) - (self.equity / self.twin_equity)


def journaled_ticks(rows: Sequence[LiveBarRow], names: Sequence[str]) -> list[Tick]:
    """Return the journal's live ticks in order: each one's bar, open time, each symbol's
    OHLCV (NaN: no row) and verdict (None: no row), for symbols ``names``."""
    index = {name: s for s, name in enumerate(names)}
    m = len(names)
    ticks: dict[int, tuple[pd.Timestamp, npt.NDArray[np.float64], list[BarInput | None]]] = {}
    for row in rows:
        if row.index not in ticks:
            ticks[row.index] = (row.time, np.full((m, 5), np.nan), [None] * m)
        _, prices, verdicts = ticks[row.index]
        s = index[row.symbol] if m > 1 else 0  # one market: whatever it was named
        prices[s] = row.values
        verdicts[s] = row.verdict
    return [(t, *ticks[t]) for t in sorted(ticks)]


def open_twin(
    run: LiveSession,
    head: Universe,
    *,
    start: int,
    run_equity: float,
    rows: Sequence[LiveBarRow] | None = None,
    scales: Sequence[tuple[int, float]] = (),
    run_dir: Path | None = None,
    clock: Callable[[], pd.Timestamp],
    live_rows: Mapping[str, LiveRows] | None = None,
) -> ParityTwin:
    """Return the twin of ``run``, warmed up over ``head`` (the history the run started
    from) and stepped over the journal's live bars: ``rows`` and ``scales`` (a restart's
    `tradeloom.live.recovery.journal_state.JournalState`), or read from ``run_dir``'s journal
    (the run committed every bar it closed: a stage starts after that commit).

    Raises:
        RuntimeError: The journal's live bars end before ``start``.

    Args:
        run: The run's session (its strategy, its symbols).
        start: The stage's start bar.
        run_equity: The run's equity at that bar's close (its start row's).
    """
    if rows is None:
        assert run_dir is not None
        state = read_state(journal_path(run_dir), TICK_KINDS)
        rows, scales = state.bars, state.scales
    pipeline = run.p
    own = replace(
        pipeline,
        features=copy.deepcopy(pipeline.features),
        signal=copy.deepcopy(pipeline.signal),
        sizer=copy.deepcopy(pipeline.sizer),
        rules=copy.deepcopy(pipeline.rules),
        venue=copy.deepcopy(pipeline.venue),
        monitors=copy.deepcopy(pipeline.monitors),
        allocator=copy.deepcopy(pipeline.allocator),
    )  # the model is the run's, never asked: the verdicts are the run's
    scratch = ScratchJournal(run.rec.journal.identity)
    recorder = Recorder(scratch, SilentHook(), run.rec.run, run.rec.symbol)  # type: ignore[arg-type]
    history = MarketHistory(head, universe_features(own, head))
    session = LiveSession(
        own, recorder, history, order_id=lambda n: f"twin-{n}", clock=clock, live_rows=live_rows
    )
    session.warm_up()
    scratch.events.clear()
    twin = ParityTwin(session, scratch, start, run_equity, strategy=pipeline.config)
    if start == twin.last_bar:  # a stage started on the history's last bar
        twin.twin_equity = twin.equity
    pending = list(scales)  # in the order journaled
    for bar, time, prices, verdicts in journaled_ticks(rows, run.names):
        session.engine.replay_scales(pending, bar - 1)
        twin.step(bar, time, prices, verdicts, session.engine.size_scale)
    if twin.last_bar < start:
        raise RuntimeError(
            f"the journal's live bars end at bar {twin.last_bar}, before bar {start} the "
            "stage started at: its rows were not committed"
        )
    return twin
