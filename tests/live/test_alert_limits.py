"""The alerts observer's own rules, on a simulated clock: deduplication, the rate limit,
the bounded queue, the event filter, the repeated-errors threshold, and its keys."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr, ValidationError

from tradeloom.domain import RunInfo
from tradeloom.live.outputs.alerts import Alert, Alerts, AlertsParams, AlertTarget

RUN = RunInfo(run_id="r", strategy="s", mode="live", run_dir="runs/r")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def alerts(**keys: object) -> tuple[Alerts, list[str], Clock]:
    dropped: list[str] = []
    clock = Clock()
    params = AlertsParams(
        targets=[AlertTarget(kind="slack", url=_secret("${X}"))],
        **keys,  # type: ignore[arg-type]
    )
    return Alerts(params, on_dropped=dropped.append, clock=clock), dropped, clock


def _secret(reference: str) -> SecretStr:
    from tradeloom.schemas.secrets import Secret

    return Secret("http://127.0.0.1:9/hook", reference.strip("${}"))


def alert(key: str, event: str = "kill") -> Alert:
    return Alert(event, key, "title", "text", RUN)


def test_the_same_alert_is_sent_once_per_dedup_window() -> None:
    observer, dropped, clock = alerts(dedup_seconds=60)

    sent = [observer.notify(alert("a")), observer.notify(alert("a")), observer.notify(alert("b"))]
    clock.now = 61.0
    sent.append(observer.notify(alert("a")))

    assert sent == [True, False, True, True]
    assert dropped == ["duplicate"]


def test_alerts_beyond_the_rate_are_dropped_until_a_minute_passed() -> None:
    observer, dropped, clock = alerts(max_per_minute=2, dedup_seconds=0, queue_size=10)

    sent = [observer.notify(alert(str(i))) for i in range(4)]
    clock.now = 60.0
    sent.append(observer.notify(alert("later")))

    assert sent == [True, True, False, False, True]
    assert dropped == ["rate_limited", "rate_limited"]


def test_a_full_queue_drops_the_alert_at_once() -> None:
    observer, dropped, _ = alerts(queue_size=2)  # no sender started: nothing leaves

    sent = [observer.notify(alert(str(i))) for i in range(3)]

    assert sent == [True, True, False]
    assert dropped == ["queue_full"]


def test_events_not_chosen_are_not_sent_nor_counted() -> None:
    observer, dropped, _ = alerts(events=["halt"])

    assert observer.notify(alert("a", "kill")) is False
    assert observer.notify(alert("a", "halt")) is True
    assert dropped == []


def test_exchange_errors_alert_once_the_threshold_is_reached_in_the_window() -> None:
    observer, _, clock = alerts(exchange_errors=3, exchange_error_seconds=10)
    queued = observer._queue

    for t in (0.0, 5.0, 11.0, 12.0):  # the first falls out of the window at 11 s
        clock.now = t
        observer.tradeloom_exchange_error(RUN, "binance", "RequestTimeout", "timed out")

    assert queued.qsize() == 1
    assert queued.get_nowait().title == "3 binance errors in 10 s"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"kind": "slack"}, "kind slack needs url (as ${ENV_VAR})"),
        (
            {"kind": "telegram", "token": "${T}"},
            "kind telegram needs token (as ${ENV_VAR}) and chat_id",
        ),
        (
            {"kind": "webhook", "url": "${U}", "chat_id": "1"},
            "token and chat_id are telegram's keys, not webhook's",
        ),
    ],
)
def test_a_target_missing_its_keys_is_refused(keys: dict[str, str], message: str) -> None:
    values = {k: (_secret(v) if v.startswith("${") else v) for k, v in keys.items()}

    with pytest.raises(ValidationError, match=re.escape(f"Value error, {message} [")):
        AlertTarget(**values)  # type: ignore[arg-type]
