"""Read timestamps as users write them: ISO 8601 strings or epoch numbers, always UTC."""

from __future__ import annotations

import datetime
import re

from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.timeframes import TIMESTAMP_RANGE

__all__ = [
    "EPOCH_UNITS",
    "epoch_unit",
    "parse_timestamps",
    "parse_utc_timestamp",
    "utc_nanoseconds",
]

EPOCH_UNITS: tuple[tuple[str, float, int], ...] = (
    ("s", 1e11, 1_000_000_000),
    ("ms", 1e14, 1_000_000),
    ("us", 1e17, 1_000),
    ("ns", float("inf"), 1),
)
"""Epoch units by magnitude: (unit, values below this bound, nanoseconds per unit).

Now is about 1.7e9 seconds, 1.7e12 milliseconds: 1e11 seconds is the year 5138 and
1e11 milliseconds is 1973, so a magnitude bound tells the units apart.
"""

_INT64_MAX = 2**63 - 1  # np.iinfo(np.int64).max


def parse_utc_timestamp(text: str) -> pd.Timestamp:
    """Return ``text`` as a UTC timestamp; a timestamp without a zone is UTC.

    Raises:
        ValueError: ``text`` is not a timestamp, with an example of one that is.
    """
    try:
        ts = pd.Timestamp(str(text).strip())
    except (ValueError, TypeError, OverflowError):
        ts = pd.NaT
    if ts is pd.NaT or not isinstance(ts, pd.Timestamp):
        raise ValueError(
            f"must be a UTC timestamp such as 2024-03-01T04:00:00Z or 2024-03-01; was '{text}'"
        )
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    try:
        return ts.as_unit("ns")
    except (OverflowError, ValueError):  # OutOfBoundsDatetime
        raise ValueError(
            f"must be a UTC timestamp between {TIMESTAMP_RANGE}; was '{text}'"
        ) from None


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?$"
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_NS_BOUND = 2**63 - 1  # pandas' nanosecond timestamps: int64 but its minimum (NaT)


def utc_nanoseconds(text: str) -> int:
    """Return ``text`` as UTC nanoseconds since the epoch, as `parse_utc_timestamp` reads it.

    A plain ISO 8601 timestamp (``2024-03-01``, ``2024-03-01T04:00:00.5Z``,
    ``2024-03-01 04:00+02:00``) is read without pandas, so that validating a strategy
    file does not import it; anything else, and every error, goes through
    `parse_utc_timestamp`, which keeps one set of accepted forms and messages.

    Raises:
        ValueError: ``text`` is not a timestamp, with an example of one that is.
    """
    match = _ISO.match(str(text).strip())
    if match is not None:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        try:
            offset = datetime.timedelta(0)
            if zone not in (None, "Z"):
                sign = -1 if zone[0] == "-" else 1
                offset = sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:]))
            stamp = datetime.datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                tzinfo=datetime.timezone(offset),
            )
        except ValueError:
            pass  # an impossible date or offset: pandas says what is wrong
        else:
            whole = stamp - _EPOCH
            seconds = whole.days * 86_400 + whole.seconds
            ns = seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))
            if -_NS_BOUND <= ns <= _NS_BOUND:
                return ns
    return int(parse_utc_timestamp(text).value)


def epoch_unit(magnitude: float) -> tuple[str, int]:
    """Return the epoch unit of numbers of this typical magnitude and its size in ns."""
    for unit, bound, nanos in EPOCH_UNITS:
        if magnitude < bound:
            return unit, nanos
    return EPOCH_UNITS[-1][0], EPOCH_UNITS[-1][2]


def parse_timestamps(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column of timestamps to UTC nanoseconds since the epoch.

    Accepts datetimes (naive ones are UTC), ISO 8601 strings (naive ones are UTC,
    others converted; a word such as ``now`` or ``today`` is not a timestamp), and epoch
    seconds, milliseconds, microseconds or nanoseconds
    (numbers or numeric strings; the unit is detected from the column's median
    magnitude, see `EPOCH_UNITS`).

    Args:
        values: The column as read.

    Returns:
        ``(nanoseconds, bad)``: int64 nanoseconds (0 where bad) and a mask of the
        values that are missing, cannot be parsed, or fall outside the times nanoseconds
        hold (`tradeloom.time.timeframes.TIMESTAMP_RANGE`).
    """
    n = len(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        values.dtype
    ):
        index = pd.DatetimeIndex(values)
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        return _in_range(index, np.asarray(index.isna()))
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return _from_epoch(values)
    fixed = _fixed_width_iso(values)
    if fixed is not None:  # most files: every time written the same way, read by Arrow
        return fixed, np.zeros(n, dtype=bool)
    text = values.astype("string").str.strip()
    present = np.asarray(text.notna() & (text != ""), dtype=bool)
    # epoch numbers only if every present value is one: the first that is not (an ISO
    # time, as most files have) settles it without parsing a million of them
    first = text[present].iloc[:1]
    if present.any() and pd.to_numeric(first, errors="coerce").notna().all():
        numeric = pd.to_numeric(text, errors="coerce")
        if np.asarray(numeric.notna(), dtype=bool)[present].all():
            return _from_epoch(numeric)
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    # pandas reads "now" and "today" as the wall-clock time: a run would not be
    # reproducible. A time is written with digits; a cell without any is not one.
    words = np.asarray(text.str.contains(r"[0-9]", regex=True).fillna(True) == False)  # noqa: E712
    return _in_range(pd.DatetimeIndex(parsed), np.asarray(parsed.isna()) | words)


# The fixed-width ISO 8601 forms read at once, by length: d a digit, ? T or a space, ~ +
# or -, any other byte itself (naive times are UTC)
_FORMS = {
    len(form): form
    for form in (b"dddd-dd-dd?dd:dd:dd", b"dddd-dd-dd?dd:dd:ddZ", b"dddd-dd-dd?dd:dd:dd~dd:dd")
}
_EITHER = {ord("?"): (ord("T"), ord(" ")), ord("~"): (ord("+"), ord("-"))}


def _fixed_width_iso(values: pd.Series) -> np.ndarray | None:
    """Return the UTC nanoseconds of a text column whose every cell is written in the
    same one of the fixed-width ISO 8601 forms ``2024-03-01T04:00:00``, ``...Z`` or
    ``...+02:00`` (T or a space), read by Arrow; None for any other column (no cell
    missing, no space around a cell, no impossible date or time, every time within
    `tradeloom.time.timeframes.TIMESTAMP_RANGE`), which `parse_timestamps` reads cell by cell
    and whose bad cells it names.

    The shape is checked byte by byte here, so that Arrow reads exactly the times the
    general path would read, to the same nanosecond.
    """
    import pyarrow as pa

    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type not in (pa.string(), pa.large_string()) or array.null_count or not len(array):
        return None
    offsets_type = np.int64 if array.type == pa.large_string() else np.int32
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offsets_type)[
        array.offset : array.offset + len(array) + 1
    ]
    width = int(offsets[1] - offsets[0])
    if width not in _FORMS or int(offsets[-1] - offsets[0]) != width * len(array):
        return None  # not every cell this long (the total of the lengths says so)
    cells = np.frombuffer(
        data_buffer, dtype=np.uint8, count=width * len(array), offset=int(offsets[0])
    ).reshape(len(array), width)
    form = np.frombuffer(_FORMS[width], dtype=np.uint8)
    digit = form == ord("d")
    either = np.isin(form, list(_EITHER))
    same = ~digit & ~either
    low, high = cells.min(axis=0), cells.max(axis=0)  # each position's range of bytes
    if not (
        (low[digit] >= ord("0")).all()
        and (high[digit] <= ord("9")).all()
        and (low[same] == form[same]).all()
        and (high[same] == form[same]).all()
    ):
        return None
    for position in np.flatnonzero(either):  # one of two bytes
        first, second = _EITHER[int(form[position])]
        if not ((cells[:, position] == first) | (cells[:, position] == second)).all():
            return None
    zone = "UTC" if width > 19 else None
    try:  # an impossible date or time, or one outside what nanoseconds hold: refused
        stamps = array.cast(pa.timestamp("ns", tz=zone))
    except pa.ArrowException:
        return None
    return np.asarray(stamps.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _in_range(index: pd.DatetimeIndex, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Times outside what nanoseconds hold (before 1677-09-21, after 2262-04-11) are bad
    # values too, not an overflow later. Compared as integers in the index's own unit:
    # v units are below the least nanosecond time when v < its ceiling in units.
    nanos = _UNIT_NANOS[index.unit]
    values = index.asi8  # NaT is int64's least value: outside, and bad already
    low = -(-pd.Timestamp.min.value // nanos)
    high = pd.Timestamp.max.value // nanos
    bad = bad | (values < low) | (values > high)
    if not bad.any():  # (most data) every value in nanoseconds, at once
        return np.multiply(values, nanos), bad
    out = np.zeros(len(index), dtype=np.int64)
    ok = ~bad
    out[ok] = values[ok] * nanos
    return out, bad


_UNIT_NANOS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _from_epoch(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(numbers)
    out = np.zeros(len(numbers), dtype=np.int64)
    if not finite.any():
        return out, ~finite
    _, nanos = epoch_unit(float(np.median(np.abs(numbers[finite]))))
    safe = np.where(finite, numbers, 0.0)
    ok = finite & (np.abs(safe) < _INT64_MAX / nanos / 1.001)
    if pd.api.types.is_integer_dtype(values.dtype):
        # Integers stay integers: float64 has too few bits for nanoseconds.
        whole = values.to_numpy(dtype=np.int64, na_value=0)
        out[ok] = whole[ok] * nanos
    else:
        integral = ok & (safe == np.floor(safe))
        out[integral] = safe[integral].astype(np.int64) * nanos
        fractional = ok & ~integral
        out[fractional] = np.round(safe[fractional] * nanos).astype(np.int64)
    return out, ~ok
