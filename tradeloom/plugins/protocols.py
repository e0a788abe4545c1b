"""What each layer's component must implement.

A factory returns an object of the protocol of its layer. The engines call these
methods and nothing else, so a third-party component written in plain Python is
driven exactly like a built-in one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from tradeloom.domain import (
    Bar,
    Bars,
    Cancellation,
    Fill,
    Halt,
    HealthChange,
    ModelOutput,
    ModelTraining,
    Order,
    OrderIntent,
    PortfolioView,
    Rejection,
    Retraining,
    Signal,
)

__all__ = [
    "DataSource",
    "Feature",
    "Model",
    "Monitor",
    "MonitorInput",
    "MonitorMetrics",
    "Retrainable",
    "RiskContext",
    "RiskRule",
    "SignalRule",
    "Sizer",
    "Venue",
]


@runtime_checkable
class DataSource(Protocol):
    """Data layer: produce validated bars."""

    def load(self) -> Bars:
        """Return validated bars; raise `tradeloom.errors.DataError` for bad data."""
        ...


@runtime_checkable
class Feature(Protocol):
    """Feature layer: compute columns from bars (and earlier features), causally.

    A feature may also offer ``stepper(context)``, returning a per-bar computation
    (`tradeloom.plugins.features.steps.SteppedFeature`); live trading and the per-bar
    driver use it. A feature without one is stepped by recomputing ``compute`` over
    the history so far: slower, same values.
    """

    def columns(self) -> list[str]:
        """Return the names of the columns `compute` returns, known before any data."""
        ...

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return `columns()` indexed like ``bars.frame``; row t may use rows <= t only.

        Args:
            bars: The validated bars (``bars.frame`` is the OHLCV frame).
            features: The columns of the features defined before this one.
        """
        ...


@runtime_checkable
class Model(Protocol):
    """Model layer: the probability that the forward return over `horizon` bars is up."""

    horizon: int

    def fit_predict(self, bars: Bars, features: pd.DataFrame) -> ModelOutput:
        """Train walk-forward and predict; a prediction at bar s uses only labels known at s."""
        ...


@runtime_checkable
class SignalRule(Protocol):
    """Signal layer: turn a probability at a bar's close into a signal or nothing."""

    def on_bar(self, bar: Bar, probability: float) -> Signal | None:
        """Return a signal for this bar, or None. ``probability`` may be NaN."""
        ...


@dataclass(frozen=True)
class RiskContext:
    """What a risk rule sees at a bar's close."""

    bar: Bar
    portfolio: PortfolioView
    features: Mapping[str, float]
    probability: float


@runtime_checkable
class Sizer(Protocol):
    """Sizing (risk layer): how large a new position is, as a fraction of equity."""

    def size(self, signal: Signal, context: RiskContext) -> float | Rejection:
        """Return a fraction of equity in (0, 1], or a rejection with its reason."""
        ...


@runtime_checkable
class RiskRule(Protocol):
    """A risk rule: may block exposure-increasing intents and may halt trading."""

    def check(self, intent: OrderIntent, context: RiskContext) -> Rejection | None:
        """Return a rejection to block ``intent`` (only called when it increases exposure)."""
        ...

    def on_bar(self, context: RiskContext) -> Halt | None:
        """Return a halt to stop trading for the rest of the run, or None."""
        ...


@runtime_checkable
class Venue(Protocol):
    """Execution layer: accept orders, return fills.

    The engine keeps at most one market order working: a new decision cancels the
    working order first. A ``stop`` order (a triggered stop-loss or take-profit) is
    submitted during its bar and fills in the ``intrabar`` phase at its stop price.
    """

    allow_short: bool
    initial_cash: float

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price``, the venue's costs included."""
        ...

    def submit(self, order: Order) -> None:
        """Accept an order decided at ``order.bar``'s close (or during it, for a stop)."""
        ...

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Return the fills (and cancellations) at this bar's ``phase``.

        ``phase`` is ``open``, ``intrabar`` or ``close``, called in that order.
        """
        ...

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Stop working an order; return its cancellation, or None if it is not working."""
        ...

    def pending(self) -> list[Order]:
        """Return the orders accepted but not completely filled yet."""
        ...


@dataclass(frozen=True)
class MonitorInput:
    """What a monitor sees at a bar's close.

    Both drivers fill it alike (a monitor's figures are the same in a backtest and a
    replay), after the fills of the bar's open and stops and before any decision.

    Attributes:
        probability: This bar's prediction (NaN if none).
        resolved_probability: The prediction made ``horizon`` bars ago, whose outcome is
            now known (NaN if none).
        resolved_up: Whether the close rose over those ``horizon`` bars.
        features: This bar's features by column.
        orders: The orders sent since the previous bar's monitors ran, in journal order.
        fills: The fills since then, in journal order.
        cancellations: The orders the venue stopped working since then.
        training: The model's fold in effect at this bar (its ``reference`` is the
            distribution of its training rows); None before the first fold, in a
            skipped fold's segment, or for a model that journals none.
    """

    bar: Bar
    probability: float
    resolved_probability: float
    resolved_up: bool
    features: Mapping[str, float] = field(default_factory=dict)
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    cancellations: tuple[Cancellation, ...] = ()
    training: ModelTraining | None = None


@runtime_checkable
class Monitor(Protocol):
    """Monitoring layer: watch predictions, outcomes and fills, report health.

    A monitor whose figures health rules may act on also implements `MonitorMetrics`.
    """

    name: str

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Update with one bar; return a change of health status, or None."""
        ...

    def summary(self) -> Mapping[str, Any]:
        """Return figures for ``metrics.json`` (JSON-safe)."""
        ...


@runtime_checkable
class MonitorMetrics(Protocol):
    """A monitor's figures, by name, for the strategy's ``health:`` rules.

    Separate from `Monitor` so that a monitor written before health rules still is
    one; a rule naming a monitor without metrics is refused when the file is validated.
    """

    metric_names: tuple[str, ...]
    """Every name `metrics` returns, known when the monitor is built (before any data),
    so that a rule naming a metric is checked before the run starts."""

    def metrics(self) -> Mapping[str, float]:
        """Return the current value of each metric (NaN: not enough data yet).

        Called after `Monitor.on_bar` at each bar that a rule reads the monitor.
        """
        ...


@runtime_checkable
class Retrainable(Protocol):
    """A model that can train a new fold mid-run, when a health rule says ``retrain``."""

    def retrain(self, bar: int, reason: str) -> Retraining | None:
        """Train at ``bar``'s close on rows whose labels are known then; predict from bar + 1.

        Called after `Model.fit_predict`. The new fold predicts ``bar + 1`` up to the
        bar before the next scheduled fold (or the last bar); scheduled folds stay.

        Args:
            bar: The bar at whose close the rule fired.
            reason: Why, for the journal (``ModelTraining.reason``).

        Returns:
            The fold and its probabilities; None when there is nothing to retrain (no
            bar before the next scheduled fold, or too few labelled rows yet).
        """
        ...
