"""Order-book snapshots from ccxt: fetch (REST) or watch (ccxt.pro), and their table.

A snapshot is the top ``depth`` levels of each side of one market's book at one
time. `fetch_book` reads one through ``fetch_order_book`` with the data layer's
retries on network errors; `watch_book` awaits the next one from a ccxt.pro
client's ``watch_order_book``. Both stamp it with the exchange's time when the
answer carries one, else with the local time of receipt (Binance spot's REST
depth carries none): never earlier than the book existed.

`snapshots_frame` lays snapshots out as the table ``tradeloom data record-book``
writes and ``data.order_book`` reads (`tradeloom.plugins.data.order_book`): one
row per snapshot with ``timestamp`` (UTC), ``symbol`` and, for each level ``i``
from 0 (the best), ``bid_price_i``, ``bid_size_i``, ``ask_price_i``,
``ask_size_i``; a side with fewer than ``depth`` levels leaves NaN.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tradeloom.domain import BookSnapshot
from tradeloom.errors import DataError
from tradeloom.plugins.data.ccxt_retry import (
    ExchangeUnavailable,
    describe,
    is_network_error,
    retry_after,
)
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.runtime.retrying import RetryPolicy, call_with_retries

if TYPE_CHECKING:
    import ccxt

__all__ = [
    "BOOK_FIELDS",
    "BookSnapshot",
    "fetch_book",
    "level_column",
    "snapshot_from_ccxt",
    "snapshots_frame",
    "watch_book",
]

BOOK_FIELDS = ("bid_price", "bid_size", "ask_price", "ask_size")
"""The four values of a level, in the order of a table's columns."""

Clock = Callable[[], int]
"""Milliseconds since the epoch (UTC) now."""


def level_column(field: str, level: int) -> str:
    """Return the table column of ``field`` (one of `BOOK_FIELDS`) at ``level`` (0: best)."""
    return f"{field}_{level}"


def snapshot_from_ccxt(
    book: Mapping[str, Any], symbol: str, depth: int, received_ms: int
) -> BookSnapshot:
    """Return the top ``depth`` levels of a ccxt order book structure.

    Raises:
        DataError: A level is not a pair of finite numbers (a bad server response).
    """
    stamp = book.get("timestamp")
    time_ms = int(stamp) if isinstance(stamp, int | float) and stamp > 0 else received_ms
    return BookSnapshot(
        symbol,
        time_ms,
        _levels(book.get("bids"), "bids", symbol, depth),
        _levels(book.get("asks"), "asks", symbol, depth),
    )


def fetch_book(
    client: ccxt.Exchange,
    symbol: str,
    depth: int,
    *,
    clock: Clock | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> BookSnapshot:
    """Read one snapshot through ``fetch_order_book``, retrying network errors.

    Args:
        client: A ccxt client (markets are loaded on first use).
        symbol: Unified symbol.
        depth: Levels a side to ask for and keep.
        clock: The time of receipt, when the answer has no time (default: the
            client's ``milliseconds``).
        policy: Attempts and delays (the data layer's defaults when None).
        sleep: Waits between attempts.

    Raises:
        ExchangeUnavailable: Every attempt failed with a network error.
        ccxt.ExchangeError: The exchange refused the request (a bad symbol).
        DataError: The answer is not an order book.
    """
    now = clock or client.milliseconds
    book = call_with_retries(
        lambda: client.fetch_order_book(symbol, limit=depth),
        what=f"order book of {symbol}",
        policy=policy or RetryPolicy(),
        is_retryable=is_network_error,
        retry_after=lambda error: retry_after(error, client),
        describe=describe,
        sleep=sleep,
        exhausted=ExchangeUnavailable,
    )
    return snapshot_from_ccxt(book, symbol, depth, int(now()))


async def watch_book(
    client: Any, symbol: str, depth: int, *, clock: Clock | None = None
) -> BookSnapshot:
    """Await the next snapshot from a ccxt.pro client's ``watch_order_book``.

    Reconnection is ccxt.pro's; a caller that wants a fallback polls `fetch_book`.

    Raises:
        ccxt.NotSupported: The exchange has no order-book stream.
        DataError: The update is not an order book.
    """
    if not client.has.get("watchOrderBook"):
        import ccxt

        raise ccxt.NotSupported(f"{client.id} has no order-book stream; poll fetch_book")
    book = await client.watch_order_book(symbol, limit=depth)
    now = clock or client.milliseconds
    return snapshot_from_ccxt(book, symbol, depth, int(now()))


def snapshots_frame(snapshots: Sequence[BookSnapshot], depth: int) -> pd.DataFrame:
    """Return snapshots as the book table: ``timestamp``, ``symbol``, then each level's fields."""
    data: dict[str, Any] = {
        "timestamp": pd.to_datetime([s.time_ms for s in snapshots], unit="ms", utc=True),
        "symbol": pd.array([s.symbol for s in snapshots], dtype="string"),
    }
    for level in range(depth):
        for side, fields in (("bids", BOOK_FIELDS[:2]), ("asks", BOOK_FIELDS[2:])):
            for position, field in enumerate(fields):
                data[level_column(field, level)] = np.array(
                    [_at(getattr(s, side), level, position) for s in snapshots], dtype=np.float64
                )
    ordered = ["timestamp", "symbol"] + [
        level_column(f, level) for level in range(depth) for f in BOOK_FIELDS
    ]
    return pd.DataFrame(data)[ordered]


def _at(levels: tuple[tuple[float, float], ...], level: int, position: int) -> float:
    return levels[level][position] if level < len(levels) else math.nan


def _levels(raw: object, side: str, symbol: str, depth: int) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list | tuple):
        raise DataError(f"order book of {symbol}: {side} is not a list of levels, was {raw!r}")
    out: list[tuple[float, float]] = []
    for level in raw[:depth]:
        try:
            price, size = float(level[0]), float(level[1])
        except (TypeError, ValueError, IndexError):
            raise DataError(
                f"order book of {symbol}: a level of {side} is not [price, size]: {level!r}"
            ) from None
        if not (math.isfinite(price) and math.isfinite(size)):
            raise DataError(f"order book of {symbol}: a level of {side} is not finite: {level!r}")
        out.append((price, size))
    return tuple(out)
