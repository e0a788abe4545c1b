"""Execution quality monitor: slippage, shortfall and fill ratio, against a direct computation."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from tests.hunting import examples
from tests.plugins.monitoring.monitor_feed import T0, given, same
from tradeloom.domain import Cancellation, Fill, Order
from tradeloom.plugins.monitoring.execution import ExecutionQuality, ExecutionQualityParams


def _order(n: int, side: int, quantity: float, reference: float) -> Order:
    return Order(f"o-{n}", n, T0, side, quantity, "ENTRY", reference)


def _fill(order: Order, bar: int, quantity: float, price_now: float, slip: float) -> Fill:
    """A fill as the simulated venue makes it: slippage moves the price against the order."""
    price = price_now * (1 + order.side * slip)
    return Fill(
        order.id, bar, T0, order.side, quantity, price, 0.0, quantity * abs(price - price_now)
    )


# An order is placed, filled in one to three parts, maybe cancelled before the end.
_orders = st.lists(
    st.fixed_dictionaries(
        {
            "side": st.sampled_from([1, -1]),
            "quantity": st.floats(0.5, 5.0),
            "reference": st.floats(50.0, 150.0),
            "moves": st.lists(st.floats(-0.02, 0.02), min_size=1, max_size=3),
            "slip": st.sampled_from([0.0, 0.0005, 0.003]),
            "parts": st.integers(1, 3),
            "cancel_after": st.booleans(),
        }
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=examples(80), deadline=None)
@hypothesis_given(specs=_orders, window=st.integers(10, 15), min_samples=st.integers(1, 5))
def test_metrics_equal_the_direct_computation(specs, window: int, min_samples: int) -> None:
    monitor = ExecutionQuality(ExecutionQualityParams(window=window, min_samples=min_samples))
    fills: list[tuple[Fill, Order]] = []
    finished: list[tuple[float, float, int]] = []
    bar = 0
    for n, spec in enumerate(specs):
        order = _order(n, spec["side"], spec["quantity"], spec["reference"])
        monitor.on_bar(given(bar, orders=(order,)))
        parts = spec["parts"] if not spec["cancel_after"] else spec["parts"] + 1
        share = spec["quantity"] / parts
        done = []
        for k in range(spec["parts"]):
            bar += 1
            move = spec["moves"][k % len(spec["moves"])]
            fill = _fill(order, bar, share, spec["reference"] * (1 + move), spec["slip"])
            cancellations = ()
            last = k == spec["parts"] - 1
            if last and spec["cancel_after"]:
                cancellations = (Cancellation(order.id, bar, T0, share, "REPLACED"),)
            monitor.on_bar(given(bar, fills=(fill,), cancellations=cancellations))
            fills.append((fill, order))
            done.append(fill)
        if spec["cancel_after"] or len(done) == spec["parts"]:
            finished.append((spec["quantity"], sum(f.quantity for f in done), len(done)))
        bar += 1

    expected = dict.fromkeys(monitor.metric_names, math.nan)
    last = fills[-window:]
    expected["fills"] = float(len(last))
    if len(last) >= min_samples:
        cost = sum(f.slippage for f, _ in last)
        notional = sum(f.quantity * (f.price - f.side * f.slippage / f.quantity) for f, _ in last)
        expected["slippage_bps"] = 1e4 * cost / notional
        adverse = sum(f.side * (f.price - o.reference_price) * f.quantity for f, o in last)
        expected["shortfall_bps"] = (
            1e4 * adverse / sum(o.reference_price * f.quantity for f, o in last)
        )
    orders = finished[-window:]
    if len(orders) >= min_samples:
        expected["fill_ratio"] = sum(o[1] for o in orders) / sum(o[0] for o in orders)
        expected["fills_per_order"] = sum(o[2] for o in orders) / len(orders)
    assert same(monitor.metrics(), expected, rel=1e-9)


def test_slippage_is_the_venues_basis_points() -> None:
    monitor = ExecutionQuality(ExecutionQualityParams(window=10, min_samples=1))
    order = _order(0, 1, 2.0, 100.0)
    monitor.on_bar(given(0, orders=(order,)))
    monitor.on_bar(given(1, fills=(_fill(order, 1, 2.0, 101.0, 0.0005),)))
    metrics = monitor.metrics()
    assert metrics["slippage_bps"] == pytest.approx(5.0, rel=1e-12)
    # bought at 101 * 1.0005 what was decided at 100: 105.05 bps worse
    assert metrics["shortfall_bps"] == pytest.approx(1e4 * (101 * 1.0005 - 100) / 100, rel=1e-12)
    assert (metrics["fill_ratio"], metrics["fills_per_order"], metrics["fills"]) == (1.0, 1.0, 1.0)


def test_a_partly_filled_order_counts_when_cancelled() -> None:
    monitor = ExecutionQuality(ExecutionQualityParams(window=10, min_samples=1))
    order = _order(0, -1, 4.0, 100.0)
    monitor.on_bar(given(0, orders=(order,)))
    monitor.on_bar(given(1, fills=(_fill(order, 1, 1.0, 100.0, 0.0),)))
    assert math.isnan(monitor.metrics()["fill_ratio"])  # still working
    cancel = Cancellation(order.id, 2, T0, 3.0, "INSUFFICIENT_CASH")
    monitor.on_bar(given(2, cancellations=(cancel,)))
    assert monitor.metrics()["fill_ratio"] == 0.25
    assert monitor.summary()["orders_finished"] == 1


def test_nothing_before_min_samples() -> None:
    monitor = ExecutionQuality(ExecutionQualityParams(window=10, min_samples=3))
    order = _order(0, 1, 1.0, 100.0)
    monitor.on_bar(given(0, orders=(order,), fills=(_fill(order, 0, 1.0, 100.0, 0.001),)))
    metrics = monitor.metrics()
    assert math.isnan(metrics["slippage_bps"]) and metrics["fills"] == 1.0
    assert monitor.on_bar(given(1)) is None
    assert pd.isna(monitor.metrics()["fill_ratio"])
