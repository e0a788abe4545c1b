"""Fill the Parquet cache from an exchange, asking only for the bars it does not hold.

The cache records the window it covers (`CachedBars`), so a download is at most two
reads: the bars before the window (when an earlier start is asked for) and the bars
after it, from the window's end to the last closed bar. A window that already covers
a range with an end in the past needs no request at all, which is what makes a
backtest over a fixed range reproducible and offline after its first run.

Long downloads after the window write a checkpoint every ``checkpoint_bars`` bars,
and whatever was read before an error or an interrupt is written before the error
propagates: an outage at page 400 of 500 costs the last page, not the first 399.
(Bars before the window are written once all are read: the window stays one
unbroken range.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from tradeloom.plugins.data.ccxt_fetch import (
    BarFeed,
    Page,
    bars_frame,
    closed_end,
    iter_closed_pages,
)
from tradeloom.plugins.data.ohlcv_cache import CachedBars, CacheKey, OhlcvCache

__all__ = ["CHECKPOINT_BARS", "Download", "download"]

CHECKPOINT_BARS = 50_000
"""New bars between two writes of the cache file during one long download."""


@dataclass(frozen=True)
class Download:
    """What a download did.

    Attributes:
        cached: The cache file's contents afterwards (None: nothing cached, nothing
            to download yet, e.g. a start in the future).
        fetched: New bars written.
        requests: Requests made for bars (retries not counted).
        first: Open time of the first new bar (None when none).
        last: Open time of the last new bar (None when none).
    """

    cached: CachedBars | None
    fetched: int
    requests: int
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None


SETTLE_BARS = 3
"""Bars after which a closed bar the exchange has not served is taken as a gap."""


def download(
    feed: BarFeed,
    cache: OhlcvCache,
    start_ms: int,
    until_ms: int | None = None,
    *,
    now_ms: int | None = None,
    on_page: Callable[[Page], None] | None = None,
    checkpoint_bars: int = CHECKPOINT_BARS,
) -> Download:
    """Make the cache cover ``[start_ms, until_ms)`` (or up to now), downloading the rest.

    Args:
        feed: The market to read.
        cache: Where its bars are kept.
        start_ms: First open time wanted (inclusive).
        until_ms: Bound on open times (exclusive); None: up to the last closed bar.
        now_ms: The time that decides which bars are closed; None: the exchange's.
        on_page: Called with each page's new bars (progress display).
        checkpoint_bars: New bars between two writes of the file.

    Raises:
        DataError: A bad cache file, an unknown market or timeframe, a bad page.
        ExchangeUnavailable: The exchange did not answer (what was read is kept).
    """
    key = CacheKey(feed.client.id, feed.symbol, feed.timeframe)
    cached = cache.read(key)
    if cached is not None and until_ms is not None and cached.covers(start_ms, until_ms):
        return Download(cached, 0, 0)
    feed.prepare()
    before = feed.requests
    now = feed.now_ms() if now_ms is None else now_ms
    end = closed_end(now, feed.timeframe_ms, until_ms)
    # A missing tail newer than this may just not be published yet: it is not recorded as
    # known, so the next download asks for it again (a bar missing longer is a real gap).
    settled = now - SETTLE_BARS * feed.timeframe_ms
    new: list[Page] = []

    if cached is None:
        if end <= start_ms:
            return Download(None, 0, feed.requests - before)
        cached = _append(
            feed,
            cache,
            key,
            _empty(key, cache, start_ms),
            end,
            new,
            on_page,
            checkpoint_bars,
            settled,
        )
    else:
        if start_ms < cached.start_ms:
            pages = list(iter_closed_pages(feed, start_ms, cached.start_ms, on_page))
            new.extend(pages)
            frame = _joined(bars_frame(pages), cached.frame)
            path = cache.write(key, frame, start_ms, cached.end_ms)
            cached = CachedBars(frame, start_ms, cached.end_ms, path)
        if end > cached.end_ms:
            cached = _append(feed, cache, key, cached, end, new, on_page, checkpoint_bars, settled)
    times = [p.times for p in new if len(p)]
    first = pd.Timestamp(min(int(t[0]) for t in times), unit="ms", tz="UTC") if times else None
    last = pd.Timestamp(max(int(t[-1]) for t in times), unit="ms", tz="UTC") if times else None
    return Download(cached, sum(len(p) for p in new), feed.requests - before, first, last)


def _append(
    feed: BarFeed,
    cache: OhlcvCache,
    key: CacheKey,
    cached: CachedBars,
    end_ms: int,
    new: list[Page],
    on_page: Callable[[Page], None] | None,
    checkpoint_bars: int,
    settled_ms: int,
) -> CachedBars:
    written = cached
    pending: list[Page] = []
    cursor = cached.end_ms
    if len(cached.frame):
        # Bars do not overlap: nothing opens before the last cached bar has closed.
        last = int(cached.frame.index[-1].value // 1_000_000)
        cursor = max(cursor, last + feed.timeframe_ms)

    def flush(window_end: int) -> CachedBars:
        frame = _joined(written.frame, bars_frame(pending))
        path = cache.write(key, frame, written.start_ms, window_end)
        pending.clear()
        return CachedBars(frame, written.start_ms, window_end, path)

    try:
        for page in iter_closed_pages(feed, cursor, end_ms, on_page):
            new.append(page)
            pending.append(page)
            cursor = int(page.times[-1]) + feed.timeframe_ms
            if sum(len(p) for p in pending) >= checkpoint_bars:
                written = flush(cursor)
    except BaseException:
        if pending:
            flush(cursor)
        raise
    return flush(max(cursor, min(end_ms, settled_ms)))


def _empty(key: CacheKey, cache: OhlcvCache, start_ms: int) -> CachedBars:
    return CachedBars(bars_frame([]), start_ms, start_ms, cache.path(key))


def _joined(earlier: pd.DataFrame, later: pd.DataFrame) -> pd.DataFrame:
    # pandas warns about concatenating an empty frame; the windows never overlap.
    if len(earlier) == 0:
        return later
    if len(later) == 0:
        return earlier
    return pd.concat([earlier, later])
