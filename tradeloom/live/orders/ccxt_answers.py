"""What a ccxt venue reads of an exchange's answers (text, numbers, fees, a trade's order
and liquidity), the request it makes of a venue order, and how reports join."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import ccxt

from tradeloom.plugins.protocols_orders.order_events import (
    VenueOrder,
    VenueReport,
)
from tradeloom.plugins.protocols_orders.order_terms import (
    OrderTerms,
    ccxt_arguments,
)


def _joined(first: VenueReport, second: VenueReport) -> VenueReport:
    return VenueReport(*(a + b for a, b in zip(_parts(first), _parts(second), strict=True)))


def _parts(report: VenueReport) -> tuple[tuple[Any, ...], ...]:
    return tuple(getattr(report, f.name) for f in fields(report))


def _ccxt_request(request: VenueOrder) -> tuple[str, dict[str, Any]]:
    # The request carries the prices as rounded to the market's precision.
    terms = OrderTerms(
        request.type,
        request.price if request.type == "limit" else None,
        request.trigger_price,
        request.post_only,
        request.time_in_force,
    )
    return ccxt_arguments(terms)


def _refuse_http_retries(client: ccxt.Exchange) -> None:
    session = getattr(client, "session", None)
    adapters = getattr(session, "adapters", None) or {}
    for prefix, adapter in adapters.items():
        retries = getattr(adapter, "max_retries", None)
        total = getattr(retries, "total", retries)
        counts = [total] + [getattr(retries, name, 0) for name in ("connect", "read", "other")]
        if any(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts):
            raise ValueError(
                f"the ccxt client's HTTP session retries requests to '{prefix}'; an order must "
                "never be resent: mount adapters with max_retries=0"
            )


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fee(fee: object) -> tuple[float, str | None]:
    if not isinstance(fee, Mapping):
        return 0.0, None
    cost = _number(fee.get("cost")) or 0.0
    currency = fee.get("currency")
    return cost, None if currency is None else str(currency)


def _trade_order(trade: Mapping[str, Any]) -> tuple[int, int, str]:
    trade_id = str(trade.get("id"))
    stamp = trade.get("timestamp")
    numeric = int(trade_id) if trade_id.isdigit() else 0
    return (int(stamp) if isinstance(stamp, int | float) else 0, numeric, trade_id)


def _liquidity(taker_or_maker: Any, request: VenueOrder) -> str:
    """Return a fill's liquidity: the trade's ``takerOrMaker``; where the exchange did not
    say (an order answer's fills often do not), what the order type makes certain (a
    market or triggered stop order takes, a post-only limit makes); else ''."""
    if taker_or_maker in ("taker", "maker"):
        return str(taker_or_maker)
    if request.type != "limit":
        return "taker"
    return "maker" if request.post_only else ""
