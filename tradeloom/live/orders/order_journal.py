"""The live venue's events in the run's journal: intents made durable before sending.

`JournalOrders` is the `OrderJournal` a `CcxtVenue` writes through. Its rows are
what a restart reads (`tradeloom.live.recovery.restart`):

- ``order_sent``: the intent, the order as it will be sent (rounded), written and
  committed (fsync'd, the journal runs ``synchronous=FULL``) before the request
  leaves: an order the venue may have received is always in the journal;
- ``order_state``: every state change (submitted, accepted, unknown, filled...);
- ``venue_fill``: every trade counted, with the venue's trade id (the key that
  makes a fill count once, across restarts too) and the fee as charged;
- ``fill_refused``: a trade or status that would overfill an order, not counted;
- ``stop_fallback``: a stop the exchange did not take, and why: the bar-close
  market exit guards its level instead;
- ``stop_bound``: a stop resting at the exchange whose fills are booked as one of
  the engine's exits (`tradeloom.live.orders.exchange_stops`).

The rows after ``order_sent`` are committed with the bar's other rows: a crash
loses at most what the venue can tell again (a restart looks the order up by its
client order id and counts its trades by id).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import fields as fields_of
from typing import Any

from tradeloom.domain import Order
from tradeloom.journal import (
    Event,
    FillRefused,
    JournalStore,
    OrderSent,
    OrderStateChanged,
    StopBound,
    StopFellBack,
    VenueFill,
)
from tradeloom.journal.events.base import NO_TIME
from tradeloom.live.orders.sent_mark import SentMark
from tradeloom.plugins.protocols_orders.order_events import (
    RefusedFill,
    StopBinding,
    StopFallback,
    TradeFill,
    VenueEvent,
    VenueOrder,
)
from tradeloom.plugins.protocols_orders.order_state import Transition

__all__ = ["JournalOrders", "sent_row"]

# The row's limit_price is the one sent (rounded to the tick), not the engine's.
_ORDER_FIELDS = tuple(name for name in Order.__dataclass_fields__ if name != "limit_price")
_FILL_FIELDS = ("order_id", "bar", "timestamp", "side", "quantity", "price", "fee", "slippage")
# The venue events journaled field by field, with the bar and the venue's symbol added
# (a stop's ``type`` is its row's ``order_type``).
_AS_ROWS: dict[type[Any], type[Event]] = {
    RefusedFill: FillRefused,
    StopFallback: StopFellBack,
    StopBinding: StopBound,
}
_ROW_NAMES = {"type": "order_type"}


def sent_row(order: VenueOrder, sent_at: float) -> OrderSent:
    """Return the ``order_sent`` event of ``order`` (what a restart reads back)."""
    engine = order.order
    return OrderSent(
        **{name: getattr(engine, name) for name in _ORDER_FIELDS},
        symbol=order.symbol,
        correlation_id=engine.bar,
        order_type=order.type,
        amount=order.amount,
        limit_price=math.nan if order.price is None else order.price,
        sent_at=sent_at,
        trigger_price=math.nan if order.trigger_price is None else order.trigger_price,
        post_only=order.post_only,
        time_in_force=order.time_in_force,
    )


class JournalOrders:
    """Write a venue's intents and events to ``journal``.

    Args:
        journal: The run's journal.
        bar_clock: The bar in progress (its index), stamped on each row.
        clock: Seconds since the epoch, recorded as the intent's send time.
        symbol: The venue's market, stamped on its orders' rows.
        mark: The run's sent-id mark, advanced after the commit (None: none kept).
    """

    def __init__(
        self,
        journal: JournalStore,
        bar_clock: Callable[[], int],
        clock: Callable[[], float] = time.time,
        symbol: str = "",
        mark: SentMark | None = None,
    ) -> None:
        self.journal = journal
        self._bar_clock = bar_clock
        self._clock = clock
        self.symbol = symbol
        self.mark = mark
        self._intended: list[tuple[str, float, int]] = []

    def before_send(self, order: VenueOrder) -> None:
        """Journal the intent, commit it, advance the sent-id mark; then it may be sent."""
        sent_at = self._clock()
        self.journal.append(sent_row(order, sent_at))
        self.journal.flush()
        if self.mark is not None:
            self.mark.advance(order.client_id, at=sent_at, bar=order.order.bar)

    def intend(self, order: VenueOrder) -> None:
        """Journal the intent of an order of a batch, not committed yet: `commit_intents`
        commits every one of the batch before its request leaves (one commit, not one
        per child; a kill before it loses them, and nothing was sent)."""
        sent_at = self._clock()
        self.journal.append(sent_row(order, sent_at))
        self._intended.append((order.client_id, sent_at, order.order.bar))

    def commit_intents(self) -> None:
        """Commit the intents `intend` journaled, advance the sent-id mark past them."""
        if not self._intended:
            return
        self.journal.flush()
        intended, self._intended = self._intended, []
        if self.mark is not None:
            for client_id, sent_at, bar in intended:
                self.mark.advance(client_id, at=sent_at, bar=bar)

    def record(self, event: VenueEvent) -> None:
        """Journal a state change, a counted trade or a refused fill."""
        bar = self._bar_clock()
        if isinstance(event, Transition):
            rejection = event.rejection
            self.journal.append(
                OrderStateChanged(
                    bar=bar,
                    timestamp=NO_TIME,
                    symbol=self.symbol,
                    client_id=event.client_id,
                    previous=event.journaled_from or str(event.previous),
                    state=str(event.state),
                    reason=event.reason,
                    filled=event.filled,
                    code="" if rejection is None else rejection.code,
                    message="" if rejection is None else rejection.message,
                )
            )
        elif isinstance(event, TradeFill):
            fill = event.fill
            self.journal.append(
                VenueFill(
                    **{name: getattr(fill, name) for name in _FILL_FIELDS},
                    symbol=self.symbol,
                    trade_id=event.trade_id,
                    venue_order_id=event.venue_order_id,
                    fee_cost=event.fee_cost,
                    fee_currency=event.fee_currency,
                )
            )
        elif (kind := _AS_ROWS.get(type(event))) is not None:
            fields = {
                _ROW_NAMES.get(f.name, f.name): getattr(event, f.name) for f in fields_of(event)
            }
            self.journal.append(kind(bar=bar, symbol=self.symbol, **fields))
        else:  # pragma: no cover - the venue emits nothing else
            raise TypeError(f"not a venue event: {event!r}")
