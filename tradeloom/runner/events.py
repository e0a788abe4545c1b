"""Record what happens in a run: journal it, tell the observers, keep it for the outputs.

Every event is journaled first and broadcast second, so an observer never sees
an event the journal does not hold.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pluggy
import structlog

from tradeloom.domain import (
    Cancellation,
    Fill,
    Halt,
    HealthAction,
    HealthChange,
    ModelTraining,
    Order,
    Rejection,
    RunInfo,
    Signal,
)
from tradeloom.runner.journal import Journal

__all__ = ["Recorder"]

_log = structlog.get_logger("tradeloom.run")


class Recorder:
    """Journal, broadcast and keep the events of one run.

    Args:
        journal: The run's journal.
        hook: The plugin manager's hook relay.
        run: The run observers are told about.
    """

    def __init__(self, journal: Journal, hook: pluggy.HookRelay, run: RunInfo) -> None:
        self.journal = journal
        self.hook = hook
        self.run = run
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.signals = 0
        self.rejections: dict[str, int] = {}
        self.halt: Halt | None = None
        self.trainings: list[ModelTraining] = []
        self.cancellations: list[Cancellation] = []
        self.health_actions: list[HealthAction] = []

    def note(
        self, kind: str, payload: dict[str, Any], *, bar: int | None = None, timestamp: Any = None
    ) -> None:
        """Journal an event no observer hook exists for (data loaded, decisions...)."""
        self.journal.append(kind, payload, bar=bar, timestamp=timestamp, correlation_id=_corr(bar))

    def training(self, training: ModelTraining, timestamp: Any) -> None:
        """Record a walk-forward fold (journaled at the first bar it predicts)."""
        self.trainings.append(training)
        self._journal("model_trained", _fields(training), training.predict_start, timestamp)
        _log.debug("model_trained", **_fields(training))
        self.hook.tradeloom_model_trained(run=self.run, training=training)

    def signal(self, signal: Signal) -> None:
        """Record a signal."""
        self.signals += 1
        self._journal("signal", _fields(signal), signal.bar, signal.timestamp)
        self.hook.tradeloom_signal(run=self.run, signal=signal)

    def rejection(self, rejection: Rejection) -> None:
        """Record a refused intent with its reason code and values."""
        self.rejections[rejection.code] = self.rejections.get(rejection.code, 0) + 1
        payload = {"outcome": "rejected", **_fields(rejection)}
        self._journal("risk_decision", payload, rejection.bar, rejection.timestamp)
        _log.debug(
            "risk_rejection",
            bar=rejection.bar,
            code=rejection.code,
            message=rejection.message,
            correlation_id=_corr(rejection.bar),
        )
        self.hook.tradeloom_risk_rejection(run=self.run, rejection=rejection)

    def halted(self, halt: Halt) -> None:
        """Record a halt."""
        self.halt = halt
        self._journal("halt", _fields(halt), halt.bar, halt.timestamp)
        _log.warning(
            "halt",
            bar=halt.bar,
            code=halt.code,
            message=halt.message,
            correlation_id=_corr(halt.bar),
        )
        self.hook.tradeloom_halt(run=self.run, halt=halt)

    def order(self, order: Order) -> None:
        """Record an order before the venue receives it."""
        self.orders.append(order)
        self._journal("order", _fields(order), order.bar, order.timestamp)
        self.hook.tradeloom_order(run=self.run, order=order)

    def fill(self, fill: Fill, decision_bar: int) -> None:
        """Record a fill; it carries the correlation id of the decision behind its order."""
        self.fills.append(fill)
        self._journal("fill", _fields(fill), fill.bar, fill.timestamp, decision_bar)
        self.hook.tradeloom_fill(run=self.run, fill=fill)

    def cancelled(self, cancellation: Cancellation, decision_bar: int) -> None:
        """Record that the venue stopped working an order, and how much was left."""
        self.cancellations.append(cancellation)
        self._journal(
            "order_cancelled",
            _fields(cancellation),
            cancellation.bar,
            cancellation.timestamp,
            decision_bar,
        )

    def health(self, change: HealthChange) -> None:
        """Record a change of health status."""
        self._journal("health", _fields(change), change.bar, change.timestamp)
        _log.info(
            "health_changed",
            monitor=change.monitor,
            status=change.status,
            previous=change.previous,
            value=round(change.value, 4),
            bar=change.bar,
        )
        self.hook.tradeloom_health_changed(run=self.run, change=change)

    def health_action(self, action: HealthAction) -> None:
        """Record a health rule that fired, before its action is taken."""
        self.health_actions.append(action)
        payload = {**_fields(action), "reason": action.reason}
        self._journal("health_action", payload, action.bar, action.timestamp)
        _log.warning(
            "health_action",
            action=action.action,
            reason=action.reason,
            bar=action.bar,
            correlation_id=_corr(action.bar),
        )
        self.hook.tradeloom_health_action(run=self.run, action=action)

    def _journal(
        self,
        kind: str,
        payload: dict[str, Any],
        bar: int,
        timestamp: Any,
        decision_bar: int | None = None,
    ) -> None:
        corr = _corr(bar if decision_bar is None else decision_bar)
        self.journal.append(kind, payload, bar=bar, timestamp=timestamp, correlation_id=corr)


def _corr(bar: int | None) -> str:
    return "" if bar is None else f"bar-{bar}"


def _fields(obj: object) -> dict[str, Any]:
    fields = dataclasses.fields(obj)  # type: ignore[arg-type]
    return {f.name: getattr(obj, f.name) for f in fields if f.metadata.get("journal", True)}
