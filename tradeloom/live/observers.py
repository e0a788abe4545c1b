"""Attach a paper or live run's built-in observers: its metrics and its alerts.

`attach_observers` is called after the runner is made and before it starts (the
recorder learns then which hooks are listened to): it serves ``live.metrics`` and
registers `LiveMetrics` as an observer plugin, registers the ``alerts`` observer of
``live.alerts`` and starts its sender, and tells them of every ccxt error. Each is
undone when ``stack`` closes: the plugin unregistered, the server and sender stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Protocol

import pluggy
import structlog

from tradeloom.domain import RunInfo
from tradeloom.live.context import MeteredRun
from tradeloom.plugins.data.ccxt_client import watch_errors
from tradeloom.plugins.monitoring.alerts import Alerts
from tradeloom.redaction import redact_text

__all__ = ["ObservedRun", "attach_observers"]


class ObservedRun(MeteredRun, Protocol):
    """What the observers set up on a run: its echo, metrics port, stages and listeners."""

    echo: Callable[[str], None] | None
    metrics_port: int | None
    stages: Callable[[str, float], None] | None
    tick_listeners: list[Callable[[MeteredRun, int], None]]


_log = structlog.get_logger("tradeloom.live")


def attach_observers(runner: ObservedRun, stack: ExitStack) -> None:
    """Serve the run's metrics and start its alerts, as ``live:`` asks; undo on exit.

    Raises:
        UserError: The metrics port is taken or cannot be bound (before any bar).
    """
    live = runner.config.live
    manager = runner.plugins.manager
    run = RunInfo(
        run_id=runner.run_dir.name,
        strategy=runner.config.name,
        mode=runner.mode,
        run_dir=str(runner.run_dir),
    )
    metrics = None
    if live.metrics is not None:
        from tradeloom.live.metrics import LiveMetrics, serve

        metrics = LiveMetrics(run)
        where = f"{runner.config.locate('live.metrics.port')} live.metrics.port"
        port = stack.enter_context(serve(metrics, live.metrics.host, live.metrics.port, where))
        url = f"http://{live.metrics.host}:{port}/metrics"
        _log.info("metrics_serving", url=url)
        if runner.echo is not None:
            runner.echo(f"metrics: {url}")
        runner.metrics_port = port
        _register(manager, metrics, "tradeloom.metrics", stack)
        metrics.follow(runner)
        runner.stages = metrics.observe_stage
        runner.tick_listeners.append(metrics.after_tick)
    if live.alerts is not None:
        alerts = Alerts(
            live.alerts,
            on_sent=metrics.alert_sent if metrics else _ignore,
            on_failed=metrics.alert_failed if metrics else _ignore,
            on_dropped=metrics.alert_dropped if metrics else _ignore,
        )
        if metrics is not None:
            metrics.alert_targets(alerts.names)
        alerts.start()
        stack.callback(alerts.stop)
        _register(manager, alerts, "alerts", stack)

    def exchange_error(exchange: str, error: BaseException) -> None:
        hook = runner.plugins.hook
        message = redact_text(" ".join(str(error).split()))[:300]
        hook.tradeloom_exchange_error(
            run=run, exchange=exchange, error=type(error).__name__, message=message
        )

    stack.enter_context(watch_errors(exchange_error))


def _register(manager: pluggy.PluginManager, plugin: object, name: str, stack: ExitStack) -> None:
    manager.register(plugin, name=name)
    stack.callback(manager.unregister, plugin)


def _ignore(_: str) -> None:
    return None
