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
    Fill,
    Halt,
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
        self.health_changes: list[HealthChange] = []
        self.trainings: list[ModelTraining] = []

    def note(
        self, kind: str, payload: dict[str, Any], *, bar: int | None = None, timestamp: Any = None
    ) -> None:
        """Journal an event no observer hook exists for (data loaded, decisions...)."""
        self.journal.append(kind, payload, bar=bar, timestamp=timestamp, correlation_id=_corr(bar))

    def training(self, training: ModelTraining, timestamp: Any) -> None:
        """Record a walk-forward fold."""
        self.trainings.append(training)
        self.journal.append(
            "model_trained",
            training,
            bar=training.predict_start,
            timestamp=timestamp,
            correlation_id=_corr(training.predict_start),
        )
        _log.debug("model_trained", **dataclasses.asdict(training))
        self.hook.tradeloom_model_trained(run=self.run, training=training)

    def signal(self, signal: Signal) -> None:
        """Record a signal."""
        self.signals += 1
        self.journal.append(
            "signal",
            _fields(signal),
            bar=signal.bar,
            timestamp=signal.timestamp,
            correlation_id=_corr(signal.bar),
        )
        self.hook.tradeloom_signal(run=self.run, signal=signal)

    def rejection(self, rejection: Rejection) -> None:
        """Record a refused intent with its reason code and values."""
        self.rejections[rejection.code] = self.rejections.get(rejection.code, 0) + 1
        self.journal.append(
            "risk_decision",
            {"outcome": "rejected", **_fields(rejection)},
            bar=rejection.bar,
            timestamp=rejection.timestamp,
            correlation_id=_corr(rejection.bar),
        )
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
        self.journal.append(
            "halt",
            _fields(halt),
            bar=halt.bar,
            timestamp=halt.timestamp,
            correlation_id=_corr(halt.bar),
        )
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
        self.journal.append(
            "order",
            _fields(order),
            bar=order.bar,
            timestamp=order.timestamp,
            correlation_id=_corr(order.bar),
        )
        self.hook.tradeloom_order(run=self.run, order=order)

    def fill(self, fill: Fill, decision_bar: int) -> None:
        """Record a fill; it carries the correlation id of the decision behind its order."""
        self.fills.append(fill)
        self.journal.append(
            "fill",
            _fields(fill),
            bar=fill.bar,
            timestamp=fill.timestamp,
            correlation_id=_corr(decision_bar),
        )
        self.hook.tradeloom_fill(run=self.run, fill=fill)

    def health(self, change: HealthChange) -> None:
        """Record a change of health status."""
        self.health_changes.append(change)
        self.journal.append(
            "health",
            _fields(change),
            bar=change.bar,
            timestamp=change.timestamp,
            correlation_id=_corr(change.bar),
        )
        _log.info(
            "health_changed",
            monitor=change.monitor,
            status=change.status,
            previous=change.previous,
            value=round(change.value, 4),
            bar=change.bar,
        )
        self.hook.tradeloom_health_changed(run=self.run, change=change)


def _corr(bar: int | None) -> str:
    return "" if bar is None else f"bar-{bar}"


def _fields(obj: object) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
