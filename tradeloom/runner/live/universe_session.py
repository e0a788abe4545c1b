"""The live driver over a universe: one tick per bar of the common clock, N symbols a tick.

`UniverseSession.step` takes one tick: the clock bar's time and every symbol's closed bar
(a NaN row: the symbol's bar did not arrive by the grace deadline), and does what the
backtest's per-bar driver (`tradeloom.runner.backtest`) does with that bar of the clock,
in the same order, with the same components:

1. each present symbol's features are stepped (one `FeatureStepper` per symbol), then
   the cross-sectional columns from the rows of the symbols present (`cross_row`);
2. the model predicts one row per present symbol: the pooled model's latest fold, or
   the symbol's own copy of the model (``per_symbol``, or a model that does not pool);
3. each present symbol's bar is journaled (``live_bar``, with its symbol) and a symbol
   that starts missing bars is journaled once (``symbol_absent``, at the stretch's first
   bar, as far as it is known then: one bar);
4. the engine runs the clock bar through the compiled core over every symbol at once,
   with shared cash (an absent symbol: NaN prices, no signal, no fill);
5. the fold that predicts from the next clock bar trains when the walk-forward plan
   starts one there (the backtest's fold: the same rows and seed).

The trading state, the kill switch and the journal are `LiveSession`'s.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from tradeloom.core.state import BarInputs
from tradeloom.domain import Bar, ModelTraining
from tradeloom.journal import LiveBar, SymbolAbsent
from tradeloom.plugins.features.steps import FeatureStepper, StepContext
from tradeloom.plugins.protocols import (
    CrossSectionalFeature,
    LiveAnomalyGate,
    LiveModel,
    LiveTrainer,
    LiveUniverseTrainer,
    Venue,
)
from tradeloom.plugins.signal.regime import RegimeParams, RegimeStepper
from tradeloom.runner.engine import Engine
from tradeloom.runner.events import Recorder
from tradeloom.runner.features import cross_row
from tradeloom.runner.live.fold_in_effect import train_fold_in_effect
from tradeloom.runner.live.session import BarInput, LiveSession
from tradeloom.runner.live.universe_history import UniverseHistory
from tradeloom.runner.wiring import Pipeline

__all__ = ["UniverseSession"]

_log = structlog.get_logger("tradeloom.live")

Verdicts = Sequence[BarInput | None]
"""Per symbol, the model's verdict on its bar (None: no bar)."""


class UniverseSession(LiveSession):
    """Drive ``pipeline`` over the ticks of a universe, after ``history``.

    It builds its own engine over every symbol (`LiveSession`'s is one symbol's) and
    keeps the kill switch, the trading state and the retraining cron of `LiveSession`.

    Args:
        pipeline: The built strategy.
        recorder: Journals and broadcasts.
        history: The universe before the first tick, with its features.
        order_id: The client order id of the n-th order (unique across the symbols).
        clock: The time now (UTC).
        venue: The Python venue orders go to (live: the exchange's markets,
            `UniverseVenue`; a restart's replay: the journal); None trades the strategy's
            simulated venue (paper).
        on_delivery: Told ``(bar, phase, events)`` when the venue reports something.
    """

    def __init__(  # the base's __init__ builds a one-symbol engine: not called
        self,
        pipeline: Pipeline,
        recorder: Recorder,
        history: UniverseHistory,
        *,
        order_id: Callable[[int], str],
        clock: Callable[[], pd.Timestamp],
        venue: Venue | None = None,
        on_delivery: Callable[[int, str, int], None] | None = None,
    ) -> None:
        self.p = pipeline
        self.rec = recorder
        self.history = history  # type: ignore[assignment]
        self.universe = history
        self.clock = clock
        self._cron = None
        self._retrain_reasons: list[str] = []
        self._next_cron: pd.Timestamp | None = None
        self._next_fold: int | None = None
        symbols = history.symbols
        self.engine = Engine(
            pipeline,
            recorder,
            order_id,
            times=history.time,
            timeframe_seconds=history.timeframe_seconds,
            features=history.feature_row,
            columns=history.columns,
            symbols=symbols,
            venue=venue,
            on_delivery=on_delivery,
        )
        self._own = [f for f in pipeline.features if not isinstance(f, CrossSectionalFeature)]
        self._crossing = [f for f in pipeline.features if isinstance(f, CrossSectionalFeature)]
        self._width = len(history.columns) - sum(len(f.columns()) for f in self._crossing)
        self.steppers = [
            FeatureStepper(self._own, StepContext(s, history.timeframe, history.timeframe_seconds))
            for s in symbols
        ]
        config = pipeline.config
        self._regimes = (
            None if config.regime is None else [RegimeStepper(config.regime) for _ in symbols]
        )
        self._codes = np.zeros(len(symbols), np.uint8)
        model = pipeline.model
        # a pooled model trains one fold over every symbol's rows (the backtest's folds)
        self.pooled = isinstance(model, LiveUniverseTrainer) and model.pooled
        self.symbol_id = bool(getattr(model, "symbol_id", False))
        self.models = [model] if self.pooled else [copy.deepcopy(model) for _ in symbols]
        self._absent = np.zeros(len(symbols), bool)
        self._due: list[int | None] = [None] * len(self.models)
        """Per model, the bar (its own, per symbol) its next scheduled fold starts at."""

    # --- warm-up ------------------------------------------------------------------

    def warm_up(self) -> None:
        """Step every symbol's features and the engine through the history, no predictions.

        Raises:
            RuntimeError: A feature's per-bar value differs from its batch value.
        """
        history = self.universe
        n, m = len(history), len(history.symbols)
        present = history.present(n)
        codes = np.zeros((n, m), np.uint8)  # each symbol's carried over its missing bars
        for t in range(n):
            row = self._features(t, history.time(t), history.prices(t), present[t])
            expected = history.feature_row(t)
            same = (row == expected) | (np.isnan(row) & np.isnan(expected))
            if not same.all():
                s, j = (int(k[0]) for k in np.nonzero(~same))
                raise RuntimeError(
                    f"feature column {history.columns[j]} of {history.symbols[s]} at bar {t}: "
                    f"stepped {float(row[s, j])!r}, computed {float(expected[s, j])!r}"
                )
            self._regime(history.prices(t), present[t])
            codes[t] = self._codes
        self._absent = ~present[n - 1]
        px = np.full((6, n, m), np.nan)
        px[:5] = np.stack([history.prices(t) for t in range(n)]).transpose(2, 0, 1)
        flags = np.zeros((2, n, m), np.uint8)
        flags[1] = codes
        inputs = BarInputs(
            px, flags, np.full((n, m), np.nan), history.times_ns(n), np.zeros(n, np.int64)
        )
        self.engine.run(inputs, n)

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
        history = self.universe
        row = np.full((len(history.symbols), len(history.columns)), np.nan)
        for s, stepper in enumerate(self.steppers):
            if present[s]:
                o, h, lo, c, v = (float(x) for x in prices[s])
                row[s, : self._width] = stepper.step(
                    Bar(t, time, o, h, lo, c, v, history.symbols[s])
                )
        cross_row(self._crossing, history.columns, row, present)
        return row

    def reset_regimes(self, regime: RegimeParams | None) -> None:
        """Label each symbol's regimes with ``regime`` from the next bar on, from scratch."""
        symbols = self.universe.symbols
        self._regimes = None if regime is None else [RegimeStepper(regime) for _ in symbols]
        self._codes = np.zeros(len(symbols), np.uint8)

    # --- training -----------------------------------------------------------------

    def train(self, reason: str | None, *, in_effect: bool = False) -> ModelTraining | None:
        """Train the fold that predicts from the next clock bar when the plan starts one.

        ``in_effect`` (a run starting or restarting) trains the fold in effect at the
        next bar instead (the latest scheduled one, `train_fold_in_effect`), so that a run
        started over a long history predicts what its backtest predicts. ``reason`` is
        `LiveSession.train`'s (unused: a universe trains scheduled folds only).
        Trainings are journaled at the next bar.
        """
        history = self.universe
        n = len(history)
        trainings: list[ModelTraining] = []
        if self.pooled:
            model = self.models[0]
            assert isinstance(model, LiveUniverseTrainer)
            due = self._due[0]
            if in_effect or due is None or due == n:
                features = [history.own_features(s) for s in range(len(history.symbols))]
                universe = history.universe()
                training = model.train_next_universe(universe, features, in_effect=in_effect)
                self._due[0] = self._next(training, model.retrain_every)
                if training is not None:
                    trainings.append(training)
        else:
            for s, model in enumerate(self.models):
                if not isinstance(model, LiveTrainer):
                    continue  # it trades with the fold it has (a saved model)
                training = self._train_own(model, s, in_effect)
                if training is not None:
                    trainings.append(training)
        when = history.last_time + pd.Timedelta(seconds=history.timeframe_seconds)
        for training in trainings:
            self.rec.training(training, when)
            _log.info("model_trained", fold=training.fold, rows=training.rows, predicts_from=n)
        return trainings[0] if trainings else None

    @staticmethod
    def _next(training: ModelTraining | None, every: int) -> int | None:
        """The bar the plan's next fold starts at (None: not known yet, ask every bar)."""
        return None if training is None else training.predict_start + int(every)

    def _train_own(self, model: LiveTrainer, s: int, in_effect: bool) -> ModelTraining | None:
        history = self.universe
        if not in_effect:
            if math.isnan(history.prices(len(history) - 1)[s, 3]):
                return None  # its own clock did not move: no fold starts
            due = self._due[s]
            if due is not None and due != int(history.present()[:, s].sum()):
                return None  # the walk-forward plan starts no fold at its next bar
        bars, features = history.own_bars(s), history.own_features(s)
        if in_effect:
            training = train_fold_in_effect(model, bars, features)
        else:
            training = model.train_next(bars, features, reason=None)
        self._due[s] = self._next(training, model.retrain_every)
        if training is None:
            return None
        # its folds are in its own bars; journaled in clock bars, as the backtest's
        position = np.flatnonzero(history.present()[:, s])
        own = len(position)

        def clock(i: int) -> int:
            return int(position[i]) if i < own else len(history) + (i - own)

        return replace(
            training,
            train_start=clock(training.train_start),
            train_end=clock(training.train_end),
            predict_start=clock(training.predict_start),
            predict_end=clock(training.predict_end),
        )

    def catch_up(self, last: tuple[int, str] | None) -> None:
        """Train, after a restart, the fold in effect at the next bar (same rows and seed)."""
        recorder, self.rec = self.rec, _Quiet(self.rec)  # type: ignore[assignment]
        try:
            self.train(None, in_effect=True)
        finally:
            self.rec = recorder

    # --- one tick -----------------------------------------------------------------

    def predict_all(
        self, rows: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]
    ) -> list[BarInput | None]:
        """Return each present symbol's verdict on its feature row (None: no bar)."""
        verdicts: list[BarInput | None] = []
        for s in range(len(present)):
            if not present[s]:
                verdicts.append(None)
                continue
            model = self.models[0 if self.pooled else s]
            row = rows[s]
            if self.symbol_id:
                row = np.append(row, float(s))
            assert isinstance(model, LiveModel)  # checked before the run started
            probability = float(model.predict_row(row))
            score = math.nan
            if isinstance(model, LiveAnomalyGate):
                score = float(model.anomaly_score_row(row))
            verdicts.append(BarInput(probability, bool(score < 0.0), score))
        return verdicts

    def step(  # type: ignore[override]
        self, time: pd.Timestamp, values: npt.ArrayLike, given: Verdicts | None = None
    ) -> int:
        """Run one tick: the clock bar opening at ``time``, ``values`` = ``[symbols, OHLCV]``
        (a NaN row: that symbol has no bar). Returns the clock bar's index.

        Args:
            time: The clock bar's open time (UTC).
            values: Each symbol's open, high, low, close and volume.
            given: Per symbol, the verdict read from the journal (a replay); None: ask
                the model now and journal the bars.
        """
        history = self.universe
        prices = np.asarray(values, np.float64)
        present = ~np.isnan(prices[:, 3])
        t = len(history)
        row = self._features(t, time, prices, present)
        history.append(time, prices, row)
        verdicts = self.predict_all(row, present) if given is None else list(given)
        now = self.clock()
        if given is None:
            self._journal_tick(t, time, prices, present, verdicts, now)
        self._absent = ~present
        self._regime(prices, present)
        m = len(history.symbols)
        px = np.full((6, 1, m), np.nan)
        px[:5, 0] = prices.T
        flags = np.zeros((2, 1, m), np.uint8)
        scores = np.full((1, m), np.nan)
        for s, verdict in enumerate(verdicts):
            if verdict is not None:
                px[5, 0, s] = verdict.probability
                flags[0, 0, s] = verdict.anomalous
                scores[0, s] = verdict.anomaly_score
        flags[1, 0] = self._codes
        inputs = BarInputs(
            px, flags, scores, np.array([time.value], np.int64), np.zeros(1, np.int64), t
        )
        self.engine.run(inputs, t + 1)
        if given is None:
            self.train(None)
            self.rec.journal.flush()
        return t

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
        for s, symbol in enumerate(self.universe.symbols):
            rec.symbol = symbol
            verdict = verdicts[s]
            if verdict is None:
                if not self._absent[s]:  # once per stretch, at its first bar
                    rec.record(SymbolAbsent(**rec.at(t, time, market=True), last=time, bars=1))
                    _log.warning("symbol_absent", symbol=symbol, bar=t, time=str(time))
                continue
            o, h, lo, c, v = (float(x) for x in prices[s])
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


class _Quiet:
    """A recorder that journals no training (a restart's catch-up: journaled already)."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def training(self, training: ModelTraining, timestamp: object) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._recorder, name)
