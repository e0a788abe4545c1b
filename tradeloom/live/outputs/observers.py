"""Attach a paper or live run's built-in observers: its metrics and its alerts.

`attach_observers` is called after the runner is made and before it starts (the
recorder learns then which hooks are listened to; `LiveRunner.attach_observers` calls
it): it registers `RefusedExits`, which logs each exit refused as a warning, serves
``live.metrics``, registers `LiveMetrics` as an observer plugin and as an `Observer` of
the run's stages and ticks, registers the ``alerts`` observer of ``live.alerts`` and
starts its sender, and tells them of every ccxt error. Each is undone when ``stack``
closes: the plugin unregistered, the server and sender stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import pluggy

from tradeloom.domain import Refusal
from tradeloom.live.outputs.alerts import Alerts
from tradeloom.live.tick.services import JournalLink, Markets, Observer, RunFiles
from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.runtime.exchange_errors import watch_errors
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.redaction import redact_text

__all__ = ["RefusedExits", "attach_observers"]


_log = logger("tradeloom.live")


class RefusedExits:
    """Log each exit a paper or live run refused, as it happens: one warning line.

    An exit's order no venue could take, a restart found never sent, a venue refused,
    or a pre-trade check stopped leaves open the position it was to close
    (`tradeloom.domain.Refusal.exit`); a restart's replay tells nothing again.
    """

    @hookimpl
    def tradeloom_refusal(self, refusal: Refusal) -> None:
        """Log ``refusal`` when it is an exit's (``exit_refused``, a warning)."""
        if refusal.exit:
            _log.warning(
                "exit_refused",
                purpose=refusal.purpose,
                stage=refusal.stage,
                code=refusal.code,
                symbol=refusal.symbol,
                client_order_id=refusal.order_id,
                remaining=refusal.remaining,
                protective=refusal.protective,
                bar=refusal.bar,
                correlation_id=f"bar-{refusal.bar}",
                message=refusal.message
                or "the position it was to close stays open until a later exit",
            )


def attach_observers(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    observe: Callable[[Observer], None],
    stack: ExitStack,
    *,
    echo: Callable[[str], None] | None = None,
) -> int | None:
    """Serve the run's metrics and start its alerts, as ``live:`` asks; undo on exit.

    Args:
        files: The run's file, mode and directory (and the clock the metrics read).
        link: Its recorder (the metrics read its monitors).
        markets: Its plugins and session.
        observe: Registers an `Observer` of the run's stages and ticks.
        stack: Undoes each on exit.
        echo: Told the metrics' address (None: not told).

    Returns:
        The port the metrics are served on (None: no ``live.metrics``).

    Raises:
        UserError: The metrics port is taken or cannot be bound (before any bar).
    """
    live = files.config.live
    manager = markets.plugins.manager
    run = files.run_info()
    metrics = None
    port: int | None = None
    _register(manager, RefusedExits(), "tradeloom.refused_exits", stack)
    if live.metrics is not None:
        from tradeloom.live.outputs.metrics import LiveMetrics, serve

        metrics = LiveMetrics(run)
        where = f"{files.config.locate('live.metrics.port')} live.metrics.port"
        port = stack.enter_context(serve(metrics, live.metrics.host, live.metrics.port, where))
        url = f"http://{live.metrics.host}:{port}/metrics"
        _log.info("metrics_serving", url=url)
        if echo is not None:
            echo(f"metrics: {url}")
        _register(manager, metrics, "tradeloom.metrics", stack)
        metrics.follow(files, link, markets)
        observe(metrics)
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
        hook = markets.plugins.hook
        message = redact_text(" ".join(str(error).split()))[:300]
        hook.tradeloom_exchange_error(
            run=run, exchange=exchange, error=type(error).__name__, message=message
        )

    stack.enter_context(watch_errors(exchange_error))
    if live.events:
        from tradeloom.live.outputs.events import start_publishers

        start_publishers(files, markets.plugins, stack)
    return port


def _register(manager: pluggy.PluginManager, plugin: object, name: str, stack: ExitStack) -> None:
    manager.register(plugin, name=name)
    stack.callback(manager.unregister, plugin)


def _ignore(_: str) -> None:
    return None
