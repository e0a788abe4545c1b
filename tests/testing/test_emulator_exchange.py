"""The venue's state and matching rules, without HTTP."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from tradeloom.testing import Balance, Exchange, Reason, Rejected

D = Decimal
SYMBOL = "BTC/USDT"


def frame(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=len(rows), freq="1h", tz="UTC")
    return pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"], index=index)


FLAT = frame([(100, 101, 99, 100, 10)] * 5)


def test_clock_moves_forward_only_and_stops_at_the_end() -> None:
    exchange = Exchange({SYMBOL: FLAT}, {})
    exchange.advance(5)
    assert exchange.position == 5
    assert exchange.now_ms() == int(FLAT.index[-1].value // 1_000_000) + 3_600_000
    with pytest.raises(
        ValueError, match=r"^cannot advance 1 bars from bar 5: the series has 5 bars$"
    ):
        exchange.advance()
    with pytest.raises(ValueError, match=r"^the clock only moves forward: at bar 5, asked for 2;"):
        exchange.set_bar(2)


def test_a_market_that_withholds_bars_publishes_the_others_and_its_later_ones() -> None:
    exchange = Exchange({SYMBOL: FLAT, "ETH/USDT": FLAT}, {}, start=5)
    exchange.withhold("ETH/USDT", [1, 2])
    opens = [k.open_ms for k in exchange.visible_klines("ETHUSDT")]
    assert opens == [
        k.open_ms for i, k in enumerate(exchange.visible_klines("BTCUSDT")) if i not in (1, 2)
    ]
    assert len(exchange.visible_klines("BTCUSDT")) == 5
    with pytest.raises(
        KeyError, match=r"no market SOL/USDT; the markets are \['BTC/USDT', 'ETH/USDT'\]"
    ):
        exchange.withhold("SOL/USDT", [0])


def test_the_bar_in_progress_shows_only_its_open() -> None:
    bars = frame([(100, 110, 90, 105, 10), (105, 120, 101, 119, 20)])
    exchange = Exchange({SYMBOL: bars}, {}, start=1)
    closed, current = exchange.visible_klines("BTCUSDT")
    assert (closed.high, closed.low, closed.closed) == (D(110), D(90), True)
    assert (current.open, current.high, current.low, current.close, current.volume) == (
        D(105),
        D(105),
        D(105),
        D(105),
        D(0),
    )
    assert current.closed is False
    assert len(exchange.visible_klines("BTCUSDT", include_open=False)) == 1


def test_a_resting_sell_fills_at_its_limit_even_when_the_bar_gaps_through_it() -> None:
    bars = frame([(100, 101, 99, 100, 10), (110, 112, 108, 111, 10)])
    exchange = Exchange({SYMBOL: bars}, {"BTC": 1})
    order = exchange.place_order("BTCUSDT", "SELL", "LIMIT", quantity=D("0.5"), price=D("105"))
    assert order.status == "NEW"
    assert exchange.balance("BTC") == Balance(free=D("0.5"), locked=D("0.5"))
    exchange.advance()  # bar 0 tops out at 101
    assert exchange.order("BTCUSDT", order_id=order.order_id).status == "NEW"
    exchange.advance()  # bar 1 opens at 110, above the limit
    [trade] = exchange.trades()
    assert (trade.price, trade.qty, trade.is_maker) == (D(105), D("0.5"), True)
    assert exchange.balance("USDT").free == D("52.5") - D("0.0525")
    assert exchange.balance("BTC").locked == 0


def test_a_market_buy_remainder_expires_when_the_quote_runs_out() -> None:
    bars = frame([(100, 100, 100, 100, 10), (300, 300, 300, 300, 10)])
    exchange = Exchange({SYMBOL: bars}, {"USDT": 160})
    order = exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D(1), fill_fraction=D("0.5"))
    assert (order.status, order.executed_qty) == ("PARTIALLY_FILLED", D("0.5"))
    exchange.advance()  # the other half would cost 150 of the 110 left
    expired = exchange.order("BTCUSDT", order_id=order.order_id)
    assert (expired.status, expired.executed_qty) == ("EXPIRED", D("0.5"))
    assert exchange.balance("USDT") == Balance(free=D(110), locked=D(0))


def test_volume_participation_is_shared_by_the_orders_of_a_bar() -> None:
    bars = frame([(100, 100, 100, 100, 10)] * 3)
    exchange = Exchange({SYMBOL: bars}, {"USDT": 10_000}, volume_participation=D("0.1"))
    first = exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D("0.6"))
    second = exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D("0.6"))
    assert (first.executed_qty, second.executed_qty) == (D("0.6"), D("0.4"))
    exchange.advance()
    assert exchange.order("BTCUSDT", order_id=second.order_id).status == "FILLED"


def test_fill_fraction_fills_at_least_one_lot_step_per_bar() -> None:
    exchange = Exchange({SYMBOL: FLAT}, {"USDT": 1000}, fill_fraction=D("0.000001"))
    order = exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D("0.1"))
    assert order.executed_qty == D("0.00001")


def test_a_limit_buy_locks_its_cost_and_a_cancel_returns_it() -> None:
    exchange = Exchange({SYMBOL: FLAT}, {"USDT": 1000})
    order = exchange.place_order("BTCUSDT", "BUY", "LIMIT", quantity=D("2"), price=D("90.5"))
    assert exchange.balance("USDT").locked == D("181")
    cancelled = exchange.cancel("BTCUSDT", client_order_id=order.client_order_id)
    assert (cancelled.status, cancelled.locked) == ("CANCELED", D(0))
    assert exchange.balance("USDT").free == D(1000)
    with pytest.raises(Rejected) as caught:
        exchange.cancel("BTCUSDT", order_id=order.order_id)
    assert caught.value.reason is Reason.NOT_CANCELABLE


def test_a_client_id_can_be_reused_after_a_fill_but_not_after_a_cancel() -> None:
    exchange = Exchange({SYMBOL: FLAT}, {"USDT": 1000})
    exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D("0.1"), client_order_id="a")
    reused = exchange.place_order(
        "BTCUSDT", "BUY", "LIMIT", quantity=D("0.1"), price=D(90), client_order_id="a"
    )
    exchange.cancel("BTCUSDT", order_id=reused.order_id)
    with pytest.raises(Rejected) as caught:
        exchange.place_order("BTCUSDT", "BUY", "MARKET", quantity=D("0.1"), client_order_id="a")
    assert caught.value.reason is Reason.DUPLICATE_ORDER
    assert exchange.order("BTCUSDT", client_order_id="a").order_id == reused.order_id


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"quantity": D("0.000015")}, Reason.LOT_SIZE),
        ({"quantity": D("0.01"), "price": D("99.999")}, Reason.PRICE_FILTER),
        ({"quantity": D("0.01"), "price": D(99)}, Reason.NOTIONAL),
        ({"quantity": D(20), "price": D(99)}, Reason.INSUFFICIENT_BALANCE),
    ],
)
def test_filters_and_balance_refuse_an_order_and_change_nothing(
    kwargs: dict[str, Decimal], reason: Reason
) -> None:
    exchange = Exchange({SYMBOL: FLAT}, {"USDT": 1000})
    with pytest.raises(Rejected) as caught:
        exchange.place_order("BTCUSDT", "BUY", "LIMIT" if "price" in kwargs else "MARKET", **kwargs)
    assert caught.value.reason is reason
    assert exchange.orders() == []
    assert exchange.balance("USDT").free == D(1000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"balances": {}, "maker_fee": D(2)},
            r"^maker_fee must be a Decimal in \[0, 1\], was Decimal\('2'\)$",
        ),
        ({"balances": {"USDT": -1}}, r"^balance of USDT must be >= 0, was -1$"),
        ({"balances": {}, "start": 9}, r"^start must be between 0 and 5, was 9$"),
    ],
)
def test_constructor_arguments_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Exchange({SYMBOL: FLAT}, **kwargs)  # type: ignore[arg-type]


def test_symbols_must_be_base_slash_quote() -> None:
    with pytest.raises(
        ValueError,
        match=r"^market symbols are BASE/QUOTE in capitals such as BTC/USDT \(a perpetual "
        r"swap: BTC/USDT:USDT\); was 'btcusdt'$",
    ):
        Exchange({"btcusdt": FLAT}, {})
