"""Repeat a read that failed for want of an answer: the policy and the loop.

Only reads go through here (bars, balances, order lookups, and cancels, which are
idempotent): a read can be repeated without effect, an order submission cannot, so
it never does.

The wait before retry ``n`` (1-based) is ``min(max_delay, base_delay * 2**(n-1))``,
shortened by up to ``jitter`` of itself at random, so that many clients hit by the same
outage do not come back in lockstep ("equal jitter" at the default 0.5), and never
shorter than a ``Retry-After`` the exchange asked for, even when that is longer than
``max_delay``: retrying a Binance 429 early earns a 418 ban.

Which errors are worth another attempt, and what ``Retry-After`` came with one, is
the caller's to say (the data layer and the venue classify ccxt's errors). This module
does not import ccxt, so that validating a strategy file does not either.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from tradeloom.runtime.lazy import logger

__all__ = [
    "RetriesExhausted",
    "RetryPolicy",
    "call_with_retries",
    "describe",
    "retry_after_seconds",
]

_log = logger("tradeloom.runtime.retrying")

T = TypeVar("T")

# A bound on a header, not on the wait: an hour is longer than any rate-limit window
# an exchange documents, and a garbled value must not park a read for days.
_LONGEST_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to repeat a read that got no answer.

    Attributes:
        max_attempts: Requests per read, the first included (1: never retry).
        base_delay: Seconds before the first retry, before jitter.
        max_delay: Cap on the backoff (a longer ``Retry-After`` is still honoured).
        jitter: Fraction in [0, 1] by which a wait is shortened at random.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, was {self.max_attempts}")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError(
                f"need 0 < base_delay <= max_delay, was {self.base_delay} and {self.max_delay}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], was {self.jitter}")

    def delay(self, retry: int, draw: float, retry_after: float = 0.0) -> float:
        """Return the seconds to wait before retry number ``retry`` (1-based).

        Args:
            retry: 1 for the wait after the first failure.
            draw: A uniform draw in [0, 1): how much of the jitter to take.
            retry_after: The exchange's ``Retry-After``, a floor on the wait that
                ``max_delay`` does not cap.
        """
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return max(backoff * (1.0 - self.jitter * draw), retry_after)


class RetriesExhausted(RuntimeError):
    """A read got no answer on any attempt; ``__cause__`` is the last error.

    Args:
        operation: What was read (``fetch_order``, ``data: binance BTC/USDT 1h: bars
            from 2024-01-01T00:00Z``).
        attempts: How many requests were made.
        last: The last error, described; it is quoted on one line.

    Attributes:
        operation: What was read.
        attempts: How many requests were made.
    """

    def __init__(self, operation: str, attempts: int, last: str) -> None:
        noun = "attempt" if attempts == 1 else "attempts"
        super().__init__(
            f"{operation}: no answer after {attempts} {noun}; last error {' '.join(last.split())}"
        )
        self.operation = operation
        self.attempts = attempts


def call_with_retries(
    read: Callable[[], T],
    *,
    what: str | Callable[[], str],
    policy: RetryPolicy,
    is_retryable: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float] = lambda _: 0.0,
    describe: Callable[[BaseException], str] = lambda e: f"{type(e).__name__}: {e}",
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
    exhausted: type[RetriesExhausted] = RetriesExhausted,
    warn: Callable[[BaseException], bool] = lambda _: True,
) -> T:
    """Call ``read`` until it succeeds, the error is not retryable, or attempts run out.

    Args:
        read: The request, e.g. ``lambda: client.fetch_ohlcv(...)``.
        what: What is read, for the log and the error; a callable is asked only then
            (a read that succeeds at once formats nothing).
        policy: Attempts and delays.
        is_retryable: Whether an error is worth another attempt.
        retry_after: The seconds the exchange asked to wait after an error (0: none).
        describe: Turns an error into the line the log and ``exhausted`` quote.
        sleep: Waits this many seconds (tests record the waits instead).
        draw: Uniform draws in [0, 1) for the jitter.
        exhausted: The error raised when every attempt failed.
        warn: Whether a retry after an error is logged as a warning; else at debug (the
            caller tells of those failures itself, once, not at every attempt).

    Raises:
        RetriesExhausted: Every attempt failed with a retryable error (``exhausted``).
        Exception: The first error that is not retryable, as it was raised.
    """
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return read()
        except Exception as error:
            if not is_retryable(error):
                raise
            said = what if isinstance(what, str) else what()
            if attempt == policy.max_attempts:
                raise exhausted(said, attempt, describe(error)) from error
            wait = policy.delay(attempt, draw(), retry_after(error))
            log = _log.warning if warn(error) else _log.debug
            log(
                "read_retry",
                what=said,
                attempt=attempt,
                error=describe(error),
                wait_seconds=round(wait, 3),
            )
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def retry_after_seconds(headers: Mapping[str, object] | None) -> float:
    """Return the seconds a response's ``Retry-After`` header asks for (0: none).

    The header name is matched in any case. An HTTP date (rare from exchanges) or a
    malformed value counts as none, so the backoff applies; a value above an hour is
    read as an hour.
    """
    value = next((v for k, v in (headers or {}).items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(str(value)) if value is not None else 0.0
    except ValueError:
        return 0.0
    return max(0.0, min(seconds, _LONGEST_RETRY_AFTER))


_MAX_MESSAGE = 200


def describe(error: BaseException) -> str:
    """Return an exception as one short line: its class and the start of its message."""
    text = " ".join(str(error).split())
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    name = type(error).__name__
    return f"{name}: {text}" if text else name
