"""The emulator's declared latency: a market order waits for the bar the core's rule
(`tradeloom.core.kernels.latency`) brings it in, drawn for its client id's sequence."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from tradeloom.core.kernels.latency import (
    LAT_FIXED,
    LAT_UNIFORM,
    LEG_SEND,
    arrival_delay,
    latency_ms,
)
from tradeloom.core.kernels.specs import LatencyKernel
from tradeloom.testing import Exchange

D = Decimal
HOUR_MS = 3_600_000


def _exchange() -> Exchange:
    index = pd.date_range("2024-01-01", periods=8, freq="1h", tz="UTC")
    rows = [(100 + k, 100 + k, 100 + k, 100 + k, 10) for k in range(8)]
    bars = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)
    return Exchange({"BTC/USDT": bars}, {"USDT": 10_000}, start=1)


def test_a_market_order_fills_at_the_open_of_the_bar_it_arrives_in() -> None:
    exchange = _exchange()
    exchange.delay_orders(LatencyKernel(kind=LAT_FIXED, a=2.5 * HOUR_MS))
    order = exchange.place_order(
        "BTCUSDT", "BUY", "MARKET", quantity=D(1), client_order_id="s-k-000001"
    )
    assert order.status == "NEW"  # on its way: bars 1 and 2 open without it
    exchange.advance()
    assert exchange.order("BTCUSDT", order_id=order.order_id).status == "NEW"
    exchange.advance()
    filled = exchange.order("BTCUSDT", order_id=order.order_id)
    assert (filled.status, exchange.trades()[0].price) == ("FILLED", D(103))


def test_each_order_draws_its_own_sequence_numbers_latency() -> None:
    latency = LatencyKernel(kind=LAT_UNIFORM, a=0.0, b=3 * HOUR_MS, seed=9)
    exchange = _exchange()
    exchange.delay_orders(latency)
    ids = [f"s-k-{n:06d}" for n in (1, 2, 3)]
    orders = [
        exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D("0.1"), client_order_id=i)
        for i in ids
    ]
    exchange.advance(5)
    fills = {t.order_id: t.price for t in exchange.trades()}
    for n, order in enumerate(orders, start=1):
        ms = latency_ms(LAT_UNIFORM, 0.0, 3 * HOUR_MS, 9, n, LEG_SEND)
        assert fills[order.order_id] == D(101 + arrival_delay(ms, HOUR_MS, 0))


def test_without_a_latency_a_market_order_fills_at_once() -> None:
    exchange = _exchange()
    exchange.delay_orders(None)
    order = exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D(1))
    assert order.status == "FILLED"
