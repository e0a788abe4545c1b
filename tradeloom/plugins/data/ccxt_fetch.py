"""Download closed OHLCV bars through ccxt's ``fetch_ohlcv``, page by page.

Why not ccxt's own ``paginate`` option: it neither knows which bar is still open, nor
checks what the exchange sent, nor stops on an exchange that keeps sending the same
page. Here:

- Only closed bars are kept. A bar is closed when its open time plus the timeframe is
  at or before *now*, and *now* is the exchange's clock (``fetch_time``) when it has
  one, so a fast local clock cannot promote the bar in progress (which Binance serves
  with the klines) to a closed one. Callers may pass *now* instead (tests, the live
  runner's scheduler).
- Pages are requested forward from ``since`` with the exchange's largest page size
  (ccxt's ``features``), until the end of the window, an empty page, or a page that
  brings nothing new: the cursor moves past the last bar kept, so every request either
  makes progress or ends the download. A short page does not end it, because some
  exchanges cap pages below the limit they were asked for.
- Every page is checked (`check_page`): a list of six-field rows, numeric, no negative
  price or volume, timestamps strictly increasing. A bad page is a `DataError` naming
  the exchange, symbol, timeframe and bar time; nothing of it is kept. Bars a page
  repeats from an earlier one are dropped. Missing bars between pages are not an error
  here; the data layer's validation reports gaps (`validate_bars`).
- Reads are retried on network errors (`call_with_retries`, with the errors
  `ccxt_retry` classifies), waiting at least a 429's ``Retry-After``; ccxt's rate limiter
  (``enableRateLimit``, on by default in `create_client`) spaces the requests.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Real
from typing import TYPE_CHECKING, Any, TypeVar

import ccxt

from tradeloom.domain import OHLCV
from tradeloom.errors import DataError, ServiceUnreachable
from tradeloom.plugins.data.ccxt_retry import (
    ExchangeUnavailable,
    describe,
    is_network_error,
    retry_after,
    unresolved_host,
)
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.runtime.retrying import RetryPolicy, call_with_retries
from tradeloom.suggestions import did_you_mean
from tradeloom.time.timeframes import format_timestamp, parse_timeframe

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "BarFeed",
    "FetchResult",
    "Page",
    "bars_frame",
    "check_page",
    "closed_end",
    "fetch_closed_bars",
    "iter_closed_pages",
    "ms_stamp",
    "poll_closed_bars",
    "poll_closed_rows",
]

_log = logger("tradeloom.data")

T = TypeVar("T")

_FIELDS = ("timestamp", *OHLCV)
_WIDTH = len(_FIELDS)
_INF = math.inf
_PRICES = ("open", "high", "low", "close")
_SHOWN_VALUE = 40
_FEW_BARS = 16
"""A page this short is searched as a list (a tick's: numpy's calls cost more)."""

_MAX_MS = 9_223_372_036_854
"""The largest epoch milliseconds a time of the run holds (int64 nanoseconds, 2262-04-11):
a timestamp beyond it (or below its negative) is refused as the page's bad input."""


@dataclass(frozen=True)
class Page:
    """Checked bars of one response.

    Attributes:
        times: Open times in epoch milliseconds, strictly increasing.
        values: ``open high low close volume`` per bar (rows x 5); volume may be NaN.
    """

    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.times)

    def select(self, keep: np.ndarray) -> Page:
        """Return the bars where ``keep`` is True."""
        return Page(self.times[keep], self.values[keep])

    def between(self, start_ms: int, end_ms: int) -> Page:
        """Return the bars opening in ``[start_ms, end_ms)``: `select` of that mask, as
        one slice (the times are strictly increasing, `check_page`), the page itself when
        it keeps every bar (a tick's page: no arrays made)."""
        times = self.times
        if len(times) <= _FEW_BARS:
            listed = times.tolist()
            first, stop = bisect_left(listed, start_ms), bisect_left(listed, end_ms)
        else:
            first, stop = (int(i) for i in np.searchsorted(times, [start_ms, end_ms]))
        if first == 0 and stop == len(times):
            return self
        return Page(times[first:stop], self.values[first:stop])


@dataclass
class BarFeed:
    """One market's bars on one exchange, read through a ccxt client, with retries.

    Args:
        client: A ccxt client (`create_client`); its markets are loaded on first use.
        symbol: Unified symbol (``BTC/USDT``).
        timeframe: ccxt timeframe (``1h``), also a tradeloom timeframe.
        retry: Attempts and delays for every read.
        sleep: Waits between attempts (tests pass a recorder).
        draw: Uniform draws for the retry jitter (tests pass a constant).
        page_limit: Bars per request; None: the exchange's maximum from ccxt's
            ``features``, or the exchange's default when ccxt does not know it.
        volume: False: the market has no volume (``--clock simulated`` serving a file
            without one, as zeros): every bar's volume reads as NaN, as the file's does.
    """

    client: ccxt.Exchange
    symbol: str
    timeframe: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    draw: Callable[[], float] = random.random
    page_limit: int | None = None
    volume: bool = True
    requests: int = field(default=0, init=False)
    timeframe_ms: int = field(init=False)
    _ready: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.timeframe_ms = parse_timeframe(self.timeframe) * 1000

    @cached_property
    def label(self) -> str:
        """``binance BTC/USDT 1h``: how messages name this feed (made once: every page
        names it)."""
        return f"{self.client.id} {self.symbol} {self.timeframe}"

    def prepare(self) -> None:
        """Load the exchange's markets once; check the symbol and timeframe against them.

        Raises:
            DataError: The exchange has no such market or no such timeframe.
            ServiceUnreachable: The exchange's host name does not resolve (offline).
            ExchangeUnavailable: The markets could not be loaded.
        """
        if self._ready:
            return
        markets = self._read(lambda: self.client.load_markets(), "markets")
        if self.symbol not in markets:
            hint = did_you_mean(self.symbol, list(markets))
            raise DataError(
                f"data: {self.label}: {self.client.id} has no market '{self.symbol}'{hint}; "
                "check data.symbol (unified form such as BTC/USDT)"
            )
        timeframes = dict(self.client.timeframes or {})
        if timeframes and self.timeframe not in timeframes:
            raise DataError(
                f"data: {self.label}: {self.client.id} serves no {self.timeframe} bars"
                f"{did_you_mean(self.timeframe, list(timeframes))}; its timeframes: "
                f"{', '.join(timeframes)}"
            )
        if self.page_limit is None:
            self.page_limit = _exchange_page_limit(self.client, markets[self.symbol])
        self._ready = True

    def now_ms(self) -> int:
        """Return the exchange's time in epoch ms, or the local clock if it has none."""
        if self.client.has.get("fetchTime"):
            now = self._read(lambda: self.client.fetch_time(), "the exchange's time")
            if isinstance(now, int | float) and math.isfinite(now):
                return int(now)
        return int(time.time() * 1000)

    def page(self, since_ms: int) -> Page:
        """Request one page of bars opening at or after ``since_ms`` and check it.

        Raises:
            DataError: The exchange refused the request or sent a bad page.
            ExchangeUnavailable: No answer after every attempt.
        """
        if not self._ready:
            self.prepare()
        self.requests += 1
        rows = self._read(
            lambda: self.client.fetch_ohlcv(
                self.symbol, self.timeframe, since=since_ms, limit=self.page_limit
            ),
            lambda: f"bars from {ms_stamp(since_ms)}",  # formatted only if it fails
        )
        page = check_page(rows, label=self.label, since_ms=since_ms)
        if not self.volume:
            page.values[:, 4] = math.nan
        return page

    def _read(self, call: Callable[[], T], what: str | Callable[[], str]) -> T:
        def named() -> str:  # what is read, formatted only when a message needs it
            return what if isinstance(what, str) else what()

        try:
            return call_with_retries(
                call,
                what=lambda: f"data: {self.label}: {named()}",
                policy=self.retry,
                is_retryable=self._retryable,
                retry_after=lambda error: retry_after(error, self.client),
                describe=describe,
                sleep=self.sleep,
                draw=self.draw,
                exhausted=ExchangeUnavailable,
            )
        except ccxt.ExchangeError as error:
            raise DataError(
                f"data: {self.label}: the exchange refused the request for {named()}: "
                f"{describe(error)}"
            ) from None
        except ccxt.NetworkError as error:
            host = None if self._ready else unresolved_host(error)
            if host is None:
                raise
            raise ServiceUnreachable(
                f"data: {self.label}: cannot reach {host}: its name does not resolve "
                "(this machine is offline, or the exchange's URL is wrong); nothing was sent"
            ) from None

    def _retryable(self, error: BaseException) -> bool:
        # The first request of the run (its markets) does not wait out retries for a
        # host that does not resolve: offline, the run fails at once, naming the host.
        # Once the exchange has answered, such a failure is a network blip, retried.
        if not is_network_error(error):
            return False
        return self._ready or unresolved_host(error) is None


@dataclass(frozen=True)
class FetchResult:
    """Closed bars of a window and how far the window is known complete.

    Attributes:
        frame: OHLCV (float64) indexed by UTC open time, named ``timestamp``.
        end_ms: Every closed bar opening before this (epoch ms) has been read; the
            next download starts here.
        requests: Requests made for bars (retries not counted).
    """

    frame: pd.DataFrame
    end_ms: int
    requests: int


def closed_end(now_ms: int, timeframe_ms: int, until_ms: int | None = None) -> int:
    """Return the exclusive bound on open times of bars closed at ``now_ms``.

    A bar opening at ``t`` is closed when ``t + timeframe <= now``, that is when
    ``t < now - timeframe + 1``; ``until_ms`` (exclusive) may bound it further.
    """
    end = now_ms - timeframe_ms + 1
    return end if until_ms is None else min(end, until_ms)


def iter_closed_pages(
    feed: BarFeed,
    since_ms: int,
    end_ms: int,
    on_page: Callable[[Page], None] | None = None,
) -> Iterator[Page]:
    """Yield the new bars of each page, opening in ``[since_ms, end_ms)``, in order.

    Stops at the end of the window, on an empty page, or on a page with nothing
    after the last bar kept (an exchange that ignores ``since`` and resends a page).

    Args:
        feed: The market to read.
        since_ms: First open time wanted (inclusive).
        end_ms: Bound on open times (exclusive), e.g. `closed_end`.
        on_page: Called with each page's new bars (progress display).
    """
    cursor = since_ms
    while cursor < end_ms:
        page = feed.page(cursor)
        if len(page.times) == 0:  # (`len(page)`, without its frame)
            return
        fresh = page.between(cursor, end_ms)
        if len(fresh.times) == 0:
            if page.times[-1] < cursor:
                _log.warning(
                    "exchange_repeated_page",
                    feed=feed.label,
                    asked_from=ms_stamp(cursor),
                    last_sent=ms_stamp(int(page.times[-1])),
                )
            return
        if on_page is not None:
            on_page(fresh)
        yield fresh
        if page.times[-1] + feed.timeframe_ms >= end_ms:
            return  # no bar opening later is closed yet: asking again costs a request
        cursor = int(fresh.times[-1]) + feed.timeframe_ms


def fetch_closed_bars(
    feed: BarFeed,
    since_ms: int,
    until_ms: int | None = None,
    *,
    now_ms: int | None = None,
    on_page: Callable[[Page], None] | None = None,
) -> FetchResult:
    """Download every closed bar opening in ``[since_ms, until_ms)``.

    Args:
        feed: The market to read.
        since_ms: First open time wanted (inclusive).
        until_ms: Bound on open times (exclusive); None: up to the last closed bar.
        now_ms: The time that decides which bars are closed; None: the exchange's.
        on_page: Called with each page's new bars.

    Raises:
        DataError: The market or timeframe does not exist, or a page is bad.
        ExchangeUnavailable: The exchange did not answer.
    """
    feed.prepare()
    before = feed.requests
    now = feed.now_ms() if now_ms is None else now_ms
    end = closed_end(now, feed.timeframe_ms, until_ms)
    pages = list(iter_closed_pages(feed, since_ms, end, on_page))
    return FetchResult(bars_frame(pages), max(end, since_ms), feed.requests - before)


def poll_closed_bars(
    feed: BarFeed, last_seen: pd.Timestamp, *, now: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Return the bars closed since ``last_seen``, the newest closed bar the caller has.

    The live runner's polling path (when the exchange has no websocket stream, or it
    dropped): call it at each bar close. An empty frame means the exchange has not
    published the bar yet; `StaleDataWatch` says when that has gone on too long.

    Args:
        feed: The market to read.
        last_seen: Open time of the newest bar already processed.
        now: The time that decides which bars are closed; None: the exchange's clock.

    Returns:
        OHLCV indexed by UTC open time, only bars opening after ``last_seen``.
    """
    since = _to_ms(last_seen) + feed.timeframe_ms
    now_ms = None if now is None else _to_ms(now)
    return fetch_closed_bars(feed, since, now_ms=now_ms).frame


def poll_closed_rows(
    feed: BarFeed, last_seen_ns: int, now_ns: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return `poll_closed_bars` as arrays, the live ticker's form (no frame is built).

    Args:
        feed: The market to read.
        last_seen_ns: Open time of the newest bar already processed (ns, UTC).
        now_ns: The time that decides which bars are closed (ns, UTC).

    Returns:
        The open times (ns, UTC) and OHLCV rows of the bars opening after
        ``last_seen_ns``, the same pages `poll_closed_bars` reads.
    """
    if not feed._ready:  # a tick's poll: loaded long ago
        feed.prepare()
    since = last_seen_ns // 1_000_000 + feed.timeframe_ms
    end = closed_end(now_ns // 1_000_000, feed.timeframe_ms)
    times, values = _joined(list(iter_closed_pages(feed, since, end)))
    return times * 1_000_000, values


def _joined(pages: Sequence[Page]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The pages' open times (epoch ms) and OHLCV rows, end to end."""
    if len(pages) == 1:  # a tick's poll: its one page as it is
        return pages[0].times, pages[0].values
    times = np.concatenate([p.times for p in pages]) if pages else np.empty(0, np.int64)
    values = np.concatenate([p.values for p in pages]) if pages else np.empty((0, 5))
    return times, values


def bars_frame(pages: Sequence[Page]) -> pd.DataFrame:
    """Return pages as one OHLCV frame indexed by UTC open time (``timestamp``)."""
    times, values = _joined(pages)
    # straight from the integers (pd.to_datetime's parsing costs more than the page: a
    # live tick builds one of these per poll)
    stamps = times.astype("datetime64[ms]").astype("datetime64[ns]")
    index = pd.DatetimeIndex(stamps, name="timestamp").tz_localize("UTC")
    return pd.DataFrame(values, index=index, columns=list(OHLCV), dtype=np.float64)


def check_page(rows: object, *, label: str, since_ms: int) -> Page:
    """Check one ``fetch_ohlcv`` response and return it as arrays.

    Args:
        rows: What ccxt returned: a list of ``[timestamp, open, high, low, close,
            volume]`` rows.
        label: ``binance BTC/USDT 1h``, for messages.
        since_ms: The ``since`` the page was asked for, for messages.

    Raises:
        DataError: The page is not such a list, a value is missing or not a number, a
            price or volume is negative, or the timestamps are not strictly increasing.
    """
    if not isinstance(rows, list | tuple):
        raise DataError(
            f"data: {label}: bad response from the exchange for bars from "
            f"{ms_stamp(since_ms)}: expected a list of bars, got {_kind(rows)}"
        )
    n = len(rows)
    times = np.empty(n, dtype=np.int64)
    values = np.empty((n, 5), dtype=np.float64)
    previous: int | None = None
    for i, row in enumerate(rows):
        # what ccxt parses: a list of an int and five finite, non-negative floats, taken
        # as it is (no call per value: a tick's page is a bar or two); any other row
        # is checked value by value (`_checked_row`), which keeps such a row the same
        if type(row) is list and len(row) >= _WIDTH:
            stamp, o, h, lo, c, v = row[0], row[1], row[2], row[3], row[4], row[5]
            if (
                type(stamp) is int
                and -_MAX_MS <= stamp <= _MAX_MS
                and (previous is None or stamp > previous)
                and type(o) is float
                and type(h) is float
                and type(lo) is float
                and type(c) is float
                and type(v) is float
                and 0.0 <= o < _INF
                and 0.0 <= h < _INF
                and 0.0 <= lo < _INF
                and 0.0 <= c < _INF
                and 0.0 <= v < _INF
            ):
                previous = times[i] = stamp
                values[i] = (o, h, lo, c, v)
                continue
        previous, values[i] = _checked_row(row, i, previous, since_ms=since_ms, label=label)
        times[i] = previous
    return Page(times, values)


def _checked_row(
    row: object, i: int, previous: int | None, *, since_ms: int, label: str
) -> tuple[int, list[float]]:
    """Check the ``i``-th row of a page value by value; return its timestamp and values.

    Raises:
        DataError: As `check_page` says.
    """
    where = f"data: {label}: bad response from the exchange"
    if not isinstance(row, list | tuple) or len(row) < _WIDTH:
        size = f"{len(row)} fields" if isinstance(row, list | tuple) else _kind(row)
        raise DataError(
            f"{where}: bar {i + 1} of the page from {ms_stamp(since_ms)} has {size}, "
            f"expected {_WIDTH} ({', '.join(_FIELDS)})"
        )
    stamp = _integer(row[0])
    if stamp is None or not -_MAX_MS <= stamp <= _MAX_MS:
        raise DataError(
            f"{where}: bar {i + 1} of the page from {ms_stamp(since_ms)} has "
            f"timestamp {_shown(row[0])}, expected epoch milliseconds"
        )
    if previous is not None and stamp <= previous:
        # in the loop, not np.diff over the page: a tick's page is a bar or two
        what = "repeats" if stamp == previous else "comes after"
        raise DataError(
            f"{where}: the bar at {ms_stamp(stamp)} {what} the bar at "
            f"{ms_stamp(previous)}; bars must be in time order without duplicates"
        )
    numbers: list[float] = []
    for j, name in enumerate(OHLCV):
        raw = row[j + 1]
        value = _number(raw)
        if value is None:
            raise DataError(
                f"{where}: the bar at {ms_stamp(stamp)} has a non-numeric {name} ({_shown(raw)})"
            )
        if math.isnan(value) and name in _PRICES:
            raise DataError(f"{where}: the bar at {ms_stamp(stamp)} has no {name}")
        if value < 0:
            raise DataError(f"{where}: the bar at {ms_stamp(stamp)} has a negative {name}")
        numbers.append(value)
    return stamp, numbers


def ms_stamp(ms: int) -> str:
    """Return epoch milliseconds as ``2024-03-01T04:00Z``."""
    return format_timestamp(int(ms) * 1_000_000)


def _exchange_page_limit(client: ccxt.Exchange, market: dict[str, Any]) -> int | None:
    # ccxt's features: {"spot": {"fetchOHLCV": {"limit": 1000}}, "swap": {"linear": {...}}}
    features: dict[str, Any] = dict(getattr(client, "features", None) or {})
    kind = market.get("type") or "spot"
    section = features.get(kind) or {}
    if kind in ("swap", "future") and isinstance(section, dict):
        section = section.get("linear" if market.get("linear") else "inverse") or {}
    ohlcv = section.get("fetchOHLCV") if isinstance(section, dict) else None
    limit = ohlcv.get("limit") if isinstance(ohlcv, dict) else None
    return limit if isinstance(limit, int) and limit > 0 else None


def _integer(value: object) -> int | None:
    if type(value) is int:  # what ccxt parses (a page's every row: skip the ABC's check)
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        return int(float(value))
    return None


def _number(value: object) -> float | None:
    if type(value) is float:  # what ccxt parses (a page's every value: skip the ABC's check)
        return None if math.isinf(value) else value
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, Real):
        number = float(value)
        return None if math.isinf(number) else number
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE else text[: _SHOWN_VALUE - 3] + "..."


def _kind(value: object) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _to_ms(stamp: pd.Timestamp) -> int:
    ts = pd.Timestamp(stamp)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)
