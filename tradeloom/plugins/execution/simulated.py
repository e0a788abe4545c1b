"""A simulated venue: market orders filled at the next bar's open (or this close).

Prices move against the order by ``slippage_bps``; a fee of ``fee_bps`` of the
filled notional is charged. Quantities are not rounded: the simulated venue has
no lot size.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tradeloom.domain import Bar, Fill, Order
from tradeloom.plugins.component import BuildContext, Params

__all__ = ["SimulatedVenue", "SimulatedVenueParams"]


class SimulatedVenueParams(Params):
    """Keys of ``execution`` with ``kind: simulated``."""

    initial_cash: float = Field(default=100_000.0, gt=0, description="Starting cash (quote).")
    fill: Literal["next_open", "close"] = Field(
        default="next_open",
        description="next_open: fill at the open of the bar after the decision; "
        "close: at the decision bar's close.",
    )
    slippage_bps: float = Field(default=0.0, ge=0, lt=10_000, description="Adverse slippage.")
    fee_bps: float = Field(default=0.0, ge=0, lt=10_000, description="Fee on filled notional.")
    allow_short: bool = Field(default=False, description="Long/short (true) or long-only.")


class SimulatedVenue:
    """Fill market orders against bars with slippage and fees."""

    def __init__(self, params: SimulatedVenueParams) -> None:
        self.initial_cash = params.initial_cash
        self.allow_short = params.allow_short
        self.fill_phase = "open" if params.fill == "next_open" else "close"
        self.slippage = params.slippage_bps / 10_000.0
        self.fee_rate = params.fee_bps / 10_000.0
        self._pending: list[Order] = []

    def submit(self, order: Order) -> None:
        """Queue an order; it fills at the configured phase."""
        self._pending.append(order)

    def pending(self) -> list[Order]:
        """Return the orders not filled yet."""
        return list(self._pending)

    def match(self, bar: Bar, phase: str) -> list[Fill]:
        """Fill the queued orders due at this bar's ``phase``."""
        if phase != self.fill_phase or not self._pending:
            return []
        price_now = bar.open if phase == "open" else bar.close
        fills = []
        kept = []
        for order in self._pending:
            due = order.bar < bar.index if phase == "open" else order.bar <= bar.index
            if not due:
                kept.append(order)
                continue
            quantity = order.quantity
            price = price_now * (1.0 + order.side * self.slippage)
            fills.append(
                Fill(
                    order_id=order.id,
                    bar=bar.index,
                    timestamp=bar.timestamp,
                    side=order.side,
                    quantity=quantity,
                    price=price,
                    fee=quantity * price * self.fee_rate,
                    slippage=quantity * abs(price - price_now),
                )
            )
        self._pending = kept
        return fills


def build(params: SimulatedVenueParams, ctx: BuildContext) -> SimulatedVenue:
    """Build the venue."""
    return SimulatedVenue(params)
