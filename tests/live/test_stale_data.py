"""The stale-data alarm, on plain timestamps (no clock, no I/O)."""

from __future__ import annotations

import pandas as pd
import pytest

from tradeloom.live.tick.stale_data import StaleData, StaleDataWatch
from tradeloom.time.calendars import FOREX


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def watch(**kwargs: object) -> StaleDataWatch:
    return StaleDataWatch(
        "BTC/USDT",
        "1h",
        grace_seconds=30,
        started=t("2024-01-01 10:20"),
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_next_bar_is_due_one_timeframe_after_the_last_one_closed() -> None:
    w = watch()
    w.observe(t("2024-01-01 10:00"))  # closed at 11:00; the next closes at 12:00

    assert w.due() == t("2024-01-01 12:00:30")
    assert w.check(t("2024-01-01 12:00:30")) is None
    alarm = w.check(t("2024-01-01 12:00:31"))
    assert alarm == StaleData(
        "BTC/USDT",
        "1h",
        t("2024-01-01 10:00"),
        t("2024-01-01 12:00:30"),
        t("2024-01-01 12:00:31"),
        1,
    )
    assert alarm.late == pd.Timedelta(seconds=1)
    assert alarm.message() == (
        "STALE_DATA: no BTC/USDT 1h bar since the bar of 2024-01-01T10:00Z; 1 bar missing, "
        "due by 2024-01-01T12:00:30Z, now 2024-01-01T12:00:31Z"
    )


def test_the_alarm_persists_and_counts_missed_bars_until_a_bar_arrives() -> None:
    w = watch(last_bar=t("2024-01-01 10:00"))
    now = t("2024-01-01 14:10")

    first = w.check(now)
    assert first is not None and first.missed_bars == 3
    assert w.check(now) == first  # checking changes nothing

    w.observe(t("2024-01-01 11:00"))
    later = w.check(now)
    assert later is not None and later.missed_bars == 2
    w.observe(t("2024-01-01 13:00"))
    assert w.check(now) is None


def test_an_older_bar_does_not_move_the_deadline_back() -> None:
    w = watch(last_bar=t("2024-01-01 10:00"))
    w.observe(t("2024-01-01 08:00"))
    assert w.last_bar == t("2024-01-01 10:00")


def test_before_any_bar_one_must_close_within_a_timeframe_of_the_start() -> None:
    w = watch()
    assert w.due() == t("2024-01-01 11:20:30")
    assert w.check(t("2024-01-01 11:20")) is None
    alarm = w.check(t("2024-01-01 11:21"))
    assert alarm is not None
    assert alarm.message() == (
        "STALE_DATA: no BTC/USDT 1h bar since the start; 1 bar missing, due by "
        "2024-01-01T11:20:30Z, now 2024-01-01T11:21Z"
    )


def test_naive_times_are_utc() -> None:
    w = watch(last_bar=pd.Timestamp("2024-01-01 10:00"))
    assert w.check(pd.Timestamp("2024-01-01 12:00:31")) is not None


def test_a_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^grace_seconds must be >= 0, was -1$"):
        StaleDataWatch("BTC/USDT", "1h", grace_seconds=-1, started=t("2024-01-01"))


def test_a_forex_weekend_owes_no_bar() -> None:
    """``calendar: forex`` closes from Friday 22:00 to Sunday 22:00 UTC (in January): the
    bar after Friday 21:00 is Sunday 22:00's, due at its close; the missed bars counted
    are the ones the market was open for."""
    w = watch(last_bar=t("2024-01-05 21:00"), calendar=FOREX)  # a Friday

    assert w.due() == t("2024-01-07 23:00:30")
    assert w.check(t("2024-01-06 12:00")) is None  # Saturday: closed, nothing late
    assert w.check(t("2024-01-07 23:00:30")) is None
    alarm = w.check(t("2024-01-08 01:30"))  # Sunday 22:00, 23:00, Monday 00:00 missing
    assert alarm is not None and alarm.missed_bars == 3  # not the weekend's 51 hours
    # started on a Saturday with no bar yet: the first is Sunday 22:00's
    fresh = StaleDataWatch("EUR/USD", "1h", grace_seconds=0, started=t("2024-01-06 09:00"),
                           calendar=FOREX)  # fmt: skip
    assert fresh.due() == t("2024-01-07 23:00")
    # crypto keeps every hour
    assert watch(last_bar=t("2024-01-05 21:00")).due() == t("2024-01-05 23:00:30")
