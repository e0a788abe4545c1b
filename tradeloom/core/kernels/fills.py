"""Filling an order at a bar: price, slippage, fees, the cash cut and the venue's minimum."""

from __future__ import annotations

from typing import NamedTuple

from tradeloom.kernels.jit import kernel
from tradeloom.runtime.lazy import numpy as np

__all__ = [
    "CUT_CASH",
    "CUT_MINIMUM",
    "CUT_NONE",
    "DONE_FRACTION",
    "FillTerms",
    "Offer",
    "fill_order",
]


DONE_FRACTION = 1e-9
"""An order whose unfilled rest is at most this share of its quantity is complete."""


CUT_NONE, CUT_CASH, CUT_MINIMUM = 0, 1, 2
"""Why `fill_order` filled less than it was asked: not cut, the cash, the minimum."""

_ROUNDING_STEPS = 4
"""Units in the last place a volume slice gives up so that its rest is the minimum's worth
(the subtraction rounds by half a unit; the product with the price by another)."""


class Offer(NamedTuple):
    """What a bar offers a fill at one moment: its price, its volume, the share one may take."""

    price: float  # the bar's price at this moment (open, close, or a stop's trigger)
    volume: float  # the bar's volume
    cap: float  # the share of ``volume`` a fill may take; <= 0 for no limit


class FillTerms(NamedTuple):
    """The venue's terms of a taker fill."""

    slippage: float  # adverse price move, as a fraction
    fee_rate: float  # fee as a fraction of the filled notional
    min_notional: float  # the venue's minimum order notional (quote)
    spot: bool  # whether buys are limited to the cash (no margin)


@kernel
def fill_order(
    side: int, remaining: float, offer: Offer, terms: FillTerms, cash: float
) -> tuple[float, float, float, float, int]:
    """Fill what can be filled of an order now.

    A spot buy is cut to what the cash affords, and with a volume cap any order to its
    share of the bar's volume (a slice that leaves at least the minimum notional's
    worth for later, or nothing). One rule then holds for every fill: one worth less
    than the minimum notional (what a cash residue of a shared account, 1e-12 dollars,
    buys; a thin bar's slice) fills nothing, as an exchange would refuse it, and no
    dust position is opened or left.

    Args:
        side: +1 buy, -1 sell.
        remaining: Quantity still to fill.
        offer: The bar's price now, its volume and the share of it the fill may take.
        terms: The venue's slippage, fee rate, minimum notional and whether it is spot.
        cash: The account's cash before the fill.

    Returns:
        ``(quantity, price, fee, slippage_cost, cut)``; quantity may be 0; ``cut`` is
        `CUT_CASH` when the cash cut the order, `CUT_MINIMUM` when what would fill
        is below the minimum notional (the order is refused), else `CUT_NONE`.
    """
    price_now, volume, cap = offer.price, offer.volume, offer.cap
    fee_rate, min_notional = terms.fee_rate, terms.min_notional
    price = price_now * (1.0 + side * terms.slippage)
    quantity = remaining
    if cap > 0.0 and cap * volume < remaining:
        # a slice of the bar's volume, leaving no rest below the minimum to fill later
        quantity = min(cap * volume, max(remaining - min_notional / price, 0.0))
        # remaining - quantity rounds: a rest the minimum's worth less a unit in the last
        # place would be refused when it fills; take a few such units more, or nothing
        step = np.spacing(remaining)
        for _ in range(_ROUNDING_STEPS):
            if quantity <= 0.0 or (remaining - quantity) * price >= min_notional:
                break
            quantity = max(quantity - step, 0.0)
        if (remaining - quantity) * price < min_notional:
            quantity = 0.0
    cut = CUT_NONE
    if terms.spot and side > 0:
        affordable = max(cash / (price * (1.0 + fee_rate)), 0.0)
        if quantity > affordable:
            quantity = affordable
            cut = CUT_CASH
    if quantity > 0.0 and quantity * price < min_notional:
        quantity = 0.0
        cut = CUT_MINIMUM
    fee = quantity * price * fee_rate
    return quantity, price, fee, quantity * abs(price - price_now), cut
