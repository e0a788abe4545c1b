"""What each layer's component must implement.

A factory returns an object of the protocol of its layer. The engines call these
methods and nothing else, so a third-party component written in plain Python is
driven exactly like a built-in one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from tradeloom.domain import (
    Bar,
    Bars,
    Cancellation,
    Fill,
    Halt,
    HealthChange,
    ModelOutput,
    Order,
    OrderIntent,
    PortfolioView,
    Rejection,
    Signal,
)

__all__ = [
    "DataSource",
    "Feature",
    "Model",
    "Monitor",
    "MonitorInput",
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

    Attributes:
        probability: This bar's prediction (NaN if none).
        resolved_probability: The prediction made ``horizon`` bars ago, whose outcome is
            now known (NaN if none).
        resolved_up: Whether the close rose over those ``horizon`` bars.
    """

    bar: Bar
    probability: float
    resolved_probability: float
    resolved_up: bool


@runtime_checkable
class Monitor(Protocol):
    """Monitoring layer: watch predictions and outcomes, report health."""

    name: str

    def on_bar(self, data: MonitorInput) -> HealthChange | None:
        """Update with one bar; return a change of health status, or None."""
        ...

    def summary(self) -> dict[str, float | str]:
        """Return figures for ``metrics.json`` (JSON-safe)."""
        ...
