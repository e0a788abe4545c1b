"""The per-bar driver of the sequential layers: signal, risk, execution and the portfolio.

`BarEngine.on_bar` takes one bar, in this order:

1. the venue fills what is due at the bar's open (orders decided at t-1 under
   ``fill: next_open``);
2. a stop-loss or take-profit that the bar's range reaches exits during the bar;
3. the portfolio is marked to the close; monitors see the prediction whose outcome
   this bar resolves, the bar's features and its fills; health rules act on their
   metrics (``retrain``: a new fold predicts from the next bar; ``halt``: step 4);
   the bar's regime is labelled (journaled when it changes);
4. a health rule's ``halt`` or a risk rule may halt trading (the position is closed);
5. a position held ``max_holding_bars`` since its entry fill is closed;
6. the signal rule sees the bar's probability; a signal on a bar whose regime is none
   of ``signal.regimes`` is filtered (journaled, it changes nothing); otherwise it sets
   the target position: flat -> enter (sized by the sizing component, checked by the
   risk rules); same direction -> hold; opposite -> exit, or reverse where shorting is
   allowed. On a bar the model's detector finds anomalous, entries and reversals are
   rejected (``ANOMALY``); exits still go through;
7. a new order first cancels the working one, then goes to the venue; with
   ``fill: close`` it fills at the bar's close;
8. the bar's position, cash and equity are returned for the equity curve.

Every layer is called through its protocol, so a plain-Python third-party component
works here exactly like a built-in one; the built-ins are thin wrappers over the
same compiled kernels the batch driver (`tradeloom.runner.batch`) runs, and the two
drivers journal identical events. The live runner drives this class.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping

import pandas as pd

from tradeloom.domain import (
    Bar,
    Fill,
    Order,
    OrderIntent,
    Rejection,
    Signal,
)
from tradeloom.plugins.protocols import RiskContext
from tradeloom.plugins.signal.regime import (
    RegimeStepper,
    regime_mask,
    trend_label,
    volatility_label,
)
from tradeloom.runner.events import Recorder
from tradeloom.runner.exits import EXIT_REASONS, NO_EXIT, holding_expired, stop_exit
from tradeloom.runner.health import health_halt
from tradeloom.runner.portfolio import Portfolio
from tradeloom.runner.watch import Watch
from tradeloom.runner.wiring import Pipeline

__all__ = [
    "BarEngine",
    "anomaly_rejection",
    "filtered_decision",
    "halted_rejection",
    "hold_reason",
    "ignored_reason",
    "no_equity_rejection",
    "regime_changed",
    "short_not_allowed",
]


def halted_rejection(bar: int, timestamp: pd.Timestamp, halt_code: str) -> Rejection:
    """Return the rejection of a signal after trading halted."""
    return Rejection(bar, timestamp, "HALTED", f"trading is halted ({halt_code})", {})


def short_not_allowed(bar: int, timestamp: pd.Timestamp) -> Rejection:
    """Return the rejection of a short entry on a long-only venue."""
    return Rejection(
        bar,
        timestamp,
        "SHORT_NOT_ALLOWED",
        "short signal on a long-only venue (execution.allow_short: false)",
        {},
    )


def no_equity_rejection(bar: int, timestamp: pd.Timestamp, equity: float) -> Rejection:
    """Return the rejection of an entry when nothing is left to size it on."""
    return Rejection(bar, timestamp, "NO_EQUITY", f"equity={equity:.2f} <= 0", {"equity": equity})


def anomaly_rejection(bar: int, timestamp: pd.Timestamp, score: float) -> Rejection:
    """Return the rejection of an entry or reversal on a bar the anomaly detector flags."""
    return Rejection(
        bar,
        timestamp,
        "ANOMALY",
        f"anomaly_score={score:.4f} < 0: the bar is unlike the model's training rows",
        {"anomaly_score": score},
    )


def filtered_decision(code: int, allowed: tuple[str, ...]) -> dict[str, str]:
    """Return the risk decision of a signal on a bar whose regime ``code`` is not allowed."""
    trend, volatility = trend_label(code), volatility_label(code)
    return {
        "outcome": "filtered",
        "reason": f"regime ({trend}, {volatility}) is none of signal.regimes "
        f"({', '.join(allowed)})",
        "trend": trend,
        "volatility": volatility,
    }


def regime_changed(code: int, previous: int) -> dict[str, str]:
    """Return the journal payload of a bar whose regime differs from the previous bar's."""
    return {
        "trend": trend_label(code),
        "volatility": volatility_label(code),
        "previous_trend": trend_label(previous),
        "previous_volatility": volatility_label(previous),
    }


def hold_reason() -> str:
    """Return the reason of a signal in the direction already held."""
    return "position already in the signal's direction"


def ignored_reason(closing: str) -> str:
    """Return the reason of a signal ignored because an exit of this bar closes the position."""
    return f"position is being closed ({closing})"


class BarEngine:
    """Drive the sequential layers of ``pipeline`` one bar at a time.

    Args:
        pipeline: The built components (their state is the engine's state).
        recorder: Journals and broadcasts every event.
        order_prefix: Start of every client order id (strategy and run key).
        retrain: Called with the bar and the reason when a health rule says ``retrain``
            (a backtest's `tradeloom.runner.retraining.Retrainer`); required only when
            the strategy has such a rule.
        order_id: Makes the client order id of the n-th order (live: one the venue
            accepts, `client_order_id`); default ``{order_prefix}-{n:06d}``.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        recorder: Recorder,
        order_prefix: str,
        *,
        retrain: Callable[[int, str], None] | None = None,
        order_id: Callable[[int], str] | None = None,
    ) -> None:
        config = pipeline.config
        self.p = pipeline
        self.rec = recorder
        self.venue = pipeline.venue
        self.portfolio = Portfolio(pipeline.venue.initial_cash)
        self.max_holding = config.max_holding_bars or 0
        self.stop_loss = math.nan if config.stop_loss is None else config.stop_loss
        self.take_profit = math.nan if config.take_profit is None else config.take_profit
        self.order_prefix = order_prefix
        self._order_id = order_id or (lambda n: f"{order_prefix}-{n:06d}")
        self.dust = float(getattr(pipeline.venue, "dust", 0.0))
        self.sequence = 0
        self.halt_code = ""
        self.decision_bar: dict[str, int] = {}
        self.working_direction = 0
        horizon = max(int(pipeline.model.horizon), 1)
        self._resolving: deque[tuple[float, float]] = deque(maxlen=horizon)
        self.watch = None
        if pipeline.monitors:
            self.watch = Watch(pipeline.monitors, config.health, recorder)
        self._retrain = retrain
        self._health_halted = False
        self.allowed_regimes = config.signal_regimes
        self.regime_filter = regime_mask(config.signal_regimes)
        self.regimes = None if config.regime is None else RegimeStepper(config.regime)
        self.regime = 0

    @property
    def halted(self) -> bool:
        """Return whether a risk rule halted trading."""
        return bool(self.halt_code)

    def on_bar(
        self,
        bar: Bar,
        probability: float,
        features: Mapping[str, float],
        *,
        anomalous: bool = False,
        anomaly_score: float = math.nan,
    ) -> tuple[float, float, float]:
        """Run one bar through the layers; return its ``(position, cash, equity)``.

        The regime is labelled here, from the bars' closes, when the strategy has a
        ``regime:`` section or ``signal.regimes``; the anomaly verdict comes from the
        model, which scored the bar's features (`SklearnModel.anomalous_row` live).

        Args:
            bar: The bar, closed.
            probability: The model's probability of an up move (NaN: none).
            features: The bar's features by column.
            anomalous: The model's anomaly detector flags this bar: no new position.
            anomaly_score: The detector's score, journaled with an ``ANOMALY`` rejection.
        """
        self._match(bar, "open")
        self._protect(bar)
        view = self.portfolio.mark(bar.close)
        if self.watch is not None:
            self._monitor(bar, probability, features)
        if self.regimes is not None:
            self._label(bar)
        ctx = RiskContext(bar, view, features, probability)
        intents = self._exits(ctx)
        signal = self.p.signal.on_bar(bar, probability)
        if signal is not None:
            self.rec.signal(signal)
            if self.regime_filter and not self.regime & self.regime_filter:
                self.rec.note(
                    "risk_decision",
                    filtered_decision(self.regime, self.allowed_regimes),
                    bar=bar.index,
                    timestamp=bar.timestamp,
                )
            else:
                intents = self._decide(signal, ctx, intents, anomalous, anomaly_score)
        for intent in intents:
            self._send(intent, ctx)
        self._match(bar, "close")
        return self.portfolio.position, self.portfolio.cash, self.portfolio.equity(bar.close)

    def _match(self, bar: Bar, phase: str) -> None:
        for event in self.venue.match(bar, phase):
            decided = self.decision_bar.get(event.order_id, bar.index)
            if isinstance(event, Fill):
                self.portfolio.apply(event)
                self.rec.fill(event, decided)
            else:
                self.rec.cancelled(event, decided)

    def _protect(self, bar: Bar) -> None:
        position = self.portfolio.position
        if abs(position) <= self.dust or (
            math.isnan(self.stop_loss) and math.isnan(self.take_profit)
        ):
            return
        direction = 1 if position > 0 else -1
        entry_price = self.portfolio.entry_price
        assert entry_price is not None  # a position has an entry price
        code, price = stop_exit(
            direction,
            entry_price,
            bar.open,
            bar.high,
            bar.low,
            self.stop_loss,
            self.take_profit,
        )
        if code == NO_EXIT:
            return
        self._cancel_working(bar, "PROTECTIVE_EXIT")
        self._order(bar, -direction, abs(position), EXIT_REASONS[code], price, "stop")
        self._match(bar, "intrabar")

    def _monitor(self, bar: Bar, probability: float, features: Mapping[str, float]) -> None:
        assert self.watch is not None
        resolving = self._resolving
        full = len(resolving) == resolving.maxlen
        then_p, then_close = resolving[0] if full else (math.nan, math.nan)
        resolving.append((probability, bar.close))
        up = full and bar.close > then_close
        for action in self.watch.on_bar(bar, probability, then_p, up, features):
            if action.action == "halt" and not self.halted:
                halt = health_halt(action)
                self.halt_code = halt.code
                self.rec.halted(halt)
                self._health_halted = True  # _exits closes the position at this bar
            elif action.action == "retrain":
                if self._retrain is None:
                    raise RuntimeError(
                        f"{action.reason}: retrain fired, but this engine was given no "
                        "retrain callback"
                    )
                self._retrain(bar.index, action.reason)

    def _label(self, bar: Bar) -> None:
        assert self.regimes is not None
        previous = self.regime
        self.regime = self.regimes.step(bar.close)
        if self.regime != previous:
            self.rec.note(
                "regime_changed",
                regime_changed(self.regime, previous),
                bar=bar.index,
                timestamp=bar.timestamp,
            )

    def _exits(self, ctx: RiskContext) -> list[OrderIntent]:
        view = ctx.portfolio
        exposed = abs(view.position) > self.dust or bool(self.venue.pending())
        if self._health_halted:
            self._health_halted = False
            return [self._intent(ctx, 0, 0.0, "EXIT_HALT", False)] if exposed else []
        if not self.halted:
            for rule in self.p.rules:
                halt = rule.on_bar(ctx)
                if halt is not None:
                    self.halt_code = halt.code
                    self.rec.halted(halt)
                    return [self._intent(ctx, 0, 0.0, "EXIT_HALT", False)] if exposed else []
        entry = -1 if view.entry_bar is None else view.entry_bar
        if abs(view.position) > self.dust and holding_expired(
            ctx.bar.index, entry, self.max_holding
        ):
            return [self._intent(ctx, 0, 0.0, "EXIT_MAX_HOLDING", False)]
        return []

    def _decide(
        self,
        signal: Signal,
        ctx: RiskContext,
        intents: list[OrderIntent],
        anomalous: bool,
        anomaly_score: float,
    ) -> list[OrderIntent]:
        view = ctx.portfolio
        held = self.working_direction if self.venue.pending() else self._direction(view.position)
        wanted = signal.direction
        bar, ts = signal.bar, signal.timestamp
        if self.halted:
            self.rec.rejection(halted_rejection(bar, ts, self.halt_code))
            return intents
        if wanted == -1 and not self.venue.allow_short and held <= 0:
            self.rec.rejection(short_not_allowed(bar, ts))
            return intents
        if held == wanted:
            if not intents:
                self._decision(bar, ts, "hold", hold_reason())
                return intents
            self._decision(bar, ts, "ignored", ignored_reason(intents[0].reason))
            return intents
        exiting = held != 0
        exit_signal = [self._intent(ctx, 0, 0.0, "EXIT_SIGNAL", False, signal)]
        if exiting and wanted == -1 and not self.venue.allow_short:
            return intents or exit_signal
        if anomalous:
            self.rec.rejection(anomaly_rejection(bar, ts, anomaly_score))
            return intents or (exit_signal if exiting else [])
        if view.equity <= 0.0:
            self.rec.rejection(no_equity_rejection(bar, ts, view.equity))
            return intents or (exit_signal if exiting else [])
        size = self.p.sizer.size(signal, ctx)
        if isinstance(size, Rejection):
            self.rec.rejection(size)
            return intents or (exit_signal if exiting else [])
        if not (0.0 < size <= 1.0):
            raise RuntimeError(f"risk.sizing returned {size!r}; expected a fraction in (0, 1]")
        reason = "REVERSE" if exiting else "ENTRY"
        intent = self._intent(ctx, wanted, wanted * size, reason, True, signal)
        for rule in self.p.rules:
            rejection = rule.check(intent, ctx)
            if rejection is not None:
                self.rec.rejection(rejection)
                return intents or (exit_signal if exiting else [])
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
        bar, view = ctx.bar, ctx.portfolio
        self._cancel_working(bar, "REPLACED")
        position = view.position
        if intent.target_fraction == 0.0:
            delta = -position
        else:
            notional = abs(intent.target_fraction) * view.equity
            delta = intent.direction * self.venue.quantity_for(notional, view.price) - position
        self.working_direction = intent.direction
        if abs(delta) <= self.dust:  # 0.0 on a venue without lots
            return
        self._order(bar, 1 if delta > 0 else -1, abs(delta), intent.reason, view.price, "market")

    def _direction(self, position: float) -> int:
        """Return the side held: +1, -1, or 0 for flat (a position within ``dust`` of 0)."""
        if abs(position) <= self.dust:
            return 0
        return 1 if position > 0 else -1

    def cancel_working(self, bar: Bar, reason: str) -> None:
        """Cancel every pending order (the kill switch); journal what the venue cancels."""
        self._cancel_working(bar, reason)

    def _cancel_working(self, bar: Bar, reason: str) -> None:
        for order in self.venue.pending():
            cancellation = self.venue.cancel(order.id, bar, reason)
            if cancellation is not None:
                self.rec.cancelled(cancellation, self.decision_bar.get(order.id, bar.index))

    def _order(
        self, bar: Bar, side: int, quantity: float, reason: str, price: float, kind: str
    ) -> None:
        self.sequence += 1
        order = Order(
            id=self._order_id(self.sequence),
            bar=bar.index,
            timestamp=bar.timestamp,
            side=side,
            quantity=quantity,
            reason=reason,
            reference_price=price,
            kind="stop" if kind == "stop" else "market",
            stop_price=price if kind == "stop" else math.nan,
        )
        self.decision_bar[order.id] = bar.index
        self.rec.order(order)
        self.venue.submit(order)

    def _decision(
        self, bar: int, ts: pd.Timestamp, outcome: str, reason: str, **values: float
    ) -> None:
        self.rec.note(
            "risk_decision", {"outcome": outcome, "reason": reason, **values}, bar=bar, timestamp=ts
        )
