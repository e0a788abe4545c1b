"""What an order must satisfy before it is sent: the market's precision and limits.

Binance refuses a quantity off its lot step, a price off its tick, and an order
below its minimum notional, but only after the order has been journaled and
sent, and a refusal that could have been foreseen is one more journaled event
to reconcile. So the quantity is rounded here with ccxt's
``amount_to_precision`` (truncating: never more than decided) and a limit price
with ``price_to_precision``, and an order outside the market's limits is refused
with a `Rejection` whose code says which limit:

- ``VENUE_MIN_AMOUNT``: the rounded quantity is 0 or below the minimum amount;
- ``VENUE_MAX_AMOUNT``: above the maximum amount;
- ``VENUE_PRICE_RANGE``: a limit price outside the market's price range;
- ``VENUE_MIN_NOTIONAL``: quantity x price below the minimum cost (a market
  order is valued at its reference price, the decision bar's close, or at the
  last price when it has none; Binance itself uses a recent average price, so an
  order right at the minimum may still be refused by the venue).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import ccxt

from tradeloom.domain import Order, Rejection
from tradeloom.plugins.protocols_orders.order_events import VenueOrder
from tradeloom.plugins.protocols_orders.order_terms import OrderTerms

__all__ = ["prepare_order", "rejection"]


def prepare_order(
    client: ccxt.Exchange,
    market: Mapping[str, Any],
    order: Order,
    limit_price: float | None,
    last_price: Callable[[], float],
    terms: OrderTerms | None = None,
) -> tuple[VenueOrder, Rejection | None]:
    """Return the order as it would be sent, and why it must not be (None: send it).

    Args:
        client: The ccxt client, its markets loaded.
        market: ``client.market(symbol)``.
        order: The engine's order.
        limit_price: The limit price; None for a market order (or given in ``terms``).
        last_price: Returns the market's last price (read only when the order has no
            usable reference price).
        terms: The order's type, prices and flags (a stop's trigger price is rounded
            and checked against the price range as a limit price is). None: a market
            order, or a GTC limit order at ``limit_price``.

    Raises:
        ValueError: ``limit_price`` is not a positive finite number, or is given with
            ``terms``.
    """
    if terms is not None and limit_price is not None:
        raise ValueError(f"order {order.id}: give the limit price in terms, not both")
    if terms is None:
        terms = OrderTerms() if limit_price is None else _gtc_limit(order, limit_price)
    limit_price = terms.limit_price
    symbol = str(market["symbol"])
    side: Literal["buy", "sell"] = "buy" if order.side > 0 else "sell"
    limits = market.get("limits") or {}
    try:
        amount = float(client.amount_to_precision(symbol, order.quantity))
    except ccxt.InvalidOrder:  # rounds to nothing
        amount = 0.0
    price = None
    if limit_price is not None:
        if not limit_price > 0 or math.isinf(limit_price):
            raise ValueError(f"order {order.id}: limit price must be > 0, was {limit_price}")
        try:
            price = float(client.price_to_precision(symbol, limit_price))
        except ccxt.InvalidOrder:
            price = 0.0
    trigger = None
    if terms.trigger_price is not None:
        try:
            trigger = float(client.price_to_precision(symbol, terms.trigger_price))
        except ccxt.InvalidOrder:
            trigger = 0.0
    request = VenueOrder(
        order,
        symbol,
        terms.type,
        side,
        amount,
        price,
        trigger,
        terms.post_only,
        terms.time_in_force,
    )
    values = {"quantity": order.quantity, "rounded": amount}
    amount_min = _limit(limits, "amount", "min")
    if amount <= 0 or (amount_min is not None and amount < amount_min):
        minimum = amount_min if amount_min is not None else 0.0
        return request, rejection(
            order,
            "VENUE_MIN_AMOUNT",
            f"quantity={order.quantity:g} rounds to {amount:g}, "
            f"below the market's minimum {minimum:g}",
            {**values, "minimum": minimum},
        )
    amount_max = _limit(limits, "amount", "max")
    if amount_max is not None and amount > amount_max:
        return request, rejection(
            order,
            "VENUE_MAX_AMOUNT",
            f"quantity={amount:g} above the market's maximum {amount_max:g}",
            {**values, "maximum": amount_max},
        )
    for label, level in (("limit price", price), ("trigger price", trigger)):
        if level is None:
            continue
        low, high = _limit(limits, "price", "min"), _limit(limits, "price", "max")
        if level <= 0 or (low is not None and level < low) or (high is not None and level > high):
            return request, rejection(
                order,
                "VENUE_PRICE_RANGE",
                f"{label}={level:g} outside the market's range "
                f"[{low or 0.0:g}, {high or math.inf:g}]",
                {**values, "price": level},
            )
    notional_min = _limit(limits, "cost", "min")
    if notional_min is not None:
        reference = price if price is not None else trigger
        if reference is None:
            reference = order.reference_price
        if not reference > 0 or math.isinf(reference):
            reference = last_price()
        notional = amount * reference
        if notional < notional_min:
            return request, rejection(
                order,
                "VENUE_MIN_NOTIONAL",
                f"notional={notional:g} below the market's minimum {notional_min:g}",
                {**values, "notional": notional, "minimum": notional_min},
            )
    return request, None


def rejection(order: Order, code: str, message: str, values: Mapping[str, float]) -> Rejection:
    """Return the rejection of ``order``, stamped with its decision bar."""
    return Rejection(order.bar, order.timestamp, code, message, dict(values))


def _gtc_limit(order: Order, limit_price: float) -> OrderTerms:
    if not limit_price > 0 or math.isinf(limit_price):
        raise ValueError(f"order {order.id}: limit price must be > 0, was {limit_price}")
    return OrderTerms("limit", limit_price)


def _limit(limits: Mapping[str, Any], kind: str, bound: str) -> float | None:
    value = (limits.get(kind) or {}).get(bound)
    return None if value is None else float(value)
