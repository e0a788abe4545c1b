"""Timeframes (``1m``, ``4h``, ``1d``...), annualization, and timestamps in messages."""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["SECONDS_PER_YEAR", "format_timestamp", "parse_timeframe", "periods_per_year"]

SECONDS_PER_YEAR = 365.0 * 24 * 3600
"""Crypto markets trade around the clock: a year is 365 days of bars."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def parse_timeframe(text: str) -> int:
    """Return the length of a timeframe such as ``15m`` or ``1h`` in seconds.

    Raises:
        ValueError: ``text`` is not a number followed by one of s, m, h, d, w.
    """
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValueError(
            "timeframe must be a number and a unit (s, m, h, d, w) such as 1m, 4h, 1d; "
            f"was '{text}'"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


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
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if ts.second:
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    return ts.strftime("%Y-%m-%dT%H:%MZ")
