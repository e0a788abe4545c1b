"""The live driver: closed bars in, the backtest's per-bar steps, orders out.

`LiveSession.step` takes one closed bar and does what the backtest's per-bar
driver does with it, in the same order, with the same components:

1. the features are stepped (`FeatureStepper`), the row appended to the history;
2. the model's latest fold predicts the bar (`LiveModel.predict_row`, bit for bit
   the backtest's number) and its detector scores it (`LiveAnomalyGate`);
3. the bar is journaled (``live_bar``: prices, prediction, anomaly verdict, the
   wall time): a restart replays these rows;
4. the engine runs the bar through the compiled core (`tradeloom.runner.engine.Engine`):
   signal, risk, execution and portfolio, as in the backtest;
5. the model (a `LiveTrainer`) trains the fold that predicts from the next bar when the
   walk-forward plan starts one there (the backtest's fold, the same rows and
   seed), or when a health rule or the retraining cron asked for one;
6. the journal is committed.

The trading state (ACTIVE / REDUCING / HALTED), the pre-trade limits and the
daily loss limit are the core's risk engine, on the bar clock, as in a backtest;
the kill switch moves the state to HALTED, cancels every open order, and makes
the engine reject every signal (``HALTED``, code ``KILL_SWITCH``) until `resume`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from tradeloom.core import codes
from tradeloom.core import layout as L
from tradeloom.core.state import BarInputs
from tradeloom.domain import Bar, ModelTraining
from tradeloom.journal import KillCancel, LiveBar
from tradeloom.plugins.features.steps import FeatureStepper, LiveRows, StepContext
from tradeloom.plugins.protocols import LiveAnomalyGate, LiveModel, LiveTrainer, Venue
from tradeloom.plugins.signal.regime import RegimeParams, RegimeStepper
from tradeloom.runner.engine import Engine
from tradeloom.runner.events import Recorder
from tradeloom.runner.live.bar_history import BarHistory
from tradeloom.runner.live.exchange_venue import ExchangeVenue
from tradeloom.runner.live.fold_in_effect import train_fold_in_effect
from tradeloom.runner.wiring import Pipeline

__all__ = ["KILL_CODE", "BarInput", "LiveSession"]

KILL_CODE = "KILL_SWITCH"
"""The halt code of the kill switch (journaled, latched until resume)."""

_log = structlog.get_logger("tradeloom.live")


@dataclass(frozen=True)
class BarInput:
    """What the model said about one bar (computed live, or read back from the journal)."""

    probability: float
    anomalous: bool
    anomaly_score: float


class LiveSession:
    """Drive ``pipeline`` over closed bars, one at a time, after ``history``.

    Args:
        pipeline: The built strategy; its venue is the live (or paper) venue.
        recorder: Journals and broadcasts.
        history: The bars before the first live bar, with their features; the
            session steps the features through them to warm up.
        order_id: The client order id of the n-th order.
        clock: The time now (UTC): wall clock live, the emulator's in tests.
        venue: The Python venue orders go to (live: the exchange; a restart's replay:
            the journal); None trades the strategy's simulated venue (paper).
        on_delivery: Told ``(bar, phase, events)`` when the venue reports something.
        cron: Fire times of ``live.retrain_cron`` (None: no cron).
        stages: Told ``(stage, seconds)`` for each stage of a live bar (features,
            predict, decide, train, journal); None: not timed.
        book: The run's order book, read by the book features as each bar closes
            (`tradeloom.plugins.data.live_book.LiveBook`); None: the strategy reads none.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        recorder: Recorder,
        history: BarHistory,
        *,
        order_id: Callable[[int], str],
        clock: Callable[[], pd.Timestamp],
        venue: Venue | None = None,
        on_delivery: Callable[[int, str, int], None] | None = None,
        cron: Callable[[pd.Timestamp], pd.Timestamp | None] | None = None,
        stages: Callable[[str, float], None] | None = None,
        book: LiveRows | None = None,
    ) -> None:
        self.p = pipeline
        self.stages = stages
        self.rec = recorder
        self.history = history
        self.clock = clock
        self._cron = cron
        self._retrain_reasons: list[str] = []
        self.engine = Engine(
            pipeline,
            recorder,
            order_id,
            times=lambda i: history.bar(i).timestamp,
            timeframe_seconds=history.timeframe_seconds,
            features=history.feature_row,
            columns=history.columns,
            venue=venue,
            retrain=self._ask_retrain,
            on_delivery=on_delivery,
        )
        self.stepper = FeatureStepper(
            pipeline.features,
            StepContext(
                history.symbol, history.timeframe, history.timeframe_seconds, live_rows=book
            ),
        )
        config = pipeline.config
        self.regimes = None if config.regime is None else RegimeStepper(config.regime)
        self._next_cron: pd.Timestamp | None = None
        self._next_fold: int | None = None

    # --- warm-up ------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run the history through the features and the engine, without predictions.

        The features are stepped bar by bar and each row checked against the batch
        row; the engine sees every bar with no probability (no signal, no order), so
        its monitors, regime labels and peak equity start where the history ends.

        Raises:
            RuntimeError: A feature's per-bar value differs from its batch value.
        """
        history = self.history
        n = len(history)
        for t in range(n):
            row = self.stepper.step(history.bar(t))
            expected = history.feature_row(t)
            same = (row == expected) | (np.isnan(row) & np.isnan(expected))
            if not same.all():
                j = int(np.flatnonzero(~same)[0])
                raise RuntimeError(
                    f"feature column {history.columns[j]} at bar {t}: stepped "
                    f"{float(row[j])!r}, computed {float(expected[j])!r}"
                )
        values = history.values(n)
        regime = None
        if self.regimes is not None:
            regime = np.array([self.regimes.step(c) for c in values[:, 3]], np.uint8)
        inputs = BarInputs.of(
            list(values.T), np.full(n, np.nan), history.times_ns(n), regime=regime
        )
        self.engine.run(inputs, n)

    def train(self, reason: str | None, *, in_effect: bool = False) -> ModelTraining | None:
        """Train the fold that predicts from the next bar (see `SklearnModel.train_next`).

        ``in_effect`` (a run starting or restarting): train the fold the backtest uses at
        the next bar instead, wherever it starts (`train_fold_in_effect`). Journals the
        training at the first bar it predicts; None when none was due.
        """
        model = self.p.model
        if not isinstance(model, LiveTrainer):
            return None  # it trades with the fold it has (a saved model)
        history = self.history
        n = len(history)
        if in_effect:
            training = train_fold_in_effect(model, history.bars(), history.features())
        elif reason is None and self._next_fold is not None and n != self._next_fold:
            return None  # the walk-forward plan starts no fold at the next bar
        else:
            training = model.train_next(history.bars(), history.features(), reason=reason)
        every = model.retrain_every
        if training is not None and training.reason == "scheduled" and every:
            self._next_fold = training.predict_start + int(every)
        elif training is not None and self._next_fold is None and every:
            # a fold off the plan (cron, health rule): find the plan's next boundary
            # once, rather than planning folds at every bar until it comes
            due = model.scheduled_start(history.bars(), history.features())
            if due is not None:
                self._next_fold = due + int(every)
        if training is not None:
            start = training.predict_start
            # journaled at the first bar it predicts, which a fold in effect has passed
            when = history.last_time + self._bar_length
            self.rec.training(training, history.bar(start).timestamp if start < n else when)
            _log.info(
                "model_trained",
                fold=training.fold,
                rows=training.rows,
                predicts_from=start,
                reason=training.reason,
                skipped=training.skipped or None,
            )
        return training

    def catch_up(self, last: tuple[int, str] | None) -> None:
        """Train, after a restart, the fold in effect: the journal's last, or one it missed.

        ``last`` is the journal's last training ``(predicts_from, reason)``. The same
        rows and seed give the same model. A scheduled fold that starts after it (its
        training was cut short by the crash, or failed) trains now, journaled, and so
        does the fold in effect when the journal has none.
        """
        model = self.p.model
        if not isinstance(model, LiveTrainer):
            return
        history = self.history
        due = model.scheduled_start(history.bars(), history.features())
        if last is not None and (due is None or due <= last[0]):
            start, reason = last
            if start <= len(history):
                model.train_next(
                    history.bars(start),
                    history.features(start),
                    reason=None if reason == "scheduled" else reason,
                )
            self._follow(train_next_reason=reason, start=start)
            return
        self.train(None, in_effect=True)

    def _follow(self, *, train_next_reason: str, start: int) -> None:
        model = self.p.model
        every = model.retrain_every if isinstance(model, LiveTrainer) else None
        if train_next_reason == "scheduled" and every:
            self._next_fold = start + int(every)

    @property
    def _bar_length(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.history.timeframe_seconds)

    # --- one bar ------------------------------------------------------------------

    def predict(self, features: npt.NDArray[np.float64]) -> BarInput:
        """Return the model's prediction and anomaly verdict for one feature row."""
        model = self.p.model
        # LiveRunner refused a model that is not a LiveModel before any bar
        assert isinstance(model, LiveModel)
        probability = float(model.predict_row(features))
        score = math.nan
        if isinstance(model, LiveAnomalyGate):
            score = float(model.anomaly_score_row(features))  # NaN without a detector
        return BarInput(probability, bool(score < 0.0), score)

    def step(self, time: pd.Timestamp, values: npt.ArrayLike, given: BarInput | None = None) -> Bar:
        """Run one closed bar (opening at ``time``, ``values`` = OHLCV) through the layers.

        Args:
            time: The bar's open time (UTC).
            values: Its open, high, low, close and volume.
            given: The model's verdict read from the journal (a replay); None: ask
                the model now and journal it.
        """
        clock = perf_counter
        t0 = clock()
        ohlcv = np.asarray(values, np.float64)
        o, h, lo, c, v = (float(x) for x in ohlcv)
        row = self.stepper.step(Bar(len(self.history), time, o, h, lo, c, v))
        bar = self.history.append(time, ohlcv, row)
        t1 = clock()
        verdict = self.predict(row) if given is None else given
        t2 = clock()
        now = self.clock()
        if given is None:
            self.rec.record(
                LiveBar(
                    **self.rec.at(bar.index, bar.timestamp, market=True),
                    open=bar.open,
                    high=bar.high,
                    low=bar.low,
                    close=bar.close,
                    volume=bar.volume,
                    probability=verdict.probability,
                    anomalous=verdict.anomalous,
                    anomaly_score=verdict.anomaly_score,
                    wall_time=now,
                )
            )
        regime = None
        if self.regimes is not None:
            regime = np.array([self.regimes.step(bar.close)], np.uint8)
        inputs = BarInputs.of(
            [np.array([x]) for x in ohlcv],
            np.array([verdict.probability]),
            np.array([bar.timestamp.value], np.int64),
            anomalous=np.array([verdict.anomalous]),
            score=np.array([verdict.anomaly_score]),
            regime=regime,
            base=bar.index,
        )
        t3 = clock()
        self.engine.run(inputs, bar.index + 1)
        venue = self.engine.venue
        if isinstance(venue, ExchangeVenue):  # live: rest a new position's stops
            book = self.engine.portfolio
            venue.protect(book.position, book.entry_price, bar, trading=self.state != "HALTED")
        t4 = clock()
        if given is None:
            reason = self._due_retrain(now)
            self.train(reason)
            t5 = clock()
            self.rec.journal.flush()
            if self.stages is not None:
                stages = self.stages
                stages("features", t1 - t0)
                stages("predict", t2 - t1)
                stages("decide", t4 - t3)
                stages("train", t5 - t4)
                stages("journal", (t3 - t2) + (clock() - t5))
        else:
            self._retrain_reasons.clear()
        return bar

    def reset_regimes(self, regime: RegimeParams | None) -> None:
        """Label regimes with ``regime`` from the next bar on (a hot reload), from scratch."""
        self.regimes = None if regime is None else RegimeStepper(regime)

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
        if isinstance(self.engine.venue, ExchangeVenue):
            self.engine.venue.cancel_stops("KILL_SWITCH")
        self.rec.journal.flush()
        if since is None:
            _log.warning("kill_switch", message=message)
        else:
            _log.info("kill_switch_latched", message=message, since=since.isoformat())

    def cancel_for_kill(self) -> None:
        """Cancel what is pending while the kill switch is on (the KILL file asks again).

        Journaled (``kill_cancel``) when there is something to cancel, so that a
        restart's replay cancels at the same bar.
        """
        if not self.engine.venue_pending():
            return
        last = len(self.history) - 1
        self.engine.journal(KillCancel(**self.rec.at(last)))
        self.engine.cancel_all(self.history.bar(last), KILL_CODE)
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

    def _due_retrain(self, now: pd.Timestamp) -> str | None:
        reasons = self._retrain_reasons[:]
        self._retrain_reasons.clear()
        if self._cron is not None:
            if self._next_cron is None:
                self._next_cron = self._cron(now)
            elif now >= self._next_cron:
                reasons.append(f"live.retrain_cron fired at {self._next_cron.isoformat()}")
                self._next_cron = self._cron(now)
        return "; ".join(reasons) if reasons else None
