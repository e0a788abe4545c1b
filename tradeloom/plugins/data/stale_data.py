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
bar has been seen, a bar must close within one timeframe of ``started``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tradeloom.timeframes import format_timestamp, parse_timeframe

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
    ) -> None:
        if grace_seconds < 0:
            raise ValueError(f"grace_seconds must be >= 0, was {grace_seconds}")
        self.symbol = symbol
        self.timeframe = timeframe
        self._step = pd.Timedelta(seconds=parse_timeframe(timeframe))
        self._grace = pd.Timedelta(seconds=grace_seconds)
        self._started = _utc(started)
        self.last_bar: pd.Timestamp | None = None if last_bar is None else _utc(last_bar)

    def observe(self, bar_open: pd.Timestamp) -> None:
        """Record that the closed bar opening at ``bar_open`` arrived (older ones are ignored)."""
        stamp = _utc(bar_open)
        if self.last_bar is None or stamp > self.last_bar:
            self.last_bar = stamp

    def due(self) -> pd.Timestamp:
        """Return when the next bar is overdue: after this, `check` alarms."""
        if self.last_bar is None:
            return self._started + self._step + self._grace
        return self.last_bar + 2 * self._step + self._grace

    def check(self, now: pd.Timestamp) -> StaleData | None:
        """Return an alarm if the next bar is overdue at ``now``, else None.

        Pure: the same state and ``now`` give the same answer; nothing changes.
        """
        current = _utc(now)
        due = self.due()
        if current <= due:
            return None
        missed = 1 + int((current - due) // self._step)
        return StaleData(self.symbol, self.timeframe, self.last_bar, due, current, missed)


def _utc(stamp: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(stamp)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
