"""How one live order goes to the exchange: its type, prices and flags, in ccxt's terms.

The strategy file's ``execution.orders`` (`tradeloom.plugins.protocols_orders.order_params`)
says which orders a strategy sends; `OrderTerms` is one such order as the live venue
sends it, and `ccxt_arguments` turns it into ``create_order``'s ``type``, ``price``
and ``params`` with ccxt's unified parameters:

- ``limit``: ``price``; ``postOnly: True`` for a post-only order (ccxt makes it
  Binance's ``LIMIT_MAKER``, which takes no time in force), otherwise
  ``timeInForce`` (``GTC``, ``IOC``, ``FOK``);
- ``stop_loss``: a market order with ``stopLossPrice`` (Binance spot:
  ``STOP_LOSS`` with ``stopPrice``), resting at the exchange until the price
  reaches the trigger;
- ``take_profit``: a market order with ``takeProfitPrice`` (Binance spot:
  ``TAKE_PROFIT``).

`unsupported_reason` says, before anything is sent, why an exchange cannot take a
stop: ccxt's ``has`` for the exchange, or the market's own list of order types
(Binance's ``exchangeInfo`` ``orderTypes``). A stop it cannot take falls back to the
bar-close market exit (`tradeloom.live.orders.exchange_stops`), journaled with
that reason; it is never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "STOP_TYPES",
    "OrderTerms",
    "OrderTypeName",
    "TimeInForce",
    "ccxt_arguments",
    "unsupported_reason",
]

OrderTypeName = Literal["market", "limit", "stop_loss", "take_profit"]
TimeInForce = Literal["GTC", "IOC", "FOK"]

STOP_TYPES: frozenset[str] = frozenset({"stop_loss", "take_profit"})
"""The order types that rest at the exchange until a trigger price is reached."""

_HAS: Mapping[str, str] = {
    "stop_loss": "createStopLossOrder",
    "take_profit": "createTakeProfitOrder",
}
_TRIGGER_PARAM: Mapping[str, str] = {
    "stop_loss": "stopLossPrice",
    "take_profit": "takeProfitPrice",
}
# The market's order type a stop becomes at Binance spot (ccxt's createOrderRequest).
_MARKET_TYPE: Mapping[str, str] = {"stop_loss": "STOP_LOSS", "take_profit": "TAKE_PROFIT"}


@dataclass(frozen=True)
class OrderTerms:
    """One order's type and prices, as the exchange is asked for it.

    Attributes:
        type: ``market``, ``limit``, ``stop_loss`` or ``take_profit``.
        limit_price: A limit order's price (None for the others).
        trigger_price: A stop's trigger price (None for the others).
        post_only: A limit order refused by the exchange if it would take on arrival.
        time_in_force: A limit order's ``GTC``, ``IOC`` or ``FOK``.

    Raises:
        ValueError: A price missing, not positive, or given to a type that has none;
            ``post_only`` with a time in force other than GTC or on a non-limit order.
    """

    type: OrderTypeName = "market"
    limit_price: float | None = None
    trigger_price: float | None = None
    post_only: bool = False
    time_in_force: TimeInForce = "GTC"

    def __post_init__(self) -> None:
        wants_limit = self.type == "limit"
        wants_trigger = self.type in STOP_TYPES
        _check_price("limit_price", self.limit_price, self.type, wanted=wants_limit)
        _check_price("trigger_price", self.trigger_price, self.type, wanted=wants_trigger)
        if self.post_only and not wants_limit:
            raise ValueError(f"post_only is a limit order's, not a {self.type} order's")
        if self.post_only and self.time_in_force != "GTC":
            raise ValueError(f"post_only needs time_in_force GTC, was {self.time_in_force}")
        if not wants_limit and self.time_in_force != "GTC":
            raise ValueError(f"time_in_force is a limit order's, not a {self.type} order's")

    @property
    def is_stop(self) -> bool:
        """Whether the order rests at the exchange until its trigger price is reached."""
        return self.type in STOP_TYPES


def ccxt_arguments(terms: OrderTerms) -> tuple[str, dict[str, Any]]:
    """Return ``create_order``'s ``type`` and the unified ``params`` of ``terms``.

    The limit price goes in ``create_order``'s ``price`` (the caller rounds it to the
    market's tick first); the trigger price here is as given, and is rounded by the
    caller too.
    """
    if terms.type == "market":
        return "market", {}
    if terms.type == "limit":
        if terms.post_only:
            return "limit", {"postOnly": True}
        return "limit", {"timeInForce": terms.time_in_force}
    assert terms.trigger_price is not None  # checked at construction
    return "market", {_TRIGGER_PARAM[terms.type]: terms.trigger_price}


def unsupported_reason(
    has: Mapping[str, Any], exchange: str, market: Mapping[str, Any], terms: OrderTerms
) -> str | None:
    """Return why ``exchange`` cannot take ``terms`` as a resting stop; None if it can.

    Args:
        has: The ccxt client's ``has`` capabilities.
        exchange: The exchange's ccxt id (for the message).
        market: ``client.market(symbol)``; its ``info.orderTypes`` is read where the
            exchange lists them (Binance).
        terms: The order.
    """
    if not terms.is_stop:
        return None
    capability = _HAS[terms.type]
    if not has.get(capability):
        return f"ccxt's {exchange} has no {capability}"
    info = market.get("info")
    listed = info.get("orderTypes") if isinstance(info, Mapping) else None
    wanted = _MARKET_TYPE[terms.type]
    if isinstance(listed, list | tuple) and wanted not in listed:
        shown = ", ".join(str(t) for t in listed)
        return f"{exchange} {market.get('symbol')} takes order types [{shown}], not {wanted}"
    return None


def _check_price(name: str, value: float | None, kind: str, *, wanted: bool) -> None:
    if not wanted:
        if value is not None:
            raise ValueError(f"a {kind} order has no {name}, was {value}")
        return
    if value is None or not value > 0 or math.isinf(value):
        raise ValueError(f"a {kind} order needs {name} > 0, was {value}")
