"""The data catalog: every series in the local cache, fetched or imported.

A series is one file of `tradeloom.plugins.data.ohlcv_cache.OhlcvCache`, named by its
venue (the ccxt exchange it was fetched from, or the ``--venue`` it was imported
under), symbol and timeframe. `catalog_rows` describes each one as a plain mapping
(what ``tradeloom data list`` shows); `find_series` is how a strategy's
``data: {kind: catalog}`` names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeloom.errors import DataError
from tradeloom.plugins.data.ohlcv_cache import CacheKey, OhlcvCache, read_metadata
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pyarrow_parquet as pq
from tradeloom.time.calendars import get_calendar
from tradeloom.time.timeframes import format_timestamp, parse_timeframe

__all__ = ["LIST_HINT", "Series", "catalog_rows", "find_series", "series_in"]

LIST_HINT = "tradeloom data list"
"""The command that shows what the catalog holds, named by every refusal to find a series."""


@dataclass(frozen=True)
class Series:
    """One series of the catalog.

    Attributes:
        key: Its venue (as ``exchange``), symbol and timeframe.
        path: Its file.
        meta: The file's metadata (`read_metadata`): window, and ``origin`` when imported.
    """

    key: CacheKey
    path: Path
    meta: dict[str, Any]

    @property
    def source(self) -> str:
        """Return ``imported`` (by ``tradeloom data import``) or ``fetched``."""
        return "imported" if isinstance(self.meta.get("origin"), dict) else "fetched"

    @property
    def calendar(self) -> str:
        """Return the trading calendar it was imported with (``crypto`` when fetched)."""
        origin = self.meta.get("origin")
        value = origin.get("calendar") if isinstance(origin, dict) else None
        return value if isinstance(value, str) else "crypto"


def series_in(root: Path) -> list[Series]:
    """Return every series under the cache root, by venue, symbol and timeframe.

    Raises:
        DataError: A file's metadata cannot be read (naming the file).
    """
    found = []
    for path in sorted((root / "ohlcv").glob("*/*/*.parquet")):
        meta = read_metadata(path)
        key = CacheKey(str(meta["exchange"]), str(meta["symbol"]), str(meta["timeframe"]))
        found.append(Series(key, path, meta))
    return sorted(found, key=lambda s: (s.key.exchange, s.key.symbol, s.key.timeframe))


def catalog_rows(root: Path) -> list[dict[str, Any]]:
    """Return one plain mapping per series: venue, symbol, timeframe, source, rows, first,
    last (UTC, ISO 8601; None when empty), gaps (bars missing at the timeframe where its
    calendar expects them), bytes and path.

    Raises:
        DataError: A file cannot be read (naming it).
    """
    rows = []
    for series in series_in(root):
        stamps = _open_times(series.path)
        step = parse_timeframe(series.key.timeframe) * 1_000_000_000
        calendar = get_calendar(series.calendar)
        gaps = int(calendar.missing(stamps, step).sum()) if len(stamps) > 1 else 0
        rows.append(
            {
                "venue": series.key.exchange,
                "symbol": series.key.symbol,
                "timeframe": series.key.timeframe,
                "source": series.source,
                "rows": len(stamps),
                "first": format_timestamp(int(stamps[0])) if len(stamps) else None,
                "last": format_timestamp(int(stamps[-1])) if len(stamps) else None,
                "gaps": gaps,
                "bytes": series.path.stat().st_size,
                "path": str(series.path),
            }
        )
    return rows


def find_series(root: Path, symbol: str, timeframe: str, venue: str | None = None) -> Series:
    """Return the series of ``symbol`` and ``timeframe`` (from ``venue``, or the one venue
    that has it).

    Raises:
        DataError: No such series, or several venues have it and none was named; the
            message names the series and `LIST_HINT`.
    """
    if venue is not None:
        key = CacheKey(venue, symbol, timeframe)
        path = OhlcvCache(root).path(key)
        if path.is_file():
            return Series(key, path, read_metadata(path))
        raise DataError(f"no series {key} in the catalog at {root}; see {LIST_HINT}")
    matches = [s for s in series_in(root) if (s.key.symbol, s.key.timeframe) == (symbol, timeframe)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"no series {symbol} {timeframe} in the catalog at {root}; see {LIST_HINT}")
    venues = ", ".join(s.key.exchange for s in matches)
    raise DataError(
        f"series {symbol} {timeframe} is in the catalog from {venues}; choose one with venue:"
    )


def _open_times(path: Path) -> np.ndarray:
    try:
        column = pq.read_table(path, columns=["timestamp"]).column("timestamp")
    except Exception as exc:  # any reader failure means the file is damaged
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(
            f"data: cache file {path} is corrupted (cannot read its timestamps: {reason})"
        ) from exc
    millis = column.cast("int64").to_numpy(zero_copy_only=False)
    return np.asarray(millis, dtype=np.int64) * 1_000_000
