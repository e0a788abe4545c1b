"""The ``alerts`` observer: webhook notifications of a paper or live run's events.

Configured under ``live.alerts`` (`AlertsParams`). The run registers one `Alerts`
with the plugin manager, as any observer plugin: it hears of halts, the kill switch
and resumes, other trading-state moves, health rules firing, liquidations, stale
data, restarts, an unreachable venue, repeated exchange errors, unexplained divergence
from the backtest (``parity``, `tradeloom.live.lifecycle.parity_monitor`), and an exit refused
(an exit's order no venue could take, a restart found never sent, a venue refused or
a pre-trade check stopped: ``exit_refused``; a stop's, a halt's exit or the kill
switch's flatten: ``protective_exit_refused``, critical), and posts each to every
target:

- ``webhook``: a JSON object (``event``, ``severity``, ``title``, ``text``, ``run``,
  ``strategy``, ``mode``, ``bar``, ``time``, ``values``) POSTed to ``url``;
- ``slack``: Slack's incoming-webhook body ``{"text": ...}`` POSTed to ``url``
  (Mattermost, Discord's ``/slack`` endpoint and others take it too);
- ``telegram``: the Bot API's ``sendMessage`` (``chat_id``, ``text``) POSTed to
  ``<api_url>/bot<token>/sendMessage``.

Alerts never block or slow trading: a hook only puts the alert on a bounded queue
(``queue_size``); one sender thread posts them with a timeout. An alert is dropped,
and counted, when the queue is full, when the same alert (event and key) came less
than ``dedup_seconds`` ago, or when more than ``max_per_minute`` were queued in the
last minute. A target that fails (refused, unreachable, slow) is logged and counted;
it never stops the run. URLs and tokens are secrets: only ``${ENV_VAR}`` references.
"""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradeloom.plugins.hookspecs import hookimpl
from tradeloom.runtime.lazy import logger
from tradeloom.schemas.alerts import ALERT_EVENTS, SEVERITY, AlertsParams, AlertTarget

if TYPE_CHECKING:
    from tradeloom.domain import Halt, HealthAction, Refusal, RunInfo
    from tradeloom.journal import Event
    from tradeloom.journal.events import (
        Liquidation,
        ParityChecked,
        Restarted,
        StaleData,
        TradingStateChanged,
        VenueUnreachable,
    )

__all__ = [
    "ALERT_EVENTS",
    "Alert",
    "AlertTarget",
    "Alerts",
    "AlertsParams",
    "slack_body",
    "telegram_body",
    "webhook_body",
]

_log = logger("tradeloom.alerts")


@dataclass(frozen=True)
class Alert:
    """One notification: what happened, to which run, and the figures behind it."""

    event: str
    key: str
    title: str
    text: str
    run: RunInfo
    bar: int = -1
    time: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """``critical``, ``warning`` or ``info``."""
        return SEVERITY.get(self.event, "warning")

    def line(self) -> str:
        """Return the alert as one line of text (Slack, Telegram)."""
        return (
            f"[{self.severity.upper()}] tradeloom {self.run.mode} {self.run.strategy} "
            f"({self.run.run_id}): {self.title}: {self.text}"
        )


def webhook_body(alert: Alert) -> dict[str, Any]:
    """Return the generic webhook's JSON object for ``alert``."""
    return {
        "event": alert.event,
        "severity": alert.severity,
        "title": alert.title,
        "text": alert.text,
        "run": alert.run.run_id,
        "strategy": alert.run.strategy,
        "mode": alert.run.mode,
        "bar": alert.bar,
        "time": alert.time,
        "values": dict(alert.values),
    }


def slack_body(alert: Alert) -> dict[str, Any]:
    """Return Slack's incoming-webhook body for ``alert``."""
    return {"text": alert.line()}


def telegram_body(alert: Alert, chat_id: str) -> dict[str, Any]:
    """Return the Bot API ``sendMessage`` body for ``alert``."""
    return {"chat_id": chat_id, "text": alert.line(), "disable_web_page_preview": True}


_TELEGRAM_API = "https://api.telegram.org"


class Alerts:
    """The alerts observer of one run: hooks queue, a sender thread posts.

    Args:
        params: The ``live.alerts`` keys.
        on_sent: Told a target's name for each alert it accepted.
        on_failed: Told a target's name for each alert it did not accept.
        on_dropped: Told why an alert was not sent (``queue_full``, ``duplicate``,
            ``rate_limited``).
        clock: Seconds, monotonic (deduplication, rate limit, the error window).
    """

    def __init__(
        self,
        params: AlertsParams,
        *,
        on_sent: Callable[[str], None] = lambda target: None,
        on_failed: Callable[[str], None] = lambda target: None,
        on_dropped: Callable[[str], None] = lambda reason: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.params = params
        self.events = frozenset(params.events)
        self.on_sent = on_sent
        self.on_failed = on_failed
        self.on_dropped = on_dropped
        self.clock = clock
        self.names = [
            t.name or (t.kind if i == 0 else f"{t.kind}-{i}") for i, t in enumerate(params.targets)
        ]
        self._queue: queue.Queue[Alert | None] = queue.Queue(params.queue_size)
        self._last_sent: dict[tuple[str, str], float] = {}
        self._recent: deque[float] = deque()
        self._errors: deque[float] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the sender thread."""
        self._thread = threading.Thread(
            target=self._send_loop, name="tradeloom-alerts", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued for up to ``timeout`` seconds, then stop the sender."""
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):  # else the daemon thread ends with the process
            self._queue.put(None, timeout=timeout)
        thread.join(timeout)
        self._thread = None

    # --- queueing (the trading thread) ------------------------------------------------

    def notify(self, alert: Alert) -> bool:
        """Queue ``alert`` unless filtered, a duplicate, over the rate, or the queue is full.

        Returns at once whatever the targets do. Returns whether it was queued.
        """
        if alert.event not in self.events:
            return False
        now = self.clock()
        with self._lock:
            identity = (alert.event, alert.key)
            last = self._last_sent.get(identity)
            if last is not None and now - last < self.params.dedup_seconds:
                self.on_dropped("duplicate")
                return False
            while self._recent and now - self._recent[0] >= 60.0:
                self._recent.popleft()
            if len(self._recent) >= self.params.max_per_minute:
                self.on_dropped("rate_limited")
                return False
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                self.on_dropped("queue_full")
                _log.warning("alert_dropped", reason="queue_full", alert=alert.event)
                return False
            self._last_sent[identity] = now
            self._recent.append(now)
        return True

    # --- hooks ------------------------------------------------------------------------

    @hookimpl
    def tradeloom_halt(self, run: RunInfo, halt: Halt) -> None:
        """Alert: trading halted."""
        self.notify(
            Alert(
                "halt",
                halt.code,
                f"trading halted ({halt.code})",
                halt.message,
                run,
                halt.bar,
                _iso(halt.timestamp),
                dict(halt.values),
            )
        )

    @hookimpl
    def tradeloom_health_action(self, run: RunInfo, action: HealthAction) -> None:
        """Alert: a health rule fired."""
        self.notify(
            Alert(
                "health_action",
                f"{action.rule}:{action.action}",
                f"health rule {action.rule} fired: {action.action}",
                f"{action.metric}={action.value:.4g} {action.condition} {action.threshold:.4g}",
                run,
                action.bar,
                _iso(action.timestamp),
                {"value": action.value, "threshold": action.threshold},
            )
        )

    @hookimpl
    def tradeloom_live_event(self, run: RunInfo, event: Event) -> None:
        """Alert on the kill switch, resumes, state moves, liquidations, stale data, restarts."""
        alert = _alert_of(run, event)
        if alert is not None:
            self.notify(alert)

    @hookimpl
    def tradeloom_refusal(self, run: RunInfo, refusal: Refusal) -> None:
        """Alert: an exit was refused, and the position it was to close stays open."""
        if not refusal.exit:
            return
        event = "protective_exit_refused" if refusal.protective else "exit_refused"
        what = f"{refusal.purpose} {refusal.stage} {refusal.code}"
        detail = refusal.message or (
            f"order {refusal.order_id}: {refusal.remaining:.8g} left unfilled"
            if refusal.order_id
            else ""
        )
        market = f" ({refusal.symbol})" if refusal.symbol else ""
        self.notify(
            Alert(
                event,
                f"{refusal.symbol}:{refusal.purpose}:{refusal.code}",
                f"exit refused{market}: {what}",
                f"{detail}; the position it was to close stays open".lstrip("; "),
                run,
                refusal.bar,
                _iso(refusal.timestamp),
                {"remaining": refusal.remaining} if refusal.order_id else {},
            )
        )

    @hookimpl
    def tradeloom_exchange_error(
        self, run: RunInfo, exchange: str, error: str, message: str
    ) -> None:
        """Alert when ``exchange_errors`` errors came within ``exchange_error_seconds``."""
        now = self.clock()
        window = self.params.exchange_error_seconds
        with self._lock:
            self._errors.append(now)
            while self._errors and now - self._errors[0] > window:
                self._errors.popleft()
            count = len(self._errors)
        if count < self.params.exchange_errors:
            return
        self.notify(
            Alert(
                "exchange_errors",
                exchange,
                f"{count} {exchange} errors in {window:g} s",
                f"last: {error}: {message}",
                run,
                values={"errors": count},
            )
        )

    # --- sending (the sender thread) --------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            for target, name in zip(self.params.targets, self.names, strict=True):
                try:
                    self._deliver(target, name, alert)
                except Exception as exc:  # the sender outlives any one target's failure
                    self.on_failed(name)
                    _log.error("alert_failed", target=name, alert=alert.event, error=_reason(exc))

    def _deliver(self, target: AlertTarget, name: str, alert: Alert) -> None:
        # imported here: urllib.request (with http.client, ssl and email) took 10 ms of
        # CPU of every command that imports the built-in plugins, alerts or none
        import http.client
        import urllib.error
        import urllib.request

        url, body = _request_of(target, alert)
        data = json.dumps(body, default=str).encode()
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.params.timeout_seconds) as reply:
                reply.read(65536)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            self.on_failed(name)
            # the URL is a secret: the log names the target, never the URL
            _log.warning("alert_failed", target=name, alert=alert.event, error=_reason(exc))
            return
        self.on_sent(name)


def _request_of(target: AlertTarget, alert: Alert) -> tuple[str, dict[str, Any]]:
    if target.kind == "telegram":
        assert target.token is not None and target.chat_id is not None
        base = _TELEGRAM_API if target.url is None else target.url.get_secret_value()
        url = f"{base.rstrip('/')}/bot{target.token.get_secret_value()}/sendMessage"
        return url, telegram_body(alert, target.chat_id)
    assert target.url is not None
    body = slack_body(alert) if target.kind == "slack" else webhook_body(alert)
    return target.url.get_secret_value(), body


def _reason(exc: BaseException) -> str:
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _iso(stamp: Any) -> str:
    try:
        return "" if stamp is None or stamp != stamp else stamp.isoformat()
    except (AttributeError, TypeError, ValueError):
        return ""


def _alert_of(run: RunInfo, event: Event) -> Alert | None:
    made = _alerts().get(event.KIND)
    return None if made is None else made(run, event, event.bar, _iso(event.timestamp))


_Made = Callable[["RunInfo", Any, int, str], "Alert | None"]


@functools.cache
def _alerts() -> dict[str, _Made]:
    """The alert of each kind declared read by the ``alert`` observer (None: not this
    row). Built on first use: validate imports this module for AlertsParams, and the
    journal's events are pandas-backed."""
    from tradeloom.journal.events import (
        Liquidation,
        ParityChecked,
        Restarted,
        StaleData,
        TradingStateChanged,
        VenueUnreachable,
        dispatch,
    )

    return dispatch(
        {
            TradingStateChanged: _trading_state,
            Liquidation: _liquidation,
            StaleData: _stale_data,
            Restarted: _restarted,
            VenueUnreachable: _venue_unreachable,
            ParityChecked: _parity,
        },
        "alert",
    )


def _trading_state(run: RunInfo, event: TradingStateChanged, bar: int, at: str) -> Alert | None:
    # the kill switch and a resume act between bars: their row's time is the clock's
    at = at or _iso(event.at)
    if event.code == "KILL_SWITCH":
        kind, title = "kill", "kill switch: trading HALTED"
    elif event.code == "RESUME":
        kind, title = "resume", f"resumed: trading {event.state}"
    elif event.state == "HALTED":
        return None  # the halt itself alerts (tradeloom_halt), with its values
    else:
        kind, title = "trading_state", f"trading {event.previous} -> {event.state}"
    return Alert(kind, f"{event.code}:{bar}", title, event.message, run, bar, at)


def _liquidation(run: RunInfo, event: Liquidation, bar: int, at: str) -> Alert:
    return Alert(
        "liquidation",
        str(bar),
        "position liquidated",
        f"{event.quantity:.8g} at {event.price:.8g}; equity {event.equity_before:.2f} "
        f"below maintenance {event.maintenance:.2f}",
        run,
        bar,
        at,
        {"quantity": event.quantity, "price": event.price},
    )


def _stale_data(run: RunInfo, event: StaleData, bar: int, at: str) -> Alert:
    return Alert("stale_data", event.symbol, "stale data", event.message, run, bar, at)


def _restarted(run: RunInfo, event: Restarted, bar: int, at: str) -> Alert:
    return Alert(
        "restart",
        str(event.wall_time),
        "run restarted from its journal",
        f"{event.bars_replayed} bars replayed; position {event.position:.8g}, state {event.state}",
        run,
        bar,
        at,
    )


def _venue_unreachable(run: RunInfo, event: VenueUnreachable, bar: int, at: str) -> Alert:
    return Alert(
        "venue_unreachable", event.operation, "venue unreachable", event.error, run, bar, at
    )


def _parity(run: RunInfo, event: ParityChecked, bar: int, at: str) -> Alert | None:
    if event.verdict != "diverged":
        return None
    return Alert(
        "parity",
        f"{event.first_bar}..{event.last_bar}",
        "unexplained divergence from the backtest",
        event.message,
        run,
        bar,
        at,
        {
            "unexplained_pnl": event.unexplained_pnl,
            "max_unexplained": event.max_unexplained,
            "equity_gap": event.equity_gap,
        },
    )
