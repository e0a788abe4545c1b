"""What a live venue journals and reports: sent orders, counted trades, refused fills.

`OrderJournal` is the contract between the venue and whatever makes its events
durable. The venue calls `OrderJournal.before_send` with an order and sends
nothing until it returns: an intent that reached the venue is always in the
journal, so a restart can look it up by its client order id instead of guessing.
Every state change, counted trade and refused fill then goes to
`OrderJournal.record` before the venue's caller hears of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from tradeloom.domain import Cancellation, Fill, Order, Rejection
from tradeloom.plugins.protocols_orders.order_state import OrderState, Transition

__all__ = [
    "OrderJournal",
    "OrderView",
    "RefusedFill",
    "StopBinding",
    "StopFallback",
    "TradeFill",
    "VenueEvent",
    "VenueOrder",
    "VenueReport",
]


@dataclass(frozen=True)
class VenueOrder:
    """An order as it is sent: the engine's decision, rounded to the market's precision.

    Attributes:
        order: The engine's order; ``order.id`` is the client order id.
        symbol: Unified market symbol (``BTC/USDT``).
        type: ``market``, ``limit``, or a stop resting at the exchange: ``stop_loss``,
            ``take_profit`` (`tradeloom.plugins.protocols_orders.order_terms`).
        side: ``buy`` or ``sell``.
        amount: Base quantity after ``amount_to_precision`` (0 when it rounds away).
        price: Limit price after ``price_to_precision``; None for a market order.
        trigger_price: A stop's trigger price after ``price_to_precision``; None for
            the other types.
        post_only: A limit order the exchange must refuse rather than fill as a taker.
        time_in_force: A limit order's ``GTC``, ``IOC`` or ``FOK``.
    """

    order: Order
    symbol: str
    type: Literal["market", "limit", "stop_loss", "take_profit"]
    side: Literal["buy", "sell"]
    amount: float
    price: float | None
    trigger_price: float | None = None
    post_only: bool = False
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"

    @property
    def client_id(self) -> str:
        """The client order id the venue knows the order by."""
        return self.order.id


@dataclass(frozen=True)
class TradeFill:
    """A venue trade counted against one of our orders.

    Attributes:
        trade_id: The venue's trade id (the key of de-duplication).
        venue_order_id: The venue's id of the order it filled.
        fill: The fill in the engine's terms: quantity and price as traded, the fee
            in quote currency, no slippage (the venue charges none separately; the
            distance from the order's reference price is the shortfall).
        fee_cost: The fee as the venue charged it.
        fee_currency: Its currency (base for a Binance buy, quote for a sell). A fee
            in a third currency (BNB) is not converted: ``fill.fee`` is 0 then.
    """

    trade_id: str
    venue_order_id: str | None
    fill: Fill
    fee_cost: float
    fee_currency: str | None


@dataclass(frozen=True)
class RefusedFill:
    """A trade (or a venue status) that was not counted because it was impossible.

    Attributes:
        client_id: The order it named.
        trade_id: The trade; None when an order status claimed the impossible fill.
        quantity: The quantity it would have added.
        message: Why it was refused (``OVERFILL: ...``).
    """

    client_id: str
    trade_id: str | None
    quantity: float
    message: str


@dataclass(frozen=True)
class StopFallback:
    """A stop the exchange did not take: the bar-close market exit guards instead.

    Attributes:
        client_id: The stop order's client order id (never working at the venue).
        type: ``stop_loss`` or ``take_profit``.
        trigger_price: The level the bar-close exit now watches.
        code: ``STOP_UNSUPPORTED`` (refused before sending) or the rejection's code.
        reason: Why, as the check or the exchange said it.
    """

    client_id: str
    type: str
    trigger_price: float
    code: str
    reason: str


@dataclass(frozen=True)
class StopBinding:
    """A stop resting at the exchange whose fills are booked as one of the engine's exits.

    Attributes:
        client_id: The resting stop's client order id.
        order_id: The engine's exit order.
        state: The resting stop's state when it was bound.
    """

    client_id: str
    order_id: str
    state: str


VenueEvent = Transition | TradeFill | RefusedFill | StopFallback | StopBinding
"""What the venue hands to `OrderJournal.record`."""


class OrderJournal(Protocol):
    """Where the venue makes its orders durable (the live runner plugs its journal in)."""

    def before_send(self, order: VenueOrder) -> None:
        """Record the intent to send ``order``; return only once it is durable.

        Nothing is sent before this returns, and nothing is sent if it raises.
        """
        ...

    def record(self, event: VenueEvent) -> None:
        """Record a state change, a counted trade or a refused fill, in the order they happen."""
        ...


@dataclass(frozen=True)
class OrderView:
    """One order as the venue tracks it, at one moment.

    Attributes:
        request: The order as sent (or as refused before sending).
        state: Where it is in its life.
        venue_id: The venue's order id, once known.
        quantity: The quantity tracked (``request.amount``, or the order's own
            quantity for an order refused before sending).
        filled: The quantity of its counted trades.
        trade_ids: Its counted trades.
        venue_filled: The largest filled quantity the venue reported in a status of it
            (above ``filled`` while its trades are still to be counted: a read of them
            failed).
    """

    request: VenueOrder
    state: OrderState
    venue_id: str | None
    quantity: float
    filled: float
    trade_ids: frozenset[str]
    venue_filled: float = 0.0

    @property
    def client_id(self) -> str:
        """The client order id."""
        return self.request.client_id


@dataclass(frozen=True)
class VenueReport:
    """What one venue call (submit, poll, resolve, cancel) found, already journaled.

    Attributes:
        transitions: State changes, in order.
        fills: Trades counted, in order.
        cancellations: Orders the venue stopped working (``remaining``: the quantity
            it will never fill).
        rejections: Orders refused: before sending, by the venue, or never arrived.
        duplicates: Trade ids reported again and ignored.
        refused: Impossible fills, not counted (an overfill, a fill of a rejected
            order): the venue and the journal disagree, and a human should look.
        unresolved: Client ids still unknown after a lookup (the venue does not
            have the order yet, but the request may still arrive).
        stop_fallbacks: Stops the exchange did not take; the caller exits at the bar
            close at their level instead.
    """

    transitions: tuple[Transition, ...] = ()
    fills: tuple[TradeFill, ...] = ()
    cancellations: tuple[Cancellation, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    duplicates: tuple[str, ...] = ()
    refused: tuple[RefusedFill, ...] = ()
    unresolved: tuple[str, ...] = ()
    stop_fallbacks: tuple[StopFallback, ...] = ()
