"""Timeframes (``1m``, ``4h``, ``1d``...), annualization, and timestamps in messages."""

from __future__ import annotations

import datetime
import re

from tradeloom.bounds import MAX_TIMEFRAME_SECONDS
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "MONTH_SECONDS",
    "SECONDS_PER_YEAR",
    "TIMESTAMP_RANGE",
    "feature_timeframe_seconds",
    "format_timestamp",
    "last_bar_problem",
    "parse_timeframe",
    "periods_per_year",
]

SECONDS_PER_YEAR = 365.0 * 24 * 3600
"""Crypto markets trade around the clock: a year is 365 days of bars."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def parse_timeframe(text: str) -> int:
    """Return the length of a timeframe such as ``15m`` or ``1h`` in seconds.

    Raises:
        ValueError: ``text`` is not a number followed by one of s, m, h, d, w, or is
            longer than `MAX_TIMEFRAME_SECONDS` (366 days).
    """
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValueError(
            "timeframe must be a number and a unit (s, m, h, d, w) such as 1m, 4h, 1d; "
            f"was '{_short(text)}'"
        )
    digits, unit = match.groups()
    seconds = int(digits) * _UNITS[unit] if len(digits) <= 12 else MAX_TIMEFRAME_SECONDS + 1
    if seconds > MAX_TIMEFRAME_SECONDS:
        raise ValueError(
            f"timeframe must be at most {MAX_TIMEFRAME_SECONDS // 86_400} days (such as 1d, "
            f"1w or 30d); was '{_short(text)}'"
        )
    return seconds


MONTH_SECONDS = 2_629_746
"""The mean Gregorian month (365.2425 / 12 days): the nominal length of a ``1M`` bar."""


def feature_timeframe_seconds(text: str) -> int:
    """Return the length of a feature's ``timeframe:``: `parse_timeframe`'s, or for ``1M``
    (calendar months) `MONTH_SECONDS`."""
    return MONTH_SECONDS if text.strip() == "1M" else parse_timeframe(text)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def periods_per_year(timeframe_seconds: int) -> float:
    """Return how many bars of this length make a year."""
    return SECONDS_PER_YEAR / timeframe_seconds


def format_timestamp(value: pd.Timestamp | int) -> str:
    """Return a UTC timestamp as ``2024-03-01T04:00Z`` (seconds shown only when not 0).

    Args:
        value: A timestamp, or nanoseconds since the epoch.
    """
    ts = pd.Timestamp(value, tz="UTC") if isinstance(value, int) else pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts.microsecond or ts.nanosecond:
        return str(ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if ts.second:
        return str(ts.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return str(ts.strftime("%Y-%m-%dT%H:%MZ"))


TIMESTAMP_RANGE = "1677-09-21T00:13Z .. 2262-04-11T23:47Z"
"""The times a bar may have: what pandas' nanosecond timestamps hold."""


def last_bar_problem(start: int, bars: int, timeframe: str, seconds: int) -> str | None:
    """Return why ``bars`` bars of ``seconds`` from ``start`` (UTC ns) do not fit, or None.

    The last bar must open no later than pandas' last timestamp (2262-04-11); a series
    past it would wrap around to 1677 silently.
    """
    last_ns = start + (bars - 1) * seconds * 1_000_000_000
    if last_ns <= _LAST_NS:
        return None
    fitting = (_LAST_NS - start) // (seconds * 1_000_000_000) + 1
    try:
        when = f"in {pd.Timestamp(0, tz='UTC').to_pydatetime() + _delta(last_ns):%Y}"
    except OverflowError:
        when = "after the year 9999"
    return (
        f"{bars:,} {timeframe} bars from {format_timestamp(start)} would end {when}, past the "
        f"last time a bar may have (2262-04-11T23:47Z); give at most {max(fitting, 0):,} bars "
        "or an earlier start"
    )


_LAST_NS = 2**63 - 1
"""``pd.Timestamp.max.value``: the last nanosecond a timestamp holds."""


def _delta(nanoseconds: int) -> datetime.timedelta:
    return datetime.timedelta(microseconds=nanoseconds // 1000)
