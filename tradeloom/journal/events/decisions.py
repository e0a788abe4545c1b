"""The engine's decisions: signals, risk, orders and fills, cancellations, halts,
liquidations, funding, sliced orders and regimes.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tradeloom.domain import (
    Cancellation,
    Fill,
    Halt,
    Order,
    Rejection,
    Signal,
)
from tradeloom.journal.events.base import Event, kind

_NAN = math.nan

__all__ = [
    "FillEvent",
    "FundingPayment",
    "HaltEvent",
    "Liquidation",
    "OrderCancelled",
    "OrderEvent",
    "OrderExpired",
    "RegimeChanged",
    "RejectionEvent",
    "RiskDecision",
    "SignalEvent",
    "SlicedOrder",
]


@kind("signal", read_by=("replayed", "status"))
@dataclass(frozen=True, kw_only=True)
class SignalEvent(Signal, Event):
    """A signal (`tradeloom.domain.Signal`)."""


@kind("risk_decision", read_by=("replayed",))
@dataclass(frozen=True, kw_only=True)
class RiskDecision(Event):
    """What the risk layer did with a signal, when it did not reject it.

    Attributes:
        outcome: ``accepted``, ``hold`` (already positioned), ``ignored`` (an exit
            of the bar closes the position) or ``filtered`` (a regime the signal
            does not trade).
        reason: ``ENTRY`` or ``REVERSE`` when accepted; otherwise why, in words.
        target_fraction: The signed fraction of equity to hold (NaN unless accepted).
        trend: The bar's trend regime (filtered only).
        volatility: The bar's volatility regime (filtered only).
    """

    outcome: str
    reason: str
    target_fraction: float = _NAN
    trend: str = ""
    volatility: str = ""


@kind("rejection", read_by=("replayed", "status"))
@dataclass(frozen=True, kw_only=True)
class RejectionEvent(Rejection, Event):
    """A risk rejection with its reason code and values (`tradeloom.domain.Rejection`)."""


@kind("order", table="orders", read_by=("restart", "replayed", "status", "metrics"))
@dataclass(frozen=True, kw_only=True)
class OrderEvent(Order, Event):
    """An order, journaled before the venue receives it (`tradeloom.domain.Order`)."""


@kind("fill", read_by=("restart", "replayed", "status", "metrics"))
@dataclass(frozen=True, kw_only=True)
class FillEvent(Fill, Event):
    """A fill (`tradeloom.domain.Fill`); its correlation id is its order's decision bar."""


@kind("order_cancelled", read_by=("restart", "replayed", "status", "metrics"))
@dataclass(frozen=True, kw_only=True)
class OrderCancelled(Cancellation, Event):
    """The venue stopped working an order (`tradeloom.domain.Cancellation`)."""


@kind("order_expired", read_by=("status", "metrics"))
@dataclass(frozen=True, kw_only=True)
class OrderExpired(Event):
    """An order still working when the data ended."""

    order_id: str
    reason: str


@kind("halt", read_by=("replayed", "status", "status_error", "timeline"))
@dataclass(frozen=True, kw_only=True)
class HaltEvent(Halt, Event):
    """Trading halted (`tradeloom.domain.Halt`)."""


@kind("liquidation", read_by=("alert", "metrics"))
@dataclass(frozen=True, kw_only=True)
class Liquidation(Event):
    """A position closed by the venue because equity fell below the maintenance margin.

    Attributes:
        quantity: The quantity closed.
        side: The side of the closing trade (+1 buy, -1 sell).
        price: The liquidation price.
        fee: The liquidation fee, in quote currency.
        equity_before: Equity just before the liquidation.
        maintenance: The maintenance margin required at that moment.
    """

    quantity: float
    side: int
    price: float
    fee: float
    equity_before: float
    maintenance: float


@kind("funding", read_by=("status",))
@dataclass(frozen=True, kw_only=True)
class FundingPayment(Event):
    """A perpetual's funding, booked at the bar whose interval holds the funding time.

    ``amount = -position x price x rate``: a long pays and a short receives when the
    rate is positive (`tradeloom.core.funding`).

    Attributes:
        rate: The funding rate (the sum of the bar's funding times' rates).
        price: The price it is applied at: the bar's open.
        position: The signed position it is applied to: the one carried into the bar.
        amount: The cash it moved, in quote currency (+ received, - paid).
        cash: The account's cash after it.
    """

    rate: float
    price: float
    position: float
    amount: float
    cash: float


@kind("sliced_order", read_by=("metrics",))
@dataclass(frozen=True, kw_only=True)
class SlicedOrder(Event):
    """An order sent as child orders (``execution.orders.slicing``): the parent.

    Its children are orders whose ``parent_id`` is this ``id``; their quantities sum
    to this ``quantity``, less what was left unfilled when the parent ended.

    Attributes:
        id: The parent's id (numbered as an order is; no venue sees it).
        side: +1 buy, -1 sell.
        quantity: The parent's quantity.
        reason: Why the engine sent it (``ENTRY``, ``REVERSE``, ``EXIT_SIGNAL``).
        reference_price: The price it was sized at (the decision bar's close).
        slicing: ``twap`` or ``participation``.
        children: ``twap``: the number of children (0: participation).
        max_volume_fraction: ``participation``: a child's most, as a share of the
            volume of the bar it is sent at (NaN: twap).
    """

    id: str
    side: int
    quantity: float
    reason: str
    reference_price: float
    slicing: str
    children: int
    max_volume_fraction: float


@kind("regime_changed", read_by=("replayed",))
@dataclass(frozen=True, kw_only=True)
class RegimeChanged(Event):
    """The bar's regime differs from the previous bar's."""

    trend: str
    volatility: str
    previous_trend: str
    previous_volatility: str
