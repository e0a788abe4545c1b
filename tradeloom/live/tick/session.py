"""The live driver: each tick's closed bars in, the backtest's per-bar steps, orders out.

A paper or live run trades a universe keyed by symbol, as a backtest does; one market
is the universe of one. `LiveSession.step` takes one tick: the clock bar's time and
every symbol's closed bar (a NaN row: the symbol's bar did not arrive by the grace
deadline), and does what the backtest's per-bar driver (`tradeloom.backtest.pipeline`)
does with that bar of the clock, in the same order, with the same components:

1. each present symbol's features are stepped (one `FeatureStepper` per symbol, reading
   the symbol's live rows: its order book or auxiliary series as the bar closes), then
   the cross-sectional columns from the rows of the symbols present (`cross_row`);
2. the model predicts one row per present symbol: the pooled model's latest fold, or
   the symbol's own model (``per_symbol``, or a model that does not pool), bit for bit
   the backtest's number, with its anomaly verdict; a model that reads a window of rows
   (`WindowedModel`) is given the symbol's last rows (`RowWindows`);
3. each present symbol's bar is journaled (``live_bar``: prices, prediction, anomaly
   verdict, the wall time; a restart replays these rows) and a symbol that starts
   missing bars is journaled once (``symbol_absent``, at the stretch's first bar);
4. the engine runs the clock bar through the compiled core over every symbol at once
   (`tradeloom.engine.driver.Engine`): signal, risk, execution and portfolio, with
   shared cash (an absent symbol: NaN prices, no signal, no fill); live, each market's
   new position gets its stops rested at the exchange. With ``allocation:``, a
   rebalance is solved in a worker with a deadline
   (`tradeloom.live.tick.allocation_solver.DeadlineSolver`) and journaled before its orders;
   the warm-up over the history decides none;
5. the fold that predicts from the next clock bar trains when the walk-forward plan
   starts one there (the backtest's fold: the same rows and seed), or when a health
   rule or the retraining cron asked for one;
6. the journal is committed.

The trading state (ACTIVE / REDUCING / HALTED), the pre-trade limits and the daily
loss limit are the core's risk engine, on the bar clock, as in a backtest; the kill
switch moves the state to HALTED, cancels every open order, and makes the engine
reject every signal (``HALTED``, code ``KILL_SWITCH``) until `resume`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from time import perf_counter
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.funding import FUNDING_ROW
from tradeloom.core.state import BarInputs
from tradeloom.domain import Bar, Bars, ModelTraining, Universe
from tradeloom.engine.book import Book
from tradeloom.engine.driver import Engine
from tradeloom.engine.events import Recorder
from tradeloom.engine.features import cross_row
from tradeloom.engine.funding import live_funding
from tradeloom.engine.health import never_trained
from tradeloom.engine.regime import RegimeParams, RegimeStepper
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import UserError
from tradeloom.journal import KillCancel, LiveBar, ModelSwapped, SymbolAbsent
from tradeloom.live.lifecycle.verdict import BarInput, Verdicts
from tradeloom.live.tick.allocation_solver import DeadlineSolver
from tradeloom.live.tick.history import MarketHistory
from tradeloom.live.tick.provides import provides
from tradeloom.live.tick.row_windows import RowWindows
from tradeloom.plugins.protocols import (
    CrossSectionalFeature,
    LiveAnomalyGate,
    LiveDocuments,
    LiveModel,
    LiveTrainer,
    Model,
    SymbolIdModel,
    Venue,
    WindowedModel,
)
from tradeloom.plugins.protocols_steps import FeatureStepper, LiveRows, StepContext
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import LiveBarRow

__all__ = [
    "KILL_CODE",
    "BarInput",
    "FeatureNotStepped",
    "LiveSession",
    "ProtectsPositions",
    "SendsTogether",
    "Verdicts",
    "send_decided",
]

KILL_CODE = "KILL_SWITCH"
"""The halt code of the kill switch (journaled, latched until resume)."""

_log = logger("tradeloom.live")


class FeatureNotStepped(UserError):
    """A feature stepped bar by bar over the warm-up's history is not its value computed
    over the whole history: it reads later bars (a leak), and a paper or live run, which
    can only step it, must not trade on it."""


@runtime_checkable
class ProtectsPositions(Protocol):
    """A live venue that rests each position's stops at the exchange (`AccountVenue`)."""

    def protect(self, book: Book, history: MarketHistory, bar: int, *, trading: bool) -> None:
        """Rest the stops of each market's position whose entry filled by ``bar``."""
        ...

    def cancel_stops(self, reason: str) -> None:
        """Cancel every resting stop (the kill switch)."""
        ...


@runtime_checkable
class SendsTogether(Protocol):
    """A live venue that sends a bar's orders together (``execution.orders.batch``:
    `AccountVenue`): told once the bar's decisions are made."""

    def flush(self) -> None:
        """Send the orders the bar decided (`tradeloom.live.orders.order_batch`)."""
        ...


def send_decided(venue: object) -> None:
    """Send what the bar decided where the venue holds it for a batch (`SendsTogether`);
    called right after the engine ran a bar, before its stops rest or it commits."""
    if provides(venue, SendsTogether):
        venue.flush()


class LiveSession:
    """Drive ``pipeline`` over the ticks of its markets, after ``history``.

    Args:
        pipeline: The built strategy.
        recorder: Journals and broadcasts.
        history: The markets before the first tick, with their features; the session
            steps the features through them to warm up.
        order_id: The client order id of the n-th order (unique across the symbols).
        clock: The time now (UTC): wall clock live, the emulator's in tests.
        venue: The Python venue orders go to (live: the account's markets,
            `tradeloom.live.accounts.account_venue.AccountVenue`; a restart's replay: the
            journal); None trades the strategy's own venue in the compiled core (paper).
        on_delivery: Told ``(bar, phase, call, events, ended)`` when the venue reports
            something (`tradeloom.engine.driver.Engine`).
        cron: Fire times of ``live.retrain_cron`` (None: no cron).
        stages: Told ``(stage, seconds)`` for each stage of a tick (features, predict,
            decide, train, journal); None: not timed.
        live_rows: Per symbol, its extra columns as each bar closes (its order book,
            `tradeloom.plugins.protocols_books.KeptBook`, or its auxiliary series);
            None: none.

    Attributes:
        names: Each symbol's name in the journal (a portfolio's member: its books').
        owner: Journaled as its trainings' symbol (a portfolio's member: its strategy).
    """

    allocation_deadline: DeadlineSolver | None = None
    """Who solves a rebalance, off the bar's path (None: no ``allocation:``)."""

    reloaded_at = -1
    """The bar of the last hot reload swapped in, its ``config_reloaded`` row's (-1: none;
    `tradeloom.live.lifecycle.reload_apply.apply_reload`)."""

    swapped: ModelSwapped | None = None
    """The journal's row that put the model in force (`tradeloom.live.lifecycle.model_swap.
    journal_swap`; a restart's: `restore_in_force`); None: the strategy's own decides."""

    signal_text = ""
    """The signal section in force as the journal's last ``model_swapped`` row says it
    ('' the strategy file's own: `tradeloom.live.lifecycle.promoted_signal.rule_in_force`)."""

    sizing_text = ""
    """The sizing section in force as the journal's last ``model_swapped`` row says it
    ('' the strategy file's ``risk.sizing``: `tradeloom.live.lifecycle.promoted_signal.
    rule_in_force`)."""

    account_rule: Callable[[Pipeline], None] | None = None
    """A portfolio file's member: puts its pipeline's signal rule and sizing in force for
    its books on the account, which trades them (`tradeloom.engine.account.AccountEngine.
    reconfigure_member`); None: a strategy run alone (its own engine trades)."""

    replayed_equity: Mapping[int, float] = MappingProxyType({})
    """The equity at the close of each bar a restart replayed, by bar, as the run had it
    then (`tradeloom.live.recovery.replay.replay_ticks`): what its challengers' books are compared
    with on the bars whose rows the kill lost (`tradeloom.live.lifecycle.challengers`)."""

    def __init__(
        self,
        pipeline: Pipeline,
        recorder: Recorder,
        history: MarketHistory,
        *,
        order_id: Callable[[int], str],
        clock: Callable[[], pd.Timestamp],
        venue: Venue | None = None,
        on_delivery: Callable[[int, str, int, int, list[str]], None] | None = None,
        cron: Callable[[pd.Timestamp], pd.Timestamp | None] | None = None,
        stages: Callable[[str, float], None] | None = None,
        live_rows: Mapping[str, LiveRows] | None = None,
    ) -> None:
        self.p = pipeline
        self.rec = recorder
        self.history = history
        self.clock = clock
        self.stages = stages
        self._cron = cron
        self._next_cron: pd.Timestamp | None = None
        self._retrain_reasons: list[str] = []
        symbols = history.symbols
        self.names: tuple[str, ...] = symbols
        self.owner = ""
        self.trained_before = False
        """A fold trained before this process started (the journal's, found by `catch_up`)."""
        self.folds: list[ModelTraining] = []
        """The folds its model planned in this process (skipped ones included); the
        recorder's are every strategy's of a portfolio file."""
        one = len(symbols) == 1
        self.engine = Engine(
            pipeline,
            recorder,
            order_id,
            times=history.time,
            timeframe_seconds=history.timeframe_seconds,
            calendar=history.calendar,
            # what plugins and monitors see: one market's row, or [symbols, columns]
            features=(lambda i: history.feature_row(i)[0]) if one else history.feature_row,
            columns=history.columns,
            symbols=symbols,
            venue=venue,
            retrain=self._ask_retrain,
            on_delivery=on_delivery,
        )
        rebalancer = self.engine.rebalancer
        if rebalancer is not None:
            deadline = pipeline.config.live.allocation_deadline_seconds
            self.allocation_deadline = DeadlineSolver(rebalancer.solve, deadline)
            rebalancer.solver = self.allocation_deadline
        self._own = [f for f in pipeline.features if not isinstance(f, CrossSectionalFeature)]
        self._crossing = [f for f in pipeline.features if isinstance(f, CrossSectionalFeature)]
        self._width = len(history.columns) - sum(len(f.columns()) for f in self._crossing)
        rows = live_rows or {}
        # text sources: one feed per source, read again as it grows, shared by the symbols
        data = pipeline.data
        documents = dict(data.live_documents()) if isinstance(data, LiveDocuments) else {}
        history.feeds = documents  # a challenger's or a twin's history sees them too
        self.steppers = [
            FeatureStepper(
                self._own,
                StepContext(
                    s,
                    history.timeframe,
                    history.timeframe_seconds,
                    live_rows=rows.get(s),
                    calendar=history.calendar,
                    documents=documents or None,
                ),
            )
            for s in symbols
        ]
        config = pipeline.config
        self._regimes = (
            None if config.regime is None else [RegimeStepper(config.regime) for _ in symbols]
        )
        self._codes = np.zeros(len(symbols), np.uint8)
        self._take_models(pipeline.model)
        self._absent = np.zeros(len(symbols), bool)
        self._own_bars = history.present().sum(axis=0).astype(np.int64)
        """Per symbol, how many bars of its own the history holds."""
        self.verdicts: list[BarInput | None] = []
        """The last tick's verdict per symbol (None: no bar): what its model decided on."""
        self._advance_times = (0.0, 0.0, 0.0)
        """The last timed tick's features, predict and journal seconds (`advance`)."""
        self._funding = live_funding(
            pipeline.venue, pipeline.data, symbols, history.timeframe_seconds * 1_000_000_000
        )
        """A perpetual's funding rates, bar by bar (`tradeloom.core.funding`); None: spot."""
        self.before_commit: Callable[[], None] | None = None
        """Called once a new bar's features were stepped, before anything of the bar is
        committed (`tradeloom.live.tick.services.Stage.before_commit`); None: nothing."""
        self._venue: object = _NOT_ASKED
        """The venue `step` last asked what it does (`_sends`, `_protects`)."""
        self._sends: SendsTogether | None = None
        self._protects: ProtectsPositions | None = None
        m = len(symbols)
        # each tick's NaN-filled arrays, copied from these (one call each, not three)
        self._blank_row = _nans((m, len(history.columns)))
        self._blank_px = _nans((6 if self._funding is None else 7, 1, m))
        self._blank_scores = _nans((1, m))

    def _take_models(self, model: object) -> None:
        # a pooled model trains one fold over every symbol's rows (the backtest's folds);
        # otherwise each symbol has its own model: the first the pipeline's own
        # (one market trains its own folds, as the backtest's `fit_universe` does)
        many = len(self.history.symbols) > 1
        self.pooled = many and isinstance(model, LiveTrainer) and model.pooled
        self.symbol_id = many and isinstance(model, SymbolIdModel) and bool(model.symbol_id)
        others = [] if self.pooled else [copy.deepcopy(model) for _ in self.history.symbols[1:]]
        self.models = [model, *others]
        # what each model can do, asked once: a protocol with a data member (a
        # trainer's ``retrain_every``) is asked by ``isinstance`` every time otherwise
        # (~40 us); asked again when the model is swapped (`use_model`)
        self._trainers = [provides(m, LiveTrainer) for m in self.models]
        self._gates = [provides(m, LiveAnomalyGate) for m in self.models]
        # a model that reads a window of rows: each symbol's last rows, kept from here on
        windows = [int(m.window) if provides(m, WindowedModel) else 0 for m in self.models]
        self._windowed = [w > 0 for w in windows]
        self.windows = RowWindows(self.history, max(windows)) if any(windows) else None
        self._due: list[int | None] = [None] * len(self.models)
        """Per model, the bar (its own, per symbol) its next scheduled fold starts at."""

    def use_model(self, model: Model) -> None:
        """Decide with ``model`` from the next bar on (a model swap, at a bar boundary):
        each symbol's copy of it, the features, the engine's state and the book kept.

        A saved model trains nothing: the walk-forward plan and the retraining cron train
        no fold from here on (`tradeloom.live.lifecycle.model_swap` swaps in no other)."""
        self.p = replace(self.p, model=model)
        self.engine.p = replace(self.engine.p, model=model)
        self._take_models(model)

    # --- warm-up ------------------------------------------------------------------

    def warm_up(self) -> None:
        """Step every symbol's features and the engine through the history, no predictions.

        Each symbol's features are stepped bar by bar and each row checked against the
        batch row; the engine sees every bar with no probability (no signal, no order),
        so its monitors, regime labels and peak equity start where the history ends.

        Raises:
            FeatureNotStepped: A feature's per-bar value differs from its batch value.
        """
        engine = self.engine
        engine.warming = True
        try:
            engine.run(self.warm_inputs(), len(self.history))
        finally:
            engine.warming = False

    def warm_inputs(self) -> BarInputs:
        """Step every symbol's features and regimes through the history; return the core's
        inputs over it (no predictions).

        Raises:
            FeatureNotStepped: A feature's per-bar value differs from its batch value.
        """
        history = self.history
        n, m = len(history), len(history.symbols)
        present = history.present(n)
        codes_ = np.zeros((n, m), np.uint8)  # each symbol's carried over its missing bars
        for t in range(n):
            row = self._features(t, history.time(t), history.prices(t), present[t])
            expected = history.feature_row(t)
            same = (row == expected) | (np.isnan(row) & np.isnan(expected))
            if not same.all():
                s, j = (int(k[0]) for k in np.nonzero(~same))
                of = f" of {history.symbols[s]}" if m > 1 else ""
                raise FeatureNotStepped(
                    f"features: column {history.columns[j]}{of} at bar {t} of the warm-up: stepped "
                    f"bar by bar {float(row[s, j])!r}, computed over the whole history "
                    f"{float(expected[s, j])!r}; a feature whose value reads later bars cannot run "
                    "live (tradeloom check-lookahead FILE names what leaks)"
                )
            self._regime(history.prices(t), present[t])
            codes_[t] = self._codes
        self._absent = ~present[n - 1]
        px = np.full((6 if self._funding is None else 7, n, m), np.nan)
        px[:5] = np.stack([history.prices(t) for t in range(n)]).transpose(2, 0, 1)
        if self._funding is not None:
            for t in range(n):
                px[FUNDING_ROW, t] = self._funding.rates(history.time(t).value, present[t])
        flags = np.zeros((2, n, m), np.uint8)
        flags[1] = codes_
        return BarInputs(
            px, flags, np.full((n, m), np.nan), history.times_ns(n), np.zeros(n, np.int64)
        )

    def _regime(self, prices: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]) -> None:
        if self._regimes is None:
            return
        for s, stepper in enumerate(self._regimes):
            if present[s]:
                self._codes[s] = stepper.step(float(prices[s, 3]))

    def _features(
        self,
        t: int,
        time: pd.Timestamp,
        prices: npt.NDArray[np.float64],
        present: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.float64]:
        """Return clock bar ``t``'s ``[symbols, columns]`` rows, each symbol's stepped."""
        history = self.history
        row = self._blank_row.copy()
        for s, stepper in enumerate(self.steppers):
            if present[s]:
                o, h, lo, c, v = prices[s].tolist()
                row[s, : self._width] = stepper.step(
                    Bar(t, time, o, h, lo, c, v, history.symbols[s])
                )
        if self._crossing:
            cross_row(self._crossing, history.columns, row, present)
        return row

    def reset_regimes(self, regime: RegimeParams | None) -> None:
        """Label each symbol's regimes with ``regime`` from the next bar on, from scratch."""
        symbols = self.history.symbols
        self._regimes = None if regime is None else [RegimeStepper(regime) for _ in symbols]
        self._codes = np.zeros(len(symbols), np.uint8)

    # --- training -----------------------------------------------------------------

    def train(self, reason: str | None, *, in_effect: bool = False) -> ModelTraining | None:
        """Train the fold that predicts from the next clock bar, when one is due.

        A fold is due when the walk-forward plan starts one there (the backtest's fold,
        on the same rows with the same seed), or, for a symbol's own model, when
        ``reason`` (the retraining cron, a health rule) asks for one now. ``in_effect``
        (a run starting or restarting): train the fold the backtest uses at the next bar
        instead, wherever it starts (`LiveTrainer.train_next_universe`), so that a run started over
        a long history predicts what its backtest predicts. Trainings are journaled at
        the first bar they predict; returns the first (None: none trained).
        """
        history = self.history
        n = len(history)
        trainings: list[ModelTraining] = []
        if self.pooled:
            pooled = cast(LiveTrainer, self.models[0])
            due = self._due[0]
            if in_effect or due is None or due == n:
                features = [history.own_features(s) for s in range(len(history.symbols))]
                universe = history.universe()
                training = pooled.train_next_universe(universe, features, in_effect=in_effect)
                self._due[0] = _next(training, pooled.retrain_every)
                if training is not None:
                    trainings.append(training)
        else:
            for s, model in enumerate(self.models):
                if not self._trainers[s]:
                    continue  # it trades with the fold it has (a saved model)
                trainer: LiveTrainer = model  # type: ignore[assignment]  # (`cast`: a call)
                training = self._train_own(trainer, s, reason, in_effect)
                if training is not None:
                    trainings.append(training)
        self.folds.extend(trainings)
        if not trainings:
            return None
        when = history.last_time + pd.Timedelta(seconds=history.timeframe_seconds)
        for training in trainings:
            start = training.predict_start
            # journaled at the first bar it predicts, which a fold in effect has passed
            self.rec.training(training, history.time(start) if start < n else when, self.owner)
            _log.info(
                "model_trained",
                fold=training.fold,
                rows=training.rows,
                predicts_from=start,
                reason=training.reason,
                skipped=training.skipped or None,
            )
        return trainings[0]

    def never_trained(self) -> str | None:
        """Return why its model never trained (`tradeloom.engine.health.never_trained`),
        over this process's folds and the journal's before it; None: a fold trained."""
        if self.trained_before:
            return None
        return never_trained(self.p.model, self.folds)

    def _train_own(
        self, model: LiveTrainer, s: int, reason: str | None, in_effect: bool
    ) -> ModelTraining | None:
        """Train the ``s``-th symbol's own model (its folds are in its own bars)."""
        history = self.history
        if not in_effect:  # the checks first: most bars train nothing, and cost nothing
            if math.isnan(history.prices(len(history) - 1)[s, 3]):
                return None  # its own clock did not move: no fold starts
            due = self._due[s]
            if reason is None and due is not None and int(self._own_bars[s]) != due:
                return None  # the walk-forward plan starts no fold at its next bar
        bars, features = history.own_bars(s), [history.own_features(s)]
        one = _universe_of(bars)  # a copy that does not pool trains on its own bars
        if in_effect:
            training = model.train_next_universe(one, features, in_effect=True)
        else:
            training = model.train_next_universe(one, features, reason=reason)
            if training is None:
                self._due[s] = None  # not known yet: ask at every bar
        every = model.retrain_every
        if training is not None and training.reason == "scheduled" and every:
            self._due[s] = training.predict_start + int(every)
        elif training is not None and self._due[s] is None and every:
            # a fold off the plan (cron, health rule): find the plan's next boundary
            # once, rather than planning folds at every bar until it comes
            start = model.scheduled_start_universe(one, features)
            if start is not None:
                self._due[s] = start + int(every)
        if training is None or len(history.symbols) == 1:
            return training
        # its folds are in its own bars; journaled in clock bars, as the backtest's
        own = int(self._own_bars[s])
        position = np.flatnonzero(history.present()[:, s])

        def clock(i: int) -> int:
            return int(position[i]) if i < own else len(history) + (i - own)

        return replace(
            training,
            train_start=clock(training.train_start),
            train_end=clock(training.train_end),
            predict_start=clock(training.predict_start),
            predict_end=clock(training.predict_end),
        )

    def catch_up(self, trainings: Mapping[str, tuple[int, str]]) -> None:
        """Train, after a restart, the fold in effect: the journal's last, or one it missed.

        ``trainings`` are each model's last journaled training ``(predicts_from,
        reason)``, by its journaled symbol (this session's `owner`). The same
        rows and seed give the same model, which is not journaled again. One market's
        own model trains the journal's last fold again (a fold of the cron or of a
        health rule included) unless a scheduled fold starts after it (its training was
        cut short by the crash, or failed): that one trains now, journaled. Over a
        universe, each model trains the fold in effect at the next bar.
        """
        model = self.models[0]
        history = self.history
        last = trainings.get(self.owner)
        self.trained_before = last is not None
        if len(self.models) == 1 and not self.pooled and isinstance(model, LiveTrainer):
            due = model.scheduled_start_universe(_universe_of(history.bars()), [history.features()])
            if last is not None and (due is None or due <= last[0]):
                start, reason = last
                if start <= len(history):
                    model.train_next_universe(
                        _universe_of(history.bars(start)),
                        [history.features(start)],
                        reason=None if reason == "scheduled" else reason,
                    )
                if reason == "scheduled" and model.retrain_every:
                    self._due[0] = start + int(model.retrain_every)
                return
            self.train(None, in_effect=True)
            return
        recorder, self.rec = self.rec, _Quiet(self.rec)  # type: ignore[assignment]
        try:
            self.train(None, in_effect=True)
        finally:
            self.rec = recorder

    # --- one tick -----------------------------------------------------------------

    def replayed(self, rows: Sequence[LiveBarRow]) -> tuple[npt.NDArray[np.float64], Verdicts]:
        """Return a journaled tick (its ``live_bar`` rows) as `step` takes it again: each
        symbol's prices (NaN: no row) and the model's journaled verdicts."""
        names = {name: s for s, name in enumerate(self.names)}
        m = len(self.names)
        prices = np.full((m, 5), np.nan)
        verdicts: list[BarInput | None] = [None] * m
        for row in rows:
            s = names[row.symbol] if m > 1 else 0  # one market: whatever it was named
            prices[s] = row.values
            verdicts[s] = row.verdict
        return prices, verdicts

    def predict_all(
        self, rows: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]
    ) -> list[BarInput | None]:
        """Return each present symbol's verdict on its feature row (None: no bar)."""
        verdicts: list[BarInput | None] = []
        for s in range(len(present)):
            if not present[s]:
                verdicts.append(None)
                continue
            i = 0 if self.pooled else s
            model = self.models[i]
            row = rows[s]
            if self.symbol_id:
                row = np.append(row, float(s))
            # typed by assignment, not `cast`: a call per symbol and bar
            if self._windowed[i]:
                windowed: WindowedModel = model  # type: ignore[assignment]
                probability = float(windowed.predict_window(self.window_of(s)))
            else:  # a `LiveModel` (checked before the run started)
                one_row: LiveModel = model  # type: ignore[assignment]
                probability = float(one_row.predict_row(row))
            score = math.nan
            if self._gates[0 if self.pooled else s]:  # NaN without a detector
                gate: LiveAnomalyGate = model  # type: ignore[assignment]
                score = float(gate.anomaly_score_row(row))
            verdicts.append(BarInput(probability, bool(score < 0.0), score))
        return verdicts

    def window_of(self, s: int) -> npt.NDArray[np.float64]:
        """Return the ``s``-th symbol's last feature rows a `WindowedModel` reads, oldest
        first (with the symbol's index as a last column where the model pools with
        ``symbol_id``).

        Raises:
            RuntimeError: Its model reads one row.
        """
        if self.windows is None:
            raise RuntimeError("the session's model reads one row, not a window")
        block = self.windows.of(s)
        if self.symbol_id:
            block = np.column_stack([block, np.full(len(block), float(s))])
        return block

    def step(self, time: pd.Timestamp, values: npt.ArrayLike, given: Verdicts | None = None) -> int:
        """Run one tick: the clock bar opening at ``time``, ``values`` = ``[symbols, OHLCV]``
        (a NaN row: that symbol has no bar). Returns the clock bar's index.

        Args:
            time: The clock bar's open time (UTC).
            values: Each symbol's open, high, low, close and volume.
            given: Per symbol, the verdict read from the journal (a replay); None: ask
                the model now and journal the bars.
        """
        timed = self.stages is not None and given is None
        t, inputs = self.advance(time, values, given, timed=timed)
        if given is None and self.before_commit is not None:
            self.before_commit()  # what the bar's features read, durable before its rows
        t3 = perf_counter()
        self.engine.run(inputs, t + 1)
        venue = self.engine.venue
        if venue is not self._venue:  # what it does, asked once per venue (`send_decided`)
            self._venue = venue
            self._sends = venue if provides(venue, SendsTogether) else None
            self._protects = venue if provides(venue, ProtectsPositions) else None
        if self._sends is not None:
            self._sends.flush()
        if self._protects is not None:  # live: rest each new position's stops
            halted = self.engine.state.acct[L.A_STATE] == codes.HALTED_STATE  # (`state`)
            self._protects.protect(self.engine.portfolio, self.history, t, trading=not halted)
            if self.killed:  # a stop whose kill cancel was not confirmed: asked again
                self._protects.cancel_stops(KILL_CODE)
        t4 = perf_counter()
        if given is None:
            self.train(self._due_retrain())
            t5 = perf_counter()
            # nothing leaves after this commit: no fsync (what this bar sent was
            # committed durably before it was sent, `OrderJournal.before_send`)
            self.rec.journal.flush(durable=False)
            if timed:
                assert self.stages is not None
                stages = self.stages
                features, predict, journal = self._advance_times
                stages("features", features)
                stages("predict", predict)
                stages("decide", t4 - t3)
                stages("train", t5 - t4)
                stages("journal", journal + (perf_counter() - t5))
        else:
            self._retrain_reasons.clear()
        return t

    def advance(
        self,
        time: pd.Timestamp,
        values: npt.ArrayLike,
        given: Verdicts | None = None,
        *,
        timed: bool = False,
    ) -> tuple[int, BarInputs]:
        """Step the features and regimes of one tick, predict and journal its bars (unless
        ``given``); return the clock bar's index and the core's inputs of it (`step`)."""
        t0 = perf_counter()
        history = self.history
        prices = np.asarray(values, np.float64)
        present = ~np.isnan(prices[:, 3])
        t = len(history)
        row = self._features(t, time, prices, present)
        history.append(time, prices, row)
        self._own_bars += present
        if self.windows is not None:  # a replayed tick too: the rows a later bar reads
            self.windows.push(row, present)
        t1 = perf_counter()
        verdicts = self.predict_all(row, present) if given is None else list(given)
        self.verdicts = verdicts
        t2 = perf_counter()
        if given is None:
            self._journal_tick(t, time, prices, present, verdicts, self.clock())
        self._absent = ~present
        if self._regimes is not None:
            self._regime(prices, present)
        m = len(history.symbols)
        px = self._blank_px.copy()
        px[:5, 0] = prices.T
        if self._funding is not None:
            px[FUNDING_ROW, 0] = self._funding.rates(time.value, present)
        flags = np.zeros((2, 1, m), np.uint8)
        scores = self._blank_scores.copy()
        for s, verdict in enumerate(verdicts):
            if verdict is not None:
                px[5, 0, s] = verdict.probability
                flags[0, 0, s] = verdict.anomalous
                scores[0, s] = verdict.anomaly_score
        flags[1, 0] = self._codes
        inputs = BarInputs(
            px, flags, scores, np.array([time.value], np.int64), np.zeros(1, np.int64), t
        )
        if timed:
            self._advance_times = (t1 - t0, t2 - t1, perf_counter() - t2)
        return t, inputs

    def _journal_tick(
        self,
        t: int,
        time: pd.Timestamp,
        prices: npt.NDArray[np.float64],
        present: npt.NDArray[np.bool_],
        verdicts: list[BarInput | None],
        now: pd.Timestamp,
    ) -> None:
        rec = self.rec
        for s, symbol in enumerate(self.names):
            rec.symbol = symbol
            verdict = verdicts[s]
            if verdict is None:
                if not self._absent[s]:  # once per stretch, at its first bar
                    rec.record(SymbolAbsent(**rec.at(t, time, market=True), last=time, bars=1))
                    _log.warning("symbol_absent", symbol=symbol, bar=t, time=str(time))
                continue
            o, h, lo, c, v = prices[s].tolist()
            rec.record(
                LiveBar(
                    **rec.at(t, time, market=True),
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=v,
                    probability=verdict.probability,
                    anomalous=verdict.anomalous,
                    anomaly_score=verdict.anomaly_score,
                    wall_time=now,
                )
            )

    def held_in(self, market: int) -> tuple[float, int]:
        """Return the engine's position in the account's ``market`` (its index among the
        account's markets) and the core's row whose flat band judges it: a strategy's
        symbol is its market (a portfolio's books in a market: `PortfolioSession`)."""
        return self.engine.portfolio.position_of(market), market

    # --- the trading state ----------------------------------------------------------

    @property
    def state(self) -> str:
        """Return the trading state: ``ACTIVE``, ``REDUCING`` or ``HALTED``."""
        return codes.STATE_NAMES[int(self.engine.state.acct[L.A_STATE])]

    @property
    def killed(self) -> bool:
        """Return whether the kill switch holds the run HALTED."""
        acct = self.engine.state.acct
        return bool(
            acct[L.A_STATE] == codes.HALTED_STATE and acct[L.A_STATE_WHY] == codes.KILL_SWITCH
        )

    def kill(
        self, message: str, bar: Bar | None = None, *, since: pd.Timestamp | None = None
    ) -> None:
        """Halt (latched until `resume`), cancel every open order; journaled.

        Args:
            since: A restart replaying a kill of the journal: when it was latched. The
                replay says so once at info level (``kill_switch_latched``, with that
                time) instead of warning anew as if the operator had just killed the run.
        """
        where = bar or self.history.bar(len(self.history) - 1)
        self.engine.kill(where, message, self.clock())
        venue = self.engine.venue
        if isinstance(venue, ProtectsPositions):
            venue.cancel_stops(KILL_CODE)
        self.rec.journal.flush()
        if since is None:
            _log.warning("kill_switch", message=message)
        else:
            _log.info("kill_switch_latched", message=message, since=since.isoformat())

    def flatten(self, message: str) -> None:
        """Kill (`kill`), then close every position with market orders at the next bar
        (``EXIT_FLATTEN``), through the risk engine and the venue as any exit."""
        self.kill(message)
        self.engine.flatten()
        _log.warning("flatten", message=message)

    def cancel_for_kill(self) -> None:
        """Cancel what the kill switch cancels while it holds the run (a kill asked again:
        the KILL file at every wake-up, a second request): never its flatten's exits.

        Journaled (``kill_cancel``) when there is something to cancel, so that a
        restart's replay cancels at the same bar.
        """
        if not self.engine.kill_would_cancel():
            return
        last = len(self.history) - 1
        self.engine.journal(KillCancel(**self.rec.at(last)))
        self.engine.cancel_for_kill(self.history.bar(last))
        self.rec.journal.flush()

    def resume(self, message: str) -> None:
        """Leave HALTED for ACTIVE (the operator's resume); journaled.

        A halt of a risk rule (drawdown) stays: only the kill switch's is lifted.
        """
        if not self.engine.resume(len(self.history) - 1, message, self.clock()):
            _log.info("resume_ignored", state=self.state)
            return
        self.rec.journal.flush()
        _log.warning("resumed", message=message)

    # --- retraining ---------------------------------------------------------------

    def set_cron(self, cron: Callable[[pd.Timestamp], pd.Timestamp | None] | None) -> None:
        """Retrain on another cron from now on (a reloaded ``live.retrain_cron``)."""
        self._cron = cron
        self._next_cron = None

    def _ask_retrain(self, bar: int, reason: str) -> None:
        self._retrain_reasons.append(reason)

    def _due_retrain(self) -> str | None:
        reasons = self._retrain_reasons[:]
        self._retrain_reasons.clear()
        if self._cron is not None:
            now = self.clock()
            if self._next_cron is None:
                self._next_cron = self._cron(now)
            elif now >= self._next_cron:
                reasons.append(f"live.retrain_cron fired at {self._next_cron.isoformat()}")
                self._next_cron = self._cron(now)
        return "; ".join(reasons) if reasons else None


_NOT_ASKED = object()
"""No venue asked yet (the strategy's own is None)."""


def _nans(shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """``np.full(shape, np.nan)`` without its Python frame and its fill value's array (a
    tick makes several)."""
    out = np.empty(shape)
    out.fill(np.nan)
    return out


def _next(training: ModelTraining | None, every: int) -> int | None:
    """The bar the plan's next fold starts at (None: not known yet, ask every bar)."""
    return None if training is None else training.predict_start + int(every)


class _Quiet:
    """A recorder that journals no training (a restart's catch-up: journaled already)."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def training(self, training: ModelTraining, timestamp: object, owner: str = "") -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._recorder, name)


def _universe_of(bars: Bars) -> Universe:
    """One market's bars as the universe of one (its clock the bars' own index)."""
    return Universe((bars,), bars.frame.index)
