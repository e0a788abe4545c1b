"""Property: over random orders, cancels, clock moves and faults, the venue's books balance.

Everything goes through the real ccxt client; the checks read the venue's own
strings (``info``) as exact decimals, so a satoshi lost or made fails.
"""

from __future__ import annotations

import contextlib
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import ccxt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.testing.emulator_series import SYMBOL, make_bars
from tradeloom.testing import DropConnection, ExchangeEmulator, Fault, PartialFill, Reject

BARS = make_bars(120, seed=11)
START = 20
INITIAL = {"USDT": Decimal("50000"), "BTC": Decimal("1")}
EXPECTED = (ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.NetworkError, ccxt.MarketClosed)
"""Refusals and lost answers are part of a plan; the books must balance anyway."""

faults = st.sampled_from(
    [
        None,
        None,
        PartialFill(0.3),
        PartialFill(0.5),
        DropConnection(after_accept=True),
        DropConnection(),
        Reject(-2010, "Account has insufficient balance for requested action."),
    ]
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("market"), st.sampled_from(["buy", "sell"]), st.integers(1, 150), faults),
        st.tuples(
            st.just("limit"),
            st.sampled_from(["buy", "sell"]),
            st.integers(1, 150),
            st.integers(-300, 300),
            faults,
        ),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("advance"), st.integers(1, 4)),
    ),
    min_size=1,
    max_size=30,
)


def _d(text: str) -> Decimal:
    return Decimal(text)


def _run(emulator: ExchangeEmulator, client: ccxt.binance, plan: list[tuple[Any, ...]]) -> None:
    placed: list[str] = []
    for step, action in enumerate(plan):
        kind = action[0]
        if kind == "advance":
            if emulator.exchange.position + action[1] <= emulator.exchange.length:
                emulator.advance(action[1])
            continue
        if kind == "cancel":
            if placed:
                with contextlib.suppress(ccxt.OrderNotFound):
                    client.cancel_order(
                        None, SYMBOL, {"clientOrderId": placed[action[1] % len(placed)]}
                    )
            continue
        fault: Fault | None = action[-1]
        if fault is not None:
            emulator.faults.next("POST /api/v3/order", fault)
        client_id = f"p{step}"
        amount = action[2] / 1000
        price = None
        if kind == "limit":
            current = float(BARS["open"].iloc[min(emulator.exchange.position, len(BARS) - 1)])
            price = round(current + action[3] * 0.5, 2)
        with contextlib.suppress(*EXPECTED):
            client.create_order(
                SYMBOL, kind, action[1], amount, price, {"clientOrderId": client_id}
            )
        placed.append(client_id)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=actions)
def test_books_balance_over_random_orders_and_faults(plan: list[tuple[Any, ...]]) -> None:
    with ExchangeEmulator({SYMBOL: BARS}, INITIAL, start=START) as emulator:
        client = emulator.client(timeout=5000)
        client.load_markets()
        _run(emulator, client, plan)
        trades = client.fetch_my_trades(SYMBOL, params={"fromId": 1, "limit": 1000})
        orders = client.fetch_orders(SYMBOL, params={"orderId": 1, "limit": 1000})
        balances = {b["asset"]: b for b in client.fetch_balance()["info"]["balances"]}
        mark = _d(client.fetch_ticker(SYMBOL)["info"]["lastPrice"])
        posts = emulator.requests("POST /api/v3/order")
        assert emulator.wait_idle()
        assert emulator.errors == []

    # No trade id repeats, and every trade belongs to an order the venue accepted.
    ids = [t["id"] for t in trades]
    assert len(ids) == len(set(ids))
    by_order: defaultdict[str, Decimal] = defaultdict(Decimal)
    for t in trades:
        by_order[t["order"]] += _d(t["info"]["qty"])

    # Filled never exceeds ordered, and equals the sum of the order's trades.
    for o in orders:
        filled, ordered = _d(o["info"]["executedQty"]), _d(o["info"]["origQty"])
        assert filled <= ordered
        assert filled == by_order.get(o["id"], Decimal(0))
    assert set(by_order) <= {o["id"] for o in orders}

    # Balances: start + fills - fees, to the satoshi; nothing negative.
    quote, base = INITIAL["USDT"], INITIAL["BTC"]
    fees_in_quote = Decimal(0)
    for t in trades:
        info = t["info"]
        qty, cost, fee = _d(info["qty"]), _d(info["quoteQty"]), _d(info["commission"])
        if info["isBuyer"]:
            quote, base = quote - cost, base + qty - fee
            fees_in_quote += fee * mark
        else:
            quote, base = quote + cost - fee, base - qty
            fees_in_quote += fee
    total = {a: _d(b["free"]) + _d(b["locked"]) for a, b in balances.items()}
    assert total == {"USDT": quote, "BTC": base}
    assert all(_d(b["free"]) >= 0 and _d(b["locked"]) >= 0 for b in balances.values())

    # Equity at the mark: what the start was worth, plus each fill's edge, minus fees.
    edge = sum(
        (
            _d(t["info"]["qty"]) * mark - _d(t["info"]["quoteQty"])
            if t["info"]["isBuyer"]
            else _d(t["info"]["quoteQty"]) - _d(t["info"]["qty"]) * mark
            for t in trades
        ),
        Decimal(0),
    )
    start_equity = INITIAL["USDT"] + INITIAL["BTC"] * mark
    assert total["USDT"] + total["BTC"] * mark == start_equity + edge - fees_in_quote

    # Locked balances are exactly what the open orders hold.
    open_orders = [o for o in orders if o["info"]["status"] in ("NEW", "PARTIALLY_FILLED")]
    held_quote = sum(
        (
            _d(o["info"]["price"]) * (_d(o["info"]["origQty"]) - _d(o["info"]["executedQty"]))
            for o in open_orders
            if o["info"]["side"] == "BUY" and o["info"]["type"] == "LIMIT"
        ),
        Decimal(0),
    )
    held_base = sum(
        (
            _d(o["info"]["origQty"]) - _d(o["info"]["executedQty"])
            for o in open_orders
            if o["info"]["side"] == "SELL"
        ),
        Decimal(0),
    )
    assert (_d(balances["USDT"]["locked"]), _d(balances["BTC"]["locked"])) == (
        held_quote,
        held_base,
    )

    # One order per request the venue acted on, never one for a request it did not.
    dispatched = Counter(r.params["newClientOrderId"] for r in posts if r.dispatched)
    assert all(dispatched[o["clientOrderId"]] == 1 for o in orders)
    assert len(orders) <= len(dispatched)


def test_the_property_plan_reaches_fills_and_faults() -> None:
    """Guard the property test against a plan that silently does nothing."""
    plan = [
        ("market", "buy", 100, PartialFill(0.3)),
        ("limit", "sell", 50, -10, None),
        ("advance", 3),
        ("market", "buy", 10, DropConnection(after_accept=True)),
        ("cancel", 0),
    ]
    with ExchangeEmulator({SYMBOL: BARS}, INITIAL, start=START) as emulator:
        client = emulator.client()
        client.load_markets()
        _run(emulator, client, plan)
        statuses = [o.status for o in emulator.exchange.orders()]
        assert statuses == ["FILLED", "FILLED", "FILLED"]
        assert len(emulator.exchange.trades()) == 6
        assert [r.dispatched for r in emulator.requests("POST /api/v3/order")] == [True, True, True]
