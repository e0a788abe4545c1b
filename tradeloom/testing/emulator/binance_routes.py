"""Every ``METHOD /path`` the Binance emulator serves (`ROUTES`): the `BinanceApi` method
that answers, the parameters it takes, whether it is signed; and USD-M futures' order
types as the matching's."""

from __future__ import annotations

from dataclasses import dataclass

from tradeloom.testing.emulator.records import OrderType

__all__ = ["ROUTES"]

_SIGNED = ("recvWindow", "timestamp", "signature")

_FUTURES_ORDER = (
    "symbol side positionSide type timeInForce quantity reduceOnly price newClientOrderId "
    "stopPrice closePosition workingType priceProtect"
)
_FUTURES_TYPES: dict[str, OrderType] = {
    "LIMIT": "LIMIT",
    "MARKET": "MARKET",
    "STOP": "STOP_LOSS_LIMIT",
    "STOP_MARKET": "STOP_LOSS",
    "TAKE_PROFIT": "TAKE_PROFIT_LIMIT",
    "TAKE_PROFIT_MARKET": "TAKE_PROFIT",
}
"""USD-M futures' order types, as the matching's (their triggers are the same)."""
_FUTURES_NAMES = {v: k for k, v in _FUTURES_TYPES.items()} | {"LIMIT_MAKER": "LIMIT"}
BATCH_ORDERS = 5
"""Most orders one ``POST /fapi/v1/batchOrders`` takes (Binance's limit)."""
BATCH_CANCELS = 10
"""Most orders one ``DELETE /fapi/v1/batchOrders`` cancels (Binance's limit)."""


@dataclass(frozen=True)
class _Route:
    handler: str
    """Name of the `BinanceApi` method that answers, as http.server's ``do_GET``."""
    signed: bool
    params: frozenset[str]
    creates_order: bool
    """The handler also takes the fill fraction a `PartialFill` fault sets."""
    batch: bool = False
    """The handler acts on a list of children (``batchOrders``): it also takes the
    `BatchFault` a request got, if any."""


def _route(
    handler: str,
    params: str,
    *,
    signed: bool = False,
    creates_order: bool = False,
    batch: bool = False,
) -> _Route:
    names = set(params.split())
    return _Route(
        handler,
        signed,
        frozenset(names | set(_SIGNED) if signed else names),
        creates_order,
        batch,
    )


ROUTES: dict[str, _Route] = {
    "GET /api/v3/ping": _route("_ping", ""),
    "GET /api/v3/time": _route("_time", ""),
    "GET /api/v3/exchangeInfo": _route(
        "_exchange_info", "symbol symbols permissions showPermissionSets symbolStatus"
    ),
    "GET /api/v3/klines": _route("_klines", "symbol interval startTime endTime limit timeZone"),
    "GET /api/v3/uiKlines": _route("_klines", "symbol interval startTime endTime limit timeZone"),
    "GET /api/v3/ticker/24hr": _route("_ticker_24hr", "symbol symbols type"),
    "GET /api/v3/ticker/price": _route("_ticker_price", "symbol symbols"),
    "GET /api/v3/ticker/bookTicker": _route("_book_ticker", "symbol symbols"),
    "GET /api/v3/depth": _route("_depth", "symbol limit"),
    "POST /api/v3/order": _route(
        "_new_order",
        "symbol side type timeInForce quantity quoteOrderQty price stopPrice newClientOrderId "
        "newOrderRespType",
        signed=True,
        creates_order=True,
    ),
    "POST /api/v3/order/test": _route(
        "_test_order",
        "symbol side type timeInForce quantity quoteOrderQty price stopPrice newClientOrderId "
        "newOrderRespType computeCommissionRates",
        signed=True,
    ),
    "GET /api/v3/order": _route("_query_order", "symbol orderId origClientOrderId", signed=True),
    "DELETE /api/v3/order": _route(
        "_cancel_order",
        "symbol orderId origClientOrderId newClientOrderId cancelRestrictions",
        signed=True,
    ),
    "GET /api/v3/openOrders": _route("_open_orders", "symbol", signed=True),
    "DELETE /api/v3/openOrders": _route("_cancel_open_orders", "symbol", signed=True),
    "GET /api/v3/allOrders": _route(
        "_all_orders", "symbol orderId startTime endTime limit", signed=True
    ),
    "GET /api/v3/myTrades": _route(
        "_my_trades", "symbol orderId startTime endTime fromId limit", signed=True
    ),
    "GET /api/v3/account": _route("_account", "omitZeroBalances", signed=True),
    "GET /fapi/v1/fundingRate": _route("_funding_rate", "symbol startTime endTime limit"),
    # USD-M futures: the perpetual swaps' markets and bars (BTC/USDT:USDT)
    "GET /fapi/v1/exchangeInfo": _route("_futures_exchange_info", ""),
    "GET /fapi/v1/klines": _route("_klines", "symbol interval startTime endTime limit"),
    "GET /fapi/v1/ticker/24hr": _route("_futures_ticker_24hr", "symbol"),
    # USD-M futures trading (one-way mode): orders, trades, positions, the wallet
    "POST /fapi/v1/order": _route(
        "_futures_new_order",
        f"{_FUTURES_ORDER} newOrderRespType",
        signed=True,
        creates_order=True,
    ),
    # up to 5 orders in one request, each answered in its place (an order or its refusal)
    "POST /fapi/v1/batchOrders": _route(
        "_futures_batch_orders", "batchOrders", signed=True, creates_order=True, batch=True
    ),
    # up to 10 cancels of one symbol in one request, by order ids or client order ids
    # (ccxt sends the lists' names in lower case, which Binance reads as well)
    "DELETE /fapi/v1/batchOrders": _route(
        "_futures_batch_cancel",
        "symbol orderIdList origClientOrderIdList orderidlist origclientorderidlist",
        signed=True,
        batch=True,
    ),
    "GET /fapi/v1/order": _route(
        "_futures_query_order", "symbol orderId origClientOrderId", signed=True
    ),
    "DELETE /fapi/v1/order": _route(
        "_futures_cancel_order", "symbol orderId origClientOrderId", signed=True
    ),
    "GET /fapi/v1/openOrders": _route("_futures_open_orders", "symbol", signed=True),
    "GET /fapi/v1/allOrders": _route(
        "_futures_all_orders", "symbol orderId startTime endTime limit", signed=True
    ),
    "GET /fapi/v1/userTrades": _route(
        "_futures_trades", "symbol orderId startTime endTime fromId limit", signed=True
    ),
    "GET /fapi/v2/positionRisk": _route("_position_risk_v2", "symbol", signed=True),
    "GET /fapi/v3/positionRisk": _route("_position_risk", "symbol", signed=True),
    "GET /fapi/v1/leverageBracket": _route("_leverage_bracket", "symbol", signed=True),
    "GET /fapi/v2/balance": _route("_futures_balance", "", signed=True),
    "GET /fapi/v3/balance": _route("_futures_balance", "", signed=True),
    "GET /fapi/v2/account": _route("_futures_account", "", signed=True),
    "GET /fapi/v3/account": _route("_futures_account", "", signed=True),
    "POST /fapi/v1/leverage": _route("_set_leverage", "symbol leverage", signed=True),
    "POST /fapi/v1/marginType": _route("_set_margin_type", "symbol marginType", signed=True),
    "GET /fapi/v1/income": _route(
        "_income", "symbol incomeType startTime endTime limit page", signed=True
    ),
}
"""Every ``METHOD /path`` the emulator serves."""
