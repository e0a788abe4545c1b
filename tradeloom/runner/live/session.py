"""The live driver: closed bars in, the backtest's per-bar steps, orders out.

`LiveSession.step` takes one closed bar and does what the backtest's per-bar
driver does with it, in the same order, with the same components:

1. the features are stepped (`FeatureStepper`), the row appended to the history;
2. the model's latest fold predicts the bar (`LiveModel.predict_row`, bit for bit
   the backtest's number) and its detector scores it (`LiveAnomalyGate`);
3. the bar is journaled (``live_bar``: prices, prediction, anomaly verdict, the
   wall time): a restart replays these rows;
4. `BarEngine.on_bar` runs the signal, risk, execution and portfolio layers;
5. the model (a `LiveTrainer`) trains the fold that predicts from the next bar when the
   walk-forward plan starts one there (the backtest's fold, the same rows and
   seed), or when a health rule or the retraining cron asked for one;
6. the journal is committed.

The trading state (ACTIVE / REDUCING / HALTED) and the daily loss limit are
observed after each bar's mark; the kill switch moves the state to HALTED,
cancels every open order, and makes the engine reject every signal
(``HALTED``, code ``KILL_SWITCH``) until `resume`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from tradeloom.domain import Bar, ModelTraining
from tradeloom.plugins.features.steps import FeatureStepper, StepContext
from tradeloom.plugins.protocols import LiveAnomalyGate, LiveModel, LiveTrainer
from tradeloom.runner.backtest import FeatureRow
from tradeloom.runner.engine import BarEngine
from tradeloom.runner.events import Recorder
from tradeloom.runner.live.bar_history import BarHistory
from tradeloom.runner.pretrade import PreTradeChecks
from tradeloom.runner.trading_state import StateChange, TradingState
from tradeloom.runner.wiring import Pipeline

__all__ = ["KILL_CODE", "BarInput", "LiveSession", "trading_state_row"]

KILL_CODE = "KILL_SWITCH"
"""The halt code of the kill switch (journaled, latched until resume)."""

_log = structlog.get_logger("tradeloom.live")


@dataclass(frozen=True)
class BarInput:
    """What the model said about one bar (computed live, or read back from the journal)."""

    probability: float
    anomalous: bool
    anomaly_score: float


def trading_state_row(change: StateChange) -> dict[str, Any]:
    """Return the journal payload of a trading state change."""
    return {
        "previous": str(change.previous),
        "state": str(change.state),
        "code": change.code,
        "message": change.message,
        "at": change.timestamp.isoformat(),
    }


class LiveSession:
    """Drive ``pipeline`` over closed bars, one at a time, after ``history``.

    Args:
        pipeline: The built strategy; its venue is the live (or paper) venue.
        recorder: Journals and broadcasts.
        history: The bars before the first live bar, with their features; the
            session steps the features through them to warm up.
        order_id: The client order id of the n-th order.
        checks: The pre-trade checks and trading state the venue applies.
        clock: The time now (UTC): wall clock live, the emulator's in tests.
        cron: Fire times of ``live.retrain_cron`` (None: no cron).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        recorder: Recorder,
        history: BarHistory,
        *,
        order_id: Callable[[int], str],
        checks: PreTradeChecks,
        clock: Callable[[], pd.Timestamp],
        cron: Callable[[pd.Timestamp], pd.Timestamp | None] | None = None,
    ) -> None:
        self.p = pipeline
        self.rec = recorder
        self.history = history
        self.checks = checks
        self.clock = clock
        self._cron = cron
        self._retrain_reasons: list[str] = []
        self.engine = BarEngine(
            pipeline, recorder, "", retrain=self._ask_retrain, order_id=order_id
        )
        self.stepper = FeatureStepper(
            pipeline.features,
            StepContext(history.symbol, history.timeframe, history.timeframe_seconds),
        )
        self._next_cron: pd.Timestamp | None = None
        self._next_fold: int | None = None
        self._columns = {c: i for i, c in enumerate(history.columns)}
        self.replaying = False

    # --- warm-up ------------------------------------------------------------------

    def warm_up(self) -> None:
        """Step the features through the history, checking each row against the batch.

        Raises:
            RuntimeError: A feature's per-bar value differs from its batch value.
        """
        for t in range(len(self.history)):
            row = self.stepper.step(self.history.bar(t))
            expected = self.history.feature_row(t)
            same = (row == expected) | (np.isnan(row) & np.isnan(expected))
            if not same.all():
                j = int(np.flatnonzero(~same)[0])
                raise RuntimeError(
                    f"feature column {self.history.columns[j]} at bar {t}: stepped "
                    f"{float(row[j])!r}, computed {float(expected[j])!r}"
                )

    def train(self, reason: str | None) -> ModelTraining | None:
        """Train the fold that predicts from the next bar (see `SklearnModel.train_next`).

        Journals the training at the next bar; None when none was due.
        """
        model = self.p.model
        if not isinstance(model, LiveTrainer):
            return None  # it trades with the fold it has (a saved model)
        n = len(self.history)
        if reason is None and self._next_fold is not None and n != self._next_fold:
            return None  # the walk-forward plan starts no fold at the next bar
        training = model.train_next(self.history.bars(), self.history.features(), reason=reason)
        every = model.retrain_every
        if training is not None and training.reason == "scheduled" and every:
            self._next_fold = training.predict_start + int(every)
        elif training is not None and self._next_fold is None and every:
            # a fold off the plan (startup, cron): find the plan's next boundary once,
            # rather than planning folds at every bar until it comes
            due = model.scheduled_start(self.history.bars(), self.history.features())
            if due is not None:
                self._next_fold = due + int(every)
        if training is not None:
            when = self.history.last_time + pd.Timedelta(seconds=self.history.timeframe_seconds)
            self.rec.training(training, when)
            _log.info(
                "model_trained",
                fold=training.fold,
                rows=training.rows,
                predicts_from=n,
                reason=training.reason,
                skipped=training.skipped or None,
            )
        return training

    def catch_up(self, last: tuple[int, str] | None) -> None:
        """Train, after a restart, the fold in effect: the journal's last, or one it missed.

        ``last`` is the journal's last training ``(predicts_from, reason)``. The same
        rows and seed give the same model. A scheduled fold that starts after it (its
        training was cut short by the crash, or failed) trains now, journaled, and so
        does a first fold when the journal has none.
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
        if due is None:
            self.train("startup")
            return
        training = model.train_next(history.bars(due), history.features(due), reason=None)
        if training is not None:
            self.rec.training(training, history.bar(due - 1).timestamp + self._bar_length)
            self._follow(train_next_reason=training.reason, start=due)

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
        ohlcv = np.asarray(values, np.float64)
        row = self.stepper.step(Bar(len(self.history), time, *(float(v) for v in ohlcv)))
        bar = self.history.append(time, ohlcv, row)
        verdict = self.predict(row) if given is None else given
        now = self.clock()
        if given is None:
            self.rec.note(
                "live_bar",
                {
                    "open": bar.open,
                    "high": bar.high,
                    "low": bar.low,
                    "close": bar.close,
                    "volume": bar.volume,
                    "probability": verdict.probability,
                    "anomalous": verdict.anomalous,
                    "anomaly_score": verdict.anomaly_score,
                    "wall_time": now.isoformat(),
                },
                bar=bar.index,
                timestamp=bar.timestamp,
            )
        self.engine.on_bar(
            bar,
            verdict.probability,
            FeatureRow(self._columns, row),
            anomalous=verdict.anomalous,
            anomaly_score=verdict.anomaly_score,
        )
        self._observe(now, bar)
        if given is None:
            reason = self._due_retrain(now)
            self.train(reason)
            self.rec.journal.flush()
        else:
            self._retrain_reasons.clear()
        return bar

    # --- the trading state ----------------------------------------------------------

    def kill(self, message: str, bar: Bar | None = None) -> None:
        """Halt (latched until `resume`), cancel every open order; journaled."""
        now = self.clock()
        change = self.checks.state.halt(KILL_CODE, message, now)
        if change is not None:
            self._journal_state(change)
        if not self.engine.halt_code:  # a risk or health halt keeps its own code
            self.engine.halt_code = KILL_CODE
        where = bar or self.history.bar(len(self.history) - 1)
        self.engine.cancel_working(where, KILL_CODE)
        self.rec.journal.flush()
        _log.warning("kill_switch", message=message)

    def cancel_for_kill(self) -> None:
        """Cancel what is pending while the kill switch is on (the KILL file asks again).

        Journaled (``kill_cancel``) when there is something to cancel, so that a
        restart's replay cancels at the same bar.
        """
        if not self.engine.venue.pending():
            return
        self.rec.note("kill_cancel", {}, bar=len(self.history) - 1)
        self.engine.cancel_working(self.history.bar(len(self.history) - 1), KILL_CODE)
        self.rec.journal.flush()

    def resume(self, message: str) -> None:
        """Leave HALTED for ACTIVE (the operator's resume); journaled.

        A halt of a risk rule (drawdown) stays: only the kill switch's is lifted.
        """
        if self.checks.state.state is not TradingState.HALTED:
            _log.info("resume_ignored", state=str(self.checks.state.state))
            return
        change = self.checks.state.resume(message, self.clock())
        self._journal_state(change)
        if self.engine.halt_code == KILL_CODE:
            self.engine.halt_code = ""
        self.rec.journal.flush()
        _log.warning("resumed", message=message)

    def restore_state(self, change: StateChange | None) -> None:
        """Take the trading state a restarted run had (HALTED stays latched)."""
        if change is None:
            return
        self.checks.state._last_change = change
        if change.state is TradingState.HALTED and change.code == KILL_CODE:
            self.engine.halt_code = KILL_CODE

    def _observe(self, now: pd.Timestamp, bar: Bar) -> None:
        equity = self.engine.portfolio.equity(bar.close)
        change = self.checks.observe(now, equity)
        if change is not None and not self.replaying:
            self._journal_state(change)

    def _journal_state(self, change: StateChange) -> None:
        self.rec.note("trading_state", trading_state_row(change), bar=len(self.history) - 1)

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
