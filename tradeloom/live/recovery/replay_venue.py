"""The live venue as a run's journal saw it, for replaying that run after a restart.

A restarted live run rebuilds its engine (portfolio, signal and risk state,
monitors, the client-id counter) by running its journaled bars through a new
engine. Orders cannot be sent again, so this venue stands in for the exchange:
each time the engine asks it about a phase of a bar it reports what the live venue
reported at that ask (``venue_reported``: how many of the journal's fills and
cancellations at that bar, taken in the journal's order), and a cancel returns
the cancellation the journal has next, if it took effect. An order stays pending,
as it did live, until the report that the live venue ended it (or its
cancellation by a cancel): a fact the journal holds, never inferred (a journal
written before ``venue_reported`` infers it from fills and states). What is still
pending at the end of the replay is what the restart must resolve with the exchange.
"""

from __future__ import annotations

from collections.abc import Iterable

from tradeloom.core.costs import VenueCosts
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.live.recovery.journal_state import JournalState

__all__ = ["ReplayVenue"]


class ReplayVenue:
    """Report the journal's fills and cancellations back to a replaying engine.

    Args:
        state: The journal, read.
        initial_cash: The capital the run started with.
        costs: The live venue's costs: the taker fee it sized buys with.
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
        costs: VenueCosts,
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
        self.costs = costs
        self.dust = dust
        self.dusts = dusts
        self._orders: dict[str, Order] = {}
        self._reported: dict[str, int] = {}
        self._cursor: dict[int, int] = {}  # per bar: the journal's events taken so far
        self._done: set[str] = set()
        self._calls: dict[tuple[int, str], int] = {}
        # a router's parent: the children its venues worked (``route_decision`` rows)
        self._stop_exits: dict[int, list[str]] | None = None  # `stops_traded`, read once
        self._children: dict[str, list[str]] = {}
        for child, route in state.routes.items():
            self._children.setdefault(route.parent_id, []).append(child)

    def quantity_for(self, notional: float, price: float) -> float:
        """Size as the live venue did."""
        return self.costs.quantity_for(notional, price)

    def submit(self, order: Order) -> None:
        """Take the order as pending (it was sent back then)."""
        self._orders[order.id] = order

    def stops_traded(self, bar: Bar) -> list[str]:
        """Return the symbols the journal has a protective exit of decided at ``bar``, as
        the live venue's resting stop that traded let through the kill switch
        (`tradeloom.plugins.protocols.StopsResting`): the replay decides it again.

        Read only while the kill switch holds, when no other protective exit is decided
        (a liquidation's aside: a perpetual rests no stop at the exchange).
        """
        if self._stop_exits is None:
            self._stop_exits = {}
            for order_id, order in self.state.orders.items():
                if order.kind == "stop" and order.reason != "EXIT_LIQUIDATION":
                    symbol = self.state.order_symbols.get(order_id, "")
                    self._stop_exits.setdefault(order.bar, []).append(symbol)
        return self._stop_exits.get(bar.index, [])

    def bind_stop(self, order: Order) -> None:
        """Take the exit as pending, as `submit` (the journal reports what it was booked)."""
        self.submit(order)

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
        """Report what the live venue reported at this call of this phase of this bar,
        and stop working the orders it ended then."""
        if phase == "open":
            self.adopt_journaled(bar.index - 1)
        nth = self._calls.get((bar.index, phase), 0)
        self._calls[(bar.index, phase)] = nth + 1
        report = self.state.reports.get((bar.index, phase), {}).get(nth)
        if report is None:
            return []
        events = self._take(bar.index, report.events)
        if report.ended is None:
            self._settle(events)  # a journal from before `venue_reported`
        else:
            for order_id in report.ended:
                self._end(order_id)
        return events

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Return the cancellation the journal has for this cancel, if it took effect,
        and stop working the orders the live venue ended then (the cancel's report).

        The journal's next event at the bar is it, whatever its reason: the cancel may
        have found the order finished another way meanwhile (``REJECTED
        ORDER_NEVER_ARRIVED`` for a ``REPLACED``), and the engine journaled what the
        venue returned. An order a cancel did not end (a trade the venue reported
        with its cancel is still to be delivered) works on until a report ends it.
        """
        nth = self._calls.get((bar.index, "cancel"), 0)
        self._calls[(bar.index, "cancel")] = nth + 1
        if self.state.legacy_reports:  # the journal does not say: its next event
            rows = self.state.events.get(bar.index, [])
            k = self._cursor.get(bar.index, 0)
            next_one = rows[k] if k < len(rows) else None
            if isinstance(next_one, Cancellation) and next_one.order_id == order_id:
                self._cursor[bar.index] = k + 1
                self._end(order_id)
                return next_one
            return None
        report = self.state.reports.get((bar.index, "cancel"), {}).get(nth)
        if report is None:  # it took no effect then
            return None
        for ended in report.ended or ():
            self._end(ended)
        taken = self._take(bar.index, report.events)
        cancelled = taken[0] if taken else None
        assert cancelled is None or isinstance(cancelled, Cancellation)
        return cancelled

    def cancel_fills(self, order_ids: list[str], bar: Bar) -> list[Fill | Cancellation]:
        """Return the fills the journal has for this ask after the engine's cancels (the
        live venue's `cancel_fills`), and stop working the orders they ended."""
        nth = self._calls.get((bar.index, "cancel_fills"), 0)
        self._calls[(bar.index, "cancel_fills")] = nth + 1
        report = self.state.reports.get((bar.index, "cancel_fills"), {}).get(nth)
        if report is None:  # none then (a journal from before the ask has none)
            return []
        for ended in report.ended or ():
            self._end(ended)
        return self._take(bar.index, report.events)

    def _take(self, bar: int, count: int) -> list[Fill | Cancellation]:
        """The journal's next ``count`` fills and cancellations at ``bar``, in order."""
        rows = self.state.events.get(bar, [])
        k = self._cursor.get(bar, 0)
        taken = rows[k : k + count]
        self._cursor[bar] = k + len(taken)
        return taken

    def _end(self, order_id: str) -> None:
        self._orders.pop(order_id, None)
        self._done.add(order_id)

    # --- journals from before ``venue_reported``: which orders a report ended, inferred

    def _settle(self, events: Iterable[Fill | Cancellation]) -> None:
        for event in events:
            order_id = event.order_id
            if isinstance(event, Cancellation):
                self._end(order_id)
                continue
            self._reported[order_id] = self._reported.get(order_id, 0) + 1
            if self._finished_by(order_id):
                self._end(order_id)

    def _finished_by(self, order_id: str) -> bool:
        """Return whether the fills reported so far end ``order_id``, as they did live.

        Only a filled order ends with its fills: one cancelled later was still working
        when they were reported (its fills at a bar's open, the cancel at that bar's
        close), so it ends with its cancellation. A router's parent is filled when each
        child its venues worked ended filled or refused and every child's trades were
        reported.
        """
        state = self.state
        children = self._children.get(order_id)
        if children is not None:
            ends = [state.order_states.get(child) for child in children]
            filled = "filled" in ends and all(end in ("filled", "rejected") for end in ends)
            counted = sum(len(state.venue_fills.get(child, ())) for child in children)
        else:
            # an exit booked to a stop resting at the exchange: the stop's fills are its
            sent = state.bound.get(order_id, order_id)
            filled = state.order_states.get(sent) == "filled"
            counted = len(state.venue_fills.get(sent, ()))
        return filled and self._reported[order_id] >= counted
