"""What an exchange can do for a market is asked, not assumed, and each gap has its fallback.

The table (`Capabilities`) against ccxt's real classes; the fallbacks (`MarketCalls`) and a
restart's unknown order on the emulator's USD-M swap market through the real ccxt client:
ccxt's binance lists ``fetchOrderTrades`` and refuses it for a swap, so the order's trades
are read from ``fetchMyTrades`` from the order's time at the venue.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest

from tradeloom.domain import Order
from tradeloom.live.orders import ccxt_capabilities
from tradeloom.live.orders.ccxt_capabilities import (
    Capabilities,
    MarketCalls,
    Unsupported,
    market_type,
)
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.plugins.protocols_orders.client_ids import client_order_id
from tradeloom.plugins.protocols_orders.order_events import VenueEvent, VenueOrder
from tradeloom.plugins.protocols_orders.order_state import OrderState
from tradeloom.runtime.retrying import RetryPolicy
from tradeloom.testing import DropConnection, ExchangeEmulator

SWAP = "BTC/USDT:USDT"
N = 40


def test_binance_lists_fetch_order_trades_and_the_table_knows_a_swap_refuses_it() -> None:
    spot = Capabilities.of(ccxt.binance(), {"type": "spot", "spot": True})
    swap = Capabilities.of(ccxt.binance(), {"type": "swap", "swap": True, "linear": True})
    future = Capabilities.of(ccxt.binanceusdm(), {"type": "future", "future": True})
    assert ccxt.binance().has["fetchOrderTrades"] is True
    assert (spot.can("fetchOrderTrades"), swap.can("fetchOrderTrades")) == (True, False)
    assert not future.can("fetchOrderTrades")  # a subclass inherits binance's refusals
    assert swap.can_do("fetchOrderTrades")  # through fetchMyTrades
    assert not spot.can("fetchPositions") and swap.can("fetchPositions")
    assert (spot.missing(), swap.missing()) == ([], [])
    assert swap.describe(SWAP) == f"binance swap {SWAP}"


def test_a_market_without_what_a_live_run_needs_names_each_gap() -> None:
    class Thin(ccxt.binance):  # type: ignore[misc]
        def describe(self) -> Any:
            base = super().describe()
            has = {**base["has"], "fetchMyTrades": False, "setLeverage": None, "fetchOrders": False}
            return self.deep_extend(base, {"has": has})

    caps = Capabilities.of(Thin(), {"type": "swap"})
    assert caps.missing() == ["fetchMyTrades", "setLeverage"]
    assert not caps.can_do("fetchOrderTrades")  # neither it nor its fallback
    calls = MarketCalls(Thin(), SWAP, caps, lambda _op, call, *args: call(*args))
    with pytest.raises(Unsupported) as caught:
        calls.order_trades("7", None)
    assert str(caught.value) == (
        f"binance swap {SWAP}: the exchange has no fetchOrderTrades nor fetchMyTrades"
    )


def test_market_types_as_the_table_knows_them() -> None:
    assert [
        market_type(m)
        for m in ({"type": "spot"}, {"type": "margin"}, {"swap": True}, {"type": "future"}, {})
    ] == ["spot", "spot", "swap", "future", "spot"]


def _bars() -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC", name="timestamp")
    close = 100.0 + np.arange(N, dtype=float)
    return pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 50.0},
        index=index,
    )


def _swap_emulator() -> ExchangeEmulator:
    return ExchangeEmulator({SWAP: _bars()}, {"USDT": Decimal(100_000)}, start=5)


def test_an_orders_trades_come_from_my_trades_page_by_page_from_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ccxt_capabilities, "_TRADE_PAGE", 2)  # pages of two trades
    with _swap_emulator() as emulator:
        client = emulator.client()
        client.load_markets()
        for _ in range(3):  # trades of other orders before it
            client.create_order(SWAP, "market", "buy", 1.0)
        emulator.advance(1)
        mine = client.create_order(SWAP, "limit", "sell", 5.0, 106.0)
        emulator.advance(2)  # filled over bars 6 and 7 (its volume cap), with others between
        client.create_order(SWAP, "market", "buy", 1.0)
        emulator.advance(3)
        caps = Capabilities.of(client, client.market(SWAP))
        calls = MarketCalls(client, SWAP, caps, lambda _op, call, *args: call(*args))
        found = calls.order_trades(str(mine["id"]), int(mine["timestamp"]))
        venue = [t for t in emulator.exchange.trades() if t.order_id == int(mine["id"])]
        assert sorted(str(t["id"]) for t in found) == sorted(str(t.trade_id) for t in venue)
        assert sum(t["amount"] for t in found) == 5.0
        asked = emulator.requests("GET /fapi/v1/userTrades")
        assert asked[0].params["startTime"] == str(mine["timestamp"])
        assert len(asked) >= 2 and all("fromId" not in r.params for r in asked)
        assert emulator.errors == []


class _Journal:
    def __init__(self) -> None:
        self.intents: list[VenueOrder] = []
        self.events: list[VenueEvent] = []

    def before_send(self, order: VenueOrder) -> None:
        self.intents.append(order)

    def record(self, event: VenueEvent) -> None:
        self.events.append(event)


def _venue(emulator: ExchangeEmulator, journal: _Journal) -> CcxtVenue:
    return CcxtVenue(
        emulator.client(timeout=1500),
        SWAP,
        journal,
        bar_clock=lambda: emulator.exchange.position,
        retry=RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=0.1),
        sleep=lambda _: None,
        clock=lambda: 1_800_000_000.0,
    )


def test_a_restart_on_the_swap_market_resolves_an_unknown_order_through_the_fallback() -> None:
    """Sent, filled, its answer lost, the process gone: the restart finds it by client id,
    and counts its trades through fetchMyTrades (fetchOrderTrades would raise
    NotSupported for a swap); it is never sent again."""
    with _swap_emulator() as emulator:
        before = _Journal()
        first = _venue(emulator, before)
        sent = Order(
            client_order_id("perp", "1a2b3c4d", 1), 5, _bars().index[5], 1, 2.0, "ENTRY", 104.0
        )
        emulator.faults.next("POST /fapi/v1/order", DropConnection(after_accept=True))
        report = first.submit(sent)
        assert report.transitions[-1].state is OrderState.UNKNOWN
        assert emulator.wait_idle()
        emulator.advance(1)
        after = _Journal()
        second = _venue(emulator, after)  # the restart: the intent from the journal
        second.recover(before.intents[0], sent_at=1_800_000_000.0 - 60)
        resolved = second.resolve_unknown()
        view = second.order(sent.id)
        assert (view.state, view.filled) == (OrderState.FILLED, 2.0)
        assert [f.trade_id for f in resolved.fills] == [
            str(t.trade_id) for t in emulator.exchange.trades()
        ]
        assert len(emulator.requests("POST /fapi/v1/order")) == 1
        [lookup] = emulator.requests("GET /fapi/v1/order")
        assert lookup.params["origClientOrderId"] == sent.id
        assert emulator.requests("GET /fapi/v1/userTrades")
        assert second.poll().fills == ()  # counted once
        assert emulator.errors == []
