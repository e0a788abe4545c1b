"""The latest order book of one market from a ccxt.pro websocket, for the synchronous runner.

`BookStream` runs ``watch_order_book`` (`tradeloom.plugins.data.book_snapshots.watch_book`)
in a background thread with its own asyncio loop and keeps the newest snapshot; the
runner takes it at each tick with `latest`. None there means the stream cannot vouch
for the book now (not started, no update yet, reconnecting, silent for ``stale_after``
seconds, given up): the runner reads the book over REST instead, as it does without a
stream.

Failures: any error of a watch (a network error, a closed connection, an answer that
is not a book) counts one; the next watch reconnects after the wait
`tradeloom.retrying.RetryPolicy.delay` gives; an update resets the count. After
``policy.max_attempts`` consecutive failures the stream gives up for good (logged
once), and `latest` stays None.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import structlog

from tradeloom.plugins.data.book_snapshots import BookSnapshot, watch_book
from tradeloom.plugins.data.ccxt_retry import describe
from tradeloom.retrying import RetryPolicy

__all__ = ["BookStream"]

_log = structlog.get_logger("tradeloom.data")


class BookStream:
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
    """

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
        if stale_after <= 0:
            raise ValueError(f"stale_after must be > 0, was {stale_after}")
        self.symbol = symbol
        self.depth = depth
        self._factory = client_factory
        self._stale_after = stale_after
        self._policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._draw = draw
        self._stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self._latest: BookSnapshot | None = None
        self._received: float | None = None
        self._connected = False
        self._gave_up = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        """Whether the stream is connected and an update came within ``stale_after``."""
        with self._lock:
            return self._fresh()

    @property
    def gave_up(self) -> bool:
        """Whether the stream stopped trying (``policy.max_attempts`` failures, or none)."""
        with self._lock:
            return self._gave_up

    def latest(self) -> BookSnapshot | None:
        """Return the newest snapshot, or None when the stream cannot vouch for it now."""
        with self._lock:
            return self._latest if self._fresh() else None

    def start(self) -> None:
        """Start watching in a daemon thread.

        Raises:
            RuntimeError: The stream was started before.
        """
        if self._thread is not None:
            raise RuntimeError(f"the {self.symbol} book stream was started already")
        self._thread = threading.Thread(
            target=self._thread_main, name=f"tradeloom-book-{self.symbol}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, close the client and join the thread; safe to call twice."""
        self._stopping.set()
        with self._lock:
            self._connected = False
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None:
            with suppress(RuntimeError):  # the loop ended on its own (gave up)
                loop.call_soon_threadsafe(self._cancel)
        thread.join(2 * self._stop_timeout)
        if thread.is_alive():
            _log.warning("book_stream_stop_timeout", symbol=self.symbol)

    def _fresh(self) -> bool:
        return (
            self._connected
            and not self._gave_up
            and self._received is not None
            and self._clock() - self._received <= self._stale_after
        )

    def _thread_main(self) -> None:
        with suppress(asyncio.CancelledError):
            asyncio.run(self._run())

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stopping.is_set():
            return
        try:
            client = self._factory()
        except Exception as error:
            self._give_up(f"could not make the client: {describe(error)}")
            return
        try:
            if (getattr(client, "has", None) or {}).get("watchOrderBook"):
                await self._watch(client)
            else:
                self._give_up("the exchange has no watchOrderBook")
        finally:
            with suppress(Exception):
                await asyncio.wait_for(client.close(), self._stop_timeout)

    async def _watch(self, client: Any) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                snapshot = await watch_book(
                    client, self.symbol, self.depth, clock=lambda: int(self._clock() * 1000)
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:  # every failure of the stream is one attempt
                failures += 1
                with self._lock:
                    self._connected = False
                if failures >= self._policy.max_attempts:
                    self._give_up(f"{failures} consecutive failures; last {describe(error)}")
                    return
                wait = self._policy.delay(failures, self._draw())
                _log.warning(
                    "book_stream_reconnect",
                    symbol=self.symbol,
                    attempt=failures,
                    error=describe(error),
                    wait_seconds=round(wait, 3),
                )
                await self._sleep(wait)
                continue
            failures = 0
            with self._lock:
                self._latest = snapshot
                self._received = self._clock()
                self._connected = True

    def _give_up(self, reason: str) -> None:
        with self._lock:
            self._gave_up = True
            self._connected = False
        _log.error("book_stream_gave_up", symbol=self.symbol, reason=reason, fallback="REST")
