"""What every built-in feed's receiver shares: a thread, bounded retries with backoff."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from tradeloom.runtime.lazy import logger
from tradeloom.text.feeds import FeedBounds

__all__ = ["ReceiverThread"]

_T = TypeVar("_T")
_log = logger("tradeloom.data")


class ReceiverThread:
    """A receiver's background thread and its patience (`tradeloom.text.feeds.FeedBounds`).

    Args:
        name: Names the feed in logs and the thread.
        bounds: Timeout, attempts and backoff.
    """

    def __init__(self, name: str, bounds: FeedBounds) -> None:
        self.name = name
        self.bounds = bounds
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def launch(self, body: Callable[[], None]) -> None:
        """Run ``body`` in a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: started twice")
        self.stopping.clear()
        thread = threading.Thread(target=body, name=f"tradeloom-feed-{self.name}", daemon=True)
        self._thread = thread
        thread.start()

    def halt(self) -> None:
        """Ask the thread to stop and wait for it."""
        self.stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.bounds.timeout_seconds + 5)

    def attempt(self, what: str, call: Callable[[], _T]) -> _T | None:
        """Return ``call()``, tried up to ``max_attempts`` times with doubling waits
        (None: every attempt failed, or the run stops; each failure is logged)."""
        wait = self.bounds.backoff_seconds
        for n in range(1, self.bounds.max_attempts + 1):
            try:
                return call()
            except Exception as exc:  # a feed's failure never ends the run
                _log.warning(
                    "feed_failed", feed=self.name, what=what, attempt=n, error=_one_line(exc)
                )
            if n == self.bounds.max_attempts or self.stopping.wait(wait):
                return None
            wait = min(2 * wait, self.bounds.max_backoff_seconds)
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
