"""What a ccxt error means for a market-data read: worth another attempt, or not.

Reads are repeated by `tradeloom.runtime.retrying.call_with_retries`; this module says which
errors it repeats and how long the exchange asked to wait; an error is quoted by
`tradeloom.runtime.retrying.describe` (re-exported here).

What is retried: ccxt's ``OperationFailed`` family, which is ccxt's word for "the
request did not get a usable answer, try again": ``NetworkError`` and its subclasses
(``RequestTimeout``, ``ExchangeNotAvailable`` for 5xx, ``DDoSProtection`` and
``RateLimitExceeded`` for 429/418) and the bare ``OperationFailed`` Binance's -1001
"internal error" and -1008 "overloaded" map to. What is not: ``ExchangeError`` (a
bad symbol, a bad interval, bad keys), which the same request would get again.
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tradeloom.runtime.retrying import RetriesExhausted, describe, retry_after_seconds

if TYPE_CHECKING:
    import ccxt

__all__ = [
    "ExchangeUnavailable",
    "describe",
    "is_network_error",
    "retry_after",
    "unresolved_host",
]


class ExchangeUnavailable(RetriesExhausted):
    """The exchange did not answer a read after every attempt (an outage, not bad input)."""


def is_network_error(error: BaseException) -> bool:
    """Return whether a read failed for want of a usable answer (and may be repeated)."""
    import ccxt  # loaded already where a ccxt call failed; imported here for the rest

    return isinstance(error, ccxt.OperationFailed)


def retry_after(error: BaseException, client: ccxt.Exchange) -> float:
    """Return the seconds the exchange asked to wait after ``error`` (0: none)."""
    # ccxt keeps the headers of the last response it read; only a rate-limit answer's
    # Retry-After is about this request (after a timeout they belong to an older one).
    # ccxt maps a 418 and Binance's -1003 to DDoSProtection, a bare 429 and -1015 to
    # RateLimitExceeded, which is not its subclass.
    import ccxt

    if not isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        return 0.0
    return retry_after_seconds(getattr(client, "last_response_headers", None))


_RESOLVE = re.compile(r"Failed to resolve '([^']+)'")
_URL = re.compile(r"\b(?:GET|POST|PUT|DELETE) (\S+)")


def unresolved_host(error: BaseException) -> str | None:
    """Return the host whose name did not resolve behind ``error`` (None: another error).

    A name that does not resolve (the machine is offline, or the exchange's URL is
    wrong) shows as a ``socket.gaierror`` in the chain of causes of ccxt's
    ``NetworkError``; the host is read from urllib3's message, else from the URL ccxt
    names (``binance GET https://api.binance.com/api/v3/exchangeInfo``).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    resolved_failed = False
    host: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            resolved_failed = True
        found = _RESOLVE.search(str(current))
        if found is not None and host is None:
            host = found.group(1)
        current = current.__cause__ or current.__context__
    if not resolved_failed:
        return None
    if host is None:
        url = _URL.search(str(error))
        host = (urlsplit(url.group(1)).hostname if url else None) or "the exchange"
    return host
