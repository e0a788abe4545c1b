"""The newest book from a ccxt.pro stream: given while fresh, None when stale or given up
(the runner then reads the book over REST)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tradeloom.plugins.data.book_snapshots import BookSnapshot
from tradeloom.plugins.data.book_stream import BookStream
from tradeloom.runtime.retrying import RetryPolicy


class _Pro:
    """A ccxt.pro stand-in: one failure, one book, then silence (a quiet market)."""

    id = "fakepro"

    def __init__(self, streams: bool = True) -> None:
        self.has = {"watchOrderBook": streams}
        self.calls = 0
        self.closed = False

    async def watch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("dropped")
        if self.calls > 2:
            await asyncio.sleep(3600)  # cancelled by stop()
        return {"bids": [[99.0, 1.0], [98.0, 2.0]], "asks": [[100.0, 3.0]], "timestamp": 5}

    async def close(self) -> None:
        self.closed = True


async def _no_wait(seconds: float) -> None:
    return None


def _wait(condition: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_the_newest_book_is_given_while_fresh_and_none_once_stale() -> None:
    now = [1000.0]
    client = _Pro()
    stream = BookStream(
        lambda: client, "BTC/USDT", 1, stale_after=60, clock=lambda: now[0], sleep=_no_wait
    )
    assert stream.latest() is None  # not started
    stream.start()
    try:
        _wait(lambda: stream.healthy)
        assert stream.latest() == BookSnapshot("BTC/USDT", 5, ((99.0, 1.0),), ((100.0, 3.0),))
        assert client.calls >= 2  # the failure was retried
        now[0] += 60
        assert stream.latest() is not None
        now[0] += 1  # no update for longer than stale_after
        assert stream.latest() is None and not stream.healthy
    finally:
        stream.stop()
    assert client.closed


def test_an_exchange_without_a_book_stream_gives_up_at_once() -> None:
    client = _Pro(streams=False)
    stream = BookStream(
        lambda: client,
        "BTC/USDT",
        1,
        stale_after=60,
        policy=RetryPolicy(max_attempts=2),
        sleep=_no_wait,
    )
    stream.start()
    _wait(lambda: stream.gave_up)
    stream.stop()
    assert (stream.gave_up, stream.latest(), client.calls, client.closed) == (True, None, 0, True)
