"""A background thread that does one job on the newest item handed to it.

The trading thread must not wait for a run's files (``metrics.json``, ``equity.csv``,
the report): it hands each bar's snapshot to a `LatestWriter` and goes on. The writer
works through them one at a time; when several arrive while it is busy, only the newest
is written (each snapshot holds the whole run so far, so a skipped one loses nothing).

The thread runs in a copy of the caller's `contextvars` context, so its log lines carry
the run's structlog context (run id, strategy, mode).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LatestWriter"]

T = TypeVar("T")


class LatestWriter(Generic[T]):
    """Run ``work`` on a thread of its own, over the newest item submitted.

    Args:
        work: Called with each item taken, on the writer's thread. It handles its own
            errors; one that escapes is not caught (the thread ends and `wait` raises
            `RuntimeError` instead of blocking forever).
        name: The thread's name.
    """

    def __init__(self, work: Callable[[T], None], name: str) -> None:
        self._work = work
        self._name = name
        self._lock = threading.Condition()
        self._pending: T | None = None
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self.written = 0
        """Items worked on so far."""
        self.skipped = 0
        """Items replaced by a newer one before they were taken."""
        self.busy_seconds = 0.0
        """Wall time spent in ``work`` so far."""

    def submit(self, item: T) -> None:
        """Hand ``item`` over (replacing one not yet taken); never waits for the work."""
        with self._lock:
            if self._pending is not None:
                self.skipped += 1
            self._pending = item
            self._closing = False
            if self._thread is None or not self._thread.is_alive():
                context = contextvars.copy_context()
                self._thread = threading.Thread(
                    target=context.run, args=(self._loop,), name=self._name, daemon=True
                )
                self._thread.start()
            self._lock.notify_all()

    def wait(self) -> None:
        """Block until every item submitted so far is written (or replaced and written).

        Raises:
            RuntimeError: The thread died with work pending.
        """
        with self._lock:
            while self._pending is not None or self._busy:
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError(f"{self._name}: the writer thread stopped")
                self._lock.wait(timeout=0.5)

    def close(self) -> None:
        """Write what is pending, then end the thread (a later `submit` starts another)."""
        self.wait()
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._closing:
                    self._lock.wait()
                if self._pending is None:
                    return  # closing, nothing left
                item, self._pending = self._pending, None
                self._busy = True
            started = time.perf_counter()
            try:
                self._work(item)
            finally:
                with self._lock:
                    self._busy = False
                    self.written += 1
                    self.busy_seconds += time.perf_counter() - started
                    self._lock.notify_all()
