"""A router modelled venue by venue in backtests and paper runs.

`ModelledRouter` is the engine's `Venue` over a router's venues (`VenueTerms`), each
with its own account: its cash, the base it holds, its fees, slippage and minimum
order, and its outages (``execution.venues[].outages``, its fault schedule). The one
routing rule, `tradeloom.core.routing.route`, splits each order as it
does live (`tradeloom.live.accounts.router_venue`); only the candidates differ: a venue
here has no book, so it is priced at the order's decision price moved by its
slippage, with unlimited depth.

- ``submit`` routes the order at its decision bar: a venue down at that bar's time is
  excluded, a buy is bounded by each venue's cash free of its working buys, a sell by
  the base it holds free of its working sells. Each child (``{parent}-r{k}``) is
  journaled as a ``route_decision`` row before it works; what no venue can take is
  cancelled (``NO_ROUTE``), or, when it is less than every venue's minimum order
  (the dust a split leaves), cancelled as ``BELOW_MINIMUM``, once, at the next bar;
- ``match`` fills each child at its venue as the simulated venue fills an order
  (`fill_order`: the same phase, its slippage, taker fee, cash and minimum), journals
  each fill as a ``venue_fill`` row of the child, and reports it to the engine as the
  parent's. A child its venue's cash or minimum cuts is cancelled; the parent's one
  cancellation (the children's rests summed) is reported once no child works;
- at each bar's open, a venue whose outage starts or ends is journaled
  (``venue_health``: ``down`` with its outage's end, or ``up``).

The run's cash is the sum of the venues' and its position the sum of their base: the
engine books the parent's fills, which are the children's.

Market and stop orders are modelled; a limit order or slicing through a router is
refused before a backtest or paper run starts (``Router.modelled_venue``): those run
live only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from tradeloom.bounds import MAX_CASH
from tradeloom.core.routing import (
    BELOW_MINIMUM,
    NO_ROUTE,
    Candidate,
    RouteOrder,
    below_every_minimum,
    decision_row,
    route,
)
from tradeloom.domain import Bar, Cancellation, Fill, Order
from tradeloom.journal import Event, VenueFill, VenueHealth
from tradeloom.plugins.execution.simulated import (
    CUT_NONE,
    DONE_FRACTION,
    FillTerms,
    Offer,
    cut_reason,
    fill_order,
    taker_fill,
)
from tradeloom.plugins.protocols import VenueTerms
from tradeloom.plugins.protocols_orders.client_ids import derived_client_id
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["ModelledRouter"]


@dataclass
class _Account:
    """One venue's account and terms."""

    terms: VenueTerms
    cash: float
    base: float = 0.0
    down: bool = False  # as last journaled
    fill_terms: FillTerms = field(init=False)
    """What `fill_order` reads of the venue: a spot account's."""

    def __post_init__(self) -> None:
        terms = self.terms
        self.fill_terms = FillTerms(terms.slippage, terms.taker_fee, terms.min_notional, True)


@dataclass
class _Child:
    order: Order  # the parent's order with the child's id and quantity
    venue: str
    remaining: float
    fills: int = 0


@dataclass
class _Parent:
    order: Order
    children: list[_Child] = field(default_factory=list)
    cancelled: float = 0.0  # what the children's cuts and the routing left, summed
    reason: str = ""  # the first cut's reason


class ModelledRouter:
    """Route the engine's orders over modelled venues, each with its own account.

    Args:
        venues: Each venue's terms, in file order (the policy's tie-break).
        fill: ``next_open`` or ``close``: when a market order fills.
        max_volume_fraction: Most of a bar's volume one child may take (None: no cap).
        record: Journals an event before the venue goes on.

    Attributes:
        allow_short: Always False: spot accounts.
        initial_cash: The venues' cash in all.
        fee_rate: The largest taker fee of the venues.
        dust: 0: a modelled venue has no lot.
    """

    allow_short = False
    dust = 0.0

    def __init__(
        self,
        venues: Sequence[VenueTerms],
        *,
        fill: str,
        max_volume_fraction: float | None,
        record: Callable[[Event], None],
    ) -> None:
        self.accounts = {t.name: _Account(t, t.initial_cash) for t in venues}
        self.initial_cash = min(sum(t.initial_cash for t in venues), MAX_CASH)
        self.fee_rate = max(t.taker_fee for t in venues)
        # sized for the dearest venue: a buy any venue takes is affordable there
        self._dearest = max((1.0 + t.slippage) * (1.0 + t.taker_fee) for t in venues)
        self.fill_phase = "open" if fill == "next_open" else "close"
        self.max_volume_fraction = max_volume_fraction
        self._record = record
        self._parents: dict[str, _Parent] = {}
        self._events: list[Fill | Cancellation] = []

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price`` at the dearest venue."""
        return notional / (price * self._dearest)

    # --- orders ---------------------------------------------------------------------

    def submit(self, order: Order) -> None:
        """Route ``order`` over the venues up at its bar; journal each child first."""
        parent = _Parent(order)
        self._parents[order.id] = parent
        price = order.stop_price if order.kind == "stop" else order.reference_price
        wanted = RouteOrder(order.side, order.quantity, price)
        candidates = [self._candidate(a, order, price) for a in self.accounts.values()]
        decided = route(wanted, candidates)
        quotes = json.dumps([q.as_dict() for q in decided.quotes])
        for allocation in decided.allocations:
            child_id = derived_client_id(order.id, f"r{len(parent.children)}")
            self._record(decision_row(order, child_id, allocation, quotes, bar=order.bar))
            child = replace(order, id=child_id, quantity=allocation.quantity)
            parent.children.append(_Child(child, allocation.venue, allocation.quantity))
        left = decided.unfilled
        if left > order.quantity * DONE_FRACTION:
            parent.cancelled += left
            dust = below_every_minimum(wanted, candidates, decided)
            parent.reason = BELOW_MINIMUM if dust else NO_ROUTE

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Stop every working child of ``order_id``; return the parent's cancellation."""
        parent = self._parents.get(order_id)
        if parent is None or not self._working(parent):
            return None
        left = sum(c.remaining for c in parent.children) + parent.cancelled
        for child in parent.children:
            child.remaining = 0.0
        del self._parents[order_id]
        return Cancellation(order_id, bar.index, bar.timestamp, left, reason)

    def pending(self) -> list[Order]:
        """Return the engine's orders with a child working or a cancellation to report."""
        return [p.order for p in self._parents.values() if self._working(p)]

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Fill the children due at this ``phase``; report them as their parents'."""
        if phase == "open":
            self._outages(bar)
        for parent in list(self._parents.values()):
            for child in parent.children:
                if child.remaining > 0.0 and self._due(child.order, bar, phase):
                    self._fill(parent, child, bar, phase)
            if not any(c.remaining > 0.0 for c in parent.children):
                del self._parents[parent.order.id]
                if parent.cancelled > 0.0:
                    self._events.append(
                        Cancellation(
                            parent.order.id,
                            bar.index,
                            bar.timestamp,
                            parent.cancelled,
                            parent.reason,
                        )
                    )
        events, self._events = self._events, []
        return events

    # --- the model ------------------------------------------------------------------

    def _candidate(self, account: _Account, order: Order, price: float) -> Candidate:
        terms = account.terms
        working = [
            c
            for p in self._parents.values()
            for c in p.children
            if c.venue == terms.name and c.order.side == order.side
        ]
        unit = price * (1.0 + terms.slippage) * (1.0 + terms.taker_fee)
        return Candidate(
            terms.name,
            taker_fee=terms.taker_fee,
            maker_fee=terms.maker_fee,
            last_price=price,
            slippage=terms.slippage,
            free_quote=max(account.cash - sum(c.remaining for c in working) * unit, 0.0),
            free_base=max(account.base - sum(c.remaining for c in working), 0.0),
            min_notional=terms.min_notional,
            down=_down(terms, order.timestamp) is not None,
        )

    def _due(self, order: Order, bar: Bar, phase: str) -> bool:
        if phase == "intrabar":
            return order.kind == "stop"
        if phase != self.fill_phase or order.kind != "market":
            return False
        return order.bar < bar.index if phase == "open" else order.bar <= bar.index

    def _fill(self, parent: _Parent, child: _Child, bar: Bar, phase: str) -> None:
        account = self.accounts[child.venue]
        order = child.order
        if phase == "intrabar":
            price_now, cap = order.stop_price, -1.0
        else:
            price_now = bar.open if phase == "open" else bar.close
            cap = self.max_volume_fraction or -1.0
        quantity, price, fee, slipped, cut = fill_order(
            order.side, child.remaining, Offer(price_now, bar.volume, cap), account.fill_terms,
            account.cash,
        )  # fmt: skip
        if quantity > 0.0:
            account.cash -= order.side * quantity * price + fee
            account.base += order.side * quantity
            child.remaining -= quantity
            child.fills += 1
            self._record(
                VenueFill(
                    order_id=order.id,
                    bar=bar.index,
                    timestamp=bar.timestamp,
                    correlation_id=order.bar,
                    side=order.side,
                    quantity=quantity,
                    price=price,
                    fee=fee,
                    slippage=slipped,
                    liquidity="taker",
                    trade_id=f"{order.id}-f{child.fills}",
                    venue_order_id=None,
                    fee_cost=fee,
                    fee_currency=None,
                )
            )
            self._events.append(
                taker_fill(parent.order.id, order.side, bar, quantity, price, fee, slipped)
            )
        if child.remaining <= order.quantity * DONE_FRACTION:
            child.remaining = 0.0
        elif cut != CUT_NONE:
            parent.cancelled += child.remaining
            parent.reason = parent.reason or cut_reason(cut)
            child.remaining = 0.0

    def _outages(self, bar: Bar) -> None:
        """Journal each venue whose outage starts or ends at this bar."""
        for name, account in self.accounts.items():
            until = _down(account.terms, bar.timestamp)
            if (until is not None) == account.down:
                continue
            account.down = until is not None
            reason = "" if until is None else f"outage until {until.isoformat()}"
            self._record(
                VenueHealth(
                    bar=bar.index,
                    timestamp=bar.timestamp,
                    correlation_id=bar.index,
                    venue=name,
                    state="down" if until is not None else "up",
                    failures=0,
                    reason=reason,
                )
            )

    def _working(self, parent: _Parent) -> bool:
        return parent.cancelled > 0.0 or any(c.remaining > 0.0 for c in parent.children)


def _down(terms: VenueTerms, at: pd.Timestamp) -> pd.Timestamp | None:
    """Return the end of the outage ``terms``' venue is in at ``at`` (None: it is up)."""
    for start, end in terms.outages:
        if start <= at < end:
            return end
    return None
