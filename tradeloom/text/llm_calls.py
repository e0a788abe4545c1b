"""Calls to a model within their bounds: so many at once, so many a minute, each with a
timeout and retried with exponential backoff.

A request that gets no answer on any attempt is an outcome with its reason, never an
exception: the document it asked about is NaN and the run journals why. Retries
follow `tradeloom.runtime.retrying` (the data layer's policy): the wait before retry
``n`` is ``backoff * 2**(n-1)`` capped, shortened by up to half at random, and never
shorter than a ``Retry-After`` the server sent. Every attempt, retries included, waits
its turn at the rate gate, so a server that answers 429 is not hammered faster.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from tradeloom.runtime.retrying import RetriesExhausted, RetryPolicy, call_with_retries, describe
from tradeloom.text.llm_client import CallBounds, CallFailed, ChatClient, ChatRequest

__all__ = ["CallOutcome", "RateGate", "call_all"]


@dataclass(frozen=True)
class CallOutcome:
    """What one request came to.

    Attributes:
        index: Its position in the requests given.
        answer: The answer's text, None where there was none.
        reason: ``""`` with an answer, else why none (one line).
    """

    index: int
    answer: str | None
    reason: str


class RateGate:
    """Space the starts of requests ``60 / per_minute`` seconds apart, across threads.

    Args:
        per_minute: Requests per minute at most.
        clock: Monotonic seconds (tests give a fake one).
        sleep: Waits this many seconds.
    """

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = -float("inf")

    def wait(self) -> None:
        """Return when the next request may start (its slot is taken)."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


def call_all(
    client: ChatClient,
    requests: Sequence[ChatRequest],
    *,
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
) -> Iterator[CallOutcome]:
    """Send every request within the client's bounds; yield each outcome as it comes.

    Args:
        client: Sends one attempt.
        requests: The questions; outcomes carry their index.
        sleep: Waits (rate gate and backoff).
        draw: Uniform draws in [0, 1) for the backoff's jitter.

    Yields:
        One `CallOutcome` per request, in the order they finish.
    """
    if not requests:
        return
    bounds: CallBounds = client.bounds
    client.open()  # before the gate's first slot: its time is not a slot's
    gate = RateGate(bounds.requests_per_minute, sleep=sleep)
    policy = RetryPolicy(
        max_attempts=bounds.max_attempts,
        base_delay=bounds.backoff_seconds,
        max_delay=bounds.max_backoff_seconds,
    )

    def attempt(request: ChatRequest) -> str:
        gate.wait()
        return client.send(request)

    def one(index: int) -> CallOutcome:
        request = requests[index]
        try:
            answer = call_with_retries(
                lambda: attempt(request),
                what="llm request",
                policy=policy,
                is_retryable=lambda e: isinstance(e, CallFailed) and e.retryable,
                retry_after=lambda e: e.retry_after if isinstance(e, CallFailed) else 0.0,
                describe=_reason,
                sleep=sleep,
                draw=draw,
            )
        except RetriesExhausted as exc:
            last = _reason(exc.__cause__) if exc.__cause__ is not None else "unknown"
            return CallOutcome(index, None, f"no answer after {exc.attempts} attempts: {last}")
        except Exception as exc:  # a refusal, or a third-party client's own error
            return CallOutcome(index, None, _reason(exc))
        return CallOutcome(index, answer, "")

    workers = min(bounds.concurrency, len(requests))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
        futures = [pool.submit(one, i) for i in range(len(requests))]
        for future in as_completed(futures):
            yield future.result()


def _reason(error: BaseException) -> str:
    return error.reason if isinstance(error, CallFailed) else describe(error)
