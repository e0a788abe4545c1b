"""The live venue's events in the run's journal: intents made durable before sending.

`JournalOrders` is the `OrderJournal` a `CcxtVenue` writes through. Its rows are
what a restart reads (`tradeloom.runner.live.restore`):

- ``order_sent``: the intent, the order as it will be sent (rounded), written and
  committed (fsync'd, the journal runs ``synchronous=FULL``) before the request
  leaves: an order the venue may have received is always in the journal;
- ``order_state``: every state change (submitted, accepted, unknown, filled...);
- ``venue_fill``: every trade counted, with the venue's trade id (the key that
  makes a fill count once, across restarts too) and the fee as charged;
- ``fill_refused``: a trade or status that would overfill an order, not counted.

The rows after ``order_sent`` are committed with the bar's other rows: a crash
loses at most what the venue can tell again (a restart looks the order up by its
client order id and counts its trades by id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from tradeloom.plugins.execution.order_events import RefusedFill, TradeFill, VenueEvent, VenueOrder
from tradeloom.plugins.execution.order_state import Transition
from tradeloom.runner.journal import Journal

__all__ = ["JournalOrders", "sent_row"]


def sent_row(order: VenueOrder, sent_at: float) -> dict[str, Any]:
    """Return the ``order_sent`` payload of ``order`` (what `restore` reads back)."""
    return {
        "client_id": order.client_id,
        "symbol": order.symbol,
        "type": order.type,
        "side": order.side,
        "amount": order.amount,
        "price": order.price,
        "sent_at": sent_at,
        "order": asdict(order.order),
    }


class JournalOrders:
    """Write a venue's intents and events to ``journal``.

    Args:
        journal: The run's journal.
        bar_clock: The bar in progress (its index), stamped on each row.
        clock: Seconds since the epoch, recorded as the intent's send time.
    """

    def __init__(
        self,
        journal: Journal,
        bar_clock: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self._bar_clock = bar_clock
        self._clock = clock

    def before_send(self, order: VenueOrder) -> None:
        """Journal the intent and commit it; nothing is sent before this returns."""
        self.journal.append(
            "order_sent",
            sent_row(order, self._clock()),
            bar=order.order.bar,
            timestamp=order.order.timestamp,
            correlation_id=f"bar-{order.order.bar}",
        )
        self.journal.flush()

    def record(self, event: VenueEvent) -> None:
        """Journal a state change, a counted trade or a refused fill."""
        bar = self._bar_clock()
        if isinstance(event, Transition):
            payload: dict[str, Any] = {
                "client_id": event.client_id,
                "previous": str(event.previous),
                "state": str(event.state),
                "reason": event.reason,
                "filled": event.filled,
            }
            if event.rejection is not None:
                payload["code"] = event.rejection.code
                payload["message"] = event.rejection.message
            self.journal.append("order_state", payload, bar=bar)
        elif isinstance(event, TradeFill):
            fill = event.fill
            self.journal.append(
                "venue_fill",
                {
                    "trade_id": event.trade_id,
                    "venue_order_id": event.venue_order_id,
                    "fee_cost": event.fee_cost,
                    "fee_currency": event.fee_currency,
                    **asdict(fill),
                },
                bar=bar,
                timestamp=fill.timestamp,
            )
        elif isinstance(event, RefusedFill):
            self.journal.append("fill_refused", asdict(event), bar=bar)
        else:  # pragma: no cover - the venue emits nothing else
            raise TypeError(f"not a venue event: {event!r}")
