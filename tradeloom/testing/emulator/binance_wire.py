"""Binance's wire forms for the emulator: a request's parameters read and checked, and the
JSON bodies of its answers (symbols, klines, orders, trades), as `BinanceApi` sends them.

The checks' error codes and messages are Binance's verbatim (ccxt maps some by message).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tradeloom.testing.emulator.records import (
    Kline,
    Market,
    Order,
    Reason,
    Trade,
)

__all__ = ["ORDER_TYPES"]

ORDER_TYPES: tuple[str, ...] = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
"""Binance spot's order types, every one the emulator takes (its ``orderTypes``)."""

_DAY_MS = 86_400_000

_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_INTEGER = re.compile(r"^-?[0-9]{1,20}$")

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


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise _ApiError(400, -1101, "Duplicate values for a parameter detected.")
        params[name] = value
    return params


def _unsigned(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _mandatory(name)
    return value


def _integer(params: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _mandatory(name)
        return None
    if not _INTEGER.match(value):
        raise _illegal(name, "^[0-9]{1,20}$")
    return int(value)


def _decimal(params: Mapping[str, str], name: str, *, required: bool = False) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise _mandatory(name)
        return None
    if not _DECIMAL.match(value):
        raise _illegal(name, _DECIMAL.pattern)
    return Decimal(value)


def _bounded(params: Mapping[str, str], name: str, *, default: int, high: int) -> int:
    value = _integer(params, name)
    if value is None:
        return default
    if not 1 <= value <= high:
        raise _invalid(name)
    return value


def _check_window(start: int | None, end: int | None, window: int = _DAY_MS) -> None:
    """Binance's -1127: spot's order and trade lists span 24 hours at most, USD-M's 7 days."""
    if start is not None and end is not None and end - start > window:
        hours = window // 3_600_000
        raise _ApiError(400, -1127, f"More than {hours} hours between startTime and endTime.")


def _order_ref(params: Mapping[str, str]) -> dict[str, Any]:
    order_id = _integer(params, "orderId")
    client_id = params.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise _ApiError(
            400,
            -1102,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    return {"order_id": order_id, "client_order_id": None if order_id is not None else client_id}


def _boolean(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise _invalid(name)
    return value == "true"


def _mandatory(name: str) -> _ApiError:
    return _ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _illegal(name: str, pattern: str) -> _ApiError:
    return _ApiError(
        400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{pattern}'."
    )


def _invalid(name: str) -> _ApiError:
    return _ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")


def _not_required(name: str) -> _ApiError:
    return _ApiError(400, -1106, f"Parameter '{name}' sent when not required.")


def _round8(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)


def _fmt(value: Decimal) -> str:
    """Binance's 8-decimal strings; a bar price with more digits is given in full."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -8:
        return f"{value:.8f}"
    return format(value.normalize(), "f")


def _limit(kind: str, interval: str, num: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def _symbol_info(market: Market) -> dict[str, Any]:
    r = market.rules
    return {
        "symbol": market.id,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            *_price_and_lot_filters(r),
            {
                "filterType": "NOTIONAL",
                "minNotional": _fmt(r.min_notional),
                "applyMinToMarket": True,
                "maxNotional": _fmt(r.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


def _price_and_lot_filters(r: Any) -> list[dict[str, Any]]:
    """The PRICE_FILTER and LOT_SIZE filters a spot and a swap market both carry."""
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": _fmt(r.min_price),
            "maxPrice": _fmt(r.max_price),
            "tickSize": _fmt(r.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": _fmt(r.min_qty),
            "maxQty": _fmt(r.max_qty),
            "stepSize": _fmt(r.step_size),
        },
    ]


def _swap_info(market: Market) -> dict[str, Any]:
    r = market.rules
    return {
        "symbol": market.id,
        "pair": market.id,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "baseAsset": market.base,
        "quoteAsset": market.quote,
        "marginAsset": market.quote,
        "pricePrecision": 8,
        "quantityPrecision": 8,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "filters": [
            *_price_and_lot_filters(r),
            {**_price_and_lot_filters(r)[1], "filterType": "MARKET_LOT_SIZE"},
            {"filterType": "MIN_NOTIONAL", "notional": _fmt(r.min_notional)},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def _kline(k: Kline) -> list[Any]:
    quote_volume = _round8(k.close * k.volume)
    zero = _fmt(Decimal(0))
    return [
        k.open_ms,
        _fmt(k.open),
        _fmt(k.high),
        _fmt(k.low),
        _fmt(k.close),
        _fmt(k.volume),
        k.close_ms,
        _fmt(quote_volume),
        0,
        zero,
        zero,
        "0",
    ]


def _order_head(o: Order) -> dict[str, Any]:
    return {
        "symbol": o.market_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
    }


def _order_body(o: Order) -> dict[str, Any]:
    return {
        "price": _fmt(o.price if o.price is not None else Decimal(0)),
        "origQty": _fmt(o.quantity),
        "executedQty": _fmt(o.executed_qty),
        "origQuoteOrderQty": _fmt(o.quote_order_qty),
        "cummulativeQuoteQty": _fmt(o.cumulative_quote_qty),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "workingTime": o.created_ms,
        "selfTradePreventionMode": "NONE",
    }


def _order_times(o: Order) -> dict[str, Any]:
    zero = _fmt(Decimal(0))
    return {
        "stopPrice": _fmt(o.stop_price) if o.stop_price is not None else zero,
        "icebergQty": zero,
        "time": o.created_ms,
        "updateTime": o.updated_ms,
        "isWorking": o.is_working,
    }


def _cancel_json(order: Order, cancel_id: str | None, now_ms: int) -> dict[str, Any]:
    # Binance's quirk, kept: clientOrderId is the cancel request's own id; the
    # order's id comes back as origClientOrderId.
    return {
        "symbol": order.market_id,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_id or f"cancel-{order.order_id}",
        "transactTime": now_ms,
        **_order_body(order),
    }


def _fill(t: Trade) -> dict[str, Any]:
    return {
        "price": _fmt(t.price),
        "qty": _fmt(t.qty),
        "commission": _fmt(t.commission),
        "commissionAsset": t.commission_asset,
        "tradeId": t.trade_id,
    }


def _trade_json(t: Trade) -> dict[str, Any]:
    return {
        "symbol": t.market_id,
        "id": t.trade_id,
        "orderId": t.order_id,
        "orderListId": -1,
        "price": _fmt(t.price),
        "qty": _fmt(t.qty),
        "quoteQty": _fmt(t.quote_qty),
        "commission": _fmt(t.commission),
        "commissionAsset": t.commission_asset,
        "time": t.time_ms,
        "isBuyer": t.side == "BUY",
        "isMaker": t.is_maker,
        "isBestMatch": True,
    }
