"""A feature on a higher timeframe: ``timeframe: 4h`` on any per-symbol feature.

The base bars (say 15m) are resampled into bars of the feature's ``timeframe``:
buckets aligned on the UTC epoch (a 4h bucket starts at 00:00, 04:00, ... UTC; a 1d
bucket at midnight), open = the first base bar's open, high = the highest high, low =
the lowest low, close = the last close, volume = the sum, added in bar order. The
feature runs on those bars as it would on bars of that timeframe (its own kernel,
batch or per bar), and its value joins the base bars as of the close of the
higher-timeframe bar: a 4h bar is used from the base bar that closes it (its last
base bar) onwards, never by the base bars inside it. A bucket whose last base bar is
missing (a gap) is closed by the first base bar after it. The bucket in which the
data start is left out unless its first base bar opens it: a 4h bar built from the
last hour of its 4 would be another bar than the exchange's.

Resampler kernel state (`new_resample_state`, float64 array of 9):
``[bucket start (s), open, high, low, close, volume, 1 if that bucket is left out,
1 while a bucket is open, 1 once a bar was seen]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tradeloom.domain import Bar, Bars
from tradeloom.errors import DataError
from tradeloom.kernels.jit import kernel
from tradeloom.plugins.protocols import (
    CrossSectionalFeature,
    Feature,
    ReadsOrderBook,
    input_columns_of,
    reads_beside_ohlcv,
)
from tradeloom.plugins.protocols_steps import ComputeStep, FeatureStep, StepContext, SteppedFeature
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.schemas.config import timeframe_column
from tradeloom.time.calendars import TradingCalendar
from tradeloom.time.timeframes import feature_timeframe_seconds, parse_timeframe

__all__ = [
    "CALENDAR_TIMEFRAMES",
    "CalendarBuckets",
    "HigherTimeframe",
    "TimeframeStep",
    "completed_rows",
    "new_resample_state",
    "resample",
    "resample_bucket_step",
    "resample_buckets",
    "resample_step",
    "timeframe_column",
    "timeframe_problem",
    "timeframe_refusal",
]

_DAY = 86_400
CALENDAR_TIMEFRAMES = ("1w", "1M")
"""Higher timeframes of calendar weeks and months (`CalendarBuckets`)."""


def timeframe_problem(base_seconds: int, base: str, timeframe: str) -> str | None:
    """Return why a feature cannot be resampled from ``base`` bars to ``timeframe``, or None.

    The timeframe must be longer than the base, a whole multiple of it, and divide one
    day (so that its buckets align on midnight UTC).
    """
    if timeframe in CALENDAR_TIMEFRAMES:
        if base_seconds > _DAY or _DAY % base_seconds:
            return (
                f"{timeframe} is built from bars that divide one day (such as 1h or 1d), "
                f"was on the bars' {base}"
            )
        return None
    seconds = parse_timeframe(timeframe)
    if seconds <= base_seconds:
        return (
            f"must be a higher timeframe than the bars' {base}, was {timeframe}; remove "
            "timeframe: to compute the feature on the bars themselves"
        )
    if seconds % base_seconds:
        return (
            f"must be a whole multiple of the bars' {base} (each of its bars is made of "
            f"whole {base} bars), was {timeframe}"
        )
    if _DAY % seconds:
        return (
            "must divide one day (such as 1h, 4h, 12h, 1d), or be 1w or 1M (calendar weeks "
            f"and months), was {timeframe}"
        )
    return None


def timeframe_refusal(feature: Feature) -> str | None:
    """Return why ``feature`` cannot take ``timeframe:``, or None when it can."""
    if isinstance(feature, CrossSectionalFeature):
        return "a cross-sectional feature reads the universe at each base bar; remove timeframe:"
    if reads_beside_ohlcv(feature) or isinstance(feature, ReadsOrderBook):
        return "this feature reads columns beside OHLCV, which are not resampled; remove timeframe:"
    return None


@kernel
def new_resample_state() -> np.ndarray:
    """Return the state of a resampler that has seen no bar."""
    return np.zeros(9)


@kernel
def _emit(state: np.ndarray, out: np.ndarray, n: int) -> int:
    if state[6] != 0.0:
        return n
    for k in range(6):
        out[n, k] = state[k]
    return n + 1


@kernel
def resample_step(
    state: np.ndarray,
    time: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    seconds: int,
    base_seconds: int,
    out: np.ndarray,
) -> int:
    """Take a base bar; write the higher-timeframe bars it closes into ``out``; return how many.

    Args:
        state: `new_resample_state`, updated in place.
        time: The base bar's open time, seconds since the epoch.
        open_, high, low, close, volume: The base bar.
        seconds: The higher timeframe in seconds (a multiple of ``base_seconds``).
        base_seconds: The base timeframe in seconds.
        out: ``[2, 6]``: rows ``start, open, high, low, close, volume`` of the bars
            closed: the open bucket when this bar is in a later one (a gap), then this
            bar's bucket when this bar is its last.
    """
    bucket = time - time % seconds
    return resample_bucket_step(
        state, time, bucket, time == bucket, time + base_seconds >= bucket + seconds,
        open_, high, low, close, volume, out,
    )  # fmt: skip


@kernel
def resample_bucket_step(
    state: np.ndarray,
    time: int,
    bucket: int,
    opens: bool,
    closes: bool,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    out: np.ndarray,
) -> int:
    """`resample_step` with the bucket given: its start, and whether this bar opens it (the
    first bar of the data is left out of a bucket it does not open) and closes it."""
    n = 0
    if state[7] != 0.0 and state[0] != bucket:
        n = _emit(state, out, n)
        state[7] = 0.0
    if state[7] == 0.0:
        state[0] = bucket
        state[1] = open_
        state[2] = high
        state[3] = low
        state[4] = close
        state[5] = volume
        state[6] = 1.0 if state[8] == 0.0 and not opens else 0.0
        state[7] = 1.0
        state[8] = 1.0
    else:
        if high > state[2]:
            state[2] = high
        if low < state[3]:
            state[3] = low
        state[4] = close
        state[5] = state[5] + volume
    if closes:
        n = _emit(state, out, n)
        state[7] = 0.0
    return n


@kernel
def resample(
    time: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    seconds: int,
    base_seconds: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the higher-timeframe bars ``[m, 6]`` and the base row closing each ``[m]``.

    `resample_step` over every base bar in order (the batch driver of the resampler).
    """
    n = time.size
    state = new_resample_state()
    out = np.empty((2, 6))
    bars = np.empty((n + 1, 6))
    rows = np.empty(n + 1, dtype=np.int64)
    m = 0
    for i in range(n):
        k = resample_step(
            state, time[i], open_[i], high[i], low[i], close[i], volume[i], seconds,
            base_seconds, out,
        )  # fmt: skip
        for j in range(k):
            bars[m, :] = out[j, :]
            rows[m] = i
            m += 1
    return bars[:m].copy(), rows[:m].copy()


@kernel
def resample_buckets(
    time: np.ndarray,
    bucket: np.ndarray,
    opens: np.ndarray,
    closes: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`resample` over buckets given per base bar (`CalendarBuckets`)."""
    n = time.size
    state = new_resample_state()
    out = np.empty((2, 6))
    bars = np.empty((n + 1, 6))
    rows = np.empty(n + 1, dtype=np.int64)
    m = 0
    for i in range(n):
        k = resample_bucket_step(
            state, time[i], bucket[i], opens[i], closes[i], open_[i], high[i], low[i],
            close[i], volume[i], out,
        )  # fmt: skip
        for j in range(k):
            bars[m, :] = out[j, :]
            rows[m] = i
            m += 1
    return bars[:m].copy(), rows[:m].copy()


class CalendarBuckets:
    """Calendar weeks (``1w``, from Monday) and months (``1M``) of UTC dates, opened and
    closed by the market's calendar.

    A bucket's first and last bars are the first and last base bars the calendar
    expects in it (for daily stock bars: the week's first and last trading days), so a
    weekly bar closes on the Friday's bar, not when the next week's first bar comes;
    a bar the calendar does not expect past the last expected one closes it too. The
    calendar's schedule is known in advance: nothing after the bar is read.
    """

    def __init__(self, timeframe: str, base_seconds: int, calendar: TradingCalendar) -> None:
        self.month = timeframe == "1M"
        self.base_ns = base_seconds * 1_000_000_000
        self.calendar = calendar
        self._bounds: dict[int, tuple[int, int]] = {}

    def _start_end(self, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.month:
            months = day.astype("datetime64[D]").astype("datetime64[M]")
            start = months.astype("datetime64[D]")
            end = (months + 1).astype("datetime64[D]")
        else:
            # 1970-01-01 was a Thursday: Monday-based weeks start 3 days after a multiple of 7
            start = (((day.astype(np.int64) - 4) // 7) * 7 + 4).astype("datetime64[D]")
            end = start + 7
        to_ns = np.int64(86_400 * 1_000_000_000)
        return start.astype(np.int64) * to_ns, end.astype(np.int64) * to_ns

    def _learn(self, start: np.ndarray, end: np.ndarray) -> None:
        """Find the first and last expected slots of each bucket not known yet, asking
        the calendar once for all of them (an exchange's calendar is costly to build)."""
        pairs = zip(start.tolist(), end.tolist(), strict=True)
        new = {a: b for a, b in pairs if a not in self._bounds}
        if not new:
            return
        slots = [np.arange(a, b, self.base_ns, dtype=np.int64) for a, b in new.items()]
        expected = self.calendar.expected(np.concatenate(slots), self.base_ns)
        at = 0
        for (a, b), these in zip(new.items(), slots, strict=True):
            mine = these[expected[at : at + len(these)]]
            at += len(these)
            self._bounds[a] = (int(mine[0]), int(mine[-1])) if len(mine) else (b, a)

    def of(self, times_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return per bar (open times in UTC ns): its bucket's start (s), and whether it
        opens and closes its bucket."""
        times_ns = np.asarray(times_ns, dtype=np.int64)
        start, end = self._start_end(times_ns.view("datetime64[ns]").astype("datetime64[D]"))
        self._learn(start, end)
        bounds = np.array([self._bounds[a] for a in start.tolist()], np.int64).reshape(-1, 2)
        return start // 1_000_000_000, times_ns <= bounds[:, 0], times_ns >= bounds[:, 1]


def completed_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """Return, for each of ``n`` base rows, the last higher-timeframe bar closed by then.

    Args:
        rows: The base row that closes each higher-timeframe bar (non-decreasing).
        n: The number of base rows.

    Returns:
        Per base row, the index of that bar, or -1 before the first one closes. This is
        the as-of join: a higher-timeframe value is seen only from its bar's close on.
    """
    return np.searchsorted(rows, np.arange(n), side="right") - 1


def _seconds(index: pd.DatetimeIndex) -> np.ndarray:
    return np.ascontiguousarray(index.as_unit("s").asi8, dtype=np.int64)


def _frame(values: np.ndarray) -> pd.DataFrame:
    index = pd.DatetimeIndex(
        pd.to_datetime(values[:, 0].astype(np.int64), unit="s", utc=True), name="timestamp"
    )
    return pd.DataFrame(
        np.ascontiguousarray(values[:, 1:]),
        index=index,
        columns=["open", "high", "low", "close", "volume"],
    )


@dataclass(frozen=True)
class HigherTimeframe:
    """A feature computed on the bars resampled to ``timeframe``, joined as of their close.

    Args:
        inner: The feature, as built for bars of ``timeframe``.
        timeframe: The higher timeframe as written (``4h``).

    Attributes:
        seconds: ``timeframe`` in seconds.
    """

    inner: Feature
    timeframe: str
    seconds: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seconds", feature_timeframe_seconds(self.timeframe))

    def input_columns(self) -> tuple[str, ...]:
        """Return the columns ``inner`` reads (of the resampled bars: volume is the sum)."""
        return input_columns_of(self.inner)

    def columns(self) -> list[str]:
        """Return the inner feature's columns, each named with the timeframe."""
        return [timeframe_column(c, self.timeframe) for c in self.inner.columns()]

    def resampled(self, bars: Bars) -> tuple[Bars, np.ndarray]:
        """Return ``bars`` resampled to the timeframe, and the base row closing each bar.

        Raises:
            DataError: The bars' timeframe does not resample to this one.
        """
        problem = timeframe_problem(bars.timeframe_seconds, bars.timeframe, self.timeframe)
        if problem is not None:
            raise DataError(f"feature timeframe: {problem}")
        frame = bars.frame
        open_, high, low, close, volume = (
            np.ascontiguousarray(frame[c].to_numpy(np.float64)) for c in _OHLCV
        )
        times = _seconds(frame.index)
        if self.timeframe in CALENDAR_TIMEFRAMES:
            buckets = CalendarBuckets(self.timeframe, bars.timeframe_seconds, bars.calendar)
            start, opens, closes = buckets.of(times * 1_000_000_000)
            values, rows = resample_buckets(
                times, start, opens, closes, open_, high, low, close, volume
            )
        else:
            values, rows = resample(
                times, open_, high, low, close, volume, self.seconds, bars.timeframe_seconds
            )
        higher = Bars(
            _frame(values),
            bars.symbol,
            self.timeframe,
            self.seconds,
            calendar=bars.calendar,
            documents=bars.documents,  # a text feature reads them at the higher bars' closes
        )
        return higher, rows

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Return the inner feature's values, each row as of the last closed higher bar."""
        higher, rows = self.resampled(bars)
        out = self.inner.compute(higher, pd.DataFrame(index=higher.frame.index))
        values = out.to_numpy(np.float64).reshape(len(higher), len(self.inner.columns()))
        at = completed_rows(rows, len(bars))
        placed = np.full((len(bars), values.shape[1]), np.nan)
        seen = at >= 0
        placed[seen] = values[at[seen]]
        return pd.DataFrame(placed, index=bars.frame.index, columns=self.columns())

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver: the resampler's step, then the inner feature's."""
        problem = timeframe_problem(context.timeframe_seconds, context.timeframe, self.timeframe)
        if problem is not None:
            raise DataError(f"feature timeframe: {problem}")
        inner_context = StepContext(
            context.symbol,
            self.timeframe,
            self.seconds,
            calendar=context.calendar,
            documents=context.documents,
        )
        inner = (
            self.inner.stepper(inner_context)
            if isinstance(self.inner, SteppedFeature)
            else ComputeStep(self.inner, inner_context)
        )
        buckets = (
            CalendarBuckets(self.timeframe, context.timeframe_seconds, context.calendar)
            if self.timeframe in CALENDAR_TIMEFRAMES
            else None
        )
        return TimeframeStep(
            inner, self.seconds, context.timeframe_seconds, len(self.columns()), buckets
        )


_OHLCV = ("open", "high", "low", "close", "volume")
_NO_FEATURES: Mapping[str, float] = {}


class TimeframeStep:
    """Step a higher-timeframe feature: resample each base bar; step the inner feature on
    each higher bar it closes; return the last closed bar's values (NaN before one)."""

    def __init__(
        self,
        inner: FeatureStep,
        seconds: int,
        base_seconds: int,
        width: int,
        buckets: CalendarBuckets | None = None,
    ) -> None:
        self._inner = inner
        self._buckets = buckets
        self._seconds = seconds
        self._base = base_seconds
        self._state = new_resample_state()
        self._out = np.empty((2, 6))
        self._count = 0
        self._last: tuple[float, ...] = (float("nan"),) * width

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Take the next base bar; return the values as of the last closed higher bar."""
        time = int(bar.timestamp.value // 1_000_000_000)
        if self._buckets is None:
            n = resample_step(
                self._state, time, bar.open, bar.high, bar.low, bar.close, bar.volume,
                self._seconds, self._base, self._out,
            )  # fmt: skip
        else:
            start, opens, closes = self._buckets.of(np.array([bar.timestamp.value], np.int64))
            n = resample_bucket_step(
                self._state, time, int(start[0]), bool(opens[0]), bool(closes[0]), bar.open,
                bar.high, bar.low, bar.close, bar.volume, self._out,
            )  # fmt: skip
        for k in range(n):
            row = self._out[k]
            higher = Bar(
                self._count,
                pd.Timestamp(int(row[0]), unit="s", tz="UTC"),
                float(row[1]),
                float(row[2]),
                float(row[3]),
                float(row[4]),
                float(row[5]),
                bar.symbol,
            )
            self._count += 1
            self._last = tuple(float(v) for v in self._inner.step(higher, _NO_FEATURES))
        return self._last
