"""The bar series an emulated market replays: validated, with exact decimal prices.

Prices are kept as the decimal of each float's shortest repr (``100.1`` stays
``100.1``), so klines served to ccxt parse back to the very floats the caller passed
in: a live driver reading the emulator sees the same bars as a backtest over the
same frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd

from tradeloom.time.timeframes import format_timestamp, parse_timeframe

__all__ = ["BINANCE_INTERVALS", "BarSeries"]

BINANCE_INTERVALS: dict[int, str] = {
    1: "1s",
    60: "1m",
    180: "3m",
    300: "5m",
    900: "15m",
    1800: "30m",
    3600: "1h",
    7200: "2h",
    14400: "4h",
    21600: "6h",
    28800: "8h",
    43200: "12h",
    86400: "1d",
    259200: "3d",
    604800: "1w",
}
"""Kline intervals Binance serves, by length in seconds (``1M`` has no fixed length)."""

_MONDAY_MS = 4 * 86_400_000
_EIGHT = Decimal("0.00000001")


@dataclass(frozen=True)
class BarSeries:
    """OHLCV bars of one market, sorted by open time, on a Binance kline interval.

    Attributes:
        open_ms: Each bar's open time in milliseconds since the epoch (UTC).
        open: Open prices.
        high: High prices.
        low: Low prices.
        close: Close prices.
        volume: Base-asset volumes.
        interval_ms: Bar length in milliseconds.
        interval: Binance's name of the bar length (``1m``, ``1h``, ``1d``...).
    """

    open_ms: tuple[int, ...]
    open: tuple[Decimal, ...]
    high: tuple[Decimal, ...]
    low: tuple[Decimal, ...]
    close: tuple[Decimal, ...]
    volume: tuple[Decimal, ...]
    interval_ms: int
    interval: str

    def __len__(self) -> int:
        return len(self.open_ms)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, timeframe: str | None = None) -> BarSeries:
        """Build a series from a frame with ``open high low close volume`` and a UTC index.

        Args:
            frame: One row per bar, indexed by the bar's open time (tz-aware UTC, or
                naive and then read as UTC), as tradeloom's data layer produces.
            timeframe: Bar length such as ``1h``; inferred from the smallest gap
                between timestamps when omitted.

        Raises:
            ValueError: A column is missing, the index is not a sorted, unique
                DatetimeIndex, or a bar is inconsistent (names the first bad row).
        """
        missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame]
        if missing:
            raise ValueError(
                f"bars need columns open, high, low, close, volume; missing {', '.join(missing)}"
            )
        index = frame.index
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError(
                "bars need a DatetimeIndex of bar open times; "
                f"got {type(index).__name__} (set the timestamp column as the index)"
            )
        utc = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        open_ms = [int(v) for v in utc.as_unit("ms").asi8]
        return cls.from_arrays(
            open_ms,
            frame["open"].to_numpy(dtype=float),
            frame["high"].to_numpy(dtype=float),
            frame["low"].to_numpy(dtype=float),
            frame["close"].to_numpy(dtype=float),
            frame["volume"].to_numpy(dtype=float),
            timeframe=timeframe,
        )

    @classmethod
    def from_arrays(
        cls,
        open_ms: Sequence[int] | np.ndarray,
        open_: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        low: Sequence[float] | np.ndarray,
        close: Sequence[float] | np.ndarray,
        volume: Sequence[float] | np.ndarray,
        timeframe: str | None = None,
    ) -> BarSeries:
        """Build a series from equal-length arrays; open times in epoch milliseconds.

        Raises:
            ValueError: As for `from_frame`.
        """
        times = [int(t) for t in open_ms]
        columns = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
        lengths = {name: len(values) for name, values in columns.items()}
        if any(n != len(times) for n in lengths.values()):
            raise ValueError(
                f"bar arrays differ in length: open_ms={len(times)}, "
                + ", ".join(f"{k}={v}" for k, v in lengths.items())
            )
        if not times:
            raise ValueError("bars are empty; the emulator needs at least one bar to replay")
        decimals = {name: tuple(_decimal(name, v) for v in vals) for name, vals in columns.items()}
        interval_ms = _interval_ms(times, timeframe)
        _check_times(times, interval_ms)
        _check_ohlc(times, decimals)
        return cls(
            open_ms=tuple(times),
            open=decimals["open"],
            high=decimals["high"],
            low=decimals["low"],
            close=decimals["close"],
            volume=decimals["volume"],
            interval_ms=interval_ms,
            interval=BINANCE_INTERVALS[interval_ms // 1000],
        )

    def scaled(self, factor: Decimal) -> BarSeries:
        """Return the series with every price multiplied by ``factor`` (volumes kept).

        Prices are rounded half-even to 8 decimals, Binance's price precision: a venue
        quoting ``1 + offset_bps / 10_000`` times another's prices.

        Raises:
            ValueError: ``factor`` is not a positive Decimal.
        """
        if not isinstance(factor, Decimal) or not factor > 0:
            raise ValueError(f"a price factor must be a positive Decimal, was {factor!r}")
        if factor == 1:
            return self

        def scale(prices: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
            return tuple((p * factor).quantize(_EIGHT, rounding=ROUND_HALF_EVEN) for p in prices)

        return replace(
            self,
            open=scale(self.open),
            high=scale(self.high),
            low=scale(self.low),
            close=scale(self.close),
        )

    def to_frame(self) -> pd.DataFrame:
        """Return the series as float OHLCV indexed by UTC open time, named ``timestamp``."""
        index = pd.DatetimeIndex(pd.to_datetime(list(self.open_ms), unit="ms", utc=True))
        index.name = "timestamp"
        return pd.DataFrame(
            {
                "open": [float(v) for v in self.open],
                "high": [float(v) for v in self.high],
                "low": [float(v) for v in self.low],
                "close": [float(v) for v in self.close],
                "volume": [float(v) for v in self.volume],
            },
            index=index,
        )


def _decimal(name: str, value: float) -> Decimal:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"bars have a non-finite {name} ({number}); drop or fill those rows")
    # repr() is the shortest string that round-trips, so float(str(Decimal)) == number.
    return Decimal(repr(number))


def _interval_ms(times: list[int], timeframe: str | None) -> int:
    if timeframe is not None:
        seconds = parse_timeframe(timeframe)
    elif len(times) > 1:
        gaps = np.diff(np.asarray(times, dtype=np.int64))
        smallest = int(gaps.min())
        if smallest <= 0 or smallest % 1000:
            raise ValueError(
                "bar timestamps must increase by whole seconds; pass timeframe= explicitly "
                "or sort and deduplicate the bars"
            )
        seconds = smallest // 1000
    else:
        raise ValueError("a single bar has no interval; pass timeframe= (for example '1h')")
    if seconds not in BINANCE_INTERVALS:
        known = ", ".join(BINANCE_INTERVALS.values())
        raise ValueError(
            f"timeframe must be one of Binance's kline intervals ({known}); was {seconds}s"
        )
    return seconds * 1000


def _check_times(times: list[int], interval_ms: int) -> None:
    # Weekly klines open on Mondays; 1970-01-01 was a Thursday, four days earlier.
    offset = _MONDAY_MS if interval_ms == 604_800_000 else 0
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            raise ValueError(
                "bar timestamps must be sorted and unique; first out of order at "
                f"{_stamp(times[i])}; sort the bars and drop duplicates"
            )
    misaligned = [t for t in times if (t - offset) % interval_ms]
    if misaligned:
        raise ValueError(
            f"{len(misaligned)} bars do not open on a {interval_ms // 1000}s boundary "
            f"(first at {_stamp(misaligned[0])}); Binance klines open on interval boundaries"
        )


def _check_ohlc(times: list[int], d: dict[str, tuple[Decimal, ...]]) -> None:
    checks: tuple[tuple[str, Callable[[int], bool]], ...] = (
        ("high < max(open, close)", lambda i: d["high"][i] < max(d["open"][i], d["close"][i])),
        ("low > min(open, close)", lambda i: d["low"][i] > min(d["open"][i], d["close"][i])),
        ("a price <= 0", lambda i: min(d["low"][i], d["open"][i]) <= 0),
        ("volume < 0", lambda i: d["volume"][i] < 0),
    )
    for label, bad in checks:
        rows = [i for i in range(len(times)) if bad(i)]
        if rows:
            raise ValueError(
                f"{len(rows)} bars have {label} (first at {_stamp(times[rows[0]])}); "
                "repair or drop them before replaying"
            )


def _stamp(ms: int) -> str:
    return format_timestamp(pd.Timestamp(ms, unit="ms", tz="UTC"))
