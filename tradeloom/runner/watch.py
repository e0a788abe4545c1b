"""The monitoring stage of a bar, the same in both drivers: monitors, then health rules.

Both drivers call `Watch.on_bar` at the same point of a bar (after the fills of its
open and its stops, before any decision) and journal through the same `Recorder`,
so what a monitor sees is taken from the recorder: the orders, fills and
cancellations journaled since the previous call, and the model's fold in effect
(the latest journaled training that covers the bar). Journals that agree up to the
call give monitors the same input, hence the same health rows and actions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from tradeloom.domain import Bar, HealthAction, ModelTraining
from tradeloom.plugins.protocols import Monitor, MonitorInput
from tradeloom.runner.events import Recorder
from tradeloom.runner.health import HealthRules
from tradeloom.schemas.health import HealthRule

__all__ = ["FeatureRow", "Watch"]


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


class Watch:
    """Run the monitors and the health rules at a bar's close, and journal what they say.

    Args:
        monitors: The built monitors, in file order.
        rules: The strategy's health rules (checked against the monitors).
        recorder: The run's recorder: the events monitors see come from it, and the
            health changes and actions go to it.
    """

    def __init__(
        self, monitors: Sequence[Monitor], rules: Sequence[HealthRule], recorder: Recorder
    ) -> None:
        self.monitors = tuple(monitors)
        self.rules = HealthRules(rules, monitors)
        self.rec = recorder
        self._orders = self._fills = self._cancellations = self._trainings = 0
        self._training: ModelTraining | None = None

    def on_bar(
        self,
        bar: Bar,
        probability: float,
        resolved_probability: float,
        resolved_up: bool,
        features: Mapping[str, float],
    ) -> list[HealthAction]:
        """Show the bar to every monitor, then return the rules that fire (journaled).

        The caller takes the actions: a ``warn`` needs nothing more, a ``retrain`` or a
        ``halt`` changes what the driver does next.
        """
        rec = self.rec
        orders, fills, cancels = rec.orders, rec.fills, rec.cancellations
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
        for monitor in self.monitors:
            change = monitor.on_bar(data)
            if change is not None:
                rec.health(change)
        if not self.rules:
            return []
        actions = self.rules.check(bar)
        for action in actions:
            rec.health_action(action)
        return actions

    def _in_effect(self, bar: int) -> ModelTraining | None:
        trainings = self.rec.trainings
        for training in trainings[self._trainings :]:
            if not training.skipped:  # a skipped retrain leaves the fold before it in effect
                self._training = training
        self._trainings = len(trainings)
        current = self._training
        if current is None or not current.predict_start <= bar <= current.predict_end:
            return None
        return current
