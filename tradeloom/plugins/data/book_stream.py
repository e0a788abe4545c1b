"""The latest order book of one market from a ccxt.pro websocket, for the synchronous runner.

`BookStream` runs ``watch_order_book`` (`tradeloom.plugins.data.book_snapshots.watch_book`)
in a background thread with its own asyncio loop and keeps the newest snapshot; the
runner takes it at each tick with `latest`. None there means the stream cannot vouch
for the book now (not started, no update yet, reconnecting, silent for ``stale_after``
seconds, given up): the runner reads the book over REST instead, as it does without a
stream.

Failures: any error of a watch (a network error, a closed connection, an answer that
is not a book) counts one; the next watch reconnects after the wait
`tradeloom.runtime.retrying.RetryPolicy.delay` gives; an update resets the count. After
``policy.max_attempts`` consecutive failures the stream gives up for good (logged
once), and `latest` stays None. The thread, the reconnects and the give-up are
`tradeloom.plugins.data.pro_watch.ProWatcher`'s, shared with the bar stream.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tradeloom.plugins.data.book_snapshots import BookSnapshot, watch_book
from tradeloom.plugins.data.pro_watch import ProWatcher
from tradeloom.runtime.retrying import RetryPolicy

__all__ = ["BookStream"]


class BookStream(ProWatcher):
    """The newest snapshot of one market's book from a ccxt.pro ``watch_order_book``.

    Args:
        client_factory: Makes the ccxt.pro client (`pro_client_factory` with
            ``needs="watchOrderBook"``), called once in the stream's thread.
        symbol: Unified symbol.
        depth: Levels a side.
        stale_after: Seconds without an update after which `latest` says None.
        policy: Consecutive failures before giving up, and the waits between them.
        clock: Epoch seconds (when an update arrived).
        sleep: Waits between reconnects.
        draw: Uniform draws in [0, 1) for the jitter of the waits.
        stop_timeout: Longest wait, in seconds, for the client to close; `stop` waits
            at most twice this for the thread to end.

    Raises:
        ValueError: ``stale_after`` not positive.
    """

    capability = "watchOrderBook"
    _events = "book_stream"
    _fallback = "REST"

    def __init__(
        self,
        client_factory: Callable[[], Any],
        symbol: str,
        depth: int,
        *,
        stale_after: float,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        draw: Callable[[], float] = random.random,
        stop_timeout: float = 5.0,
    ) -> None:
        super().__init__(
            client_factory,
            label=f"{symbol} book stream",
            thread_name=f"tradeloom-book-{symbol}",
            stale_after=stale_after,
            policy=policy or RetryPolicy(),
            clock=clock,
            sleep=sleep,
            draw=draw,
            stop_timeout=stop_timeout,
        )
        self.symbol = symbol
        self.depth = depth
        self._latest: BookSnapshot | None = None

    def latest(self) -> BookSnapshot | None:
        """Return the newest snapshot, or None when the stream cannot vouch for it now."""
        with self._lock:
            return self._latest if self._is_healthy() else None

    async def _next(self, client: Any) -> BookSnapshot:
        return await watch_book(
            client, self.symbol, self.depth, clock=lambda: int(self._clock() * 1000)
        )

    def _take(self, update: Any, now: float) -> None:
        self._latest = update

    def _broken(self) -> None:
        """Nothing to forget: `latest` says None until the next update comes."""

    def _fields(self) -> dict[str, str]:
        return {"symbol": self.symbol}
