"""Binance spot's REST routes (``/api/v3``) answered from an `Exchange`, and what the
USD-M routes share with them (klines, the day's statistics, the account's orders and
trades chosen by id and time).

`SpotRoutes` is the base of `tradeloom.testing.emulator.binance.BinanceApi`, whose
constructor sets up what it declares; the USD-M futures' routes are
`tradeloom.testing.emulator.binance_futures.FuturesRoutes`'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, cast

from tradeloom.testing.emulator.binance_wire import (
    _DAY_MS,
    ORDER_TYPES,
    _ApiError,
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
    _not_required,
    _order_body,
    _order_head,
    _order_ref,
    _order_times,
    _required,
    _round8,
    _symbol_info,
    _trade_json,
)
from tradeloom.testing.emulator.exchange import Exchange
from tradeloom.testing.emulator.records import (
    LIMIT_TYPES,
    STOP_TYPES,
    Market,
    Order,
    OrderType,
    Side,
    Trade,
)

__all__ = ["SpotRoutes"]

_CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")


class SpotRoutes:
    """Answer Binance spot's routes from an `Exchange` (the base of `BinanceApi`)."""

    _exchange: Exchange
    _wall_clock: Callable[[], float]
    _include_open: bool

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
