"""The monitoring stage of a bar, the same in every mode: monitors, then health rules.

The core stops at the same point of every bar (after the fills of its open and its
stops, before any decision) for `Watch.on_bar`. What a monitor sees comes from the
run's event log (an `EventLog`: the recorder, or a backtest's rows read back): the
orders, fills and cancellations since the previous call, and the model's fold in
effect (the latest training that covers the bar). Runs that agree up to the call
give monitors the same input, hence the same health changes and actions, which the
caller journals at this point of the bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tradeloom.domain import (
    Bar,
    Cancellation,
    Fill,
    HealthAction,
    HealthChange,
    ModelTraining,
    Order,
)
from tradeloom.engine.health import HealthRules
from tradeloom.plugins.protocols import Monitor, MonitorInput, MonitorMetrics
from tradeloom.schemas.health import HealthRule

__all__ = ["EventLog", "FeatureRow", "Watch"]


class FeatureRow(Mapping[str, float]):
    """One bar's features as a read-only mapping, without copying the row."""

    __slots__ = ("_columns", "_values")

    def __init__(self, columns: Mapping[str, int], values: npt.NDArray[np.float64]) -> None:
        self._columns = columns
        self._values = values

    def __getitem__(self, key: str) -> float:
        return float(self._values[self._columns[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


class EventLog(Protocol):
    """The events a run has made so far, as the monitors read them."""

    @property
    def orders(self) -> Sequence[Order]:
        """The orders, in the run's order."""
        ...

    @property
    def fills(self) -> Sequence[Fill]:
        """The fills."""
        ...

    @property
    def cancellations(self) -> Sequence[Cancellation]:
        """The orders the venue stopped working."""
        ...

    @property
    def trainings(self) -> Sequence[ModelTraining]:
        """The model's folds (and skipped ones)."""
        ...


class Watch:
    """Run the monitors and the health rules at a bar's close.

    Args:
        monitors: The built monitors, in file order.
        rules: The strategy's health rules (checked against the monitors).
        log: The run's events so far: what monitors see comes from it.
        on_metrics: Told ``(bar, monitor name, metrics)`` after each monitor with
            metrics saw a bar (the report charts them).
    """

    def __init__(
        self,
        monitors: Sequence[Monitor],
        rules: Sequence[HealthRule],
        log: EventLog,
        on_metrics: Callable[[int, str, Mapping[str, float]], None] | None = None,
    ) -> None:
        self.monitors = tuple(monitors)
        self.rules = HealthRules(rules, monitors)
        self.log = log
        self._on_metrics = on_metrics
        # their figures at each bar are kept for the report's charts
        self._measured: dict[int, MonitorMetrics] = {
            id(m): m for m in self.monitors if isinstance(m, MonitorMetrics)
        }
        self._orders = self._fills = self._cancellations = self._trainings = 0
        self._training: ModelTraining | None = None

    def follow(self, previous: Watch) -> None:
        """Take over where ``previous`` left off: show the monitors only newer events."""
        self._orders, self._fills = previous._orders, previous._fills
        self._cancellations, self._trainings = previous._cancellations, previous._trainings
        self._training = previous._training

    def on_bar(
        self,
        bar: Bar,
        probability: float,
        resolved_probability: float,
        resolved_up: bool,
        features: Mapping[str, float],
        *,
        halted: bool = False,
    ) -> tuple[list[HealthChange], list[HealthAction]]:
        """Show the bar to every monitor; return the health changes and the rules that fire.

        The caller journals both, in that order, and takes the actions: a ``warn`` needs
        nothing more, a ``retrain`` or a ``halt`` changes what the driver does next. While
        trading is ``halted``, a rule whose action is ``halt`` does not fire: there is
        nothing left to halt.
        """
        log = self.log
        orders, fills, cancels = log.orders, log.fills, log.cancellations
        data = MonitorInput(
            bar,
            probability,
            resolved_probability,
            resolved_up,
            features,
            tuple(orders[self._orders :]),
            tuple(fills[self._fills :]),
            tuple(cancels[self._cancellations :]),
            self._in_effect(bar.index),
        )
        self._orders, self._fills, self._cancellations = len(orders), len(fills), len(cancels)
        changes: list[HealthChange] = []
        for monitor in self.monitors:
            change = monitor.on_bar(data)
            if change is not None:
                changes.append(change)
            measured = self._measured.get(id(monitor))
            if measured is not None and self._on_metrics is not None:
                self._on_metrics(bar.index, monitor.name, measured.metrics())
        if not self.rules:
            return changes, []
        return changes, self.rules.check(bar, halted=halted)

    def _in_effect(self, bar: int) -> ModelTraining | None:
        trainings = self.log.trainings
        for training in trainings[self._trainings :]:
            if not training.skipped:  # a skipped retrain leaves the fold before it in effect
                self._training = training
        self._trainings = len(trainings)
        current = self._training
        if current is None or not current.predict_start <= bar <= current.predict_end:
            return None
        return current
