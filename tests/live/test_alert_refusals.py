"""The alerts observer on refusals: an exit refused alerts (a protective one as critical),
any other refusal does not, and the same exit refused bar after bar is one alert per
dedup window."""

from __future__ import annotations

import pandas as pd

from tradeloom.domain import Refusal, RunInfo
from tradeloom.live.outputs.alerts import (
    ALERT_EVENTS,
    Alert,
    Alerts,
    AlertsParams,
    AlertTarget,
    webhook_body,
)

RUN = RunInfo(run_id="r", strategy="s", mode="live", run_dir="runs/r")
T = pd.Timestamp("2024-03-01T04:00:00Z")


class Kept(Alerts):
    """The observer, its alerts kept rather than queued for a sender."""

    def __init__(self, now: list[float]) -> None:
        from tradeloom.schemas.secrets import Secret

        target = AlertTarget(kind="webhook", url=Secret("http://127.0.0.1:9/hook", "X"))
        super().__init__(AlertsParams(targets=[target], dedup_seconds=300), clock=lambda: now[0])
        self.kept: list[Alert] = []

    def notify(self, alert: Alert) -> bool:
        queued = super().notify(alert)
        if queued:
            self.kept.append(alert)
        return queued


def refusal(purpose: str, code: str = "NO_ROUTE", **fields: object) -> Refusal:
    values: dict[str, object] = {
        "bar": 12,
        "timestamp": T,
        "stage": "cancelled",
        "code": code,
        "purpose": purpose,
        "symbol": "EUR/USD",
        "order_id": "s-1a-000007",
        "remaining": 18_000.0,
        "exit": True,
        "protective": purpose == "EXIT_STOP_LOSS",
    }
    values.update(fields)
    return Refusal(**values)  # type: ignore[arg-type]


def test_an_exit_refused_alerts_and_a_stop_refused_is_critical() -> None:
    now = [0.0]
    observer = Kept(now)
    observer.tradeloom_refusal(RUN, refusal("EXIT_STOP_LOSS"))
    observer.tradeloom_refusal(RUN, refusal("EXIT_SIGNAL"))
    observer.tradeloom_refusal(RUN, refusal("ENTRY", "INSUFFICIENT_CASH", exit=False))
    stop, signal = observer.kept
    assert (stop.event, stop.severity, signal.event, signal.severity) == (
        "protective_exit_refused",
        "critical",
        "exit_refused",
        "warning",
    )
    assert stop.line() == (
        "[CRITICAL] tradeloom live s (r): exit refused (EUR/USD): EXIT_STOP_LOSS cancelled "
        "NO_ROUTE: order s-1a-000007: 18000 left unfilled; the position it was to close "
        "stays open"
    )
    body = webhook_body(stop)
    assert (body["bar"], body["time"], body["values"]) == (
        12,
        "2024-03-01T04:00:00+00:00",
        {"remaining": 18_000.0},
    )
    assert {"exit_refused", "protective_exit_refused"} <= set(ALERT_EVENTS)


def test_a_pre_trade_refusal_of_an_exit_says_its_message() -> None:
    observer = Kept([0.0])
    rate = refusal(
        "EXIT_STOP_LOSS",
        "ORDER_RATE",
        stage="rejected",
        order_id="",
        remaining=float("nan"),
        message="orders_sent_last_60s=5, limit=5",
    )
    observer.tradeloom_refusal(RUN, rate)
    (alert,) = observer.kept
    assert alert.text == "orders_sent_last_60s=5, limit=5; the position it was to close stays open"
    assert alert.values == {}  # no quantity: nothing was sent


def test_the_same_exit_refused_each_bar_is_one_alert_per_dedup_window() -> None:
    now = [0.0]
    observer = Kept(now)
    for bar in range(10):  # an hour's bars within five minutes: a replay catching up
        observer.tradeloom_refusal(RUN, refusal("EXIT_STOP_LOSS", bar=bar))
        now[0] += 20.0
    now[0] = 301.0
    observer.tradeloom_refusal(RUN, refusal("EXIT_STOP_LOSS", bar=11))
    observer.tradeloom_refusal(RUN, refusal("EXIT_STOP_LOSS", bar=11, symbol="GBP/USD"))
    assert [(a.bar, a.key) for a in observer.kept] == [
        (0, "EUR/USD:EXIT_STOP_LOSS:NO_ROUTE"),
        (11, "EUR/USD:EXIT_STOP_LOSS:NO_ROUTE"),
        (11, "GBP/USD:EXIT_STOP_LOSS:NO_ROUTE"),
    ]
