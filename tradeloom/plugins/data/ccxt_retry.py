"""Retry reads from an exchange on network errors, with capped exponential backoff.

Only reads go through here (bars, the exchange's clock, its markets): a read can be
repeated without effect, an order cannot, so order submission never uses this.

What is retried: ccxt's ``OperationFailed`` family, which is ccxt's word for "the
request did not get a usable answer, try again": ``NetworkError`` and its subclasses
(``RequestTimeout``, ``ExchangeNotAvailable`` for 5xx, ``DDoSProtection`` and
``RateLimitExceeded`` for 429/418) and the bare ``OperationFailed`` Binance's -1001
"internal error" and -1008 "overloaded" map to. What is not: ``ExchangeError`` (a
bad symbol, a bad interval, bad keys), which the same request would get again.

The waits are `RetryPolicy`'s: capped exponential with jitter, and never shorter than
the ``Retry-After`` the exchange sent with a 429.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import ccxt
import structlog

from tradeloom.plugins.data.retry_policy import RetryPolicy

__all__ = ["ExchangeUnavailable", "call_with_retries", "describe"]

_log = structlog.get_logger("tradeloom.data")

T = TypeVar("T")

_MAX_MESSAGE = 200


class ExchangeUnavailable(RuntimeError):
    """The exchange did not answer a read after every attempt (an outage, not bad input).

    Args:
        message: One line: what was read, how many attempts, the last error.
        attempts: How many requests were made.
    """

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


def call_with_retries(
    read: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
    client: ccxt.Exchange | None = None,
) -> T:
    """Call ``read`` until it succeeds, retrying network failures as `RetryPolicy` says.

    Args:
        read: The request, e.g. ``lambda: client.fetch_ohlcv(...)``.
        what: What is read, for the log and the error (``binance BTC/USDT 1h bars
            from 2024-01-01T00:00Z``).
        policy: Attempts and delays.
        sleep: Waits this many seconds (injected by tests).
        draw: Uniform draws in [0, 1) for the jitter (injected by tests).
        client: The client ``read`` uses: its last response headers give the
            ``Retry-After`` of a 429.

    Raises:
        ExchangeUnavailable: Every attempt failed on the network.
        ccxt.ExchangeError: The exchange refused the request (not retried).
    """
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return read()
        except ccxt.OperationFailed as error:
            if attempt == policy.max_attempts:
                noun = "attempt" if attempt == 1 else "attempts"
                raise ExchangeUnavailable(
                    f"{what}: no answer after {attempt} {noun}; last error {describe(error)}",
                    attempt,
                ) from error
            wait = policy.delay(attempt, draw(), _retry_after(error, client))
            _log.warning(
                "exchange_retry",
                what=what,
                attempt=attempt,
                error=describe(error),
                wait_seconds=round(wait, 3),
            )
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def describe(error: BaseException) -> str:
    """Return an exception as one short line: its class and the start of its message."""
    text = " ".join(str(error).split())
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def _retry_after(error: BaseException, client: ccxt.Exchange | None) -> float:
    # ccxt keeps the headers of the last response it read; only a rate-limit answer's
    # Retry-After is about this request (after a timeout they belong to an older one).
    if client is None or not isinstance(error, ccxt.DDoSProtection):
        return 0.0
    headers = getattr(client, "last_response_headers", None) or {}
    value = next((v for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0  # an HTTP date: rare on exchanges; the backoff applies
    return max(0.0, min(seconds, 3600.0))
