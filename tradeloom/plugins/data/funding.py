"""Funding rates through ccxt (``fetch_funding_rate_history``), cached locally like bars.

A ``kind: funding_rate`` series under a ccxt source's ``data.auxiliary`` reads each
symbol's funding rate history from one day before ``data.start`` (so the first bar
has the rate then in force) to one bar after ``data.end`` (the last bar's close), or
now. The cache keeps one Parquet file per exchange and symbol,
``<root>/funding/<exchange>/<symbol>.parquet`` (the symbol spelt as in the bars
cache), with a ``timestamp`` (UTC ms, the funding time) and a float64 ``rate``
column, and the window it covers in its schema metadata: a window the cache covers
is never asked for again. With ``offline: true`` a window the cache does not cover is
an error naming the file.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tradeloom.errors import DataError
from tradeloom.plugins.data.auxiliary import AuxiliarySeries
from tradeloom.plugins.data.ccxt_retry import (
    ExchangeUnavailable,
    describe,
    is_network_error,
    retry_after,
)
from tradeloom.plugins.data.universe import symbol_file_part
from tradeloom.runtime.retrying import RetryPolicy, call_with_retries
from tradeloom.time.timeframes import format_timestamp

__all__ = ["LOOKBACK_MS", "FundingCache", "FundingRates", "fetch_funding_rates"]

LOOKBACK_MS = 86_400_000
"""Rates are read from this long before the first bar, for the rate in force then."""

_METADATA_KEY = b"tradeloom.funding"
_PAGE = 1000


@dataclass(frozen=True)
class FundingCache:
    """Funding rate files under ``root/funding``."""

    root: Path

    def path(self, exchange: str, symbol: str) -> Path:
        """Return the file of ``symbol``'s rates on ``exchange``."""
        return self.root / "funding" / exchange / f"{symbol_file_part(symbol)}.parquet"

    def read(self, exchange: str, symbol: str) -> tuple[pd.DataFrame, int, int] | None:
        """Return the cached rates (``timestamp`` ms, ``rate``) and their window, or None.

        Raises:
            DataError: The file cannot be read or has no window.
        """
        path = self.path(exchange, symbol)
        if not path.exists():
            return None
        try:
            table = pq.read_table(path)
            window = json.loads((table.schema.metadata or {})[_METADATA_KEY])
            frame = table.to_pandas()
            return frame, int(window["start_ms"]), int(window["end_ms"])
        except Exception as exc:  # a damaged file is named, never silently replaced
            raise DataError(
                f"data: funding rate cache {path} cannot be read ({describe(exc)}); move it "
                "away to download it again"
            ) from exc

    def write(
        self, exchange: str, symbol: str, frame: pd.DataFrame, start_ms: int, end_ms: int
    ) -> None:
        """Replace the file atomically with ``frame`` covering ``[start_ms, end_ms)``."""
        path = self.path(exchange, symbol)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "timestamp": pa.array(frame["timestamp"].to_numpy(np.int64), pa.int64()),
                "rate": pa.array(frame["rate"].to_numpy(np.float64), pa.float64()),
            }
        )
        window = json.dumps({"start_ms": start_ms, "end_ms": end_ms}).encode()
        table = table.replace_schema_metadata({_METADATA_KEY: window})
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, path)


@dataclass
class FundingRates:
    """Reads one exchange's funding rates for a window, through the cache.

    Args:
        client: The ccxt client.
        cache: The cache.
        start_ms: The window's start (the first bar's open minus `LOOKBACK_MS`).
        end_ms: Its end (exclusive); None: now.
        offline: Read the cache only.
        retry: Attempts and delays of every request.
        sleep: Waits between attempts (tests pass a recorder).
    """

    client: ccxt.Exchange
    cache: FundingCache
    start_ms: int
    end_ms: int | None
    offline: bool
    retry: RetryPolicy
    sleep: Callable[[float], None] = time.sleep

    def series(self, name: str, symbol: str, delay_ns: int) -> AuxiliarySeries:
        """Return ``symbol``'s funding rates as the series ``name``.

        Raises:
            DataError: Offline and not cached; a bad answer; the exchange refused.
            ExchangeUnavailable: The exchange did not answer.
        """
        exchange = str(self.client.id)
        end = self.end_ms if self.end_ms is not None else int(self.client.milliseconds())
        cached = self.cache.read(exchange, symbol)
        if cached is not None and cached[1] <= self.start_ms and end <= cached[2]:
            frame = cached[0]
        elif self.offline:
            raise DataError(
                f"data: {exchange} {symbol} funding rates: offline and the cache "
                f"{self.cache.path(exchange, symbol)} does not cover "
                f"{_stamp(self.start_ms)} to {_stamp(end)}; set data.offline: false"
            )
        else:
            frame = fetch_funding_rates(self.client, symbol, self.start_ms, end, self._read)
            start = self.start_ms
            if cached is not None and cached[1] <= end and start <= cached[2]:
                frame = pd.concat([cached[0], frame]).drop_duplicates("timestamp")
                start, end = min(start, cached[1]), max(end, cached[2])
            frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
            self.cache.write(exchange, symbol, frame, start, end)
        times = frame["timestamp"].to_numpy(np.int64)
        keep = (times >= self.start_ms) & (times < end)
        return AuxiliarySeries(
            name,
            times[keep] * 1_000_000,
            frame["rate"].to_numpy(np.float64)[keep],
            delay_ns,
            symbol,
        )

    def _read(self, call: Callable[[], Any], what: str) -> Any:
        label = f"data: {self.client.id} {what}"
        try:
            return call_with_retries(
                call,
                what=label,
                policy=self.retry,
                is_retryable=is_network_error,
                retry_after=lambda error: retry_after(error, self.client),
                describe=describe,
                sleep=self.sleep,
                exhausted=ExchangeUnavailable,
            )
        except ccxt.ExchangeError as error:
            raise DataError(
                f"{label}: the exchange refused the request: {describe(error)}"
            ) from None


def fetch_funding_rates(
    client: ccxt.Exchange,
    symbol: str,
    start_ms: int,
    end_ms: int,
    read: Callable[[Callable[[], Any], str], Any],
) -> pd.DataFrame:
    """Return ``symbol``'s funding rates with times in ``[start_ms, end_ms)``, page by page.

    Args:
        client: The ccxt client.
        symbol: Unified symbol.
        start_ms: First funding time wanted.
        end_ms: Bound (exclusive).
        read: Makes one request with retries (``read(call, what)``).

    Raises:
        DataError: The exchange cannot give funding rates, or sent a bad row.
    """
    if not client.has.get("fetchFundingRateHistory"):
        raise DataError(
            f"data: {client.id} has no funding rate history in ccxt; remove the funding_rate series"
        )
    times: list[int] = []
    rates: list[float] = []
    since = start_ms
    while since < end_ms:
        what = f"{symbol} funding rates from {_stamp(since)}"
        page = read(
            partial(
                client.fetch_funding_rate_history,
                symbol,
                since=since,
                limit=_PAGE,
                params={"until": end_ms - 1},
            ),
            what,
        )
        if not isinstance(page, list):
            raise DataError(f"data: {client.id} {what}: expected a list, got {type(page).__name__}")
        last = since - 1
        for row in page:
            stamp, rate = _row(row, f"{client.id} {what}")
            if since <= stamp < end_ms:
                times.append(stamp)
                rates.append(rate)
            last = max(last, stamp)
        if not page or last < since:
            break
        since = last + 1
    return pd.DataFrame({"timestamp": np.array(times, np.int64), "rate": np.array(rates)})


def _row(row: object, label: str) -> tuple[int, float]:
    stamp = row.get("timestamp") if isinstance(row, dict) else None
    rate = row.get("fundingRate") if isinstance(row, dict) else None
    if not isinstance(stamp, int | float) or not isinstance(rate, int | float):
        raise DataError(f"data: {label}: a row without a timestamp and fundingRate: {row!r:.120}")
    if not math.isfinite(float(rate)):
        raise DataError(f"data: {label}: a funding rate that is not a number: {row!r:.120}")
    return int(stamp), float(rate)


def _stamp(ms: int) -> str:
    return format_timestamp(int(ms) * 1_000_000)
