"""Retrying reads with capped exponential backoff and jitter.

Only reads go through here (fetches, and cancels, which are idempotent): an order
submission is sent once and never retried, whatever happens to it. The wait
before attempt ``n + 1`` is drawn from ``[c / 2, c]`` with
``c = min(max_delay, base_delay * 2 ** (n - 1))`` ("equal jitter"): it grows
exponentially, never exceeds ``max_delay``, and many clients that failed
together do not all come back at the same instant. A venue's ``Retry-After``
raises the wait to what it asks for, still capped by ``max_delay``.

The sleep and the random draw are injected, so tests record the waits instead
of sleeping them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Backoff", "ReadRetrier", "RetriesExhausted"]

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently a failed read is tried again.

    Attributes:
        max_attempts: Attempts in all, the first included (1: never retry).
        base_delay: Seconds before the second attempt, at most.
        max_delay: No wait is longer than this, ``Retry-After`` included.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"Backoff.max_attempts must be >= 1, was {self.max_attempts}")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError(
                f"Backoff needs 0 < base_delay <= max_delay, was {self.base_delay} "
                f"and {self.max_delay}"
            )

    def delay(self, failures: int, draw: float, retry_after: float | None = None) -> float:
        """Return the wait after ``failures`` failed attempts (``draw`` uniform in [0, 1))."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (failures - 1))
        wait = ceiling / 2.0 + draw * ceiling / 2.0
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay)


class RetriesExhausted(Exception):
    """A read failed on every attempt; ``__cause__`` is the last error.

    Attributes:
        operation: What was read (``fetch_order``).
        attempts: How many times it was tried.
    """

    def __init__(self, operation: str, attempts: int, last: str) -> None:
        super().__init__(f"{operation} failed {attempts} times; last: {' '.join(last.split())}")
        self.operation = operation
        self.attempts = attempts


class ReadRetrier:
    """Call a read until it succeeds, the error is not retryable, or attempts run out.

    Args:
        backoff: The schedule.
        retryable: Which errors are worth another attempt.
        sleep: Waits that many seconds.
        draw: Returns a uniform number in [0, 1), for the jitter.
        retry_after: Returns the wait the venue asked for after an error (seconds),
            or None.
        describe: Turns the last error into the one line `RetriesExhausted` quotes.

    Attributes:
        delays: Every wait taken, in order (for logs and tests).
    """

    def __init__(
        self,
        backoff: Backoff,
        retryable: Callable[[BaseException], bool],
        *,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
        retry_after: Callable[[BaseException], float | None] = lambda _: None,
        describe: Callable[[BaseException], str] = lambda e: f"{type(e).__name__}: {e}",
    ) -> None:
        self.backoff = backoff
        self.delays: list[float] = []
        self._retryable = retryable
        self._sleep = sleep
        self._draw = draw
        self._retry_after = retry_after
        self._describe = describe

    def call(self, operation: str, read: Callable[[], T]) -> T:
        """Return ``read()``, retrying retryable errors.

        Raises:
            RetriesExhausted: Every attempt failed with a retryable error.
            Exception: The first error that is not retryable, as it was raised.
        """
        for attempt in range(1, self.backoff.max_attempts + 1):
            try:
                return read()
            except Exception as error:
                if not self._retryable(error):
                    raise
                if attempt == self.backoff.max_attempts:
                    raise RetriesExhausted(operation, attempt, self._describe(error)) from error
                wait = self.backoff.delay(attempt, self._draw(), self._retry_after(error))
                self.delays.append(wait)
                self._sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")
