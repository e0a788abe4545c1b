"""The rebalance schedule as a pure function: every N bars, calendar weeks and months,
drift past a threshold; and the minimum trade."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tradeloom.engine.rebalance import (
    drift,
    month_index,
    rebalance_due,
    trades_after_min,
    week_index,
)
from tradeloom.schemas.allocation import Rebalance

HOUR = 3_600 * 10**9


def _ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def _due(rule: Rebalance, bar: int, time: str, last_bar: int | None, last: str | None) -> bool:
    return rebalance_due(
        rule,
        bar=bar,
        time_ns=_ns(time),
        last_bar=last_bar,
        last_time_ns=None if last is None else _ns(last),
    )


def test_the_first_chance_always_rebalances() -> None:
    for rule in (Rebalance(every=5), Rebalance(calendar="monthly"), Rebalance(drift=0.1)):
        assert _due(rule, 0, "2024-01-03T00:00", None, None)


@given(st.integers(1, 500), st.integers(0, 10_000), st.integers(0, 2_000))
def test_every_n_bars(n: int, last: int, gap: int) -> None:
    rule = Rebalance(every=n)
    due = rebalance_due(rule, bar=last + gap, time_ns=0, last_bar=last, last_time_ns=0)
    assert due == (gap >= n)


def test_weekly_on_the_first_bar_of_a_monday_week() -> None:
    weekly = Rebalance(calendar="weekly")
    # 2024-03-01 is a Friday; the weekend's bars are missing from the data (a calendar)
    assert not _due(weekly, 9, "2024-03-03T23:00", 1, "2024-03-01T00:00")  # Sunday
    assert _due(weekly, 10, "2024-03-04T00:00", 1, "2024-03-01T00:00")  # Monday
    assert _due(weekly, 10, "2024-03-05T09:00", 1, "2024-03-01T00:00")  # Monday skipped
    assert not _due(weekly, 11, "2024-03-10T23:59", 10, "2024-03-04T00:00")
    assert week_index(_ns("1970-01-05T00:00")) - week_index(_ns("1970-01-04T23:59")) == 1


def test_monthly_on_the_first_bar_of_a_month() -> None:
    monthly = Rebalance(calendar="monthly")
    assert not _due(monthly, 5, "2024-02-29T23:00", 0, "2024-02-01T00:00")
    assert _due(monthly, 6, "2024-03-01T00:00", 0, "2024-02-01T00:00")
    assert _due(monthly, 6, "2025-02-01T00:00", 0, "2024-02-01T00:00")  # a year on
    assert month_index(_ns("2024-03-15T12:00")) == 2024 * 12 + 2


def test_drift_past_the_threshold() -> None:
    rule = Rebalance(drift=0.0625)  # weights in binary fractions: exact differences
    target = np.array([0.5, 0.25, 0.25])

    def due(held: list[float]) -> bool:
        return rebalance_due(
            rule,
            bar=9,
            time_ns=9 * HOUR,
            last_bar=0,
            last_time_ns=0,
            target=target,
            held=np.array(held),
        )

    assert not due([0.53125, 0.25, 0.21875])
    assert not due([0.5625, 0.25, 0.1875])  # exactly at the threshold: not past it
    assert due([0.5, 0.1875 - 2**-10, 0.3125 + 2**-10])
    assert drift(target, np.array([0.375, 0.25, 0.375])) == 0.125
    with pytest.raises(
        ValueError, match=r"^a drift schedule needs the last target and the held weights$"
    ):
        rebalance_due(rule, bar=1, time_ns=HOUR, last_bar=0, last_time_ns=0)


def test_a_schedule_is_one_of_three() -> None:
    for bad in ({}, {"every": 5, "drift": 0.1}):
        with pytest.raises(ValidationError, match="declare one of every, calendar or drift"):
            Rebalance.model_validate(bad)
    with pytest.raises(ValidationError, match="Input should be a valid integer"):
        Rebalance.model_validate({"every": 2.5})


def test_the_minimum_trade_leaves_small_changes_alone() -> None:
    change = trades_after_min(np.array([0.5, 0.3, 0.2]), np.array([0.496, 0.2, 0.304]), 0.005)
    np.testing.assert_allclose(change, [0.0, 0.1, -0.104])
    np.testing.assert_allclose(
        trades_after_min(np.array([0.5, 0.5]), np.array([0.499, 0.501]), None), [0.001, -0.001]
    )
