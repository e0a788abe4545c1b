"""Timeframes (``1m``, ``4h``, ``1d``...) and annualization."""

from __future__ import annotations

import re

__all__ = ["SECONDS_PER_YEAR", "parse_timeframe", "periods_per_year"]

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
