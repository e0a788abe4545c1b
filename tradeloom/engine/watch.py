"""The monitoring stage of a bar, the same in every mode: monitors, then health rules.

Over a universe each symbol has its own `Watch`: its own monitors (built once from the
strategy's, copies of them before any bar) and its own health rules' states, shown
that symbol's bar, prediction and outcome, features, and the orders, fills and
cancellations of that symbol alone (`SplitLog`). Their health events carry the
symbol; their figures are labelled ``<monitor>[<symbol>]``
(`tradeloom.reporting.monitor_labels`). A
strategy of one market is the universe of one: one `Watch`, nothing stamped or
labelled, as it always was.

The core stops at the same point of every bar (after the fills of its open and its
stops, before any decision) for `Watch.on_bar`. What a monitor sees comes from the
run's event log (an `EventLog`: the recorder, or a backtest's rows read back): the
orders, fills and cancellations since the previous call, and the model's fold in
effect (the latest training that covers the bar). Runs that agree up to the call
give monitors the same input, hence the same health changes and actions, which the
caller journals at this point of the bar.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

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
from tradeloom.reporting.monitor_labels import monitor_label
from tradeloom.runtime.lazy import numpy as np
from tradeloom.schemas.health import HealthRule

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["EventLog", "FeatureRow", "SplitLog", "Watch", "symbol_watches"]


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


class _SymbolLog:
    """One symbol's orders, fills and cancellations, and every training (`SplitLog`)."""

    def __init__(self, split: SplitLog) -> None:
        self._split = split
        self._orders: list[Order] = []
        self._fills: list[Fill] = []
        self._cancellations: list[Cancellation] = []

    @property
    def orders(self) -> Sequence[Order]:
        self._split.sync()
        return self._orders

    @property
    def fills(self) -> Sequence[Fill]:
        self._split.sync()
        return self._fills

    @property
    def cancellations(self) -> Sequence[Cancellation]:
        self._split.sync()
        return self._cancellations

    @property
    def trainings(self) -> Sequence[ModelTraining]:
        return self._split.log.trainings


class SplitLog:
    """A run's event log split by symbol: what each symbol's monitors see.

    Args:
        log: The run's events (every symbol's).
        symbols: How many symbols.
        row_of: The symbol index of an order, by client order id.

    The trainings are every symbol's: a pooled model's folds are each symbol's.
    """

    def __init__(self, log: EventLog, symbols: int, row_of: Callable[[str], int]) -> None:
        self.log = log
        self._row_of = row_of
        self.logs = tuple(_SymbolLog(self) for _ in range(symbols))
        self._orders = self._fills = self._cancellations = 0

    def sync(self) -> None:
        """Hand the events the run made since the last call to their symbols."""
        log, logs, row_of = self.log, self.logs, self._row_of
        orders, fills, cancels = log.orders, log.fills, log.cancellations
        for order in orders[self._orders :]:
            logs[row_of(order.id)]._orders.append(order)
        for fill in fills[self._fills :]:
            logs[row_of(fill.order_id)]._fills.append(fill)
        for cancel in cancels[self._cancellations :]:
            logs[row_of(cancel.order_id)]._cancellations.append(cancel)
        self._orders, self._fills, self._cancellations = len(orders), len(fills), len(cancels)


def symbol_watches(
    monitors: Sequence[Monitor],
    rules: Sequence[HealthRule],
    log: EventLog,
    symbols: Sequence[str],
    row_of: Callable[[str], int],
    on_metrics: Callable[[int, str, Mapping[str, float]], None] | None = None,
) -> tuple[Watch, ...]:
    """Return one `Watch` per symbol of ``symbols``, in order.

    The first symbol's monitors are ``monitors`` themselves, the others' copies of them
    (built from the same parameters, before any bar). One symbol: the one `Watch` of a
    strategy of one market, its events neither split nor stamped.

    Args:
        monitors: The built monitors, in file order (no bar seen yet).
        rules: The strategy's health rules.
        log: The run's events so far, every symbol's.
        symbols: The symbols traded.
        row_of: The symbol index of an order, by client order id.
        on_metrics: Told ``(bar, label, metrics)`` (see `Watch`).
    """
    if len(symbols) == 1:
        return (Watch(monitors, rules, log, on_metrics),)
    split = SplitLog(log, len(symbols), row_of)
    return tuple(
        Watch(
            monitors if s == 0 else copy.deepcopy(tuple(monitors)),
            rules,
            split.logs[s],
            on_metrics,
            symbol=symbol,
        )
        for s, symbol in enumerate(symbols)
    )


class Watch:
    """Run the monitors and the health rules at a bar's close.

    Args:
        monitors: The built monitors, in file order.
        rules: The strategy's health rules (checked against the monitors).
        log: The run's events so far: what monitors see comes from it.
        on_metrics: Told ``(bar, label, metrics)`` after each monitor with metrics saw
            a bar (the report charts them); the label is
            `tradeloom.reporting.monitor_labels.monitor_label`'s.
        symbol: The market watched, stamped on the health events and in the labels
            ('': a strategy of one market, nothing stamped).
    """

    def __init__(
        self,
        monitors: Sequence[Monitor],
        rules: Sequence[HealthRule],
        log: EventLog,
        on_metrics: Callable[[int, str, Mapping[str, float]], None] | None = None,
        *,
        symbol: str = "",
    ) -> None:
        self.symbol = symbol
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
        symbol = self.symbol
        for monitor in self.monitors:
            change = monitor.on_bar(data)
            if change is not None:
                changes.append(dataclasses.replace(change, symbol=symbol) if symbol else change)
            measured = self._measured.get(id(monitor))
            if measured is not None and self._on_metrics is not None:
                self._on_metrics(bar.index, monitor_label(monitor.name, symbol), measured.metrics())
        if not self.rules:
            return changes, []
        return changes, self.rules.check(bar, halted=halted, symbol=symbol)

    def labelled(self) -> dict[str, Monitor]:
        """Return the monitors by their labels (``rolling_auc[ETH/USDT]``), in file order."""
        return {monitor_label(m.name, self.symbol): m for m in self.monitors}

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
