"""The backtest engine: features and model over the history, then a loop over bars.

At each bar t, in this order:

1. orders decided at bar t-1 fill at t's open (``fill: next_open``);
2. the portfolio is marked to t's close; monitors see the prediction whose
   outcome bar t resolves;
3. the risk rules may halt trading (the position is then closed);
4. a position held ``max_holding_bars`` since its entry fill is closed;
5. the signal rule sees t's probability; a signal sets the target position:
   flat -> enter (sized by the sizing component, checked by the risk rules);
   same direction -> hold; opposite -> exit, or reverse where shorting is allowed;
6. orders go to the venue; with ``fill: close`` they fill at t's close;
7. the equity row of bar t is recorded.

A decision at t's close uses nothing after t, and fills no earlier than t's close.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeloom.domain import Bar, Bars, Order, OrderIntent, Rejection, Signal
from tradeloom.plugins.protocols import MonitorInput, RiskContext
from tradeloom.runner.events import Recorder
from tradeloom.runner.portfolio import Portfolio
from tradeloom.runner.wiring import Pipeline

__all__ = ["BacktestResult", "compute_features", "run_backtest"]


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced, for the outputs and the metrics."""

    bars: Bars
    features: pd.DataFrame
    probability: pd.Series
    equity: pd.DataFrame
    portfolio: Portfolio
    recorder: Recorder
    unfilled: tuple[Order, ...]


def compute_features(pipeline: Pipeline, bars: Bars) -> pd.DataFrame:
    """Compute every feature in file order; each sees the bars and the features before it.

    Raises:
        RuntimeError: A feature returned other columns than it declared, or other rows.
    """
    frame = pd.DataFrame(index=bars.frame.index)
    for item, feature in zip(pipeline.config.features, pipeline.features, strict=True):
        out = feature.compute(bars, frame)
        declared = feature.columns()
        if list(out.columns) != declared or not out.index.equals(bars.frame.index):
            raise RuntimeError(
                f"{item.path} ({item.kind}, plugin '{item.registered.plugin.name}') returned "
                f"columns {list(out.columns)} over {len(out)} rows; it declared {declared} "
                f"over the {len(bars)} bars"
            )
        frame = pd.concat([frame, out.astype(np.float64)], axis=1)
    return frame


class _Row(Mapping[str, float]):
    """One bar's features as a read-only mapping, without copying the row."""

    __slots__ = ("_columns", "_values")

    def __init__(self, columns: dict[str, int], values: np.ndarray) -> None:
        self._columns = columns
        self._values = values

    def __getitem__(self, key: str) -> float:
        return float(self._values[self._columns[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


class _Engine:
    def __init__(self, pipeline: Pipeline, recorder: Recorder, order_prefix: str) -> None:
        self.p = pipeline
        self.rec = recorder
        self.venue = pipeline.venue
        self.portfolio = Portfolio(pipeline.venue.initial_cash)
        self.max_holding = pipeline.config.max_holding_bars
        self.order_prefix = order_prefix
        self.sequence = 0
        self.halted = False
        self.decision_bar: dict[str, int] = {}

    def run(
        self,
        bars: Bars,
        features: pd.DataFrame,
        probability: np.ndarray,
        trainings_at: dict[int, list],
    ) -> pd.DataFrame:
        frame = bars.frame
        times = list(frame.index)  # boxed once: indexing a DatetimeIndex per bar is slow
        o, h, lo, c, v = (
            frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")
        )
        feats = features.to_numpy(np.float64)
        columns = {name: j for j, name in enumerate(features.columns)}
        horizon = max(int(self.p.model.horizon), 1)
        n = len(frame)
        rows = np.empty((n, 3))
        for t in range(n):
            ts = times[t]
            bar = Bar(t, ts, o[t], h[t], lo[t], c[t], v[t])
            for training in trainings_at.get(t, ()):
                self.rec.training(training, ts)
            self._fills(bar, "open")
            view = self.portfolio.mark(c[t])
            p = float(probability[t])
            if self.p.monitors:
                resolved = float(probability[t - horizon]) if t >= horizon else math.nan
                data = MonitorInput(
                    bar, p, resolved, bool(c[t] > c[t - horizon]) if t >= horizon else False
                )
                for monitor in self.p.monitors:
                    change = monitor.on_bar(data)
                    if change is not None:
                        self.rec.health(change)
            ctx = RiskContext(bar, view, _Row(columns, feats[t]), p)
            intents = self._exits(ctx)
            signal = self.p.signal.on_bar(bar, p)
            if signal is not None:
                self.rec.signal(signal)
                intents = self._decide(signal, ctx, intents)
            for intent in intents:
                self._send(intent, ctx)
            self._fills(bar, "close")
            rows[t] = (self.portfolio.position, self.portfolio.cash, self.portfolio.equity(c[t]))
        equity = pd.DataFrame(
            {
                "close": c,
                "position": rows[:, 0],
                "cash": rows[:, 1],
                "equity": rows[:, 2],
            },
            index=frame.index,
        )
        peak = np.maximum.accumulate(np.maximum(rows[:, 2], self.portfolio.initial_cash))
        equity["drawdown"] = 1.0 - rows[:, 2] / peak
        return equity

    def _fills(self, bar: Bar, phase: str) -> None:
        for fill in self.venue.match(bar, phase):
            self.portfolio.apply(fill)
            self.rec.fill(fill, self.decision_bar.pop(fill.order_id, fill.bar))

    def _exits(self, ctx: RiskContext) -> list[OrderIntent]:
        view = ctx.portfolio
        if not self.halted:
            for rule in self.p.rules:
                halt = rule.on_bar(ctx)
                if halt is not None:
                    self.halted = True
                    self.rec.halted(halt)
                    if view.position != 0:
                        return [self._intent(ctx, 0, 0.0, "EXIT_HALT", False)]
                    return []
        if (
            self.max_holding is not None
            and view.position != 0
            and view.entry_bar is not None
            and ctx.bar.index - view.entry_bar >= self.max_holding
        ):
            return [self._intent(ctx, 0, 0.0, "EXIT_MAX_HOLDING", False)]
        return []

    def _decide(
        self, signal: Signal, ctx: RiskContext, intents: list[OrderIntent]
    ) -> list[OrderIntent]:
        held = ctx.portfolio.direction
        wanted = signal.direction
        bar, ts = signal.bar, signal.timestamp
        if self.halted:
            code = self.rec.halt.code if self.rec.halt else "HALT"
            self._reject(bar, ts, "HALTED", f"trading is halted ({code})", {})
            return intents
        if wanted == -1 and not self.venue.allow_short and held <= 0:
            self._reject(
                bar,
                ts,
                "SHORT_NOT_ALLOWED",
                "short signal on a long-only venue (execution.allow_short: false)",
                {},
            )
            return intents
        if held == wanted:
            if not intents:
                self._decision(bar, ts, "hold", "position already in the signal's direction")
                return intents
            self._decision(bar, ts, "ignored", f"position is being closed ({intents[0].reason})")
            return intents
        exiting = held != 0
        if exiting and (wanted == -1 and not self.venue.allow_short):
            return intents or [self._intent(ctx, 0, 0.0, "EXIT_SIGNAL", False, signal)]
        size = self.p.sizer.size(signal, ctx)
        if isinstance(size, Rejection):
            self.rec.rejection(size)
            if exiting and not intents:
                return [self._intent(ctx, 0, 0.0, "EXIT_SIGNAL", False, signal)]
            return intents
        if not (0.0 < size <= 1.0) or math.isnan(size):
            raise RuntimeError(f"risk.sizing returned {size!r}; expected a fraction in (0, 1]")
        reason = "REVERSE" if exiting else "ENTRY"
        intent = self._intent(ctx, wanted, wanted * size, reason, True, signal)
        for rule in self.p.rules:
            rejection = rule.check(intent, ctx)
            if rejection is not None:
                self.rec.rejection(rejection)
                if exiting and not intents:
                    return [self._intent(ctx, 0, 0.0, "EXIT_SIGNAL", False, signal)]
                return intents
        self._decision(bar, ts, "accepted", reason, target_fraction=intent.target_fraction)
        return [intent]

    def _intent(
        self,
        ctx: RiskContext,
        direction: int,
        target: float,
        reason: str,
        increases: bool,
        signal: Signal | None = None,
    ) -> OrderIntent:
        return OrderIntent(
            bar=ctx.bar.index,
            timestamp=ctx.bar.timestamp,
            direction=direction,
            target_fraction=target,
            reason=reason,
            increases_exposure=increases,
            probability=signal.probability if signal else ctx.probability,
        )

    def _send(self, intent: OrderIntent, ctx: RiskContext) -> None:
        view = ctx.portfolio
        if intent.target_fraction == 0.0:
            delta = -view.position
        else:
            delta = intent.target_fraction * view.equity / view.price - view.position
        if delta == 0.0:
            return
        self.sequence += 1
        order = Order(
            id=f"{self.order_prefix}-{self.sequence:06d}",
            bar=intent.bar,
            timestamp=intent.timestamp,
            side=1 if delta > 0 else -1,
            quantity=abs(delta),
            reason=intent.reason,
            reference_price=view.price,
        )
        self.decision_bar[order.id] = intent.bar
        self.rec.order(order)
        self.venue.submit(order)

    def _reject(
        self, bar: int, ts: pd.Timestamp, code: str, message: str, values: dict[str, float]
    ) -> None:
        self.rec.rejection(Rejection(bar, ts, code, message, values))

    def _decision(
        self, bar: int, ts: pd.Timestamp, outcome: str, reason: str, **values: float
    ) -> None:
        self.rec.note(
            "risk_decision", {"outcome": outcome, "reason": reason, **values}, bar=bar, timestamp=ts
        )


def run_backtest(pipeline: Pipeline, recorder: Recorder, order_prefix: str) -> BacktestResult:
    """Run ``pipeline`` over its data and return the result.

    Args:
        pipeline: The built components.
        recorder: Journals and broadcasts the events.
        order_prefix: Start of every client order id (strategy and run key).
    """
    bars = pipeline.data.load()
    recorder.note(
        "data_loaded",
        {
            "symbol": bars.symbol,
            "timeframe": bars.timeframe,
            "bars": len(bars),
            "first": bars.frame.index[0],
            "last": bars.frame.index[-1],
            "repaired": [vars(i) for i in bars.repaired],
            "gaps": [vars(i) for i in bars.gaps],
        },
    )
    features = compute_features(pipeline, bars)
    output = pipeline.model.fit_predict(bars, features)
    probability = output.probability
    if len(probability) != len(bars):
        raise RuntimeError(
            f"model ({pipeline.config.model.kind}) returned {len(probability)} probabilities "
            f"for {len(bars)} bars"
        )
    trainings_at: dict[int, list] = {}
    for training in output.trainings:
        trainings_at.setdefault(training.predict_start, []).append(training)
    engine = _Engine(pipeline, recorder, order_prefix)
    equity = engine.run(bars, features, probability.to_numpy(np.float64), trainings_at)
    unfilled = tuple(pipeline.venue.pending())
    for order in unfilled:
        recorder.note(
            "order_expired",
            {"order_id": order.id, "reason": "no bar left to fill"},
            bar=order.bar,
            timestamp=order.timestamp,
        )
    return BacktestResult(
        bars=bars,
        features=features,
        probability=probability,
        equity=equity,
        portfolio=engine.portfolio,
        recorder=recorder,
        unfilled=unfilled,
    )
