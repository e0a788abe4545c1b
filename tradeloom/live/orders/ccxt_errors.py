"""What a ccxt exception means for an order: refused, unknown, or worth another read.

ccxt splits its errors into ``ExchangeError`` (the venue answered and said no) and
``OperationFailed`` / ``NetworkError`` (no usable answer). That split is not the
one a trading system needs, because some venue refusals arrive as network errors
and one "refusal" means the venue already has the order:

==========================================  ==========  =============================
ccxt exception (Binance cause)              submission  read
==========================================  ==========  =============================
RequestTimeout (timeout, 504, -1007)        unknown     retried
NetworkError (dropped connection)           unknown     retried
ExchangeNotAvailable, OnMaintenance (5xx)   unknown     retried
OperationFailed (-1000, -1001, -1006,       unknown     retried
-1008), BadResponse, NullResponse
DDoSProtection (429 / -1003, 418 ban)       rejected    retried (after Retry-After)
RateLimitExceeded (-1015 too many orders)   rejected    retried (after Retry-After)
InvalidNonce (-1021 outside recvWindow)     rejected    retried
DuplicateOrderId, InvalidOrder "Duplicate   unknown     not retried
order sent." (-2010)
any other ExchangeError (InsufficientFunds  rejected    not retried
-2010, BadRequest -1013 NOTIONAL,
InvalidOrder -1013 LOT_SIZE, MarketClosed,
AuthenticationError, OrderNotFound...)
anything else (not a ccxt error)            unknown     not retried
==========================================  ==========  =============================

*Unknown* means the request may have reached the matching engine: Binance says
so of 5xx answers and of -1006/-1007, and a timeout or a dropped connection
cannot tell. A rate limit, an ill-timed signature (-1021) or a refused key is
checked before the matching engine sees the order, so it is a rejection even
though ccxt files it under ``NetworkError``. A duplicate client order id means the
venue holds an order with this very id (sent before a crash, say): the order is
unknown until a lookup by client order id adopts it; calling it rejected would
orphan a live order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

import ccxt

__all__ = ["SubmitOutcome", "VenueMessage", "is_retryable_read", "submission_outcome"]

SubmitOutcome = Literal["rejected", "unknown"]
"""What a failed order submission leaves: a refusal, or an order that may exist."""

_REFUSED_NETWORK_ERRORS = (ccxt.DDoSProtection, ccxt.RateLimitExceeded, ccxt.InvalidNonce)
_DUPLICATE = re.compile(r"duplicate order", re.IGNORECASE)
_BODY = re.compile(r"\{.*\}", re.DOTALL)
_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


def submission_outcome(error: BaseException) -> SubmitOutcome:
    """Return what an exception from ``create_order`` says about the order."""
    if isinstance(error, _REFUSED_NETWORK_ERRORS):
        return "rejected"
    if isinstance(error, ccxt.DuplicateOrderId) or (
        isinstance(error, ccxt.InvalidOrder) and _DUPLICATE.search(str(error))
    ):
        return "unknown"
    if isinstance(error, ccxt.ExchangeError):
        return "rejected"
    return "unknown"


def is_retryable_read(error: BaseException) -> bool:
    """Return whether a failed read (a fetch, a cancel) may be tried again.

    Only errors that say nothing about the request itself: the network, the
    venue's load, its rate limit, the signature's time window.
    """
    return isinstance(error, ccxt.OperationFailed)


@dataclass(frozen=True)
class VenueMessage:
    """The venue's own code and message inside a ccxt exception.

    Attributes:
        error: The ccxt exception's class name (``InsufficientFunds``).
        code: The venue's error code (Binance ``-2010``), None when the answer had none.
        message: The venue's message, or ccxt's text when the answer had none.
    """

    error: str
    code: int | None
    message: str

    @classmethod
    def of(cls, error: BaseException, last_body: str | None = None) -> VenueMessage:
        """Read the venue's code and message out of a ccxt exception.

        ccxt puts the venue's JSON body into some messages and only the venue's
        message into others (Binance's -2010 arrives as "binance Account has
        insufficient balance..."). ``last_body``, the client's last HTTP response,
        supplies the code then; it is trusted only when its message is the one in
        the exception, because a timeout leaves the previous request's body there.
        URLs lose their query strings: a signed request's ``signature`` stays out of
        journals and logs.
        """
        text = _QUERY.sub(r"\1", " ".join(str(error).split()))
        code, message = _code_and_message(text)
        if code is None and last_body:
            body_code, body_message = _code_and_message(last_body)
            if body_code is not None and body_message and body_message in text:
                code, message = body_code, body_message
        if message is None:
            message = text
        return cls(type(error).__name__, code, message)

    def __str__(self) -> str:
        code = "" if self.code is None else f" {self.code}"
        return f"{self.error}{code}: {self.message}"


def _code_and_message(text: str) -> tuple[int | None, str | None]:
    found = _BODY.search(text)
    if found is None:
        return None, None
    try:
        body = json.loads(found.group())
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    raw_code = body.get("code")
    code = None
    if isinstance(raw_code, int | str) and str(raw_code).lstrip("-").isdigit():
        code = int(raw_code)
    raw_message = body.get("msg", body.get("message"))
    message = raw_message if isinstance(raw_message, str) and raw_message else None
    return code, message
