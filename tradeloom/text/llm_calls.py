"""Calls to a model within their bounds: so many at once, so many a minute, each with a
timeout and retried with exponential backoff.

A request that gets no answer on any attempt is an outcome with its reason, never an
exception: the document it asked about is NaN and the run journals why. Retries
follow `tradeloom.runtime.retrying` (the data layer's policy): the wait before retry
``n`` is ``backoff * 2**(n-1)`` capped, shortened by up to half at random, and never
shorter than a ``Retry-After`` the server sent. Every attempt, retries included, waits
its turn at the rate gate, so a server that answers 429 is not hammered faster.

A server that cannot be reached at all (the connection refused, its name unresolved:
``CallFailed(unreachable=True)``) is the business of a `Breaker`, not of each document's
patience: after ``max_attempts`` such failures in a row, across documents, it opens and
no request is sent for ``max_backoff_seconds``; the requests cut short say the endpoint
is unreachable at once. A timeout, a 429 or a 5xx is retried as above and is no
refusal; an answer closes the breaker. The retries of a refused connection are logged at
debug only: the breaker's opening is told once, by whoever holds it (`LlmScorer`).
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

__all__ = ["Breaker", "CallOutcome", "RateGate", "breaker_of", "call_all"]


@dataclass(frozen=True)
class CallOutcome:
    """What one request came to.

    Attributes:
        index: Its position in the requests given.
        answer: The answer's text, None where there was none.
        reason: ``""`` with an answer, else why none (one line).
        unreachable: The server could not be reached for it: its last attempt was refused,
            or the open breaker sent none.
    """

    index: int
    answer: str | None
    reason: str
    unreachable: bool = False


class Breaker:
    """Stop asking a server that cannot be reached, for a while (a circuit breaker).

    Closed, it lets every request through and counts the connections refused in a row
    (an answer, or a refusal such as a 400, resets the count; a timeout, a 5xx or a
    dropped connection leaves it as it is). At ``after`` refusals it opens: for
    ``cool_down`` seconds no request is sent. Then requests go again (half open): the
    first refusal opens it again at once, an answer closes it. Shared by the threads of
    one client, and kept across calls (a live run's ticks).

    Args:
        after: Refusals in a row that open it (a client's ``max_attempts``: the patience
            one document is given).
        cool_down: Seconds it stays open (a client's ``max_backoff_seconds``: the longest
            it waits before asking again).
        clock: Monotonic seconds (tests give a fake one).

    Attributes:
        last: The last refusal's reason (``cannot connect to URL: ...``).
        opened: How many times it opened.
    """

    def __init__(
        self, after: int, cool_down: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if after < 1 or cool_down < 0:
            raise ValueError(f"need after >= 1 and cool_down >= 0, was {after}, {cool_down}")
        self.after = after
        self.cool_down = cool_down
        self._clock = clock
        self._lock = threading.Lock()
        self._refusals = 0
        self._until = -float("inf")
        self.last = ""
        self.opened = 0

    @property
    def is_open(self) -> bool:
        """Whether requests are held back now."""
        with self._lock:
            return self._refusals >= self.after and self._clock() < self._until

    def refused(self, reason: str) -> None:
        """Count a request that could not reach the server; open at ``after`` in a row."""
        with self._lock:
            now = self._clock()
            was_open = self._refusals >= self.after and now < self._until
            self._refusals += 1
            self.last = reason
            if self._refusals >= self.after:
                self._until = now + self.cool_down
                # a request sent before it opened, refused while it is open: not an opening
                self.opened += not was_open

    def reached(self) -> None:
        """Note a request the server answered: the count starts again (closed)."""
        with self._lock:
            self._refusals = 0

    def not_asked(self) -> str:
        """Return the reason of a request the open breaker held back."""
        return (
            f"endpoint unreachable, not asked: {self.last} ({self.after} times in a row; "
            f"asked again {self.cool_down:g} s after the last)"
        )


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
    breaker: Breaker | None = None,
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
) -> Iterator[CallOutcome]:
    """Send every request within the client's bounds; yield each outcome as it comes.

    Args:
        client: Sends one attempt.
        requests: The questions; outcomes carry their index.
        breaker: Holds requests back while the server cannot be reached (None: a new one
            for this call, from the client's bounds: `breaker_of`).
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

    held = breaker_of(bounds) if breaker is None else breaker

    def attempt(request: ChatRequest) -> str:
        if held.is_open:  # before the gate: a held-back request takes no slot
            raise CallFailed(held.not_asked(), retryable=False, unreachable=True)
        gate.wait()
        try:
            answer = client.send(request)
        except CallFailed as exc:
            if exc.unreachable:
                held.refused(exc.reason)
            elif not exc.retryable:  # the server answered, with a refusal
                held.reached()
            raise  # a timeout, a 5xx, a dropped connection: neither
        held.reached()
        return answer

    def retryable(error: BaseException) -> bool:
        if not isinstance(error, CallFailed) or not error.retryable:
            return False
        return not (error.unreachable and held.is_open)  # the breaker's to retry now

    def one(index: int) -> CallOutcome:
        request = requests[index]
        try:
            answer = call_with_retries(
                lambda: attempt(request),
                what="llm request",
                policy=policy,
                is_retryable=retryable,
                retry_after=lambda e: e.retry_after if isinstance(e, CallFailed) else 0.0,
                describe=_reason,
                sleep=sleep,
                draw=draw,
                warn=lambda e: not (isinstance(e, CallFailed) and e.unreachable),
            )
        except RetriesExhausted as exc:
            cause = exc.__cause__
            last = _reason(cause) if cause is not None else "unknown"
            return CallOutcome(
                index,
                None,
                f"no answer after {exc.attempts} attempts: {last}",
                isinstance(cause, CallFailed) and cause.unreachable,
            )
        except Exception as exc:  # a refusal, or a third-party client's own error
            unreachable = isinstance(exc, CallFailed) and exc.unreachable
            return CallOutcome(index, None, _reason(exc), unreachable)
        return CallOutcome(index, answer, "")

    workers = min(bounds.concurrency, len(requests))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
        futures = [pool.submit(one, i) for i in range(len(requests))]
        for future in as_completed(futures):
            yield future.result()


def breaker_of(bounds: CallBounds) -> Breaker:
    """Return the breaker of a client with ``bounds``: open after ``max_attempts``
    refusals in a row, for ``max_backoff_seconds``."""
    return Breaker(bounds.max_attempts, bounds.max_backoff_seconds)


def _reason(error: BaseException) -> str:
    return error.reason if isinstance(error, CallFailed) else describe(error)
