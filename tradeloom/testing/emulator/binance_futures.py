"""Binance USD-M futures' REST routes (``/fapi``), the subset ccxt's ``binance`` calls to
trade a perpetual swap, answered from an `Exchange`: its markets and funding rates, its
orders (one at a time, or up to 5 in one ``batchOrders`` request, each child answered in
its place), its trades, positions, leverage, margin and wallet.

`FuturesRoutes` is a base of `tradeloom.testing.emulator.binance.BinanceApi`; what it
shares with spot's routes is `tradeloom.testing.emulator.binance_spot.SpotRoutes`'.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from tradeloom.testing.emulator.binance_routes import (
    _FUTURES_NAMES,
    _FUTURES_TYPES,
    BATCH_CANCELS,
    BATCH_ORDERS,
    ROUTES,
)
from tradeloom.testing.emulator.binance_spot import _CLIENT_ID, SpotRoutes
from tradeloom.testing.emulator.binance_wire import (
    _DAY_MS,
    _REJECTIONS,
    _ApiError,
    _boolean,
    _bounded,
    _decimal,
    _fmt,
    _illegal,
    _integer,
    _invalid,
    _limit,
    _not_required,
    _order_ref,
    _required,
    _round8,
    _swap_info,
)
from tradeloom.testing.emulator.faults import BatchFault
from tradeloom.testing.emulator.records import (
    LIMIT_TYPES,
    STOP_TYPES,
    Market,
    Order,
    PerpPosition,
    Rejected,
    Side,
)

__all__ = ["FuturesRoutes"]

_WEEK_MS = 7 * _DAY_MS
_SPOT_ONLY_TICKER = frozenset({"prevClosePrice", "bidPrice", "bidQty", "askPrice", "askQty"})
"""Fields of spot's 24-hour ticker that USD-M's has not."""
_MAX_NOTIONAL = Decimal(50_000_000)
_MAINT_RATE = Decimal("0.004")
"""The one leverage bracket served: Binance's first BTCUSDT bracket's maintenance rate."""


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


class FuturesRoutes(SpotRoutes):
    """Answer Binance USD-M futures' routes from an `Exchange` (a base of `BinanceApi`)."""

    # --- USD-M futures market data ----------------------------------------------------

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
