"""Exchange-side stop-loss, take-profit and post-only orders through the real ccxt client."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pandas as pd
import pytest

from tradeloom.testing import Balance, ExchangeEmulator

SYMBOL = "BTC/USDT"
FEE = Decimal("0.001")
MAKER = Decimal("0.0002")
HOUR_MS = 3_600_000

# open, high, low, close: bar 2 trades down to 95, bar 3 gaps down to 90.
ROWS = [
    (100, 101, 99, 100),
    (100, 102, 98, 99),
    (99, 100, 95, 96),
    (90, 92, 89, 91),
    (91, 93, 90, 92.8),
    (93, 94, 92, 93),
]


@pytest.fixture
def bars() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["open", "high", "low", "close"], dtype=float)
    frame["volume"] = 50.0
    frame.index = pd.date_range("2024-01-01", periods=len(ROWS), freq="1h", tz="UTC")
    return frame


@pytest.fixture
def emulator(bars: pd.DataFrame) -> Iterator[ExchangeEmulator]:
    with ExchangeEmulator(
        {SYMBOL: bars}, {"USDT": 1000, "BTC": 5}, start=1, maker_fee=MAKER, taker_fee=FEE
    ) as emu:
        yield emu
        assert emu.errors == []


@pytest.fixture
def client(emulator: ExchangeEmulator) -> ccxt.binance:
    exchange = emulator.client(timeout=5000)
    exchange.load_markets()
    return exchange


def _close_ms(bars: pd.DataFrame, bar: int) -> int:
    return int(bars.index[bar].value // 1_000_000) + HOUR_MS - 1


def test_a_sell_stop_waits_locked_then_fills_at_its_stop_on_the_venue(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    order = client.create_order(
        SYMBOL, "market", "sell", 1, params={"stopPrice": 97, "clientOrderId": "stop-1"}
    )
    [sent] = emulator.requests("POST /api/v3/order")
    assert (sent.params["type"], sent.params["stopPrice"]) == ("STOP_LOSS", "97")
    assert (order["status"], order["triggerPrice"], order["filled"]) == ("open", 97.0, 0.0)
    [working] = client.fetch_open_orders(SYMBOL)
    assert (working["clientOrderId"], working["triggerPrice"]) == ("stop-1", 97.0)
    assert working["info"]["isWorking"] is False
    assert emulator.exchange.balance("BTC").locked == Decimal(1)
    emulator.advance()  # bar 1: low 98, the stop is not reached
    assert client.fetch_order(order["id"], SYMBOL)["status"] == "open"
    emulator.advance()  # bar 2: low 95, no client connected while it fills
    filled = client.fetch_order(order["id"], SYMBOL)
    assert (filled["status"], filled["average"], filled["filled"]) == ("closed", 97.0, 1.0)
    [trade] = client.fetch_my_trades(SYMBOL)
    assert (trade["order"], trade["price"], trade["takerOrMaker"]) == (order["id"], 97.0, "taker")
    assert trade["timestamp"] == _close_ms(bars, 2)
    assert trade["fee"] == {"cost": float(97 * FEE), "currency": "USDT"}
    assert emulator.exchange.balance("BTC") == Balance(Decimal(4), Decimal(0))
    assert client.fetch_open_orders(SYMBOL) == []


def test_a_stop_the_bars_gap_through_fills_at_the_open(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    order = client.create_order(SYMBOL, "market", "sell", 1, params={"stopLossPrice": 93})
    emulator.advance(2)  # bars 1 and 2 stay above 93
    assert client.fetch_order(order["id"], SYMBOL)["status"] == "open"
    emulator.advance()  # bar 3 opens at 90, below the stop: the worse price
    assert client.fetch_order(order["id"], SYMBOL)["average"] == 90.0


def test_a_buy_stop_triggers_on_the_way_up(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    order = client.create_order(SYMBOL, "market", "buy", 1, params={"triggerPrice": 101})
    assert emulator.requests("POST /api/v3/order")[0].params["type"] == "STOP_LOSS"
    emulator.advance()  # bar 1: high 102
    filled = client.fetch_order(order["id"], SYMBOL)
    assert (filled["status"], filled["average"]) == ("closed", 101.0)
    assert emulator.exchange.balance("BTC").free == Decimal(6) - FEE


def test_a_take_profit_limit_fills_at_its_trigger_when_its_limit_allows(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    order = client.create_order(
        SYMBOL, "limit", "sell", 1, 101.5, params={"takeProfitPrice": 101.5}
    )
    assert emulator.requests("POST /api/v3/order")[0].params["type"] == "TAKE_PROFIT_LIMIT"
    emulator.advance()  # bar 1: high 102
    filled = client.fetch_order(order["id"], SYMBOL)
    assert (filled["status"], filled["average"], filled["triggerPrice"]) == (
        "closed",
        101.5,
        101.5,
    )
    [trade] = client.fetch_my_trades(SYMBOL)
    assert trade["takerOrMaker"] == "taker"


def test_a_stop_limit_gapped_past_its_limit_rests_and_fills_later_as_maker(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    order = client.create_order(SYMBOL, "limit", "sell", 1, 92.5, params={"stopPrice": 93})
    assert emulator.requests("POST /api/v3/order")[0].params["type"] == "STOP_LOSS_LIMIT"
    emulator.advance(3)  # bar 3 opens at 90: triggered, but 90 is below the limit
    resting = client.fetch_order(order["id"], SYMBOL)
    assert (resting["status"], resting["filled"], resting["info"]["isWorking"]) == (
        "open",
        0.0,
        True,
    )
    emulator.advance()  # bar 4: high 93 reaches the limit
    [trade] = client.fetch_my_trades(SYMBOL)
    assert (trade["price"], trade["takerOrMaker"]) == (92.5, "maker")
    assert trade["timestamp"] == _close_ms(bars, 4)
    assert trade["fee"]["cost"] == float(Decimal("92.5") * MAKER)


def test_a_stop_already_reached_is_refused_as_binance_refuses_it(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    with pytest.raises(
        ccxt.OrderImmediatelyFillable,
        match=r"^binance Order would trigger immediately\.$",
    ):
        client.create_order(SYMBOL, "market", "sell", 1, params={"stopPrice": 100.5})
    assert emulator.exchange.orders() == []


def test_cancelling_a_waiting_stop_releases_its_lock(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    order = client.create_order(SYMBOL, "limit", "buy", 2, 104, params={"stopPrice": 103})
    assert emulator.exchange.balance("USDT").locked == Decimal(208)
    assert client.cancel_order(order["id"], SYMBOL)["status"] == "canceled"
    assert emulator.exchange.balance("USDT") == Balance(Decimal(1000), Decimal(0))
    emulator.advance(5)
    assert client.fetch_my_trades(SYMBOL) == []


def test_a_post_only_order_rests_as_maker_or_is_refused_when_it_would_take(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    with pytest.raises(
        ccxt.OrderImmediatelyFillable,
        match=r"^binance Order would immediately match and take\.$",
    ):
        client.create_order(SYMBOL, "limit", "buy", 1, 100.5, params={"postOnly": True})
    order = client.create_order(SYMBOL, "limit", "buy", 1, 98.5, params={"postOnly": True})
    assert emulator.requests("POST /api/v3/order")[-1].params["type"] == "LIMIT_MAKER"
    emulator.advance()  # bar 1: low 98
    [trade] = client.fetch_my_trades(SYMBOL)
    assert (trade["order"], trade["price"], trade["takerOrMaker"]) == (order["id"], 98.5, "maker")
    assert trade["fee"] == {"cost": float(MAKER), "currency": "BTC"}


def test_a_triggered_stop_capped_by_volume_fills_the_rest_at_the_next_open(
    bars: pd.DataFrame,
) -> None:
    with ExchangeEmulator(
        {SYMBOL: bars}, {"BTC": 5}, start=1, volume_participation=Decimal("0.01")
    ) as emulator:
        client = emulator.client(timeout=5000)
        order = client.create_order(SYMBOL, "market", "sell", 1, params={"stopPrice": 97})
        emulator.advance(2)  # bar 2 triggers it: 1% of its 50 traded is 0.5, at the stop
        trades = client.fetch_my_trades(SYMBOL)
        # the rest fills as a market order would: at the open of bar 3, a gap down to 90
        assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
            (97.0, 0.5, "taker"),
            (90.0, 0.5, "taker"),
        ]
        assert trades[1]["timestamp"] == int(bars.index[3].value // 1_000_000)
        filled = client.fetch_order(order["id"], SYMBOL)
        assert (filled["status"], filled["filled"], filled["average"]) == ("closed", 1.0, 93.5)
        assert emulator.errors == []
