"""The emulator's USD-M perpetual: what ccxt's unified swap API sends and reads.

Orders, trades, positions, the wallet, leverage and margin type through the real
``ccxt.binance`` client, on ``BTC/USDT:USDT``; every number computed by hand below.
"""

from __future__ import annotations

from decimal import Decimal

import ccxt
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.testing import Exchange, ExchangeEmulator, MarketRules, Rejected

SWAP = "BTC/USDT:USDT"
N = 30


def _bars() -> pd.DataFrame:
    """Hourly bars opening at 100, 101, 102, ... with a range of +-1."""
    index = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC", name="timestamp")
    close = 100.0 + np.arange(N, dtype=float)
    return pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 5.0},
        index=index,
    )


def _emulator(**options: object) -> ExchangeEmulator:
    times = pd.DatetimeIndex(["2024-01-01 08:00", "2024-01-01 16:00"], tz="UTC")
    funding = pd.Series([0.001, -0.002], index=times)
    return ExchangeEmulator(
        {SWAP: _bars()},
        {"USDT": Decimal(1000)},
        start=5,
        funding_rates={SWAP: funding},
        taker_fee=Decimal("0.001"),
        **options,  # type: ignore[arg-type]
    )


def _wallet(emulator: ExchangeEmulator) -> Decimal:
    return emulator.exchange.balance("USDT").free


def test_a_short_and_its_close_realize_profit_fees_and_funding_in_the_wallet() -> None:
    with _emulator() as emulator:
        client = emulator.client()
        client.load_markets()
        assert client.set_leverage(4, SWAP)["leverage"] == 4
        with pytest.raises(ccxt.MarginModeAlreadySet):
            client.set_margin_mode("cross", SWAP)
        # bar 5 opens at 105: short 2 contracts
        sold = client.create_order(SWAP, "market", "sell", 2.0, params={"newClientOrderId": "r-1"})
        assert (sold["status"], sold["filled"], sold["average"]) == ("closed", 2.0, 105.0)
        assert sold["clientOrderId"] == "r-1"
        [position] = client.fetch_positions([SWAP])
        assert (position["symbol"], position["side"], position["contracts"]) == (SWAP, "short", 2.0)
        assert (position["contractSize"], position["entryPrice"]) == (1.0, 105.0)
        assert _wallet(emulator) == Decimal("1000") - Decimal("0.21")  # fee 0.1% of 210
        # to bar 8 (opens at 108, holds 08:00): the short receives 2 x 108 x 0.001
        emulator.advance(3)
        assert _wallet(emulator) == Decimal("999.79") + Decimal("0.216")
        [funded] = client.fetch_funding_history(SWAP)
        assert (funded["amount"], funded["timestamp"]) == (0.216, 1704096000000)
        balance = client.fetch_balance({"type": "swap"})["USDT"]
        # wallet 1000.006, unrealized 2 x (105 - 108) = -6; margin 2 x 108 / 4 = 54
        assert balance["total"] == pytest.approx(994.006)
        assert balance["free"] == pytest.approx(940.006)
        # buy 3 at 108: closes the short (realizes -6) and opens a long of 1 at 108
        bought = client.create_order(SWAP, "market", "buy", 3.0)
        [trade] = client.fetch_my_trades(SWAP, params={"orderId": bought["id"]})
        assert trade["info"]["realizedPnl"] == "-6.00000000"
        assert trade["fee"] == {"currency": "USDT", "cost": 0.324}
        [position] = client.fetch_positions([SWAP])
        assert (position["side"], position["contracts"], position["entryPrice"]) == (
            "long", 1.0, 108.0
        )  # fmt: skip
        assert _wallet(emulator) == Decimal("1000.006") - 6 - Decimal("0.324")
        # to bar 16 (opens at 116, holds 16:00): the long receives 1 x 116 x 0.002
        emulator.advance(8)
        assert _wallet(emulator) == Decimal("993.682") + Decimal("0.232")
        assert client.fetch_positions() == client.fetch_positions([SWAP])
        assert emulator.errors == []


def test_margin_and_reduce_only_refusals_are_binances() -> None:
    with _emulator() as emulator:
        client = emulator.client()
        client.load_markets()
        client.set_leverage(1, SWAP)
        # 10 contracts at 105 need 1050 of margin at 1x; the wallet holds 1000
        with pytest.raises(ccxt.InsufficientFunds, match=r"Margin is insufficient\."):
            client.create_order(SWAP, "market", "buy", 10.0)
        client.create_order(SWAP, "market", "buy", 9.0)
        # reducing is never refused for margin; adding with reduceOnly is refused
        with pytest.raises(ccxt.InvalidOrder, match=r"ReduceOnly Order is rejected\."):
            client.create_order(SWAP, "market", "buy", 1.0, params={"reduceOnly": True})
        closed = client.create_order(SWAP, "market", "sell", 9.0, params={"reduceOnly": True})
        assert closed["status"] == "closed"
        assert client.fetch_positions() == []  # v3 lists open positions only
        with pytest.raises(Rejected, match=r"^BAD_LEVERAGE: leverage 200 not in \[1, 125\]$"):
            emulator.exchange.set_leverage("BTCUSDT", 200)  # ccxt refuses it before sending


def test_limit_orders_rest_fill_as_makers_and_cancel_on_the_swap() -> None:
    with _emulator() as emulator:
        client = emulator.client()
        client.load_markets()
        resting = client.create_order(SWAP, "limit", "buy", 1.0, 103.0, params={"postOnly": True})
        assert (resting["status"], resting["type"], resting["postOnly"]) == ("open", "limit", True)
        [listed] = client.fetch_open_orders(SWAP)
        assert listed["id"] == resting["id"]
        assert client.cancel_order(resting["id"], SWAP)["status"] == "canceled"
        emulator.advance(1)  # bar 5's low is 104: it would have filled at 103 only
        client.create_order(SWAP, "limit", "sell", 1.0, 110.0)  # opens a short once reached
        emulator.advance(5)  # bar 10's high is 111
        [trade] = client.fetch_my_trades(SWAP)
        assert (trade["side"], trade["price"], trade["takerOrMaker"]) == ("sell", 110.0, "maker")
        [position] = client.fetch_positions()
        assert (position["side"], position["contracts"]) == ("short", 1.0)


def test_a_swap_trades_on_fapi_only_and_shares_no_id_with_a_spot_market() -> None:
    with _emulator() as emulator:
        client = emulator.client()
        client.load_markets()
        with pytest.raises(ccxt.BadSymbol, match=r"Invalid symbol\."):
            client.privatePostOrder(
                {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}
            )
    with pytest.raises(
        ValueError,
        match=r"^BTC/USDT and BTC/USDT:USDT share Binance's market id BTCUSDT; the emulator "
        r"serves one of them$",
    ):
        ExchangeEmulator({"BTC/USDT": _bars(), SWAP: _bars()}, {"USDT": Decimal(1)})


def test_what_binance_refuses_for_a_swap_is_refused_and_what_ccxt_reads_is_served() -> None:
    """ccxt's own refusal (fetchOrderTrades), USD-M's windows and parameters, its ticker."""
    with _emulator() as emulator:
        client = emulator.client()
        client.load_markets()
        bought = client.create_order(SWAP, "market", "buy", 1.0)
        with pytest.raises(ccxt.NotSupported, match=r"fetchOrderTrades\(\) supports spot markets"):
            client.fetch_order_trades(bought["id"], SWAP)  # refused in the client, never sent
        # ccxt reads a week from `since` (its own rule for linear swaps): USD-M serves 7 days
        [trade] = client.fetch_my_trades(SWAP, bought["timestamp"], 1000)
        assert (trade["order"], trade["amount"]) == (bought["id"], 1.0)
        [ask] = emulator.requests("GET /fapi/v1/userTrades")
        start, end = int(ask.params["startTime"]), int(ask.params["endTime"])
        assert end - start == 7 * 86_400_000
        with pytest.raises(
            ccxt.BadRequest, match=r"-1127.*More than 168 hours between startTime and endTime"
        ):
            client.fetch_my_trades(SWAP, start, params={"endTime": end + 1})
        with pytest.raises(ccxt.BadRequest, match=r"-1128.*Combination of optional parameters"):
            client.fetch_my_trades(SWAP, start, params={"fromId": 1})
        with pytest.raises(ccxt.BadRequest, match=r"More than 168 hours"):
            client.fetch_orders(SWAP, start, params={"endTime": end + 1})
        assert client.fetch_ticker(SWAP)["last"] == 105.0  # GET /fapi/v1/ticker/24hr
        assert emulator.errors == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 500), st.integers(0, 5)),
        min_size=1,
        max_size=12,
    )
)
def test_a_swaps_wallet_is_its_cash_flows_fees_and_funding_to_the_satoshi(
    orders: list[tuple[str, int, int]],
) -> None:
    """Long, short, flips and funding in any order: once flat, the wallet moved by the
    trades' realized profits less their fees plus the funding paid, and that is what the
    trades paid and received (signed quantity x price) to the rounding of each trade."""
    exchange = Exchange(
        {SWAP: _bars()},
        {"USDT": Decimal(10_000_000)},
        rules=MarketRules(min_notional=Decimal("0.01")),
        start=0,
        funding_rates={SWAP: pd.Series([0.001, -0.002, 0.0005], index=_funding_times())},
    )
    exchange.set_leverage("BTCUSDT", 125)
    for side, lots, wait in orders:
        if exchange.position + wait >= N - 1:
            break
        exchange.place_order("BTCUSDT", side, "MARKET", quantity=Decimal(lots) / 100)  # type: ignore[arg-type]
        if wait:
            exchange.advance(wait)
    held = exchange.perp_position("BTCUSDT").amount
    if held:
        side = "SELL" if held > 0 else "BUY"
        exchange.place_order("BTCUSDT", side, "MARKET", quantity=abs(held))
    trades = exchange.trades()
    flows = sum(
        ((t.qty if t.side == "SELL" else -t.qty) * t.price - t.commission for t in trades),
        Decimal(0),
    )
    funding = sum((amount for *_, amount in exchange.funding_payments()), Decimal(0))
    moved = exchange.balance("USDT").free - Decimal(10_000_000)
    assert exchange.perp_position("BTCUSDT").amount == 0
    # the wallet moves by exactly what each trade reports (realizedPnl, commission) and
    # each funding payment; a realized profit is rounded to 8 decimals at each trade,
    # against an average entry price, so the sum is the cash flows within that rounding
    realized = sum((t.realized_pnl - t.commission for t in trades), Decimal(0))
    assert moved == realized + funding
    assert abs(moved - flows - funding) <= Decimal("0.5e-8") * len(trades)


def _funding_times() -> pd.DatetimeIndex:
    return pd.DatetimeIndex(["2024-01-01 04:00", "2024-01-01 12:00", "2024-01-01 20:00"], tz="UTC")
