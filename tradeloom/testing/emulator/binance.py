"""Binance spot's REST API, the subset ccxt's ``binance`` class calls for spot trading,
and USD-M futures' (``/fapi``), the subset it calls to trade a perpetual swap.

Turns an `HttpRequest` into a call on the `Exchange` and its answer into Binance's
JSON: request parsing, the API key and HMAC-SHA256 signature, ``timestamp`` and
``recvWindow``, parameter checks, response shapes and error codes. The shapes
follow Binance's documentation and the fields ccxt's parsers read; the error
codes and messages are Binance's verbatim, because ccxt maps some by message and
the others by code.

A USD-M swap is served as Binance serves it, refusals included: its orders only on
``/fapi`` (a spot route answers -1121 Invalid symbol), its order and trade lists over 7
days at most (spot's: 24 hours; -1127), ``fromId`` never with a time window (-1128), its
positions in one-way mode only (-4061). What ccxt's ``binance`` itself refuses for a swap
never reaches the server: ``fetchOrderTrades`` raises "supports spot markets only" in
the client (`tradeloom.live.orders.ccxt_capabilities` knows it and reads the
order's trades from ``/fapi/v1/userTrades`` instead).

Two clocks. Market data, orders and trades carry market time, the bar clock of
the `Exchange`. The signature window (``timestamp`` within ``recvWindow``) and
``GET /api/v3/time`` use the wall clock, because ccxt signs with the local wall
clock: a replay of 2021 bars must still accept a request signed now.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, cast
from urllib.parse import parse_qsl

from tradeloom.testing.emulator.binance_routes import (
    _FUTURES_NAMES,
    _FUTURES_TYPES,
    BATCH_CANCELS,
    BATCH_ORDERS,
    ROUTES,
)
from tradeloom.testing.emulator.binance_wire import (
    _DAY_MS,
    ORDER_TYPES,
    _ApiError,
    _boolean,
    _bounded,
    _cancel_json,
    _check_window,
    _decimal,
    _fill,
    _fmt,
    _illegal,
    _integer,
    _invalid,
    _kline,
    _limit,
    _mandatory,
    _not_required,
    _order_body,
    _order_head,
    _order_ref,
    _order_times,
    _required,
    _round8,
    _swap_info,
    _symbol_info,
    _trade_json,
    _unique,
    _unsigned,
)
from tradeloom.testing.emulator.exchange import Exchange
from tradeloom.testing.emulator.faults import BatchFault
from tradeloom.testing.emulator.records import (
    LIMIT_TYPES,
    STOP_TYPES,
    Market,
    Order,
    OrderType,
    PerpPosition,
    Reason,
    Rejected,
    Side,
    Trade,
)
from tradeloom.testing.emulator.server import HttpReply, HttpRequest

__all__ = ["ORDER_TYPES", "ROUTES", "BinanceApi", "error_reply", "parse_params"]


_WEEK_MS = 7 * _DAY_MS
_SPOT_ONLY_TICKER = frozenset({"prevClosePrice", "bidPrice", "bidQty", "askPrice", "askQty"})
"""Fields of spot's 24-hour ticker that USD-M's has not."""
_MAX_NOTIONAL = Decimal(50_000_000)
_MAINT_RATE = Decimal("0.004")
"""The one leverage bracket served: Binance's first BTCUSDT bracket's maintenance rate."""
_MAX_RECV_WINDOW = 60_000
_CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_JSON = (("Content-Type", "application/json;charset=UTF-8"),)

_REJECTIONS: dict[Reason, tuple[int, int, str]] = {
    Reason.UNKNOWN_SYMBOL: (400, -1121, "Invalid symbol."),
    Reason.PRICE_FILTER: (400, -1013, "Filter failure: PRICE_FILTER"),
    Reason.LOT_SIZE: (400, -1013, "Filter failure: LOT_SIZE"),
    Reason.NOTIONAL: (400, -1013, "Filter failure: NOTIONAL"),
    Reason.DUPLICATE_ORDER: (400, -2010, "Duplicate order sent."),
    Reason.INSUFFICIENT_BALANCE: (
        400,
        -2010,
        "Account has insufficient balance for requested action.",
    ),
    Reason.MARKET_CLOSED: (400, -1013, "Market is closed."),
    Reason.NO_SUCH_ORDER: (400, -2013, "Order does not exist."),
    Reason.NOT_CANCELABLE: (400, -2011, "Unknown order sent."),
    Reason.WOULD_TAKE: (400, -2010, "Order would immediately match and take."),
    Reason.WOULD_TRIGGER: (400, -2010, "Order would trigger immediately."),
    Reason.MARGIN_INSUFFICIENT: (400, -2019, "Margin is insufficient."),
    Reason.REDUCE_ONLY: (400, -2022, "ReduceOnly Order is rejected."),
    Reason.BAD_LEVERAGE: (400, -4028, "Leverage is not valid"),
}
"""How Binance answers each refusal: HTTP status, error code, message."""


def _batch_list(params: Mapping[str, str], name: str, most: int) -> list[Any]:
    """Return a batch parameter's JSON list (at most ``most`` items), as Binance reads it."""
    try:
        items = json.loads(_required(params, name))
    except ValueError:
        raise _ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.") from None
    if not isinstance(items, list) or not items:
        raise _ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    if len(items) > most:
        raise _ApiError(400, -4035, f"Parameter '{name}' has more than {most} items.")
    return items


def parse_params(request: HttpRequest) -> list[tuple[str, str]]:
    """Return the query's and the form body's parameters, in the order sent."""
    pairs = parse_qsl(request.query, keep_blank_values=True)
    if request.body:
        pairs += parse_qsl(request.body, keep_blank_values=True)
    return pairs


def error_reply(
    status: int, code: int, msg: str, headers: tuple[tuple[str, str], ...] = ()
) -> HttpReply:
    """Return Binance's error body ``{"code": ..., "msg": ...}`` with ``status``."""
    body = json.dumps({"code": code, "msg": msg}).encode()
    return HttpReply(status, body, _JSON + headers)


class BinanceApi:
    """Answer Binance spot (and USD-M futures) REST requests from an `Exchange`.

    Args:
        exchange: The venue state.
        api_key: The one API key accepted (``X-MBX-APIKEY``).
        secret: Its HMAC-SHA256 secret.
        wall_clock: Seconds since the epoch, for the signature window and ``/time``.
        include_open_kline: Serve the kline in progress, as Binance does.
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        api_key: str,
        secret: str,
        wall_clock: Callable[[], float] = time.time,
        include_open_kline: bool = True,
    ) -> None:
        self._exchange = exchange
        self._api_key = api_key
        self._secret = secret.encode()
        self._wall_clock = wall_clock
        self._include_open = include_open_kline

    def handle(
        self,
        request: HttpRequest,
        pairs: list[tuple[str, str]],
        *,
        fill_fraction: Decimal | None = None,
        batch: BatchFault | None = None,
    ) -> HttpReply:
        """Answer one request.

        Args:
            request: The request.
            pairs: Its parameters (`parse_params`).
            fill_fraction: Per-bar fill fraction for an order this request creates.
            batch: What goes wrong between a batch request's children (None: nothing).
        """
        route = ROUTES.get(f"{request.method} {request.path}")
        if route is None:
            body = b"<html><body><h1>404 Not Found</h1></body></html>"
            return HttpReply(404, body, (("Content-Type", "text/html"),))
        try:
            params = _unique(pairs)
            unread = [name for name in params if name not in route.params]
            if unread:
                raise _ApiError(
                    400,
                    -1104,
                    f"Not all sent parameters were read; read '{len(params) - len(unread)}' "
                    f"parameter(s) but was sent '{len(params)}'.",
                )
            if route.signed:
                self._authenticate(request, params)
            handler: Callable[..., object] = getattr(self, route.handler)
            if route.batch:
                payload = handler(params, fill_fraction, batch or BatchFault())
            elif route.creates_order:
                payload = handler(params, fill_fraction)
            else:
                payload = handler(params)
        except _ApiError as error:
            return error_reply(error.status, error.code, error.msg)
        except Rejected as rejection:
            return error_reply(*_REJECTIONS[rejection.reason])
        return HttpReply(200, json.dumps(payload).encode(), _JSON)

    # --- authentication -------------------------------------------------------------

    def _authenticate(self, request: HttpRequest, params: Mapping[str, str]) -> None:
        key = request.headers.get("x-mbx-apikey")
        if not key:
            raise _ApiError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key, self._api_key):
            raise _ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = params.get("signature")
        if not signature:
            raise _mandatory("signature")
        # Binance signs totalParams: the query string followed by the request body.
        payload = _unsigned(request.query) + _unsigned(request.body)
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise _ApiError(400, -1022, "Signature for this request is not valid.")
        timestamp = _integer(params, "timestamp", required=True)
        recv_window = _integer(params, "recvWindow") or 5000
        if recv_window > _MAX_RECV_WINDOW:
            raise _ApiError(400, -1131, "recvWindow must be less than 60000")
        now = int(self._wall_clock() * 1000)
        assert timestamp is not None
        if timestamp >= now + 1000:
            raise _ApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - timestamp > recv_window:
            raise _ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    # --- market data ------------------------------------------------------------------

    def _ping(self, params: Mapping[str, str]) -> dict[str, Any]:
        return {}

    def _time(self, params: Mapping[str, str]) -> dict[str, Any]:
        return {"serverTime": int(self._wall_clock() * 1000)}

    def _exchange_info(self, params: Mapping[str, str]) -> dict[str, Any]:
        markets = [m for m in self._markets(params) if not m.swap]
        return {
            "timezone": "UTC",
            "serverTime": int(self._wall_clock() * 1000),
            "rateLimits": [
                _limit("REQUEST_WEIGHT", "MINUTE", 1, 6000),
                _limit("ORDERS", "SECOND", 10, 100),
                _limit("ORDERS", "DAY", 1, 200000),
                _limit("RAW_REQUESTS", "MINUTE", 5, 61000),
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m) for m in markets],
        }

    def _futures_exchange_info(self, params: Mapping[str, str]) -> dict[str, Any]:
        swaps = [m for m in self._exchange.markets.values() if m.swap]
        return {
            "timezone": "UTC",
            "serverTime": int(self._wall_clock() * 1000),
            "futuresType": "U_MARGINED",
            "rateLimits": [
                _limit("REQUEST_WEIGHT", "MINUTE", 1, 2400),
                _limit("ORDERS", "MINUTE", 1, 1200),
            ],
            "exchangeFilters": [],
            "assets": [],
            "symbols": [_swap_info(m) for m in swaps],
        }

    def _klines(self, params: Mapping[str, str]) -> list[list[Any]]:
        market = self._market(params)
        interval = _required(params, "interval")
        if interval != market.bars.interval:
            raise _ApiError(400, -1120, "Invalid interval.")
        limit = _bounded(params, "limit", default=500, high=1000)
        rows = self._exchange.visible_klines(
            market.id,
            start_ms=_integer(params, "startTime"),
            end_ms=_integer(params, "endTime"),
            limit=limit,
            include_open=self._include_open,
        )
        return [_kline(k) for k in rows]

    def _funding_rate(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        market = self._market(params)
        start, end = _integer(params, "startTime"), _integer(params, "endTime")
        limit = _bounded(params, "limit", default=100, high=1000)
        rows = self._exchange.visible_funding_rates(
            market.id, start_ms=start, end_ms=end, limit=limit
        )
        return [
            {"symbol": market.id, "fundingTime": t, "fundingRate": _fmt(r), "markPrice": ""}
            for t, r in rows
        ]

    def _ticker_24hr(self, params: Mapping[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        return self._per_market(params, self._day_stats)

    def _ticker_price(self, params: Mapping[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        return self._per_market(
            params,
            lambda m: {"symbol": m.id, "price": _fmt(self._exchange.current_price(m.id))},
        )

    def _book_ticker(self, params: Mapping[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        return self._per_market(params, self._book)

    def _day_stats(self, market: Market) -> dict[str, Any]:
        now = self._exchange.now_ms()
        last = self._exchange.current_price(market.id)
        window = self._exchange.visible_klines(
            market.id, start_ms=now - _DAY_MS, include_open=self._include_open
        )
        earlier = self._exchange.visible_klines(
            market.id, end_ms=now - _DAY_MS - 1, limit=1, include_open=False
        )
        opened = window[0].open if window else last
        volume = sum((k.volume for k in window), Decimal(0))
        quote_volume = _round8(sum((k.close * k.volume for k in window), Decimal(0)))
        change = last - opened
        return {
            "symbol": market.id,
            "priceChange": _fmt(change),
            "priceChangePercent": str((change / opened * 100).quantize(Decimal("0.001"))),
            "weightedAvgPrice": _fmt(_round8(quote_volume / volume) if volume else last),
            "prevClosePrice": _fmt(earlier[0].close if earlier else opened),
            "lastPrice": _fmt(last),
            "lastQty": _fmt(Decimal(0)),
            **self._book(market),
            "openPrice": _fmt(opened),
            "highPrice": _fmt(max([k.high for k in window] + [last])),
            "lowPrice": _fmt(min([k.low for k in window] + [last])),
            "volume": _fmt(volume),
            "quoteVolume": _fmt(quote_volume),
            "openTime": window[0].open_ms if window else now,
            "closeTime": now,
            "firstId": -1,
            "lastId": -1,
            "count": 0,
        }

    def _book(self, market: Market) -> dict[str, Any]:
        book = self._exchange.order_book(market.id, limit=1)
        bid = book.bids[0] if book.bids else (Decimal(0), Decimal(0))
        return {
            "symbol": market.id,
            "bidPrice": _fmt(bid[0]),
            "bidQty": _fmt(bid[1]),
            "askPrice": _fmt(book.asks[0][0]),
            "askQty": _fmt(book.asks[0][1]),
        }

    def _depth(self, params: Mapping[str, str]) -> dict[str, Any]:
        market = self._market(params)
        limit = _bounded(params, "limit", default=100, high=5000)
        book = self._exchange.order_book(market.id, limit=limit)
        # Binance's update id grows with every change of the book; here the book
        # changes once a bar, so the bar's open time serves.
        return {
            "lastUpdateId": book.time_ms,
            "bids": [[_fmt(p), _fmt(q)] for p, q in book.bids],
            "asks": [[_fmt(p), _fmt(q)] for p, q in book.asks],
        }

    # --- trading --------------------------------------------------------------------------

    def _new_order(
        self, params: Mapping[str, str], fill_fraction: Decimal | None
    ) -> dict[str, Any]:
        market, side, type_, fields = self._order_request(params)
        response_type = params.get("newOrderRespType", "FULL")
        if response_type not in ("ACK", "RESULT", "FULL"):
            raise _invalid("newOrderRespType")
        order = self._exchange.place_order(
            market.id, side, type_, fill_fraction=fill_fraction, **fields
        )
        base = _order_head(order) | {"transactTime": order.created_ms}
        if response_type == "ACK":
            return base
        result = base | _order_body(order)
        if order.stop_price is not None:
            result["stopPrice"] = _fmt(order.stop_price)
        if response_type == "FULL":
            # Every fill of an order this new is this request's own.
            mine = set(order.trade_ids)
            fills = [t for t in self._exchange.trades(market.id) if t.trade_id in mine]
            result["fills"] = [_fill(t) for t in fills]
        return result

    def _test_order(self, params: Mapping[str, str]) -> dict[str, Any]:
        market, side, type_, fields = self._order_request(params)
        fields.pop("client_order_id")
        fields.pop("time_in_force", None)
        self._exchange.check_order(market.id, side, type_, **fields)
        return {}

    def _order_request(
        self, params: Mapping[str, str]
    ) -> tuple[Market, Side, OrderType, dict[str, Any]]:
        market = self._market(params)
        if market.swap:  # traded on /fapi only
            raise _ApiError(400, -1121, "Invalid symbol.")
        side = _required(params, "side")
        if side not in ("BUY", "SELL"):
            raise _ApiError(400, -1117, "Invalid side.")
        type_ = _required(params, "type")
        if type_ not in ORDER_TYPES:
            raise _ApiError(400, -1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId")
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise _illegal("newClientOrderId", _CLIENT_ID.pattern)
        fields: dict[str, Any] = {"client_order_id": client_id}
        if type_ in STOP_TYPES:
            fields["stop_price"] = _decimal(params, "stopPrice", required=True)
        elif "stopPrice" in params:
            raise _not_required("stopPrice")
        if type_ in LIMIT_TYPES:
            if type_ == "LIMIT_MAKER":
                # A post-only order has no time in force: it rests or is refused.
                if "timeInForce" in params:
                    raise _not_required("timeInForce")
            else:
                tif = _required(params, "timeInForce")
                if tif not in ("GTC", "IOC", "FOK"):
                    raise _ApiError(400, -1115, "Invalid timeInForce.")
                fields["time_in_force"] = tif
            fields["price"] = _decimal(params, "price", required=True)
            fields["quantity"] = _decimal(params, "quantity", required=True)
            if "quoteOrderQty" in params:
                raise _not_required("quoteOrderQty")
        elif type_ != "MARKET":
            for name in ("price", "timeInForce", "quoteOrderQty"):
                if name in params:
                    raise _not_required(name)
            fields["quantity"] = _decimal(params, "quantity", required=True)
        else:
            for name in ("price", "timeInForce"):
                if name in params:
                    raise _not_required(name)
            quantity = _decimal(params, "quantity")
            quote = _decimal(params, "quoteOrderQty")
            if quantity is None and quote is None:
                raise _ApiError(
                    400,
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            if quantity is not None and quote is not None:
                raise _ApiError(400, -1128, "Combination of optional parameters invalid.")
            fields["quantity"] = quantity
            fields["quote_order_qty"] = quote
        return market, cast(Side, side), cast(OrderType, type_), fields

    def _query_order(self, params: Mapping[str, str]) -> dict[str, Any]:
        market = self._market(params)
        order = self._exchange.order(market.id, **_order_ref(params))
        return _order_head(order) | _order_body(order) | _order_times(order)

    def _cancel_order(self, params: Mapping[str, str]) -> dict[str, Any]:
        market = self._market(params)
        cancel_id = params.get("newClientOrderId")
        if cancel_id is not None and not _CLIENT_ID.match(cancel_id):
            raise _illegal("newClientOrderId", _CLIENT_ID.pattern)
        order = self._exchange.cancel(market.id, **_order_ref(params))
        return _cancel_json(order, cancel_id, self._exchange.now_ms())

    def _open_orders(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        market_id = self._market(params).id if "symbol" in params else None
        orders = self._exchange.open_orders(market_id)
        return [_order_head(o) | _order_body(o) | _order_times(o) for o in orders]

    def _cancel_open_orders(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        market = self._market(params)
        orders = self._exchange.open_orders(market.id)
        if not orders:
            raise _ApiError(400, -2011, "Unknown order sent.")
        now = self._exchange.now_ms()
        return [
            _cancel_json(self._exchange.cancel(market.id, order_id=o.order_id), None, now)
            for o in orders
        ]

    def _all_orders(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        chosen = self._chosen_orders(params)
        return [_order_head(o) | _order_body(o) | _order_times(o) for o in chosen]

    def _my_trades(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return [_trade_json(t) for t in self._chosen_trades(params)]

    def _account(self, params: Mapping[str, str]) -> dict[str, Any]:
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        maker = int(self._exchange.maker_fee * 10_000)
        taker = int(self._exchange.taker_fee * 10_000)
        balances = [
            {"asset": asset, "free": _fmt(b.free), "locked": _fmt(b.locked)}
            for asset, b in self._exchange.balances().items()
            if not (omit_zero and b.total == 0)
        ]
        return {
            "makerCommission": maker,
            "takerCommission": taker,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _fmt(self._exchange.maker_fee),
                "taker": _fmt(self._exchange.taker_fee),
                "buyer": _fmt(Decimal(0)),
                "seller": _fmt(Decimal(0)),
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._exchange.now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 1,
        }

    # --- USD-M futures trading -----------------------------------------------------------

    def _swap(self, params: Mapping[str, str]) -> Market:
        market = self._market(params)
        if not market.swap:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return market

    def _futures_new_order(
        self, params: Mapping[str, str], fill_fraction: Decimal | None
    ) -> dict[str, Any]:
        market = self._swap(params)
        side = _required(params, "side")
        if side not in ("BUY", "SELL"):
            raise _ApiError(400, -1117, "Invalid side.")
        if params.get("positionSide", "BOTH") != "BOTH":
            raise _ApiError(400, -4061, "Order's position side does not match user's setting.")
        if params.get("closePosition", "false") != "false":
            raise _not_required("closePosition")
        name = _required(params, "type")
        type_ = _FUTURES_TYPES.get(name)
        if type_ is None:
            raise _ApiError(400, -1116, "Invalid orderType.")
        client_id = params.get("newClientOrderId")
        if client_id is not None and not _CLIENT_ID.match(client_id):
            raise _illegal("newClientOrderId", _CLIENT_ID.pattern)
        fields: dict[str, Any] = {
            "client_order_id": client_id,
            "quantity": _decimal(params, "quantity", required=True),
            "reduce_only": _boolean(params, "reduceOnly"),
        }
        if type_ in STOP_TYPES:
            fields["stop_price"] = _decimal(params, "stopPrice", required=True)
        elif "stopPrice" in params:
            raise _not_required("stopPrice")
        if type_ in LIMIT_TYPES:
            tif = _required(params, "timeInForce")
            if tif not in ("GTC", "IOC", "FOK", "GTX"):
                raise _ApiError(400, -1115, "Invalid timeInForce.")
            if tif == "GTX":  # post-only
                type_ = "LIMIT_MAKER" if type_ == "LIMIT" else type_
            else:
                fields["time_in_force"] = tif
            fields["price"] = _decimal(params, "price", required=True)
        else:
            for field in ("price", "timeInForce"):
                if field in params:
                    raise _not_required(field)
        order = self._exchange.place_order(
            market.id, cast(Side, side), type_, fill_fraction=fill_fraction, **fields
        )
        return self._futures_order(order)

    def _futures_batch_orders(
        self, params: Mapping[str, str], fill_fraction: Decimal | None, fault: BatchFault
    ) -> list[dict[str, Any]]:
        """Place each child in turn; answer each in its place (its order, or its refusal)."""
        children = _batch_list(params, "batchOrders", BATCH_ORDERS)
        answers: list[dict[str, Any]] = []
        for i, child in enumerate(children):
            if fault.cut_after is not None and i >= fault.cut_after:
                break  # the connection is dropped here (the emulator: no answer)
            if not isinstance(child, dict):
                raise _ApiError(400, -1130, "Data sent for parameter 'batchOrders' is not valid.")
            if i in fault.refuse:
                answers.append({"code": fault.code, "msg": fault.msg})
                continue
            fields = {str(k): str(v) for k, v in child.items()}
            unread = [k for k in fields if k not in ROUTES["POST /fapi/v1/order"].params]
            if unread:
                raise _ApiError(400, -1104, f"Not all sent parameters were read: {unread}")
            try:
                answers.append(self._futures_new_order(fields, fill_fraction))
            except _ApiError as error:
                answers.append({"code": error.code, "msg": error.msg})
            except Rejected as rejection:
                _, code, msg = _REJECTIONS[rejection.reason]
                answers.append({"code": code, "msg": msg})
        return answers

    def _futures_batch_cancel(
        self, params: Mapping[str, str], fill_fraction: Decimal | None, fault: BatchFault
    ) -> list[dict[str, Any]]:
        """Cancel each order in turn; answer each in its place (the order, or the refusal)."""
        market = self._swap(params)
        named = {k.lower(): v for k, v in params.items()}
        by_id = "orderidlist" in named
        if by_id == ("origclientorderidlist" in named):
            raise _ApiError(
                400, -1102, "Param 'orderIdList' or 'origClientOrderIdList' must be sent."
            )
        name = "orderidlist" if by_id else "origclientorderidlist"
        refs = _batch_list(named, name, BATCH_CANCELS)
        answers: list[dict[str, Any]] = []
        for i, ref in enumerate(refs):
            if fault.cut_after is not None and i >= fault.cut_after:
                break
            if i in fault.refuse:
                answers.append({"code": fault.code, "msg": fault.msg})
                continue
            try:
                if by_id:
                    order = self._exchange.cancel(market.id, order_id=int(ref))
                else:
                    order = self._exchange.cancel(market.id, client_order_id=str(ref))
            except Rejected as rejection:
                _, code, msg = _REJECTIONS[rejection.reason]
                answers.append({"code": code, "msg": msg})
                continue
            answers.append(self._futures_order(order))
        return answers

    def _futures_order(self, o: Order) -> dict[str, Any]:
        zero = _fmt(Decimal(0))
        average = o.cumulative_quote_qty / o.executed_qty if o.executed_qty else Decimal(0)
        name = _FUTURES_NAMES.get(o.type, o.type)
        return {
            "orderId": o.order_id,
            "symbol": o.market_id,
            "status": o.status,
            "clientOrderId": o.client_order_id,
            "price": _fmt(o.price if o.price is not None else Decimal(0)),
            "avgPrice": _fmt(_round8(average)),
            "origQty": _fmt(o.quantity),
            "executedQty": _fmt(o.executed_qty),
            "cumQty": _fmt(o.executed_qty),
            "cumQuote": _fmt(o.cumulative_quote_qty),
            "timeInForce": "GTX" if o.type == "LIMIT_MAKER" else o.time_in_force,
            "type": name,
            "origType": name,
            "reduceOnly": False,
            "closePosition": False,
            "side": o.side,
            "positionSide": "BOTH",
            "stopPrice": _fmt(o.stop_price) if o.stop_price is not None else zero,
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
            "time": o.created_ms,
            "updateTime": o.updated_ms,
        }

    def _futures_query_order(self, params: Mapping[str, str]) -> dict[str, Any]:
        market = self._swap(params)
        return self._futures_order(self._exchange.order(market.id, **_order_ref(params)))

    def _futures_cancel_order(self, params: Mapping[str, str]) -> dict[str, Any]:
        market = self._swap(params)
        return self._futures_order(self._exchange.cancel(market.id, **_order_ref(params)))

    def _futures_open_orders(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        market_id = self._swap(params).id if "symbol" in params else None
        swaps = {m.id for m in self._exchange.markets.values() if m.swap}
        orders = [o for o in self._exchange.open_orders(market_id) if o.market_id in swaps]
        return [self._futures_order(o) for o in orders]

    def _futures_ticker_24hr(
        self, params: Mapping[str, str]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """USD-M's 24-hour ticker (ccxt's fetchTicker of a swap): spot's fields but the
        book's and the previous close."""

        def stats(market: Market) -> dict[str, Any]:
            row = self._day_stats(market)
            return {k: v for k, v in row.items() if k not in _SPOT_ONLY_TICKER}

        if "symbol" in params:
            return stats(self._swap(params))
        return [stats(m) for m in self._exchange.markets.values() if m.swap]

    def _futures_all_orders(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        self._swap(params)
        return [self._futures_order(o) for o in self._chosen_orders(params, window=_WEEK_MS)]

    def _futures_trades(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """USD-M's account trades: 7 days between ``startTime`` and ``endTime`` at most (spot:
        24 hours), and ``fromId`` with neither (Binance: "The parameter fromId cannot be sent
        with startTime or endTime")."""
        self._swap(params)
        if "fromId" in params and ("startTime" in params or "endTime" in params):
            raise _ApiError(400, -1128, "Combination of optional parameters invalid.")
        return [
            {
                "symbol": t.market_id,
                "id": t.trade_id,
                "orderId": t.order_id,
                "side": t.side,
                "price": _fmt(t.price),
                "qty": _fmt(t.qty),
                "realizedPnl": _fmt(t.realized_pnl),
                "quoteQty": _fmt(t.quote_qty),
                "commission": _fmt(t.commission),
                "commissionAsset": t.commission_asset,
                "time": t.time_ms,
                "positionSide": "BOTH",
                "buyer": t.side == "BUY",
                "maker": t.is_maker,
            }
            for t in self._chosen_trades(params, window=_WEEK_MS)
        ]

    def _position_risk(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Binance's v3 position information: open positions only (all with a symbol)."""
        return [
            self._position_json(held)
            for held in self._positions(params)
            if held.amount != 0 or "symbol" in params
        ]

    def _position_risk_v2(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Binance's v2 position information: every swap market, its settings too."""
        out = []
        for held in self._positions(params):
            row = self._position_json(held)
            row |= {
                "leverage": str(held.leverage),
                "marginType": "cross" if held.margin_type == "CROSSED" else "isolated",
                "maxNotionalValue": _fmt(_MAX_NOTIONAL),
                "isAutoAddMargin": "false",
            }
            out.append(row)
        return out

    def _positions(self, params: Mapping[str, str]) -> list[PerpPosition]:
        if "symbol" in params:
            return [self._exchange.perp_position(self._swap(params).id)]
        return self._exchange.perp_positions()

    def _position_json(self, held: PerpPosition) -> dict[str, Any]:
        exchange = self._exchange
        price = exchange.current_price(held.market_id)
        market = exchange.market(held.market_id)
        zero = _fmt(Decimal(0))
        margin = exchange.initial_margin(held.market_id)
        return {
            "symbol": held.market_id,
            "positionSide": "BOTH",
            "positionAmt": _fmt(held.amount),
            "entryPrice": _fmt(_round8(held.entry_price)),
            "breakEvenPrice": _fmt(_round8(held.entry_price)),
            "markPrice": _fmt(price),
            "unRealizedProfit": _fmt(exchange.unrealized_pnl(held.market_id)),
            "liquidationPrice": zero,
            "isolatedMargin": zero,
            "notional": _fmt(_round8(held.amount * price)),
            "marginAsset": market.quote,
            "isolatedWallet": zero,
            "initialMargin": _fmt(margin),
            "maintMargin": _fmt(self._maint(held.market_id)),
            "positionInitialMargin": _fmt(margin),
            "openOrderInitialMargin": zero,
            "adl": 0,
            "bidNotional": zero,
            "askNotional": zero,
            "updateTime": held.updated_ms,
        }

    def _maint(self, market_id: str) -> Decimal:
        held = self._exchange.perp_position(market_id)
        price = self._exchange.current_price(market_id)
        return _round8(abs(held.amount) * price * _MAINT_RATE)

    def _leverage_bracket(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        swaps = (
            [self._swap(params)]
            if "symbol" in params
            else [m for m in self._exchange.markets.values() if m.swap]
        )
        bracket = {
            "bracket": 1,
            "initialLeverage": 125,
            "notionalCap": int(_MAX_NOTIONAL),
            "notionalFloor": 0,
            "maintMarginRatio": float(_MAINT_RATE),
            "cum": 0.0,
        }
        return [{"symbol": m.id, "brackets": [bracket]} for m in swaps]

    def _wallet_assets(self) -> list[dict[str, Any]]:
        exchange = self._exchange
        quotes = sorted({m.quote for m in exchange.markets.values() if m.swap})
        out = []
        for asset in quotes:
            wallet = exchange.balance(asset).free
            ids = [m.id for m in exchange.markets.values() if m.swap and m.quote == asset]
            unrealized = sum((exchange.unrealized_pnl(i) for i in ids), Decimal(0))
            margin = sum((exchange.initial_margin(i) for i in ids), Decimal(0))
            available = exchange.available(asset)
            out.append(
                {
                    "asset": asset,
                    "walletBalance": _fmt(wallet),
                    "unrealizedProfit": _fmt(unrealized),
                    "marginBalance": _fmt(wallet + unrealized),
                    "maintMargin": _fmt(sum((self._maint(i) for i in ids), Decimal(0))),
                    "initialMargin": _fmt(margin),
                    "positionInitialMargin": _fmt(margin),
                    "openOrderInitialMargin": _fmt(Decimal(0)),
                    "crossWalletBalance": _fmt(wallet),
                    "crossUnPnl": _fmt(unrealized),
                    "availableBalance": _fmt(available),
                    "maxWithdrawAmount": _fmt(max(available, Decimal(0))),
                    "marginAvailable": True,
                    "updateTime": exchange.now_ms(),
                }
            )
        return out

    def _futures_balance(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "accountAlias": "emulator",
                "asset": row["asset"],
                "balance": row["walletBalance"],
                "crossWalletBalance": row["crossWalletBalance"],
                "crossUnPnl": row["crossUnPnl"],
                "availableBalance": row["availableBalance"],
                "maxWithdrawAmount": row["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": row["updateTime"],
            }
            for row in self._wallet_assets()
        ]

    def _futures_account(self, params: Mapping[str, str]) -> dict[str, Any]:
        assets = self._wallet_assets()

        def total(key: str) -> str:
            return _fmt(sum((Decimal(a[key]) for a in assets), Decimal(0)))

        positions = [
            self._position_json(held)
            for held in self._exchange.perp_positions()
            if held.amount != 0
        ]
        return {
            "totalInitialMargin": total("initialMargin"),
            "totalMaintMargin": total("maintMargin"),
            "totalWalletBalance": total("walletBalance"),
            "totalUnrealizedProfit": total("unrealizedProfit"),
            "totalMarginBalance": total("marginBalance"),
            "totalPositionInitialMargin": total("positionInitialMargin"),
            "totalOpenOrderInitialMargin": total("openOrderInitialMargin"),
            "totalCrossWalletBalance": total("crossWalletBalance"),
            "totalCrossUnPnl": total("crossUnPnl"),
            "availableBalance": total("availableBalance"),
            "maxWithdrawAmount": total("maxWithdrawAmount"),
            "assets": assets,
            "positions": positions,
        }

    def _set_leverage(self, params: Mapping[str, str]) -> dict[str, Any]:
        market = self._swap(params)
        leverage = _integer(params, "leverage", required=True)
        assert leverage is not None
        held = self._exchange.set_leverage(market.id, leverage)
        return {
            "leverage": held.leverage,
            "maxNotionalValue": _fmt(_MAX_NOTIONAL),
            "symbol": market.id,
        }

    def _set_margin_type(self, params: Mapping[str, str]) -> dict[str, Any]:
        market = self._swap(params)
        kind = _required(params, "marginType").upper()
        if kind not in ("CROSSED", "ISOLATED"):
            raise _invalid("marginType")
        if self._exchange.perp_position(market.id).margin_type == kind:
            raise _ApiError(400, -4046, "No need to change margin type.")
        self._exchange.set_margin_type(market.id, kind)
        return {"code": 200, "msg": "success"}

    def _income(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Funding fees paid and received (``incomeType`` FUNDING_FEE; others: none)."""
        kind = params.get("incomeType", "FUNDING_FEE")
        market_id = self._swap(params).id if "symbol" in params else None
        start, end = _integer(params, "startTime"), _integer(params, "endTime")
        limit = _bounded(params, "limit", default=100, high=1000)
        rows = [
            {
                "symbol": m,
                "incomeType": "FUNDING_FEE",
                "income": _fmt(amount),
                "asset": self._exchange.market(m).quote,
                "info": "",
                "time": at,
                "tranId": i + 1,
                "tradeId": "",
            }
            for i, (at, m, _rate, amount) in enumerate(self._exchange.funding_payments())
            if kind == "FUNDING_FEE"
            and (market_id is None or m == market_id)
            and (start is None or at >= start)
            and (end is None or at <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    def _chosen_orders(self, params: Mapping[str, str], *, window: int = _DAY_MS) -> list[Order]:
        market = self._market(params)
        limit = _bounded(params, "limit", default=500, high=1000)
        from_id = _integer(params, "orderId")
        start, end = _integer(params, "startTime"), _integer(params, "endTime")
        _check_window(start, end, window)
        orders = [
            o
            for o in self._exchange.orders(market.id)
            if (from_id is None or o.order_id >= from_id)
            and (start is None or o.created_ms >= start)
            and (end is None or o.created_ms <= end)
        ]
        return orders[:limit] if from_id is not None or start is not None else orders[-limit:]

    def _chosen_trades(self, params: Mapping[str, str], *, window: int = _DAY_MS) -> list[Trade]:
        market = self._market(params)
        limit = _bounded(params, "limit", default=500, high=1000)
        order_id = _integer(params, "orderId")
        from_id = _integer(params, "fromId")
        start, end = _integer(params, "startTime"), _integer(params, "endTime")
        _check_window(start, end, window)
        trades = [
            t
            for t in self._exchange.trades(market.id)
            if (order_id is None or t.order_id == order_id)
            and (from_id is None or t.trade_id >= from_id)
            and (start is None or t.time_ms >= start)
            and (end is None or t.time_ms <= end)
        ]
        # From a starting point Binance gives the oldest first; without one, the latest.
        return trades[:limit] if from_id is not None or start is not None else trades[-limit:]

    # --- helpers -------------------------------------------------------------------------

    def _market(self, params: Mapping[str, str]) -> Market:
        return self._exchange.market(_required(params, "symbol"))

    def _markets(self, params: Mapping[str, str]) -> list[Market]:
        if "symbol" in params:
            return [self._market(params)]
        if "symbols" in params:
            try:
                ids = json.loads(params["symbols"])
            except ValueError:
                raise _invalid("symbols") from None
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise _invalid("symbols")
            return [self._exchange.market(i) for i in ids]
        return list(self._exchange.markets.values())

    def _per_market(
        self, params: Mapping[str, str], build: Callable[[Market], dict[str, Any]]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        if "symbol" in params:
            return build(self._market(params))
        return [build(m) for m in self._markets(params)]
