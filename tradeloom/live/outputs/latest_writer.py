"""A background thread that does one job on the newest item handed to it.

The trading thread must not wait for a run's files (``metrics.json``, ``equity.csv``,
the report): it hands each bar's item to a `LatestWriter` and goes on. The hand-over
stores the item and counts it, nothing more: waking a sleeping thread costs the thread
that wakes it a system call and, on a virtual machine, an interrupt to the other core
(~20 us a bar measured in bench_live_tick, whether through a condition or a queue). The
writer looks for a new item every ``poll_seconds`` instead (and at once when `wait` or
`close` asks), and works on the newest: when several arrive between two looks, only the
newest is worked on (each stands for the whole run so far, so a skipped one loses
nothing).

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
            errors; one that escapes is not caught (the thread ends, the item counts as
            done, and the next `submit` starts another thread).
        name: The thread's name.
        poll_seconds: How often the thread looks for a new item.
    """

    def __init__(self, work: Callable[[T], None], name: str, poll_seconds: float = 0.02) -> None:
        self._work = work
        self._name = name
        self._poll = poll_seconds
        self._latest: T | None = None
        self._submitted = 0
        """Items handed over; counted by the submitting thread after it stores the item,
        so a count the writer reads is never ahead of the item it reads after it."""
        self._finished = 0
        """Items worked on or skipped (by the writer, under ``_done``)."""
        self._done = threading.Condition()
        """Signalled by the writer after each item (`wait`)."""
        self._bell = threading.Event()
        """Set by `wait` and `close` (never by `submit`): look now."""
        self._closing = False
        self._running = False
        self._thread: threading.Thread | None = None
        self.written = 0
        """Items worked on so far."""
        self.skipped = 0
        """Items replaced by a newer one before they were taken."""
        self.busy_seconds = 0.0
        """Wall time spent in ``work`` so far."""

    def submit(self, item: T) -> None:
        """Hand ``item`` over (a newer one replaces it if not taken yet); never waits."""
        self._latest = item
        self._submitted += 1
        if not self._running:
            self._running = True
            self._closing = False
            context = contextvars.copy_context()
            self._thread = threading.Thread(
                target=context.run, args=(self._loop,), name=self._name, daemon=True
            )
            self._thread.start()

    def wait(self) -> None:
        """Block until every item submitted so far is worked on (or replaced).

        Raises:
            RuntimeError: The thread died with work pending.
        """
        with self._done:
            while self._finished < self._submitted:
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError(f"{self._name}: the writer thread stopped")
                self._bell.set()
                self._done.wait(timeout=0.5)

    def close(self) -> None:
        """Work on what is pending, then end the thread (a later `submit` starts another)."""
        self.wait()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._closing = True
        self._bell.set()
        thread.join()

    def _loop(self) -> None:
        try:
            while True:
                submitted = self._submitted
                if submitted > self._finished:
                    item = self._latest
                    assert item is not None
                    self._take(item, submitted)
                elif self._closing:
                    return
                else:
                    self._bell.wait(self._poll)
                    self._bell.clear()
        finally:
            self._running = False

    def _take(self, item: T, submitted: int) -> None:
        started = time.perf_counter()
        try:
            self._work(item)
        finally:
            with self._done:
                self.skipped += submitted - self._finished - 1
                self._finished = submitted
                self.written += 1
                self.busy_seconds += time.perf_counter() - started
                self._done.notify_all()
