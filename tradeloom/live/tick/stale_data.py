"""The stale-data alarm: a closed bar that should have arrived by now and has not.

A live strategy that silently stops receiving bars keeps its positions on prices it
no longer sees. `StaleDataWatch` says when that is happening; it holds no clock and
does no I/O, so the same watch is tested with plain timestamps and driven by the live
runner's scheduler.

How the live runner uses it:

1. Make one watch per market when the run starts: ``StaleDataWatch("BTC/USDT", "1h",
   grace_seconds=30, started=now)`` (pass ``last_bar=`` the newest bar already
   processed when resuming).
2. Each time a closed bar reaches the strategy (websocket or `poll_closed_bars`),
   call ``watch.observe(bar_open_time)``.
3. On every scheduler tick (at least once per bar, e.g. with the health checks), call
   ``alarm = watch.check(now)``. None: data is current. A `StaleData`: journal and log
   ``alarm.message()``, broadcast it to the observers, and fall back (reconnect the
   stream, poll over REST). It keeps returning an alarm, with ``missed_bars`` growing,
   until a newer bar is observed; deciding how often to repeat an alert, or when to
   halt, is the caller's policy.

The deadline: the bar after ``last_bar`` opens at ``last_bar + timeframe`` and closes
one timeframe later, so it is due at ``last_bar + 2 * timeframe + grace``. Before any
bar has been seen, a bar must close within one timeframe of ``started``. With a
``calendar`` (the data's, `tradeloom.time.calendars`), the next bar is the next one the
market is open for: a forex weekend, a stock's night or holiday is no missing bar, in
every clock (the wall clock, the simulated one), and ``missed_bars`` counts only the
bars the calendar expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradeloom.time.calendars import CRYPTO, TradingCalendar
from tradeloom.time.timeframes import format_timestamp, parse_timeframe

__all__ = ["StaleData", "StaleDataWatch"]


@dataclass(frozen=True)
class StaleData:
    """An alarm: no new closed bar by the time one was due.

    Attributes:
        symbol: The market.
        timeframe: Its bar length (``1h``).
        last_bar: Open time of the newest bar seen (None: none yet).
        due: When the missing bar was due (its close plus the grace).
        now: When the check ran.
        missed_bars: Bar closes that have passed without a bar (>= 1).
    """

    symbol: str
    timeframe: str
    last_bar: pd.Timestamp | None
    due: pd.Timestamp
    now: pd.Timestamp
    missed_bars: int

    @property
    def late(self) -> pd.Timedelta:
        """How long past due the missing bar is."""
        return self.now - self.due

    def message(self) -> str:
        """Return one line for the log and the journal."""
        since = (
            f"since the bar of {format_timestamp(self.last_bar)}"
            if self.last_bar is not None
            else "since the start"
        )
        bars = "1 bar" if self.missed_bars == 1 else f"{self.missed_bars} bars"
        return (
            f"STALE_DATA: no {self.symbol} {self.timeframe} bar {since}; {bars} missing, "
            f"due by {format_timestamp(self.due)}, now {format_timestamp(self.now)}"
        )


class StaleDataWatch:
    """Tell when a market's next closed bar is overdue.

    Args:
        symbol: The market, for the alarm.
        timeframe: Bar length such as ``1h``.
        grace_seconds: How late a bar may be before the alarm (exchanges publish a
            closed bar a little after its close; a poll runs a little after it too).
        started: When watching began: with no bar yet, the first is due one
            timeframe (plus the grace) after it.
        last_bar: Open time of the newest bar already processed, when resuming.
        calendar: When the market trades (crypto: always): a closed market owes no bar.

    Raises:
        ValueError: A bad timeframe or a negative grace.
    """

    def __init__(
        self,
        symbol: str,
        timeframe: str,
        *,
        grace_seconds: float,
        started: pd.Timestamp,
        last_bar: pd.Timestamp | None = None,
        calendar: TradingCalendar = CRYPTO,
    ) -> None:
        if grace_seconds < 0:
            raise ValueError(f"grace_seconds must be >= 0, was {grace_seconds}")
        self.symbol = symbol
        self.timeframe = timeframe
        self._step = pd.Timedelta(seconds=parse_timeframe(timeframe))
        self._grace = pd.Timedelta(seconds=grace_seconds)
        self._started = _utc(started)
        self.last_bar: pd.Timestamp | None = None if last_bar is None else _utc(last_bar)
        self.calendar = calendar
        self._due: tuple[pd.Timestamp | None, pd.Timestamp] | None = None

    def observe(self, bar_open: pd.Timestamp) -> None:
        """Record that the closed bar opening at ``bar_open`` arrived (older ones are ignored)."""
        stamp = _utc(bar_open)
        if self.last_bar is None or stamp > self.last_bar:
            self.last_bar = stamp

    def due(self) -> pd.Timestamp:
        """Return when the next bar is overdue: after this, `check` alarms."""
        if self._due is not None and self._due[0] == self.last_bar:
            return self._due[1]
        after = self._started - self._step if self.last_bar is None else self.last_bar
        due = self._next_open(after) + self._step + self._grace
        self._due = (self.last_bar, due)
        return due

    def check(self, now: pd.Timestamp) -> StaleData | None:
        """Return an alarm if the next bar is overdue at ``now``, else None.

        Pure: the same state and ``now`` give the same answer; nothing changes.
        """
        current = _utc(now)
        due = self.due()
        if current <= due:
            return None
        missed = 1 + self._expected_between(due - self._grace - self._step, current - self._grace)
        return StaleData(self.symbol, self.timeframe, self.last_bar, due, current, missed)

    def _opens(self, after: pd.Timestamp, count: int) -> np.ndarray:
        """The ``count`` bar opens after ``after`` (epoch ns) and which the calendar expects."""
        step = self._step.value
        opens = after.value + step * np.arange(1, count + 1, dtype=np.int64)
        return np.asarray(opens[self.calendar.expected(opens, step)])

    def _next_open(self, after: pd.Timestamp) -> pd.Timestamp:
        """The open of the first bar after ``after`` the calendar expects (the next one,
        if it expects none within a year of bars: a calendar that never opens)."""
        if self.calendar is CRYPTO:
            return after + self._step
        chunk = 1024
        limit = max(1, int(pd.Timedelta(days=400) / self._step))
        start = after
        for _ in range(0, limit, chunk):
            found = self._opens(start, chunk)
            if len(found):
                return pd.Timestamp(int(found[0]), tz="UTC")
            start = start + chunk * self._step
        return after + self._step

    def _expected_between(self, first_open: pd.Timestamp, closed_by: pd.Timestamp) -> int:
        """How many expected bars after the one opening at ``first_open`` have closed by
        ``closed_by``."""
        count = int((closed_by - first_open - self._step) // self._step)
        if count <= 0:
            return 0
        if self.calendar is CRYPTO:
            return count
        return len(self._opens(first_open, count))


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(stamp)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
