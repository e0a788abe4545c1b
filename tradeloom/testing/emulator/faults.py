"""Faults the emulator injects on demand, and the schedule that says which call gets which.

A fault is a frozen value naming what goes wrong with one request. Most answer
instead of the venue (`RateLimited`, `ServerError`, `Reject`) or swallow the
request (`Timeout`, `DropConnection`); ``after_accept=True`` lets the venue act
on the request first and then loses the answer, which is the case a trading
system must survive without sending the order twice. `Latency`, `PartialFill`
and `DoubledTrade` modify a request or its answer and combine with any other fault.

Routes are written ``"METHOD /path"`` (``"POST /api/v3/order"``), ``"/path"`` for
any method, or ``"*"`` for every request. A route the emulator does not serve is
refused when the fault is scheduled, with the closest known routes, so a typo
cannot silently schedule nothing.

What ccxt's ``binance`` raises (observed with ccxt 4.5; asserted class for class in
``tests/testing/test_emulator_faults.py``). Network-side errors derive from
``ccxt.NetworkError``, the venue's refusals from ``ccxt.ExchangeError``:

=================================================  ===============================
fault (or the venue's own answer)                  ccxt exception
=================================================  ===============================
Timeout, Latency beyond the client's timeout       RequestTimeout
DropConnection                                     NetworkError (the base class)
RateLimited (429 + -1003), Reject(status=418)      DDoSProtection (not
                                                   RateLimitExceeded: ccxt maps the
                                                   HTTP status before the code)
ServerError 500/502/503 (plain body)               ExchangeNotAvailable
ServerError 504                                    RequestTimeout
ServerError with code -1001 / -1008                OperationFailed
-2010 insufficient balance                         InsufficientFunds (by message)
-2010 Duplicate order sent.                        InvalidOrder
-1013 LOT_SIZE / PRICE_FILTER                      InvalidOrder
-1013 NOTIONAL                                     BadRequest
-1013 Market is closed.                            MarketClosed
-2011 (cancel), -2013 (query)                      OrderNotFound
-1022 signature, -2014 / -2015 API key             AuthenticationError
-2015 after a successful private call              DDoSProtection (ccxt's reading:
                                                   a temporary ban)
-1021 timestamp outside recvWindow                 InvalidNonce (a NetworkError)
-1015 too many orders                              RateLimitExceeded
unserved endpoint (404)                            ExchangeNotAvailable
=================================================  ===============================
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from tradeloom.suggestions import closest

__all__ = [
    "BatchFault",
    "DoubledTrade",
    "DropConnection",
    "Fault",
    "FaultSchedule",
    "Latency",
    "PartialFill",
    "RateLimited",
    "Reject",
    "ServerError",
    "Timeout",
]


@dataclass(frozen=True)
class Latency:
    """Hold the request this long before the venue reads it.

    The venue still acts on it afterwards, even if the client has given up
    meanwhile: a real exchange does not know the client stopped waiting.
    """

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError(f"Latency.seconds must be >= 0, was {self.seconds}")


@dataclass(frozen=True)
class Timeout:
    """Never answer: hold the connection until the client hangs up, then close it.

    Attributes:
        after_accept: Let the venue act on the request first (the order IS created),
            then lose the answer; otherwise the request is lost on the way in.
        max_seconds: Give up holding after this long, for clients without a timeout.
    """

    after_accept: bool = False
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_seconds <= 0:
            raise ValueError(f"Timeout.max_seconds must be > 0, was {self.max_seconds}")


@dataclass(frozen=True)
class DropConnection:
    """Close the connection without an answer.

    Attributes:
        after_accept: Let the venue act on the request first, then drop the answer.
    """

    after_accept: bool = False


@dataclass(frozen=True)
class RateLimited:
    """Answer HTTP 429 with ``Retry-After`` and Binance's -1003, as its rate limiter does."""

    retry_after: int = 1

    def __post_init__(self) -> None:
        if self.retry_after < 0:
            raise ValueError(f"RateLimited.retry_after must be >= 0, was {self.retry_after}")


@dataclass(frozen=True)
class ServerError:
    """Answer an HTTP 5xx.

    Attributes:
        status: HTTP status, 500 to 599.
        after_accept: Let the venue act on the request first. Binance documents that
            a 5xx leaves the execution status unknown: it may have succeeded.
        code: A Binance error code for a JSON body; None for a plain-text body, as a
            load balancer or CDN in front of the API answers.
        msg: The message that goes with ``code``.
    """

    status: int = 503
    after_accept: bool = False
    code: int | None = None
    msg: str = ""

    def __post_init__(self) -> None:
        if not 500 <= self.status <= 599:
            raise ValueError(f"ServerError.status must be 5xx, was {self.status}")


@dataclass(frozen=True)
class Reject:
    """Answer a Binance error of your choosing instead of acting on the request.

    Attributes:
        code: Binance error code (``-2010``).
        msg: Binance error message, verbatim: ccxt matches some messages exactly.
        status: HTTP status (Binance answers 4xx errors with 400, key errors with 401).
    """

    code: int
    msg: str
    status: int = 400


@dataclass(frozen=True)
class PartialFill:
    """Fill the order this request creates at most ``fraction`` of its quantity per bar."""

    fraction: float

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"PartialFill.fraction must be in (0, 1], was {self.fraction}")

    @property
    def decimal(self) -> Decimal:
        """The fraction as an exact decimal (of its shortest repr)."""
        return Decimal(repr(self.fraction))


@dataclass(frozen=True)
class DoubledTrade:
    """Answer with the last trade twice, the copy under a new trade id (a trades query's
    list, or the fills of a new order's answer): an exchange's bug, a fill the order never
    had. A trading system must refuse it (the order
    would fill more than its quantity), not count it."""


@dataclass(frozen=True)
class BatchFault:
    """Act on a batch request's children one by one, as a venue that fails between them
    (``POST /fapi/v1/batchOrders``, ``DELETE /fapi/v1/batchOrders``).

    Attributes:
        refuse: The children (0-based, in the request's order) the venue refuses, each
            answered in its place with ``code`` and ``msg``; the others are acted on.
        cut_after: Act on this many children, then drop the connection without an
            answer: the rest never reach the venue (None: act on all and answer).
        code: The refused children's Binance error code.
        msg: Their message, verbatim.
    """

    refuse: tuple[int, ...] = ()
    cut_after: int | None = None
    code: int = -2019
    msg: str = "Margin is insufficient."

    def __post_init__(self) -> None:
        if self.cut_after is not None and self.cut_after < 0:
            raise ValueError(f"BatchFault.cut_after must be >= 0, was {self.cut_after}")
        if any(i < 0 for i in self.refuse):
            raise ValueError(f"BatchFault.refuse holds children's indexes, was {self.refuse}")


Fault = (
    Latency
    | Timeout
    | DropConnection
    | RateLimited
    | ServerError
    | Reject
    | PartialFill
    | DoubledTrade
    | BatchFault
)
"""Anything that can go wrong with one request."""

_MODIFIERS = (Latency, PartialFill, DoubledTrade, BatchFault)


class FaultSchedule:
    """Which faults the next requests get; safe to change while requests run.

    For each request the first of these that matches wins: a fault planned for
    that call number (`on_call`), the queue of one-shot faults (`next`), a
    standing fault (`always`). Within each, the most specific route wins
    (``"POST /path"`` over ``"/path"`` over ``"*"``).

    Args:
        routes: The ``"METHOD /path"`` routes the emulator serves.
    """

    def __init__(self, routes: Iterable[str]) -> None:
        self._routes = frozenset(routes)
        self._lock = threading.Lock()
        self._queued: dict[str, deque[tuple[Fault, ...]]] = defaultdict(deque)
        self._standing: dict[str, tuple[Fault, ...]] = {}
        self._planned: dict[tuple[str, int], tuple[Fault, ...]] = {}
        self._calls: dict[str, int] = defaultdict(int)

    def next(self, route: str, *faults: Fault, times: int = 1) -> None:
        """Give the next ``times`` requests to ``route`` these faults, together.

        Example:
            ``emulator.faults.next("POST /api/v3/order", Timeout(after_accept=True))``
        """
        key, combined = self._check(route, faults)
        if times < 1:
            raise ValueError(f"times must be >= 1, was {times}")
        with self._lock:
            self._queued[key].extend([combined] * times)

    def always(self, route: str, *faults: Fault) -> None:
        """Give every request to ``route`` these faults until `clear`."""
        key, combined = self._check(route, faults)
        with self._lock:
            self._standing[key] = combined

    def on_call(self, route: str, call: int, *faults: Fault) -> None:
        """Give the ``call``-th request to ``route`` (1 = the first the emulator sees)."""
        key, combined = self._check(route, faults)
        if call < 1:
            raise ValueError(f"call numbers start at 1, was {call}")
        with self._lock:
            self._planned[(key, call)] = combined

    def clear(self) -> None:
        """Forget every fault not yet used (call counts keep running)."""
        with self._lock:
            self._queued.clear()
            self._standing.clear()
            self._planned.clear()

    def take(self, method: str, path: str) -> tuple[Fault, ...]:
        """Count a request and return the faults it gets (empty when none)."""
        keys = (f"{method} {path}", path, "*")
        with self._lock:
            for key in keys:
                self._calls[key] += 1
            for key in keys:
                planned = self._planned.pop((key, self._calls[key]), None)
                if planned is not None:
                    return planned
            for key in keys:
                queue = self._queued.get(key)
                if queue:
                    return queue.popleft()
            for key in keys:
                if key in self._standing:
                    return self._standing[key]
        return ()

    def _check(self, route: str, faults: tuple[Fault, ...]) -> tuple[str, tuple[Fault, ...]]:
        key = _normalize(route)
        known = self._routes | {r.split(" ", 1)[1] for r in self._routes} | {"*"}
        if key not in known:
            near = closest(key, sorted(known))
            hint = f"; did you mean '{near}'?" if near is not None else ""
            raise ValueError(f"the emulator serves no route '{route}'{hint}")
        if not faults:
            raise ValueError("name at least one fault, e.g. Timeout(after_accept=True)")
        terminal = [f for f in faults if not isinstance(f, _MODIFIERS)]
        if len(terminal) > 1:
            raise ValueError(
                f"one request can get one of Timeout, DropConnection, RateLimited, ServerError "
                f"and Reject; got {', '.join(type(f).__name__ for f in terminal)}"
            )
        return key, tuple(faults)


def _normalize(route: str) -> str:
    text = " ".join(route.split())
    if " " in text:
        method, path = text.split(" ", 1)
        return f"{method.upper()} {path}"
    return text
