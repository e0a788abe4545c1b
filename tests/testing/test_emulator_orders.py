"""Orders, fills, trades and balances through the real ccxt client."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import ccxt
import pandas as pd
import pytest

from tests.testing.emulator_series import START, SYMBOL
from tradeloom.testing import ExchangeEmulator, PartialFill

FEE = Decimal("0.001")
EIGHT = Decimal("0.00000001")
HOUR_MS = 3_600_000


def _d(value: float | str) -> Decimal:
    return Decimal(str(value))


def _price(bars: pd.DataFrame, column: str, bar: int) -> Decimal:
    return _d(bars[column].iloc[bar])


def _resting_buy(bars: pd.DataFrame) -> tuple[Decimal, int]:
    """A buy limit below the current open that the range first reaches at a later bar."""
    floor = _price(bars, "low", START)
    for bar in range(START + 1, len(bars)):
        low = _price(bars, "low", bar)
        if low < floor - Decimal("0.02"):
            return ((low + floor) / 2).quantize(Decimal("0.01"), rounding=ROUND_CEILING), bar
        floor = min(floor, low)
    raise AssertionError("the bars never dip below the start")


def _totals(client: ccxt.binance) -> dict[str, Decimal]:
    return {
        b["asset"]: _d(b["free"]) + _d(b["locked"])
        for b in client.fetch_balance()["info"]["balances"]
    }


def test_market_buy_fills_at_the_open_of_the_bar_in_progress_with_its_fee(
    client: ccxt.binance, bars: pd.DataFrame
) -> None:
    order = client.create_order(SYMBOL, "market", "buy", 0.5, params={"clientOrderId": "intent-1"})
    price = _price(bars, "open", START)
    assert (order["clientOrderId"], order["status"], order["filled"]) == ("intent-1", "closed", 0.5)
    assert order["average"] == float(price)
    assert order["timestamp"] == int(bars.index[START].value // 1_000_000)
    [fill] = order["trades"]
    assert fill["fee"] == {"cost": 0.0005, "currency": "BTC"}
    assert _totals(client) == {
        "BTC": Decimal("2") + Decimal("0.5") - Decimal("0.0005"),
        "USDT": Decimal("100000") - (price * Decimal("0.5")).quantize(EIGHT),
    }


def test_limit_buy_rests_then_fills_at_its_price_in_the_bar_that_reaches_it(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    limit, reaching_bar = _resting_buy(bars)
    order = client.create_order(
        SYMBOL, "limit", "buy", 0.2, float(limit), params={"clientOrderId": "dip-1"}
    )
    assert (order["status"], order["filled"]) == ("open", 0.0)
    balance = client.fetch_balance()
    assert _d(balance["info"]["balances"][1]["locked"]) == limit * Decimal("0.2")
    emulator.set_bar(reaching_bar)
    assert client.fetch_order(order["id"], SYMBOL)["status"] == "open"
    emulator.advance()
    filled = client.fetch_order(order["id"], SYMBOL)
    assert (filled["status"], filled["filled"], filled["average"]) == ("closed", 0.2, float(limit))
    [trade] = client.fetch_my_trades(SYMBOL)
    assert trade["order"] == order["id"]
    assert trade["takerOrMaker"] == "maker"
    assert trade["timestamp"] == int(bars.index[reaching_bar].value // 1_000_000) + HOUR_MS - 1
    assert _totals(client) == {
        "BTC": Decimal("2.2") - Decimal("0.0002"),
        "USDT": Decimal("100000") - limit * Decimal("0.2"),
    }


def test_marketable_limit_fills_at_once_at_the_current_price(
    client: ccxt.binance, bars: pd.DataFrame
) -> None:
    price = _price(bars, "open", START)
    order = client.create_order(SYMBOL, "limit", "sell", 0.1, float(price - 50))
    assert (order["status"], order["average"]) == ("closed", float(price))
    [fill] = order["trades"]
    proceeds = (price * Decimal("0.1")).quantize(EIGHT)
    assert fill["fee"] == {"cost": float((proceeds * FEE).quantize(EIGHT)), "currency": "USDT"}


def test_fetch_order_by_id_and_by_client_id_then_cancel(
    client: ccxt.binance, bars: pd.DataFrame
) -> None:
    limit, _ = _resting_buy(bars)
    placed = client.create_order(
        SYMBOL, "limit", "buy", 0.1, float(limit), params={"clientOrderId": "c-1"}
    )
    by_id = client.fetch_order(placed["id"], SYMBOL)
    by_client_id = client.fetch_order(None, SYMBOL, {"clientOrderId": "c-1"})
    assert by_id["id"] == by_client_id["id"] == placed["id"]
    assert by_client_id["clientOrderId"] == "c-1"
    assert [o["id"] for o in client.fetch_open_orders(SYMBOL)] == [placed["id"]]
    cancelled = client.cancel_order(None, SYMBOL, {"clientOrderId": "c-1"})
    assert cancelled["status"] == "canceled"
    assert cancelled["info"]["origClientOrderId"] == "c-1"
    assert client.fetch_open_orders(SYMBOL) == []
    assert client.fetch_order(placed["id"], SYMBOL)["status"] == "canceled"
    assert _totals(client) == {"BTC": Decimal("2"), "USDT": Decimal("100000")}
    assert client.fetch_balance()["USDT"]["used"] == 0.0
    with pytest.raises(ccxt.OrderNotFound, match=r'"code": -2011, "msg": "Unknown order sent\."'):
        client.cancel_order(placed["id"], SYMBOL)


def test_a_test_order_meets_the_filters_but_never_the_matching_engine(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    # Binance's test endpoint checks filters, not the balance: 100 BTC passes.
    client.create_order(SYMBOL, "market", "buy", 100, params={"test": True})
    with pytest.raises(ccxt.BadRequest, match=r'"msg": "Filter failure: NOTIONAL"'):
        client.create_order(SYMBOL, "market", "buy", 0.0001, params={"test": True})
    assert emulator.exchange.orders() == []
    assert len(emulator.requests("POST /api/v3/order/test")) == 2


def test_fetch_order_of_an_unknown_order(client: ccxt.binance) -> None:
    with pytest.raises(ccxt.OrderNotFound, match=r'"code": -2013, "msg": "Order does not exist\."'):
        client.fetch_order(None, SYMBOL, {"clientOrderId": "never-sent"})


def test_cancel_all_orders_cancels_every_working_order(
    client: ccxt.binance, bars: pd.DataFrame
) -> None:
    limit, _ = _resting_buy(bars)
    for i in range(3):
        client.create_order(SYMBOL, "limit", "buy", 0.01, float(limit - i))
    cancelled = client.cancel_all_orders(SYMBOL)
    assert sorted(o["status"] for o in cancelled) == ["canceled"] * 3
    assert client.fetch_open_orders(SYMBOL) == []


def test_my_trades_select_by_from_id_since_and_limit(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    for _ in range(5):
        client.create_order(SYMBOL, "market", "buy", 0.01)
        emulator.advance()
    trades = client.fetch_my_trades(SYMBOL)
    assert [t["id"] for t in trades] == ["1", "2", "3", "4", "5"]
    assert [t["price"] for t in trades] == bars["open"].iloc[START : START + 5].tolist()
    assert [t["id"] for t in client.fetch_my_trades(SYMBOL, limit=2)] == ["4", "5"]
    assert [t["id"] for t in client.fetch_my_trades(SYMBOL, limit=2, params={"fromId": 2})] == [
        "2",
        "3",
    ]
    since = int(bars.index[START + 3].value // 1_000_000)
    assert [t["id"] for t in client.fetch_my_trades(SYMBOL, since=since)] == ["4", "5"]


def test_balances_follow_fills_and_fees_over_a_round_trip(
    emulator: ExchangeEmulator, client: ccxt.binance
) -> None:
    client.create_order(SYMBOL, "market", "buy", 1.5)
    emulator.advance(3)
    client.create_order(SYMBOL, "market", "sell", 2.0)
    quote, base = Decimal("100000"), Decimal("2")
    for trade in client.fetch_my_trades(SYMBOL):
        info = trade["info"]
        qty, cost, fee = _d(info["qty"]), _d(info["quoteQty"]), _d(info["commission"])
        if info["isBuyer"]:
            quote, base = quote - cost, base + qty - fee
        else:
            quote, base = quote + cost - fee, base - qty
    assert _totals(client) == {"BTC": base, "USDT": quote}
    assert base == Decimal("2") + Decimal("1.5") - Decimal("0.0015") - Decimal("2")


def test_market_buy_with_cost_buys_what_the_quote_amount_allows(
    client: ccxt.binance, bars: pd.DataFrame
) -> None:
    order = client.create_market_buy_order_with_cost(SYMBOL, 1000)
    expected = (Decimal(1000) / _price(bars, "open", START)).quantize(
        Decimal("0.00001"), rounding=ROUND_FLOOR
    )
    assert order["filled"] == float(expected)
    assert order["info"]["origQuoteOrderQty"] == "1000.00000000"


def test_duplicate_client_id_is_refused_until_the_first_order_is_filled(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    limit, reaching_bar = _resting_buy(bars)
    client.create_order(SYMBOL, "limit", "buy", 0.1, float(limit), params={"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match=r'"code": -2010, "msg": "Duplicate order sent\."'):
        client.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "dup"})
    emulator.set_bar(reaching_bar + 1)
    again = client.create_order(SYMBOL, "market", "buy", 0.1, params={"clientOrderId": "dup"})
    assert again["status"] == "closed"
    assert client.fetch_order(None, SYMBOL, {"clientOrderId": "dup"})["id"] == again["id"]
    assert len(emulator.exchange.orders()) == 2


@pytest.mark.parametrize(
    ("side", "kind", "amount", "price", "error", "message"),
    [
        (
            "buy",
            "market",
            10.0,
            None,
            ccxt.InsufficientFunds,
            r"binance Account has insufficient balance for requested action\.$",
        ),
        (
            "sell",
            "market",
            2.5,
            None,
            ccxt.InsufficientFunds,
            r"binance Account has insufficient balance for requested action\.$",
        ),
        ("sell", "market", 9001.0, None, ccxt.InvalidOrder, r'"msg": "Filter failure: LOT_SIZE"'),
        ("buy", "limit", 0.1, 2e6, ccxt.InvalidOrder, r'"msg": "Filter failure: PRICE_FILTER"'),
        ("buy", "market", 0.0001, None, ccxt.BadRequest, r'"msg": "Filter failure: NOTIONAL"'),
    ],
)
def test_rejections_map_to_ccxt_exceptions(
    emulator: ExchangeEmulator,
    client: ccxt.binance,
    side: str,
    kind: str,
    amount: float,
    price: float | None,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        client.create_order(SYMBOL, kind, side, amount, price)
    assert emulator.exchange.orders() == []
    assert _totals(client) == {"BTC": Decimal("2"), "USDT": Decimal("100000")}


def test_client_order_id_longer_than_binance_allows_is_refused(client: ccxt.binance) -> None:
    with pytest.raises(
        ccxt.BadRequest, match=r"Illegal characters found in parameter 'newClientOrderId'"
    ):
        client.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "x" * 37})


def test_orders_after_the_series_ends_meet_a_closed_market(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    emulator.set_bar(len(bars))
    with pytest.raises(ccxt.MarketClosed, match=r"^binance Market is closed\.$"):
        client.create_order(SYMBOL, "market", "buy", 0.01)


def test_partial_fills_accumulate_to_the_full_quantity_over_bars(
    emulator: ExchangeEmulator, client: ccxt.binance, bars: pd.DataFrame
) -> None:
    emulator.faults.next("POST /api/v3/order", PartialFill(0.25))
    order = client.create_order(SYMBOL, "market", "buy", 1.0, params={"clientOrderId": "slow"})
    assert (order["status"], order["filled"], order["remaining"]) == ("open", 0.25, 0.75)
    filled = [order["filled"]]
    for _ in range(3):
        emulator.advance()
        filled.append(client.fetch_order(order["id"], SYMBOL)["filled"])
    assert filled == [0.25, 0.5, 0.75, 1.0]
    assert client.fetch_order(order["id"], SYMBOL)["status"] == "closed"
    trades = client.fetch_my_trades(SYMBOL)
    assert [t["amount"] for t in trades] == [0.25] * 4
    assert [t["price"] for t in trades] == bars["open"].iloc[START : START + 4].tolist()


def test_volume_participation_spreads_a_large_order_over_bars(bars: pd.DataFrame) -> None:
    with ExchangeEmulator(
        {SYMBOL: bars},
        {"USDT": Decimal("1000000")},
        start=START,
        volume_participation=Decimal("0.01"),
    ) as emu:
        client = emu.client()
        order = client.create_order(SYMBOL, "market", "buy", 1.0)
        while client.fetch_order(order["id"], SYMBOL)["status"] == "open":
            emu.advance()
        amounts = [_d(t["info"]["qty"]) for t in client.fetch_my_trades(SYMBOL)]
    caps = [
        (_price(bars, "volume", START + i) * Decimal("0.01")).quantize(
            Decimal("0.00001"), rounding=ROUND_FLOOR
        )
        for i in range(len(amounts))
    ]
    assert amounts[:-1] == caps[:-1]
    assert sum(amounts) == Decimal(1)
    assert amounts[-1] <= caps[-1]
