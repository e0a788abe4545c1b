"""A local Parquet cache of exchange bars: one file per exchange, symbol and timeframe.

Layout: ``<root>/ohlcv/<exchange>/<symbol>/<timeframe>.parquet``, the symbol with
``/`` written ``-`` and ``:`` written ``_`` (``BTC/USDT:USDT`` -> ``BTC-USDT_USDT``).
The root is ``$TRADELOOM_CACHE``, else ``$XDG_CACHE_HOME/tradeloom``, else
``~/.cache/tradeloom``; a strategy's ``data.cache_dir`` or ``--cache-dir`` overrides it.

A file holds a ``timestamp`` column (UTC, millisecond resolution, the bar's open time)
and float64 ``open high low close volume``, so the ``parquet`` data source (and pandas)
read it as it is. Its schema metadata records which market it holds and the *window*
it covers: every closed bar opening in ``[start, end)`` that the exchange had when it
was downloaded is in the file. The window, not the first and last bar, is what says
whether a range is cached: a market listed after ``start`` has no bars there, and
asking the exchange again would not change that. A file ``tradeloom data import`` wrote
also records its ``origin`` (the vendor's file, its SHA-256, the column map, the
calendar); the exchange folder then holds the ``--venue`` it was imported under.

Writes replace the whole file atomically (a temporary file in the same folder, then
``os.replace``), so a reader or a crash never sees half a file. A file that cannot be
read, or whose contents disagree with its metadata, is an error naming the file: it is
never silently downloaded over, because it may be the only copy of data the exchange
no longer serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradeloom.domain import OHLCV
from tradeloom.errors import DataError
from tradeloom.runtime.cache_home import cache_home
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.runtime.lazy import pyarrow as pa
from tradeloom.runtime.lazy import pyarrow_parquet as pq
from tradeloom.time.timeframes import format_timestamp

__all__ = [
    "CACHE_ENV",
    "CacheKey",
    "CachedBars",
    "OhlcvCache",
    "default_cache_dir",
    "read_metadata",
]

CACHE_ENV = "TRADELOOM_CACHE"
"""Environment variable naming the cache's root folder."""

_FORMAT = 1
_METADATA_KEY = b"tradeloom.ohlcv"
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclass(frozen=True)
class CacheKey:
    """Which bars: a ccxt exchange id, a unified symbol and a timeframe."""

    exchange: str
    symbol: str
    timeframe: str

    def __str__(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe}"


@dataclass(frozen=True)
class CachedBars:
    """The contents of one cache file.

    Attributes:
        frame: OHLCV (float64) indexed by UTC open time, named ``timestamp``, sorted.
        start_ms: The covered window's first open time (epoch ms, inclusive).
        end_ms: Its bound (exclusive): downloads continue from here.
        path: The file.
    """

    frame: pd.DataFrame
    start_ms: int
    end_ms: int
    path: Path

    def covers(self, start_ms: int, end_ms: int) -> bool:
        """Return whether the window ``[start_ms, end_ms)`` is inside the covered one."""
        return self.start_ms <= start_ms and end_ms <= self.end_ms


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the cache root: ``$TRADELOOM_CACHE``, ``$XDG_CACHE_HOME/tradeloom`` or
    ``~/.cache/tradeloom``."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    return cache_home(env)


class OhlcvCache:
    """Read and write cached bars under one root folder.

    Args:
        root: The cache's root folder; created on the first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: CacheKey) -> Path:
        """Return the file that holds ``key``'s bars (it may not exist)."""
        symbol = _UNSAFE.sub(
            lambda m: f"%{ord(m.group()):02X}", key.symbol.replace("/", "-").replace(":", "_")
        )
        return self.root / "ohlcv" / key.exchange / symbol / f"{key.timeframe}.parquet"

    def read(self, key: CacheKey) -> CachedBars | None:
        """Return the cached bars of ``key``, or None when nothing is cached.

        Raises:
            DataError: The file exists but cannot be read, was written for another
                market, or its bars disagree with its metadata.
        """
        path = self.path(key)
        if not path.exists():
            return None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # any reader failure means the file is damaged
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise _corrupted(path, f"cannot read it as Parquet: {reason}") from exc
        meta = _metadata(table.schema, path)
        held = CacheKey(str(meta["exchange"]), str(meta["symbol"]), str(meta["timeframe"]))
        if held != key:
            raise DataError(
                f"data: cache file {path} holds {held} bars, not {key}; move it away or "
                "choose another cache_dir"
            )
        start, end = int(meta["start"]), int(meta["end"])
        frame = _frame(table, path)
        times = frame.index.asi8 // 1_000_000
        if len(times) and (times[0] < start or times[-1] >= end):
            raise _corrupted(
                path,
                f"bars from {format_timestamp(frame.index[0])} to "
                f"{format_timestamp(frame.index[-1])} outside the window it records",
            )
        return CachedBars(frame=frame, start_ms=start, end_ms=end, path=path)

    def write(
        self,
        key: CacheKey,
        frame: pd.DataFrame,
        start_ms: int,
        end_ms: int,
        *,
        origin: Mapping[str, Any] | None = None,
    ) -> Path:
        """Replace ``key``'s file, atomically, with ``frame`` covering ``[start_ms, end_ms)``.

        Args:
            key: The market.
            frame: OHLCV indexed by UTC open time, sorted and unique.
            start_ms: The covered window's first open time (inclusive).
            end_ms: Its bound (exclusive).
            origin: For bars imported from a file (``tradeloom data import``): where
                from and how (kept in the metadata as ``origin``); None: downloaded.

        Returns:
            The file written.
        """
        if end_ms < start_ms:
            raise ValueError(f"window end {end_ms} is before its start {start_ms}")
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        times = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ms").asi8
        columns: dict[str, pa.Array] = {
            "timestamp": pa.array(times, type=pa.timestamp("ms", tz="UTC")),
        }
        for name in OHLCV:
            columns[name] = pa.array(frame[name].to_numpy(dtype=np.float64), type=pa.float64())
        meta = {
            "format": _FORMAT,
            "exchange": key.exchange,
            "symbol": key.symbol,
            "timeframe": key.timeframe,
            "start": int(start_ms),
            "end": int(end_ms),
        }
        if origin is not None:
            meta["origin"] = dict(origin)
        table = pa.table(columns).replace_schema_metadata({_METADATA_KEY: json.dumps(meta)})
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with temporary.open("wb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _sync_folder(path.parent)
        return path


def read_metadata(path: Path) -> dict[str, Any]:
    """Return a cache file's metadata (market, window, ``origin`` when imported), reading
    its schema only.

    Raises:
        DataError: The file cannot be read as Parquet or has no sound metadata.
    """
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # any reader failure means the file is damaged
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _corrupted(path, f"cannot read it as Parquet: {reason}") from exc
    return _metadata(schema, path)


def _metadata(schema: pa.Schema, path: Path) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(_METADATA_KEY)
    if raw is None:
        raise _corrupted(path, "no tradeloom metadata; not a file tradeloom data fetch wrote")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise _corrupted(path, "its tradeloom metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise _corrupted(path, "its tradeloom metadata is not a mapping")
    if meta.get("format") != _FORMAT:
        raise DataError(
            f"data: cache file {path} has format {meta.get('format')!r}; this tradeloom "
            f"reads format {_FORMAT}; delete it and run tradeloom data fetch again"
        )
    for name in ("exchange", "symbol", "timeframe"):
        if not isinstance(meta.get(name), str):
            raise _corrupted(path, f"its metadata has no {name}")
    for name in ("start", "end"):
        value = meta.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _corrupted(path, f"its metadata has no {name} time")
    if meta["end"] < meta["start"]:
        raise _corrupted(path, "its window ends before it starts")
    return meta


def _frame(table: pa.Table, path: Path) -> pd.DataFrame:
    missing = [c for c in ("timestamp", *OHLCV) if c not in table.column_names]
    if missing:
        raise _corrupted(path, f"missing columns {', '.join(missing)}")
    stamp_type = table.schema.field("timestamp").type
    if not pa.types.is_timestamp(stamp_type):
        raise _corrupted(path, f"column timestamp has type {stamp_type}, expected a timestamp")
    data = {}
    for name in OHLCV:
        column_type = table.schema.field(name).type
        if not pa.types.is_floating(column_type):
            raise _corrupted(path, f"column {name} has type {column_type}, expected float64")
        data[name] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    stamps = table.column("timestamp")
    if stamps.null_count:
        raise _corrupted(path, f"{stamps.null_count} empty timestamps")
    index = pd.DatetimeIndex(stamps.to_pandas(), name="timestamp")
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    index = index.as_unit("ns")
    if len(index) > 1 and not (np.diff(index.asi8) > 0).all():
        raise _corrupted(path, "its bars are not in time order or repeat a timestamp")
    return pd.DataFrame(data, index=index)


def _corrupted(path: Path, reason: str) -> DataError:
    return DataError(
        f"data: cache file {path} is corrupted ({reason}); delete it and run "
        "tradeloom data fetch again"
    )


def _sync_folder(folder: Path) -> None:
    # Make the rename itself durable; not possible (nor needed) on every platform.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
