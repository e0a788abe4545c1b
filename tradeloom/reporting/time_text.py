"""Times as ISO text a whole array at once: ``YYYY-MM-DDTHH:MM[:SS]``, as numpy's
``datetime_as_string`` writes them to the minute or the second.

numpy writes each time by itself (~170 ns each) and a list of Python strings costs
more than the text: a long run's trade markers (two times a trade) cost milliseconds.
Here the dates are worked out for the whole array (Howard Hinnant's
``civil_from_days``), the digits written two at a time into a table of bytes (one row a
time), and the page gets that text as it is: one JSON array (`json_times`), or the
strings of a table's cells (`time_texts`). Times outside years 1000-9999 (a sign or a
fifth digit) are `None`: the caller writes them as numpy does.

Both, and a run's CSV tables (`tradeloom.reporting.csv_table`, as ``strftime`` writes
them), write times from their whole seconds since 1970 (`second_texts`), floored: a
time before 1970 with a fraction of a second is in the second before it, as numpy's
and pandas' text has it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import orjson

__all__ = ["Unit", "json_times", "second_cells", "second_texts", "time_texts"]

Unit = Literal["m", "s"]

_PAIRS = np.frombuffer(b"".join(b"%02d" % i for i in range(100)), np.uint16)
"""The two ASCII digits of each number 0-99, as the 16-bit number of their two bytes."""
_FIELDS = (0, 2, 5, 8, 11, 14, 17)
"""Where each pair of digits starts: century, year, month, day, hour, minute, second."""


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _seconds(values: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    """Return each time's whole seconds since 1970, floored (NaT: any number)."""
    unit, count = np.datetime_data(values.dtype)
    if count == 1 and unit in _PER_SECOND:
        # not numpy's cast to seconds: it floors a time before 1970 as (t - 999_999_999)
        # // 10**9, which wraps around within a second of int64's least (1677-09-21T00:12:43
        # and a fraction, pandas' Timestamp.min, came out as a time of 2262)
        return values.view(np.int64) // _PER_SECOND[unit]
    return values.astype("datetime64[s]").view(np.int64)  # a coarser unit: exact


def _table(
    seconds: npt.NDArray[np.int64],
    valid: npt.NDArray[np.bool_] | None,
    unit: Unit,
    sep: str,
    before: bytes,
    after: bytes,
) -> npt.NDArray[np.uint8] | None:
    """Return the text of each time in whole ``seconds`` since 1970 between ``before``
    and ``after`` as a row of bytes (None: a time outside years 1000-9999). A row not
    ``valid`` is any date of those years: the caller masks it."""
    if valid is not None:
        seconds = np.where(valid, seconds, 0)
    days, clock = np.divmod(seconds, 86_400)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    if len(year) and (year.min() < 1000 or year.max() > 9999):
        return None
    parts = [year // 100, year % 100, month, day, clock // 3600, clock // 60 % 60]
    if unit == "s":
        parts.append(clock % 60)
    text = f"0000-00-00{sep}00:00" + (":00" if unit == "s" else "")
    template = np.frombuffer(before + text.encode() + after, np.uint8)
    width = len(template)
    out = np.empty((len(seconds), width), np.uint8)
    out[:] = template
    for start, number in zip(_FIELDS, parts, strict=False):
        # each pair of digits as one 16-bit number: a gather and a store per field
        at = np.ndarray(
            (len(seconds),), np.uint16, out, offset=len(before) + start, strides=(width,)
        )
        at[:] = _PAIRS[number]
    return out


def json_times(values: npt.NDArray[np.datetime64], unit: Unit) -> orjson.Fragment | None:
    """Return the JSON array of ``np.datetime_as_string(values, unit=unit)`` (no NaT),
    ready for orjson to write as it is; None: a time outside years 1000-9999."""
    if not len(values):
        return orjson.Fragment(b"[]")
    table = _table(_seconds(values), None, unit, "T", b'"', b'",')
    if table is None:
        return None
    text = table.tobytes()
    return orjson.Fragment(b"[" + text[:-1] + b"]")


def time_texts(
    values: npt.NDArray[np.datetime64], unit: Unit, sep: str = "T", missing: str = ""
) -> list[str] | None:
    """Return each time's text, ``sep`` between the date and the time of day (``missing``
    for NaT); None: a time outside years 1000-9999."""
    return second_texts(_seconds(values), unit, ~np.isnat(values), sep=sep, missing=missing)


def second_texts(
    seconds: npt.NDArray[np.int64],
    unit: Unit,
    valid: npt.NDArray[np.bool_] | None = None,
    *,
    sep: str = "T",
    after: str = "",
    missing: str = "",
) -> list[str] | None:
    """Return the text of each time given as whole seconds since 1970 (a time's
    nanoseconds floor-divided: ``ns // 10**9``), ``sep`` between the date and the time
    of day, ``after`` after it; ``missing`` where ``valid`` (None: every time) is False.
    None: a valid time outside years 1000-9999."""
    if not len(seconds):
        return []
    table = _table(seconds, valid, unit, sep, b"", after.encode())
    if table is None:
        return None
    width = table.shape[1]
    text = table.tobytes().decode("ascii")
    out = [text[k : k + width] for k in range(0, len(text), width)]
    if valid is not None:
        for k in np.flatnonzero(~valid).tolist():
            out[k] = missing
    return out


def second_cells(
    seconds: npt.NDArray[np.int64],
    unit: Unit,
    valid: npt.NDArray[np.bool_] | None = None,
    *,
    after: str = "",
) -> list[bytes] | None:
    """Return `second_texts` of ``seconds`` (``sep`` "T", ``missing`` empty) as ASCII
    bytes: a CSV table's cells (`tradeloom.reporting.csv_table`), written as bytes."""
    if not len(seconds):
        return []
    table = _table(seconds, valid, unit, "T", b"", after.encode())
    if table is None:
        return None
    out: list[bytes] = table.view(f"S{table.shape[1]}").ravel().tolist()
    if valid is not None:
        for k in np.flatnonzero(~valid).tolist():
            out[k] = b""
    return out
