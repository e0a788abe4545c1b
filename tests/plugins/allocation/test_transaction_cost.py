"""``transaction_cost`` means the same on any timeframe: the declared cost of trading a
unit of weight is charged against a year's expected return, that is ``cost /
periods_per_year`` against a bar's, the unit the allocators solve in.

The check on real prices: the 20 S&P 500 stocks' daily returns ``r`` (mean ``mu``, 252
days a year) and the hourly market with the same yearly moments, ``(r - mu) / sqrt(7) +
mu / 7`` (7 hourly bars a trading day: its mean and covariance per bar are the daily
ones over 7). With one declared cost, the two rebalance alike; charged per bar (the rule
before), the hourly weights froze at the held ones whatever the window.
"""

from __future__ import annotations

import numpy as np

from tradeloom.plugins.allocation.optimised import MeanVariance, MeanVarianceParams
from tradeloom.plugins.allocation.program import SOLVER_TOLERANCE
from tradeloom.plugins.protocols_allocation import WeightConstraints
from tradeloom.schemas.allocation import AllocationConstraints, weight_constraints

N = 20
DECLARED = 0.002  # 20 bp of the weight traded
DAYS, HOURS = 252, 7
HELD = np.full(N, 1.0 / N)


def _resolved(periods_per_year: float) -> WeightConstraints:
    declared = AllocationConstraints(max_weight=0.15, transaction_cost=DECLARED)
    symbols = [f"S{k}" for k in range(N)]
    return weight_constraints(declared, symbols, periods_per_year=periods_per_year)


def test_the_declared_cost_is_spread_over_a_year_of_bars() -> None:
    daily, hourly = _resolved(DAYS), _resolved(DAYS * HOURS)
    assert daily.transaction_cost == DECLARED / DAYS
    assert hourly.transaction_cost == DECLARED / (DAYS * HOURS)
    assert daily.names == tuple(f"S{k}" for k in range(N))


def test_daily_and_hourly_bars_with_one_declared_cost_rebalance_alike(
    sp500_windows: list[np.ndarray],
) -> None:
    allocator = MeanVariance(MeanVarianceParams(objective="utility", risk_aversion=4.0))
    for daily in sp500_windows:
        mu = daily.mean(axis=0)
        hourly = (daily - mu) / np.sqrt(HOURS) + mu / HOURS
        by_day = allocator.allocate(daily, _resolved(DAYS), previous=HELD).weights
        by_hour = allocator.allocate(hourly, _resolved(DAYS * HOURS), previous=HELD).weights
        assert by_day is not None and by_hour is not None
        np.testing.assert_allclose(by_hour, by_day, atol=SOLVER_TOLERANCE)
        assert np.abs(by_day - HELD).sum() > 0.5  # a cost that lets the weights move
        # the rule before: the declared cost charged against a bar's return
        per_bar = WeightConstraints((0.0,) * N, (0.15,) * N, 1.0, transaction_cost=DECLARED)
        frozen = allocator.allocate(hourly, per_bar, previous=HELD).weights
        assert frozen is not None
        assert np.abs(frozen - HELD).sum() < 1e-6  # buy-and-hold, whatever the window
