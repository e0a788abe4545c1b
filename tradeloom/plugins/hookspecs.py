"""The hooks of tradeloom: the one place where every hook is specified.

Every hook is called with keyword arguments only. An implementation may accept
fewer arguments than the spec names (pluggy passes only those it asks for), so
specs may gain arguments later; they are never renamed or removed.

Two kinds of hook:

* ``tradeloom_components`` registers components; every plugin's answer is collected.
* The event hooks (``tradeloom_run_started`` ... ``tradeloom_health_action``) are
  broadcast to observers: alerts, metrics exporters, dashboards. Their return values
  are ignored and they never change a trading decision. An exception in an observer
  fails the run (an observer that breaks silently is worse).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    # annotations only: a plugin's module imports ``hookimpl`` from here, and `validate`
    # imports every plugin's module for its params models, so the events' pandas
    # fields stay out of the way until a run makes one
    from tradeloom.domain import (
        Fill,
        Halt,
        HealthAction,
        HealthChange,
        ModelTraining,
        Order,
        Refusal,
        Rejection,
        RunInfo,
        Signal,
    )
    from tradeloom.journal import Event
    from tradeloom.plugins.component import Component

__all__ = ["PROJECT", "catalog", "hookimpl", "hookspec"]

PROJECT = "tradeloom"

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks the hook specifications below (tradeloom's own use)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's hook implementation: ``@hookimpl def tradeloom_components(): ...``."""


def catalog(*components: Component) -> Callable[[], list[Component]]:
    """Return a ``tradeloom_components`` hook implementation that answers ``components``
    (a new list at each call): a plugin whose components are a fixed catalog declares
    ``tradeloom_components = catalog(...)`` in its module, as the built-in plugins do."""

    @hookimpl
    def tradeloom_components() -> list[Component]:
        return list(components)

    return tradeloom_components


@hookspec
def tradeloom_components() -> list[Component]:  # type: ignore[empty-body]
    """Return the components this plugin provides.

    Called once when the plugin manager is built, for every plugin. All answers are
    collected; two components with the same layer and kind are refused, naming both
    plugins.

    Returns:
        A list of `tradeloom.plugins.component.Component`.
    """


@hookspec
def tradeloom_run_started(run: RunInfo) -> None:
    """Observe the start of a run, after the strategy is validated and built.

    Args:
        run: The run's id, strategy name, mode and run directory (``''`` for a backtest
            held in memory from Python, which has none until it is saved).
    """


@hookspec
def tradeloom_run_finished(run: RunInfo, metrics: Mapping[str, Any]) -> None:
    """Observe the end of a run, after its metrics are written.

    Args:
        run: The run, as given to ``tradeloom_run_started``.
        metrics: The content of ``metrics.json``.
    """


@hookspec
def tradeloom_signal(run: RunInfo, signal: Signal) -> None:
    """Observe a signal of the signal layer, before the risk layer sees it.

    Args:
        run: The run.
        signal: Bar, direction, confidence and the probability behind it.
    """


@hookspec
def tradeloom_order(run: RunInfo, order: Order) -> None:
    """Observe an order after it is journaled and before the venue receives it.

    Args:
        run: The run.
        order: The order, with its deterministic client order id.
    """


@hookspec
def tradeloom_fill(run: RunInfo, fill: Fill) -> None:
    """Observe a fill after it is journaled and applied to the portfolio.

    Args:
        run: The run.
        fill: Price (slippage included), quantity and fee.
    """


@hookspec
def tradeloom_risk_rejection(run: RunInfo, rejection: Rejection) -> None:
    """Observe an intent the risk layer refused, after it is journaled.

    Args:
        run: The run.
        rejection: The reason code, message and values.
    """


@hookspec
def tradeloom_refusal(run: RunInfo, refusal: Refusal) -> None:
    """Observe an intent or order that did not do what it was for, after it is journaled.

    Called for every rejection (after ``tradeloom_risk_rejection``) and every
    cancellation that is not the engine's own (a venue's cash or minimum cut the order,
    no venue of a router could take it, a restart found it never sent, a venue refused
    or expired it), in every mode; a backtest tells them after its compiled run, in the
    rows' order. These are what ``metrics.json``'s ``refusals`` counts.
    ``refusal.exit`` says it left open a position it was to close (``refusal.protective``:
    a stop's, a halt's exit, the kill switch's flatten); a paper or live run logs each
    such one as a warning and alerts on it (``live.alerts``: ``exit_refused``,
    ``protective_exit_refused``).

    Args:
        run: The run.
        refusal: Its stage (``rejected``, ``cut``, ``cancelled``), code, the purpose of
            what was refused (the order reason: ``ENTRY``, ``EXIT_STOP_LOSS``...), the
            order and the quantity left (a cancellation's), the message (a rejection's).
    """


@hookspec
def tradeloom_halt(run: RunInfo, halt: Halt) -> None:
    """Observe trading being halted (for example by the drawdown limit).

    Args:
        run: The run.
        halt: The reason code, message and values.
    """


@hookspec
def tradeloom_model_trained(run: RunInfo, training: ModelTraining) -> None:
    """Observe one walk-forward fold of the model being trained (or skipped).

    Args:
        run: The run.
        training: The fold's training rows and the bars it predicts.
    """


@hookspec
def tradeloom_health_changed(run: RunInfo, change: HealthChange) -> None:
    """Observe the monitoring layer's health status changing.

    Args:
        run: The run.
        change: The monitor, the new and previous status, and the metric behind it.
    """


@hookspec
def tradeloom_health_action(run: RunInfo, action: HealthAction) -> None:
    """Observe a health rule firing, after it is journaled and before its action is taken.

    Args:
        run: The run.
        action: The rule (its index under ``health:``), the metric, its value and
            threshold, and the action: ``warn``, ``retrain`` or ``halt``.
    """


@hookspec
def tradeloom_live_event(run: RunInfo, event: Event) -> None:
    """Observe an event a paper or live run journaled, after it is journaled.

    Called for every event the run's recorder journals while it trades (not for a
    restart's replay, whose events were told when they happened): live bars, trading
    state changes (a halt, the kill switch, a resume), liquidations, stale-data alarms,
    restarts, control requests, cancellations, unreachable venues... The events other
    hooks report (signals, orders, fills, rejections, halts, health) come here too, so
    an observer of this hook alone sees the run's whole story. Backtests do not call it.

    Args:
        run: The run.
        event: The journal event (`tradeloom.journal.events`); its ``KIND`` names it.
    """


@hookspec
def tradeloom_exchange_error(run: RunInfo, exchange: str, error: str, message: str) -> None:
    """Observe an error an exchange's ccxt client raised during a paper or live run.

    Called for every failed request, retried or not (a timeout, a 429, a refused order),
    from the thread that made it, before the caller handles it.

    Args:
        run: The run.
        exchange: The ccxt exchange id (``binance``).
        error: The ccxt error class (``RequestTimeout``, ``InsufficientFunds``...).
        message: The error's message, on one line, secrets redacted.
    """
