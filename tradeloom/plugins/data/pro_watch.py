"""One ccxt.pro watch, run in a background thread, for the synchronous runner.

`ProWatcher` holds what every websocket stream of tradeloom does the same way; a
subclass says only what it watches (`ClosedBarStream`: ``watch_ohlcv``;
`BookStream`: ``watch_order_book``) and what it does with an update.

- `start` runs the watch in a daemon thread with its own asyncio loop; `stop` closes
  the client and joins the thread, waiting at most twice ``stop_timeout`` seconds.
- The client is made once, in that thread. An exchange without the subclass's
  ``capability`` in its ``has`` (or a client that cannot be made) gives up at once.
- Failures: any error of a watch, or of taking its update (a network error, a closed
  connection, an exchange error, a malformed answer), counts one; the next watch
  reconnects (ccxt.pro dials a new connection for a watch whose connection failed)
  after the wait `tradeloom.runtime.retrying.RetryPolicy.delay` gives. An update resets the
  count. After ``policy.max_attempts`` consecutive failures the watcher gives up for
  good: it logs once, closes the client, and `healthy` stays False, so the runner
  falls back to REST.
- `healthy`: connected, not given up, and an update within ``stale_after`` seconds.
- Once the client is closing, `stop` no longer cancels the task: a cancel there would
  abort ``client.close()`` and leave the websocket open.

Log events are the subclass's ``_events`` prefix followed by ``_reconnect``,
``_resumed``, ``_gave_up``, ``_close_failed`` and ``_stop_timeout``, each with the
subclass's `_fields`.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, ClassVar

from tradeloom.plugins.data.ccxt_retry import describe
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.retrying import RetryPolicy

__all__ = ["ProWatcher"]

_log = logger("tradeloom.data")


class ProWatcher(ABC):
    """A ccxt.pro watch in a daemon thread, with reconnects and a give-up (module docstring).

    Subclasses set ``capability`` (the ccxt ``has`` key the watch needs), ``_events``
    (the prefix of their log events) and ``_fallback`` (what the runner does once the
    watcher gave up, for the log), and implement `_next`, `_take`, `_broken` and `_fields`.

    Args:
        client_factory: Makes the ccxt.pro client, called once in the watcher's
            thread; None: the exchange has no stream (`supported` is False, `start`
            does nothing).
        label: Names the watcher in errors (``BTC/USDT 1h stream``).
        thread_name: The thread's name.
        stale_after: Seconds without an update after which the watcher is not healthy.
        policy: Consecutive failures before giving up, and the waits between them.
        clock: Epoch seconds; when an update arrived, and whether it is fresh.
        sleep: Waits between reconnects (tests record the waits instead).
        draw: Uniform draws in [0, 1) for the jitter of the waits.
        stop_timeout: Longest wait, in seconds, for the client to close.

    Raises:
        ValueError: ``stale_after`` not positive.
    """

    capability: ClassVar[str]
    _events: ClassVar[str]
    _fallback: ClassVar[str]

    def __init__(
        self,
        client_factory: Callable[[], Any] | None,
        *,
        label: str,
        thread_name: str,
        stale_after: float,
        policy: RetryPolicy,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        draw: Callable[[], float],
        stop_timeout: float,
    ) -> None:
        if stale_after <= 0:
            raise ValueError(f"stale_after must be > 0, was {stale_after}")
        self._factory = client_factory
        self._label = label
        self._thread_name = thread_name
        self._stale_after = stale_after
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._draw = draw
        self._stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self._connected = False
        self._gave_up = False
        self._last_update: float | None = None
        self._exchange = ""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def supported(self) -> bool:
        """Whether there is a stream at all (a client factory was given)."""
        return self._factory is not None

    @property
    def healthy(self) -> bool:
        """Whether the watcher is connected and an update came within ``stale_after``.

        False before the first update, while reconnecting, after `stop`, and for good
        once the watcher has given up.
        """
        with self._lock:
            return self._is_healthy()

    @property
    def gave_up(self) -> bool:
        """Whether the watcher stopped trying (``policy.max_attempts`` failures, or none)."""
        with self._lock:
            return self._gave_up

    def start(self) -> None:
        """Start watching in a daemon thread; does nothing if the stream is not supported.

        Raises:
            RuntimeError: The watcher was started before.
        """
        if self._factory is None:
            return
        if self._thread is not None:
            raise RuntimeError(f"the {self._label} was started already")
        self._thread = threading.Thread(
            target=self._thread_main, name=self._thread_name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, close the client and join the thread (at most 2 ``stop_timeout``).

        Safe to call more than once, and before `start`.
        """
        self._stopping.set()
        with self._lock:
            self._connected = False
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None:
            with suppress(RuntimeError):  # the loop ended on its own (gave up)
                loop.call_soon_threadsafe(self._cancel)
        waited = 2 * self._stop_timeout  # the client's close, then the thread's end
        thread.join(waited)
        if thread.is_alive():
            _log.warning(f"{self._events}_stop_timeout", **self._fields(), waited_seconds=waited)

    @abstractmethod
    async def _next(self, client: Any) -> Any:
        """Wait for the next update of the watch (raises on any failure of it)."""

    @abstractmethod
    def _take(self, update: Any, now: float) -> None:
        """Keep ``update``, received at ``now``; called under the lock (raises if malformed)."""

    @abstractmethod
    def _fields(self) -> dict[str, str]:
        """The fields of every log event of this watcher.

        Passed on each call: a logger bound once would keep the processors (and the
        redaction) configured at that moment.
        """

    @abstractmethod
    def _broken(self) -> None:
        """Forget what a failed watch makes doubtful; called under the lock."""

    def _is_healthy(self) -> bool:
        return (
            self._connected
            and not self._gave_up
            and self._last_update is not None
            and self._clock() - self._last_update <= self._stale_after
        )

    def _thread_main(self) -> None:
        with suppress(asyncio.CancelledError):
            asyncio.run(self._run())

    def _cancel(self) -> None:
        if self._task is not None and not self._closing:
            self._task.cancel()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stopping.is_set() or self._factory is None:
            return
        try:
            client = self._factory()
        except Exception as error:
            self._give_up(f"could not make the client: {describe(error)}")
            return
        self._exchange = str(getattr(client, "id", ""))
        try:
            if (getattr(client, "has", None) or {}).get(self.capability):
                await self._watch(client)
            else:
                self._give_up(f"the exchange has no {self.capability}")
        finally:
            self._closing = True
            try:
                await asyncio.wait_for(client.close(), self._stop_timeout)
            except Exception as error:
                _log.warning(
                    f"{self._events}_close_failed", **self._fields(), error=describe(error)
                )

    async def _watch(self, client: Any) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self._receive(await self._next(client))
            except Exception as error:  # every failure of the stream is one attempt
                failures += 1
                with self._lock:
                    self._connected = False
                    self._broken()
                if failures >= self._policy.max_attempts:
                    self._give_up(f"{failures} consecutive failures; last {describe(error)}")
                    return
                wait = self._policy.delay(failures, self._draw())
                _log.warning(
                    f"{self._events}_reconnect",
                    **self._fields(),
                    attempt=failures,
                    error=describe(error),
                    wait_seconds=round(wait, 3),
                )
                await self._sleep(wait)
                continue
            if failures:
                _log.info(f"{self._events}_resumed", **self._fields(), failures=failures)
                failures = 0

    def _receive(self, update: Any) -> None:
        now = self._clock()
        with self._lock:
            self._take(update, now)
            self._connected = True
            self._last_update = now

    def _give_up(self, reason: str) -> None:
        with self._lock:
            self._gave_up = True
            self._connected = False
        _log.error(
            f"{self._events}_gave_up", **self._fields(), reason=reason, fallback=self._fallback
        )
