"""The per-bar driver of the sequential layers: signal, risk, execution and the portfolio.

`BarEngine.on_bar` takes one bar, in this order:

1. the venue fills what is due at the bar's open (orders decided at t-1 under
   ``fill: next_open``);
2. a stop-loss or take-profit that the bar's range reaches exits during the bar;
3. the portfolio is marked to the close; monitors see the prediction whose outcome
   this bar resolves;
4. the risk rules may halt trading (the position is then closed);
5. a position held ``max_holding_bars`` since its entry fill is closed;
6. the signal rule sees the bar's probability; a signal sets the target position:
   flat -> enter (sized by the sizing component, checked by the risk rules);
   same direction -> hold; opposite -> exit, or reverse where shorting is allowed;
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
from collections.abc import Mapping

import pandas as pd

from tradeloom.domain import (
    Bar,
    Fill,
    Order,
    OrderIntent,
    Rejection,
    Signal,
)
from tradeloom.plugins.protocols import MonitorInput, RiskContext
from tradeloom.runner.events import Recorder
from tradeloom.runner.exits import EXIT_REASONS, NO_EXIT, holding_expired, stop_exit
from tradeloom.runner.portfolio import Portfolio
from tradeloom.runner.wiring import Pipeline

__all__ = [
    "BarEngine",
    "halted_rejection",
    "hold_reason",
    "ignored_reason",
    "no_equity_rejection",
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
    """

    def __init__(self, pipeline: Pipeline, recorder: Recorder, order_prefix: str) -> None:
        config = pipeline.config
        self.p = pipeline
        self.rec = recorder
        self.venue = pipeline.venue
        self.portfolio = Portfolio(pipeline.venue.initial_cash)
        self.max_holding = config.max_holding_bars or 0
        self.stop_loss = math.nan if config.stop_loss is None else config.stop_loss
        self.take_profit = math.nan if config.take_profit is None else config.take_profit
        self.order_prefix = order_prefix
        self.sequence = 0
        self.halt_code = ""
        self.decision_bar: dict[str, int] = {}
        self.working_direction = 0
        horizon = max(int(pipeline.model.horizon), 1)
        self._resolving: deque[tuple[float, float]] = deque(maxlen=horizon)

    @property
    def halted(self) -> bool:
        """Return whether a risk rule halted trading."""
        return bool(self.halt_code)

    def on_bar(
        self, bar: Bar, probability: float, features: Mapping[str, float]
    ) -> tuple[float, float, float]:
        """Run one bar through the layers; return its ``(position, cash, equity)``."""
        self._match(bar, "open")
        self._protect(bar)
        view = self.portfolio.mark(bar.close)
        if self.p.monitors:
            self._monitor(bar, probability)
        ctx = RiskContext(bar, view, features, probability)
        intents = self._exits(ctx)
        signal = self.p.signal.on_bar(bar, probability)
        if signal is not None:
            self.rec.signal(signal)
            intents = self._decide(signal, ctx, intents)
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
        if position == 0.0 or (math.isnan(self.stop_loss) and math.isnan(self.take_profit)):
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

    def _monitor(self, bar: Bar, probability: float) -> None:
        resolving = self._resolving
        full = len(resolving) == resolving.maxlen
        then_p, then_close = resolving[0] if full else (math.nan, math.nan)
        data = MonitorInput(bar, probability, then_p, full and bar.close > then_close)
        resolving.append((probability, bar.close))
        for monitor in self.p.monitors:
            change = monitor.on_bar(data)
            if change is not None:
                self.rec.health(change)

    def _exits(self, ctx: RiskContext) -> list[OrderIntent]:
        view = ctx.portfolio
        exposed = view.position != 0.0 or bool(self.venue.pending())
        if not self.halted:
            for rule in self.p.rules:
                halt = rule.on_bar(ctx)
                if halt is not None:
                    self.halt_code = halt.code
                    self.rec.halted(halt)
                    return [self._intent(ctx, 0, 0.0, "EXIT_HALT", False)] if exposed else []
        entry = -1 if view.entry_bar is None else view.entry_bar
        if view.position != 0.0 and holding_expired(ctx.bar.index, entry, self.max_holding):
            return [self._intent(ctx, 0, 0.0, "EXIT_MAX_HOLDING", False)]
        return []

    def _decide(
        self, signal: Signal, ctx: RiskContext, intents: list[OrderIntent]
    ) -> list[OrderIntent]:
        view = ctx.portfolio
        held = self.working_direction if self.venue.pending() else view.direction
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
        if delta == 0.0:
            return
        self._order(bar, 1 if delta > 0 else -1, abs(delta), intent.reason, view.price, "market")

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
            id=f"{self.order_prefix}-{self.sequence:06d}",
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
