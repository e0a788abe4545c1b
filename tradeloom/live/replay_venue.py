"""The live venue as a run's journal saw it, for replaying that run after a restart.

A restarted live run rebuilds its engine (portfolio, signal and risk state,
monitors, the client-id counter) by running its journaled bars through a new
engine. Orders cannot be sent again, so this venue stands in for the exchange:
at each bar's ``open`` it reports what the live venue reported then (the
``venue_delivered`` count of the journal's fills and cancellations at that
bar), and a cancel returns the cancellation the journal has for it. An order
stays pending, as it did live, until its cancellation has been reported, or, for
an order the journal shows filled, its last counted fill; what is still pending
at the end of the replay is what the restart must resolve with the exchange.
"""

from __future__ import annotations

from collections.abc import Iterable

from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.live.journal_state import JournalState

__all__ = ["ReplayVenue"]


class ReplayVenue:
    """Report the journal's fills and cancellations back to a replaying engine.

    Args:
        state: The journal, read.
        initial_cash: The capital the run started with.
        fee_rate: The rate the live venue sized buys with.
        dust: The live venue's smallest tradable amount.
        dusts: Over a universe, each market's (in the universe's order); empty: one
            market's ``dust``.
        min_notional: The live venue's minimum order cost (0: none), which the core
            held the run's orders to: the replay refuses what the run refused.
        min_costs: Over a universe, each market's minimum order cost (as ``dusts``).
        allow_short: Whether the live venue shorts (a perpetual swap's market).
    """

    def __init__(
        self,
        state: JournalState,
        *,
        initial_cash: float,
        fee_rate: float,
        dust: float,
        dusts: tuple[float, ...] = (),
        min_notional: float = 0.0,
        min_costs: tuple[float, ...] = (),
        allow_short: bool = False,
    ) -> None:
        self.state = state
        self.allow_short = allow_short
        self.min_notional = min_notional
        self.min_costs = min_costs
        self.initial_cash = initial_cash
        self.fee_rate = fee_rate
        self.dust = dust
        self.dusts = dusts
        self._orders: dict[str, Order] = {}
        self._reported: dict[str, int] = {}
        self._consumed: set[tuple[int, int]] = set()
        self._done: set[str] = set()
        self._calls: dict[tuple[int, str], int] = {}

    def quantity_for(self, notional: float, price: float) -> float:
        """Size as the live venue did."""
        return notional / (price * (1.0 + self.fee_rate))

    def submit(self, order: Order) -> None:
        """Take the order as pending (it was sent back then)."""
        self._orders[order.id] = order

    def pending(self) -> list[Order]:
        """Return the orders pending at this point of the replay."""
        return list(self._orders.values())

    def adopt_journaled(self, through: int) -> None:
        """Take as pending the journal's orders decided by bar ``through``, not settled.

        After a hot reload the replay (under the settings of the file now) may not
        decide an order the run did; the venue had it all the same.
        """
        for order_id, order in self.state.orders.items():
            if order.bar <= through and order_id not in self._done:
                self._orders.setdefault(order_id, order)

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Report what the live venue reported at this phase of this bar."""
        if phase == "open":
            self.adopt_journaled(bar.index - 1)
        # the reports of this phase of this bar, in order (a universe's stops: several)
        reports = self.state.deliveries.get((bar.index, phase), [])
        nth = self._calls.get((bar.index, phase), 0)
        self._calls[(bar.index, phase)] = nth + 1
        count = reports[nth] if nth < len(reports) else 0
        if count == 0:
            return []
        rows = self.state.events.get(bar.index, [])
        fresh = [i for i in range(len(rows)) if (bar.index, i) not in self._consumed]
        taken = fresh[:count]
        self._consumed.update((bar.index, i) for i in taken)
        events = [rows[i] for i in taken]
        self._settle(events)
        return events

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Return the cancellation the journal has for this cancel, if it took effect.

        Whatever its reason: the cancel may have found the order finished another way
        meanwhile (``REJECTED ORDER_NEVER_ARRIVED`` for a ``REPLACED``), and the
        engine journaled what the venue returned.
        """
        for i, event in enumerate(self.state.events.get(bar.index, [])):
            if (
                (bar.index, i) not in self._consumed
                and isinstance(event, Cancellation)
                and event.order_id == order_id
            ):
                self._consumed.add((bar.index, i))
                self._orders.pop(order_id, None)
                self._done.add(order_id)
                return event
        return None

    def _settle(self, events: Iterable[Fill | Cancellation]) -> None:
        for event in events:
            order_id = event.order_id
            if isinstance(event, Cancellation):
                self._orders.pop(order_id, None)
                self._done.add(order_id)
                continue
            self._reported[order_id] = self._reported.get(order_id, 0) + 1
            # an exit booked to a stop resting at the exchange: the stop's fills are its
            sent = self.state.bound.get(order_id, order_id)
            counted = len(self.state.venue_fills.get(sent, ()))
            # Only a filled order ends with its fills: one cancelled later was still
            # working when they were reported (its fills at a bar's open, the cancel at
            # that bar's close), so it ends with its cancellation.
            filled = self.state.order_states.get(sent) == "filled"
            if filled and self._reported[order_id] >= counted:
                self._orders.pop(order_id, None)
                self._done.add(order_id)
