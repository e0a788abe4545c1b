"""The machinery both ccxt.pro streams share (`ProWatcher`), through each of them: a stop
while the client closes lets the close finish, and the log names each stream's events."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from tradeloom.plugins.data.book_stream import BookStream
from tradeloom.plugins.data.ccxt_stream import ClosedBarStream
from tradeloom.plugins.data.pro_watch import ProWatcher
from tradeloom.runtime.retrying import RetryPolicy

WAIT = 10.0  # seconds; an upper bound only, never reached when the code is right


class _SlowClose:
    """A ccxt.pro stand-in without the stream, whose close takes a while."""

    id = "fakepro"

    def __init__(self) -> None:
        self.has: dict[str, bool] = {}
        self.closing = threading.Event()
        self.closed = threading.Event()

    async def close(self) -> None:
        self.closing.set()
        await asyncio.sleep(0.2)  # stop() is called meanwhile: its cancel must not land
        self.closed.set()


class _Flaky:
    """A book stand-in: fails twice, answers once, then fails for good; close fails."""

    id = "fakepro"

    def __init__(self) -> None:
        self.has = {"watchOrderBook": True}
        self.calls = 0

    async def watch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 3:
            return {"bids": [[99.0, 1.0]], "asks": [[100.0, 1.0]], "timestamp": 5}
        raise ConnectionError(f"dropped {self.calls}")

    async def close(self) -> None:
        raise OSError("socket gone")


async def _no_wait(seconds: float) -> None:
    return None


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def _book(make: Callable[[], Any]) -> ProWatcher:
    return BookStream(
        make, "BTC/USDT", 1, stale_after=60, policy=RetryPolicy(max_attempts=3), sleep=_no_wait
    )


def _bars(make: Callable[[], Any]) -> ProWatcher:
    return ClosedBarStream(make, "BTC/USDT", "1m", policy=RetryPolicy(max_attempts=3))


@pytest.mark.parametrize("build", [_book, _bars], ids=["book", "bars"])
def test_a_stop_while_the_client_closes_lets_the_close_finish(
    build: Callable[[Callable[[], Any]], ProWatcher],
) -> None:
    client = _SlowClose()
    stream = build(lambda: client)
    stream.start()
    assert client.closing.wait(WAIT)  # gave up (no such stream), now closing
    stream.stop()
    assert client.closed.is_set()
    assert stream.gave_up and not stream.healthy


def test_the_book_stream_logs_its_reconnects_resume_give_up_and_failed_close() -> None:
    client = _Flaky()
    stream = _book(lambda: client)
    with capture_logs() as logs:
        stream.start()
        _wait(lambda: stream.gave_up)
        stream.stop()
    events = [(e["event"], e.get("attempt") or e.get("failures")) for e in logs]
    assert events == [
        ("book_stream_reconnect", 1),
        ("book_stream_reconnect", 2),
        ("book_stream_resumed", 2),
        ("book_stream_reconnect", 1),
        ("book_stream_reconnect", 2),
        ("book_stream_gave_up", None),
        ("book_stream_close_failed", None),
    ]
    assert all(e["symbol"] == "BTC/USDT" for e in logs)
    gave_up = logs[-2]
    assert (gave_up["reason"], gave_up["fallback"]) == (
        "3 consecutive failures; last ConnectionError: dropped 6",
        "REST",
    )
    assert logs[-1]["error"] == "OSError: socket gone"
    assert stream.latest() is None
