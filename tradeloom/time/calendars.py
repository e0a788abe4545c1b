"""Trading calendars: when a market is open, so that a closure is not a gap and a year
has the market's own number of bars.

- ``crypto`` (the default): open around the clock, every day.
- ``forex``: 24 hours a day, five days a week: each trading day runs from 17:00 New York
  time the evening before to 17:00 (so the week opens Sunday 17:00 and closes Friday
  17:00, through daylight-saving changes), closed on 25 December and 1 January.
- An exchange by its ISO 10383 code (``XNYS``, ``XNAS``, ``XLON``, ``XTKS``...): its
  sessions, holidays, special closures and early closes, from the ``exchange_calendars``
  package (the calendars pandas users share; hand-written holiday rules drift).
- A session calendar of one's own, as a mapping: ``timezone``, ``weekdays``, ``open``,
  ``close`` and ``holidays``.

A bar is expected where its span ``[t, t + timeframe)`` overlaps a session; for bars of a
day or longer, where its date is a trading day (a daily bar is labelled with its trading
day, and that is its session). A year has the calendar's trading days times the bars of
a session (`TradingCalendar.periods_per_year`, the one rule every figure that annualizes
calls): a report's statistics give it the data's span (for an exchange, the mean
sessions over the data's calendar years), a decision made bar by bar (a sizer's) gives
none and takes the calendar's own year (for an exchange, the mean over
`REFERENCE_YEARS`), since it cannot read how far the data runs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from functools import cache
from typing import Any

from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.suggestions import did_you_mean
from tradeloom.time.timeframes import SECONDS_PER_YEAR

__all__ = [
    "CRYPTO",
    "FOREX",
    "REFERENCE_YEARS",
    "SessionCalendar",
    "TradingCalendar",
    "calendar_names",
    "get_calendar",
]

_DAY_NS = 86_400 * 1_000_000_000
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

REFERENCE_YEARS = (2014, 2023)
"""The years whose mean sessions make an exchange's year where no span of data is given:
what a sizer annualizes by. A decision at a bar cannot read how far the data runs (that
would be a look-ahead, and a paper run would size otherwise than its backtest), so it
takes a fixed ten whole years: XNYS has 251.6 sessions a year over them."""


class TradingCalendar:
    """When a market trades. Subclasses say which bars are expected and how many a year has."""

    name: str = "crypto"

    def expected(self, stamps: np.ndarray, step_ns: int) -> np.ndarray:
        """Return, for bar open times (UTC epoch ns), whether the market is open then."""
        return np.ones(len(stamps), dtype=bool)

    def periods_per_year(self, timeframe_seconds: int, first: int = 0, last: int = 0) -> float:
        """Return how many bars of this length a year has: the one rule of annualizing.

        Args:
            timeframe_seconds: The bars' length.
            first: The data's first bar (epoch ns), for a calendar whose year varies (an
                exchange's): a report's statistics give the span they cover. 0 with
                ``last`` 0: no span, the calendar's own year (`REFERENCE_YEARS`), which
                a decision made bar by bar takes (a sizer's).
            last: The data's last bar (epoch ns).
        """
        return SECONDS_PER_YEAR / timeframe_seconds

    def missing(self, sorted_stamps: np.ndarray, step_ns: int) -> np.ndarray:
        """Return, for each pair of consecutive bars, how many expected bars lie between."""
        deltas = np.diff(sorted_stamps)
        slots = np.maximum(-(-deltas // step_ns) - 1, 0)
        if type(self).expected is TradingCalendar.expected or not slots.any():
            return np.asarray(slots)
        where = np.flatnonzero(slots)
        counts = slots[where]
        # every bar slot strictly between the two bars of each gap, checked at once
        starts = np.repeat(sorted_stamps[where], counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        candidates = starts + (offsets + 1) * step_ns
        open_ = self.expected(candidates, step_ns)
        out = np.zeros(len(deltas), dtype=np.int64)
        out[where] = np.add.reduceat(open_.astype(np.int64), np.cumsum(counts) - counts)
        return out

    timezone: str = "UTC"
    """The local time of the market: the hour, weekday and month features read it."""

    def sessions(self, stamps: np.ndarray, step_ns: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Return, for bar open times (UTC epoch ns), their session and its close.

        Args:
            stamps: The bars' open times.
            step_ns: The bars' length: a bar of a day or longer is labelled with its
                trading day (as `expected` reads it), and that day is its session.

        Returns:
            ``(day, close)``: the session's trading day (days since the epoch) and its
            close (UTC epoch ns). Around the clock: the UTC day, closing at midnight.
        """
        stamps = np.asarray(stamps, dtype=np.int64)
        if step_ns >= _DAY_NS:  # its date, whose session its span covers
            day = stamps // _DAY_NS
            return day, (day + 1) * _DAY_NS
        return self._sessions(stamps)

    def _sessions(self, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`sessions` of intraday bars: around the clock, the UTC day."""
        day = stamps // _DAY_NS
        return day, (day + 1) * _DAY_NS

    def __repr__(self) -> str:
        return f"<calendar {self.name}>"


CRYPTO = TradingCalendar()
"""Open every minute of every day."""


@dataclass(frozen=True, repr=False)
class SessionCalendar(TradingCalendar):
    """A market open on ``weekdays`` from ``open`` to ``close`` local time, but on holidays.

    Attributes:
        name: As written in the strategy file (``forex``, or ``custom``).
        timezone: IANA name of the local time.
        weekdays: The trading days, 0 Monday to 6 Sunday.
        open: Session start, local time (None: midnight).
        close: Session end, local time (None: midnight). A close at or before the open
            is a session that starts the evening before its trading day.
        holidays: Trading days the market is closed.
        yearly: ``(month, day)`` of holidays every year.
    """

    name: str = "custom"
    timezone: str = "UTC"
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    open: time | None = None
    close: time | None = None
    holidays: frozenset[date] = field(default_factory=frozenset)
    yearly: tuple[tuple[int, int], ...] = ()

    def _seconds(self, value: time | None) -> int:
        return 0 if value is None else value.hour * 3600 + value.minute * 60 + value.second

    def _trading_day_open(self, days: pd.DatetimeIndex) -> np.ndarray:
        ok = np.isin(days.day_of_week, self.weekdays)
        if self.holidays:
            ok &= ~np.asarray(days.normalize().isin(pd.DatetimeIndex(sorted(self.holidays))))
        for month, day in self.yearly:
            ok &= ~((days.month == month) & (days.day == day))
        return np.asarray(ok)

    def expected(self, stamps: np.ndarray, step_ns: int) -> np.ndarray:
        """Return whether each bar opening at ``stamps`` overlaps a session."""
        if step_ns >= _DAY_NS:  # a daily bar is labelled with its trading day
            return self._trading_day_open(_naive(stamps).normalize())
        out = np.zeros(len(stamps), dtype=bool)
        # the bar is open if its first or its last second is in a session
        for probe in (stamps, stamps + step_ns - 1_000_000_000):
            local = _naive(probe).tz_localize("UTC").tz_convert(self.timezone)
            second = (local.hour * 3600 + local.minute * 60 + local.second).to_numpy()
            start, end = self._seconds(self.open), self._seconds(self.close) or 86_400
            day = local.tz_localize(None).normalize()
            if end <= start:  # overnight: from the evening before the trading day
                inside = (second >= start) | (second < end)
                day = day + pd.to_timedelta((second >= start).astype(np.int64), unit="D")
            else:
                inside = (second >= start) & (second < end)
            out |= inside & self._trading_day_open(pd.DatetimeIndex(day))
        return out

    def _sessions(self, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return each intraday bar's session (its trading day) and the session's close
        (UTC ns).

        A session that opens the evening before (``close`` at or before ``open``)
        belongs to the next day from its open on; a session without a close ends at
        local midnight.
        """
        local = _naive(stamps).tz_localize("UTC").tz_convert(self.timezone)
        second = np.asarray(local.hour * 3600 + local.minute * 60 + local.second)
        start, end = self._seconds(self.open), self._seconds(self.close) or 86_400
        day = local.tz_localize(None).normalize()
        if end <= start:
            day = day + pd.to_timedelta((second >= start).astype(np.int64), unit="D")
        close = (day + pd.Timedelta(seconds=end)).tz_localize(
            self.timezone, ambiguous=False, nonexistent="shift_forward"
        )
        days = np.asarray(day.to_numpy().astype("datetime64[D]").astype(np.int64))
        return days, np.asarray(close.tz_convert(None).to_numpy().astype(np.int64))

    def sessions_per_year(self) -> float:
        """Return the trading days in an average year."""
        weeks = 365.25 / 7
        dated = len(self.holidays)
        if dated:
            years = {d.year for d in self.holidays}
            dated_per_year = dated / max(1, max(years) - min(years) + 1)
        else:
            dated_per_year = 0.0
        # a yearly holiday on a weekend closes nothing: count it weekday-weighted
        yearly = len(self.yearly) * len(self.weekdays) / 7
        return weeks * len(self.weekdays) - yearly - dated_per_year

    def periods_per_year(self, timeframe_seconds: int, first: int = 0, last: int = 0) -> float:
        """Return trading days a year times the bars of a session (52 weekly bars)."""
        return _periods(self.sessions_per_year(), self._session_seconds(), timeframe_seconds)

    def _session_seconds(self) -> int:
        start, end = self._seconds(self.open), self._seconds(self.close) or 86_400
        return end - start if end > start else 86_400 - start + end


def _naive(stamps: np.ndarray) -> pd.DatetimeIndex:
    """Return epoch nanoseconds as a naive (UTC) DatetimeIndex."""
    return pd.DatetimeIndex(np.asarray(stamps, dtype=np.int64).view("datetime64[ns]"))


def _periods(sessions: float, session_seconds: float, timeframe_seconds: int) -> float:
    if timeframe_seconds >= 7 * 86_400:
        return SECONDS_PER_YEAR / timeframe_seconds
    if timeframe_seconds >= 86_400:
        return sessions * 86_400 / timeframe_seconds
    return sessions * math.ceil(session_seconds / timeframe_seconds)


FOREX = SessionCalendar(
    name="forex",
    timezone="America/New_York",
    weekdays=(0, 1, 2, 3, 4),
    open=time(17, 0),
    close=time(17, 0),
    yearly=((12, 25), (1, 1)),
)
"""24/5 from Sunday 17:00 to Friday 17:00 New York time; closed 25 December and 1 January."""


@dataclass(frozen=True, repr=False)
class ExchangeCalendar(TradingCalendar):
    """An exchange's sessions from ``exchange_calendars`` (holidays, early closes included)."""

    name: str = "XNYS"

    def _calendar(self, first: int, last: int) -> Any:
        start = _naive(np.array([first]))[0].normalize() - pd.Timedelta(days=7)
        end = _naive(np.array([last]))[0].normalize() + pd.Timedelta(days=7)
        return _exchange(self.name, start.date(), end.date())

    def expected(self, stamps: np.ndarray, step_ns: int) -> np.ndarray:
        """Return whether each bar is a session (daily) or overlaps one (intraday)."""
        if len(stamps) == 0:
            return np.zeros(0, dtype=bool)
        cal = self._calendar(int(stamps.min()), int(stamps.max()))
        if step_ns >= _DAY_NS:
            sessions = cal.sessions.tz_localize(None) if cal.sessions.tz else cal.sessions
            return np.asarray(_naive(stamps).normalize().isin(sessions))
        opens = cal.opens.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").view(np.int64)
        closes = cal.closes.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").view(np.int64)
        i = np.searchsorted(opens, stamps + step_ns, side="left") - 1
        valid = i >= 0
        j = np.where(valid, i, 0)
        return np.asarray(valid & (stamps < closes[j]) & (stamps + step_ns > opens[j]))

    @property
    def timezone(self) -> str:  # type: ignore[override]
        """The exchange's local time zone."""
        return str(_exchange(self.name, date(2000, 1, 3), date(2000, 1, 14)).tz)

    def _sessions(self, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return each intraday bar's session (the first whose close is after the bar
        opens) and that session's close (UTC ns), early closes included."""
        if len(stamps) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        cal = self._calendar(int(stamps.min()), int(stamps.max()))
        closes = cal.closes.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").view(np.int64)
        labels = cal.closes.index
        labels = labels.tz_localize(None) if labels.tz else labels
        days = labels.to_numpy().astype("datetime64[D]").astype(np.int64)
        i = np.minimum(np.searchsorted(closes, stamps, side="right"), len(closes) - 1)
        return days[i], closes[i]

    def periods_per_year(self, timeframe_seconds: int, first: int = 0, last: int = 0) -> float:
        """Return the mean sessions a year over the data's calendar years (none given:
        over `REFERENCE_YEARS`), times the bars of a regular session."""
        if not first and not last:
            first_year, last_year = REFERENCE_YEARS
        else:
            first_year = _naive(np.array([first or last]))[0].year
            last_year = max(first_year, _naive(np.array([last or first]))[0].year)
        cal = _exchange(self.name, date(first_year, 1, 1), date(last_year, 12, 31))
        # the years it has sessions in: an exchange that opened later (XSAU's calendar
        # starts in 2021) is not averaged over years it did not trade
        sessions = len(cal.sessions) / len(np.unique(cal.sessions.year))
        lengths = (cal.closes - cal.opens).dt.total_seconds()
        return _periods(sessions, float(lengths.median()), timeframe_seconds)


@dataclass(frozen=True)
class _Span:
    """An exchange's sessions from one date to another, as its calendar gives them."""

    sessions: pd.DatetimeIndex
    opens: pd.Series
    closes: pd.Series
    tz: Any


def _exchange(name: str, start: date, end: date) -> _Span | Any:
    """Return the sessions of exchange ``name`` from ``start`` to ``end``.

    They are cut from its calendar of the whole years they fall in, built once: a session's
    open and close do not depend on the span a calendar is built for, and building one
    costs 0.1 to 0.3 s of CPU, which a per-bar driver paid at every higher-timeframe
    bucket (each asks for a span of its own). A span without a session is built alone,
    so that it is refused as before.
    """
    first, last = _bounded(name, start, end)
    years = _exchange_years(name, start.year, end.year)
    if years is not None:
        labels = years.sessions.tz_localize(None) if years.sessions.tz else years.sessions
        kept = (labels >= first) & (labels <= last)
        if kept.any():
            return _Span(years.sessions[kept], years.opens[kept], years.closes[kept], years.tz)
    return _calendar_of(name, first, last)


@cache
def _exchange_years(name: str, first_year: int, last_year: int) -> Any:
    first, last = _bounded(name, date(first_year, 1, 1), date(last_year, 12, 31))
    try:
        return _calendar_of(name, first, last)
    except Exception:  # no sessions, past its bounds: the span alone says it as before
        return None


def _calendar_of(name: str, first: pd.Timestamp, last: pd.Timestamp) -> Any:
    import exchange_calendars

    with warnings.catch_warnings():
        # its use of pandas APIs that pandas 3 deprecates is its own, not the user's
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return exchange_calendars.get_calendar(name, start=first, end=last)


def _bounded(name: str, start: date, end: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    low, high = _bounds(name)
    first = pd.Timestamp(start) if low is None else max(pd.Timestamp(start), low)
    last = pd.Timestamp(end) if high is None else min(pd.Timestamp(end), high)
    return first, last


@cache
def _bounds(name: str) -> tuple[Any, Any]:
    import exchange_calendars

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        factory = type(exchange_calendars.get_calendar(name))
    return factory.bound_min(), factory.bound_max()  # None: no bound


_BUILT_IN: dict[str, TradingCalendar] = {"crypto": CRYPTO, "forex": FOREX}


@cache
def _exchange_names(aliases: bool = False) -> tuple[str, ...]:
    try:
        import exchange_calendars
    except ImportError:  # pragma: no cover - a dependency; a broken install only
        return ()
    names = exchange_calendars.get_calendar_names(include_aliases=aliases)
    return tuple(sorted(n for n in names if n not in ("24/5", "24/7")))


def calendar_names() -> list[str]:
    """Return every calendar name that can be written in ``data.calendar``."""
    return [*_BUILT_IN, *_exchange_names()]


def get_calendar(spec: str | Mapping[str, Any] | None) -> TradingCalendar:
    """Return the calendar a strategy file names (None: ``crypto``).

    Raises:
        ValueError: An unknown name (listing the installed ones), or a bad mapping.
    """
    if spec is None:
        return CRYPTO
    if isinstance(spec, Mapping):
        return _session(spec)
    name = str(spec)
    if name in _BUILT_IN:
        return _BUILT_IN[name]
    exchanges = {n.upper(): n for n in _exchange_names(aliases=True)}  # XNAS, an alias, too
    if name.upper() in exchanges:
        return ExchangeCalendar(name=exchanges[name.upper()])
    names = calendar_names()
    hint = did_you_mean(name, names)
    raise ValueError(
        f"unknown calendar '{name}'{hint}; installed: {', '.join(names)}, or a mapping of "
        "timezone, weekdays, open, close and holidays"
    )


_SESSION_KEYS = ("timezone", "weekdays", "open", "close", "holidays")


def _session(spec: Mapping[str, Any]) -> SessionCalendar:
    unknown = [str(k) for k in spec if k not in _SESSION_KEYS]
    if unknown:
        raise ValueError(
            f"unknown calendar key {', '.join(unknown)}; expected {', '.join(_SESSION_KEYS)}"
        )
    timezone = str(spec.get("timezone", "UTC"))
    try:
        pd.Timestamp("2024-01-01", tz=timezone)
    except Exception:
        raise ValueError(f"timezone: unknown time zone '{timezone}' (an IANA name)") from None
    weekdays = tuple(_weekday(d) for d in spec.get("weekdays", _WEEKDAYS[:5]))
    holidays = frozenset(_date(d) for d in spec.get("holidays", []) or [])
    return SessionCalendar(
        name="custom",
        timezone=timezone,
        weekdays=tuple(sorted(set(weekdays))),
        open=_time(spec.get("open"), "open"),
        close=_time(spec.get("close"), "close"),
        holidays=holidays,
    )


def _weekday(value: Any) -> int:
    text = str(value).strip().lower()[:3]
    if text not in _WEEKDAYS:
        raise ValueError(f"weekdays: '{value}' is not a day (mon, tue, wed, thu, fri, sat, sun)")
    return _WEEKDAYS.index(text)


def _time(value: Any, key: str) -> time | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 16:00 as the base-60 number 960
        return time(value // 60, value % 60)
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{key}: expected a time such as 09:30, was '{value}'") from None


def _date(value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"holidays: expected dates such as 2024-12-25, was '{value}'") from None
