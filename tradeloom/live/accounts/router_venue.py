"""The live venue of a router: each order split over several exchanges by the policy.

`RouterVenue` is the engine's `Venue` over N `ExchangeVenue` objects, each with its own
ccxt client, account, balances and journaled `CcxtVenue`. The engine sees one order;
the venues see its children:

- ``submit`` reads each venue's book (``policy.book_levels`` levels) and free balance,
  asks `tradeloom.core.routing.route` for the allocation, and for each
  child journals a ``route_decision`` row *before* sending it (so a crash between the
  two leaves the decision, and the order layer's own ``order_sent`` row, behind; a
  child id is never sent twice). Child ids are ``{parent}-r{k}``, ``k`` counting
  every child of the parent over all venues: unique across venues, and the same after
  a restart;
- a child a venue refuses (on the POST itself, or when the venue stops working it
  with a quantity left, e.g. after a partial fill) sends its remainder to the next
  venues by the policy, the refusing venue excluded for that order; the refusal is
  not reported to the engine, only what no venue could take is (``NO_ROUTE``);
- fills of every child are reported as the parent's; ``cancel`` cancels every
  working child and reports one cancellation of what they left, once none works;
- each venue's failed reads and refusals count towards its health
  (`tradeloom.live.accounts.venue_health.HealthBook`): marked down after
  ``policy.failures_to_down`` in a row, skipped for ``policy.cool_off_seconds``; each
  change is journaled (``venue_health``). With ``policy.max_latency_ms``, a venue
  whose median recent latency is above it is skipped as slow.

The run's position is the sum of the fills over the venues (one account per venue).
`open_router_venue` opens the venues for a new run (journaling each venue's base
balance, ``venue_at_start``) or a restart, which `RouterVenue.recover` and
`RouterVenue.reconcile` complete from the journal, venue by venue: each child is handed
over as a market's order is, and what a child of before the restart leaves is the
parent's cancellation, never routed on.

Each venue is an `ExchangeMarket` standing on its own account
(`tradeloom.live.recovery.reconcile.Standing`: its base balance at the run's first start,
and the engine's position there, `RouterVenue.held_on`): a child lookups find nowhere
after a restart is reconciled with that venue's account the moment it is due to end
``ORDER_LOST``, by the restart's rule (`reconcile_lost`), as a market's order is: what it
filled is booked to it (trade ``reconciled-{child id}``) and reported as its parent's
fill, or, while that account cannot say, the child works on and its parent with it (the
engine sends nothing more: ``CANCEL_UNCONFIRMED``). A difference on one venue is never
booked to a child of another.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import ccxt
import pandas as pd

from tradeloom.core.accounting import flat_within
from tradeloom.core.costs import VenueCosts
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
from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.journal import Event, VenueAtStart, VenueHealth
from tradeloom.live.accounts.exchange_market import ExchangeMarket
from tradeloom.live.accounts.venue_health import HealthBook
from tradeloom.live.orders.ccxt_venue import CcxtVenue
from tradeloom.live.orders.exchange_venue import ExchangeVenue
from tradeloom.live.recovery.handover import NOT_SENT, look_up, lost_unbooked, never_sent
from tradeloom.live.recovery.reconcile import Standing, reconcile_market, trade_fill
from tradeloom.plugins.component import ParamError
from tradeloom.plugins.protocols import LiveVenue
from tradeloom.plugins.protocols_orders.client_ids import derived_client_id
from tradeloom.plugins.protocols_orders.order_events import RefusedFill, TradeFill
from tradeloom.plugins.protocols_orders.order_state import OrderState
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.retrying import RetriesExhausted

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.recovery.reconcile import HeldPosition, Reconciling
    from tradeloom.live.recovery.replay_venue import ReplayVenue
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles
    from tradeloom.live.tick.session import LiveSession

__all__ = ["RoutedExchange", "RouterVenue", "RoutingPolicy", "open_router_venue"]

_log = logger("tradeloom.live")


class RoutingPolicy(Protocol):
    """What a live router reads of its ``execution.policy`` (`MultiVenue.policy`): the
    built-in router's keys, or any multi-venue component's with the same names."""

    @property
    def book_levels(self) -> int:
        """Levels of each venue's order book read per order."""
        ...

    @property
    def failures_to_down(self) -> int:
        """Consecutive failed requests after which a venue is marked down."""
        ...

    @property
    def cool_off_seconds(self) -> float:
        """How long a venue marked down is skipped before it is tried again."""
        ...

    @property
    def max_latency_ms(self) -> float | None:
        """The median latency above which a venue is skipped as slow (None: never)."""
        ...


@dataclass(frozen=True)
class RoutedExchange:
    """One venue of the router, live.

    Attributes:
        exchange: Its engine venue (its own client, account and journaled order layer).
        costs: Its fee rates (the file's ``fee_bps``, the account's tier, and
            ``maker_fee_bps``), and the adverse move assumed when its book cannot be read.
    """

    exchange: ExchangeVenue
    costs: VenueCosts


@dataclass
class _Parent:
    order: Order
    children: dict[str, str] = field(default_factory=dict)  # child id -> venue
    refused: set[str] = field(default_factory=set)  # venues that refused a child
    cancelling: bool = False
    cancelled: float = 0.0  # what the children cancelled left, summed
    unrouted: float = 0.0  # what no venue could take, summed
    why: str = ""  # NO_ROUTE, BELOW_MINIMUM when all of it was dust, or a resumed child's
    reported: bool = False  # the engine heard of the cancellation


class RouterVenue:
    """Route the engine's orders over several exchanges.

    Args:
        venues: Each venue by name, in file order (the policy's tie-break).
        policy: ``execution.policy``.
        record: Journals an event (``route_decision``, ``venue_health``) before the
            caller goes on.
        initial_cash: The quote capital the strategy trades with.
        clock: Seconds since the epoch (health cool-off).

    Attributes:
        allow_short: Always False: spot.
        costs: The largest taker fee of the venues, which sizes buys (``taker``: of every
            venue configured, those down at start too).
        dust: The venues' lots in all: a position within it is flat (what splitting
            leaves at each venue, below its lot).
        health: Each venue's failures, latency and state.
    """

    allow_short = False
    one_exchange = None
    """A router is no one exchange: its protective exits are the engine's (`Market`)."""

    def __init__(
        self,
        venues: Mapping[str, RoutedExchange],
        *,
        policy: RoutingPolicy,
        record: Callable[[Event], None],
        initial_cash: float,
        clock: Callable[[], float] = time.time,
        taker: float | None = None,
    ) -> None:
        self.venues = dict(venues)
        self.policy = policy
        self._record = record
        self.initial_cash = initial_cash
        if taker is None:
            taker = max(v.costs.taker for v in self.venues.values())
        self.costs = VenueCosts.of(taker)
        # a split leaves up to a lot at each venue, which none can sell: a position
        # within the lots in all is flat, so the engine sends no order for it
        self.dust = sum(v.exchange.dust for v in self.venues.values())
        # each venue's minimum is the routing's (`below_every_minimum`), not the core's
        self.min_notional = 0.0
        self.health = HealthBook(
            self.venues,
            failures_to_down=policy.failures_to_down,
            cool_off_seconds=policy.cool_off_seconds,
            clock=clock,
        )
        self._parents: dict[str, _Parent] = {}
        self._parent_of: dict[str, str] = {}  # child id -> parent id
        # parents whose rest is reported once no child works: a part no venue took, or
        # what a child of before a restart left
        self._rests: set[str] = set()
        self._active: dict[str, _Parent] = {}  # the parents that may still be pending
        self._resumed: set[str] = set()  # the children a restart handed over: never routed on
        self._events: list[Fill | Cancellation] = []
        self._refused: list[RefusedFill] = []
        # the engine's position at each venue: the fills reported from there (`held_on`)
        self._held: dict[str, float] = {}
        self.at_start: list[VenueAtStart] = []
        """A new live run's `VenueAtStart` rows, to journal after its ``run_started``."""

    def quantity_for(self, notional: float, price: float) -> float:
        """Return the quantity ``notional`` buys at ``price`` with the largest taker fee."""
        return self.costs.quantity_for(notional, price)

    def held_on(self, name: str) -> float:
        """Return the engine's position at venue ``name``: what the fills reported from
        there bought less what they sold (a restart's: the journal's, `reconcile`), as a
        venue's account is reconciled against it (`Standing.held`)."""
        return self._held.get(name, 0.0)

    # --- orders ---------------------------------------------------------------------

    def submit(self, order: Order) -> None:
        """Route ``order``: journal each child's decision, then send it (once)."""
        parent = _Parent(order)
        self._parents[order.id] = parent
        self._send(parent, order.quantity, bar=order.bar, timestamp=order.timestamp)

    def cancel(self, order_id: str, bar: Bar, reason: str) -> Cancellation | None:
        """Cancel every working child of ``order_id``; return one cancellation of the rest.

        The engine hears of one cancellation per order: while a child's cancel is not
        confirmed (it reports at a later bar, or the engine asks again), what the
        others left is kept and reported with it, once no child works any more.
        """
        parent = self._parents.get(order_id)
        if parent is None:
            return None
        parent.cancelling = True
        for child_id, name in parent.children.items():
            exchange = self.venues[name].exchange
            if self._works(name, child_id):
                cancelled = exchange.cancel(child_id, bar, reason)
                if cancelled is not None:
                    parent.cancelled += cancelled.remaining
        return self._cancelled(parent, bar.index, bar.timestamp, reason)

    def pending(self) -> list[Order]:
        """Return the engine's orders with a child working or an event not reported (a
        part no venue took, too)."""
        working = {o.id for v in self.venues.values() for o in v.exchange.pending()}
        undelivered = {e.order_id for e in self._events} | self._rests
        pending = []
        for order_id, parent in list(self._active.items()):
            if order_id in undelivered or any(c in working for c in parent.children):
                pending.append(parent.order)
            else:
                del self._active[order_id]  # until a refused child's rest is routed on
        return pending

    def match(self, bar: Bar, phase: str) -> list[Fill | Cancellation]:
        """Report every venue's fills as their parents'; send refused remainders on."""
        if phase == "open":
            for row in self.health.came_back():
                self._record(row)
        for name, routed in self.venues.items():
            for event in routed.exchange.match(bar, phase):
                self._take(name, event, bar)
        for parent_id in list(self._rests):  # their rests, once no child works
            parent = self._parents[parent_id]
            done = self._cancelled(parent, bar.index, bar.timestamp, parent.why)
            if done is not None or parent.reported:
                self._rests.discard(parent_id)
            if done is not None:
                self._events.append(done)
        events = [replace(e, bar=bar.index) for e in self._events]
        self._events.clear()
        return events

    @property
    def refused(self) -> list[RefusedFill]:
        """Fills refused as impossible (overfills), each message led by its venue."""
        for name, routed in self.venues.items():
            self._refused.extend(
                replace(r, message=f"{name}: {r.message}") for r in routed.exchange.refused
            )
            routed.exchange.refused.clear()
        return self._refused

    # --- a restart ------------------------------------------------------------------

    def look_up_lost(
        self,
        files: RunFiles,
        link: JournalLink,
        session: LiveSession,
        state: JournalState,
        *,
        name: str,
    ) -> None:
        """Do nothing: a router's restart refuses a journal that lost its tail (its marks
        are checked), so nothing of the run can be beyond it."""

    def recover(
        self, state: JournalState, replayed: ReplayVenue, *, owns: Callable[[str], bool]
    ) -> None:
        """Track again the children of the orders still pending after the replay (all of
        them are the router's: it trades one symbol, ``owns`` is not asked).

        Each child is handed over as a market's order is (`tradeloom.live.recovery.handover`):
        one whose ``route_decision`` row is in the journal but whose ``order_sent`` row
        is not was never sent, and is not sent now (``NOT_SENT``); one that was sent is
        looked up at its venue by its client id, never sent again, unless the journal
        shows it filled or rejected. Nor is what such a child leaves routed on: the
        restart sends nothing of an order decided before it (`_take`); its rest is the
        parent's cancellation. What no child was decided for (the process died after
        the order's intent, before it was routed) is cancelled ``NOT_SENT`` too: it was
        never sent, which is not ``NO_ROUTE`` (no venue could take it). The trades the
        journal counted but the engine had not applied are reported at the next bar, once.
        """

        for order in replayed.pending():
            parent = _Parent(order)
            self._parents[order.id] = self._active[order.id] = parent
            held = _unapplied(state, order.id)
            # what no venue took: the order less what its children hold (a refused
            # child: what it filled; its rest was routed on)
            placed = 0.0
            for child_id, decision in state.routes.items():
                if decision.parent_id != order.id:
                    continue
                refused = state.order_states.get(child_id) in ("rejected", "cancelled")
                placed += _filled(state, child_id) if refused else decision.quantity
            if order.quantity - placed > max(order.quantity * 1e-9, self.dust * (1.0 - 1e-9)):
                # no child was decided for it before the process died (none at all: it
                # died between the order's intent and its routing): it was never sent,
                # which says nothing of whether a venue could have taken it
                parent.unrouted, parent.why = order.quantity - placed, NOT_SENT
                self._rests.add(order.id)
            for child_id, decision in state.routes.items():
                if decision.parent_id != order.id:
                    continue
                name = decision.venue
                parent.children[child_id] = name
                self._parent_of[child_id] = order.id
                self._resumed.add(child_id)
                exchange = self.venues[name].exchange
                child = replace(order, id=child_id, quantity=decision.quantity)
                if child_id not in state.sent:
                    exchange.hold([never_sent(child, exchange)])
                    continue
                if state.order_states.get(child_id) in ("filled", "rejected"):
                    exchange.adopt(child)
                else:
                    look_up(state, child_id, exchange)
                exchange.hold([exchange.book(t) for t in held if t.fill.order_id == child_id])
        # A child a run ended ORDER_LOST (its parent heard cancelled) that no reconcile
        # booked: what it filled is its venue's account's alone. It is looked up again,
        # and its venue's reconcile counts it unaccounted and books the balance to it, as
        # a market's order (`lost_unbooked`); a fill booked to it is its parent's.
        told = set(self._parent_of)
        for child_id in lost_unbooked(state, told, lambda c: _parent(state, c)):
            decision = state.routes[child_id]
            if decision.venue not in self.venues:
                continue
            exchange = self.venues[decision.venue].exchange
            self._parent_of[child_id] = decision.parent_id
            exchange.track_lost(child_id)
            look_up(state, child_id, exchange)

    def reconcile(self, run: Reconciling, held: HeldPosition) -> None:
        """Reconcile each venue's base balance with the position the journal puts there
        (the position in all, the balance at the start, are each venue's: the
        journal's ``venue_fill`` and ``venue_at_start`` rows).

        Raises:
            RestartRefused: A venue (named) holds another position than the journal's.
        """
        state = run.state
        assert state.started is not None
        run_key = state.started.run_key
        positions = _positions(state, self)
        # what the run reconciles each venue against from now on (`held_on`): the trades
        # the engine applied; those it did not are reported at the next open, counted then
        self._held = dict(positions)
        for name, routed in self.venues.items():
            row = state.venues.get(name)
            reconcile_market(
                run.files,
                run.link,
                run.session,
                routed.exchange,
                position=positions.get(name, 0.0),
                base_at_start=math.nan if row is None else row.base_at_start,
                run_key=run_key,
                symbol=f"venue {name}",
            )

    # --- routing --------------------------------------------------------------------

    def _send(self, parent: _Parent, quantity: float, *, bar: int, timestamp: pd.Timestamp) -> None:
        """Route ``quantity`` of ``parent`` at ``bar`` (its decision's, or a later one's
        when a venue's refusal sends the rest on)."""
        order = parent.order
        self._active[order.id] = parent
        wanted = self._route_order(order, quantity)
        offered = self._candidates(order, parent.refused)
        decided = route(wanted, offered)
        candidates = json.dumps([q.as_dict() for q in decided.quotes])
        left = decided.unfilled
        rejected = 0.0
        for allocation in decided.allocations:
            child_id = derived_client_id(order.id, f"r{len(parent.children)}")
            parent.children[child_id] = allocation.venue
            self._parent_of[child_id] = order.id
            self._record(
                decision_row(order, child_id, allocation, candidates, bar=bar, timestamp=timestamp)
            )
            exchange = self.venues[allocation.venue].exchange
            child = replace(order, id=child_id, quantity=allocation.quantity)
            started = time.perf_counter()
            exchange.submit(child)
            view = exchange.venue.order(child_id)
            if view.state is OrderState.REJECTED:
                parent.refused.add(allocation.venue)
                self._failed(allocation.venue, f"order {child_id} rejected")
                rejected += max(view.quantity - view.filled, 0.0)
            else:
                self.health.succeeded(allocation.venue, time.perf_counter() - started)
        if rejected > 0.0:
            # what a venue refused goes to the others, the refusing ones excluded
            self._send(parent, rejected, bar=bar, timestamp=timestamp)
        # within the venues' lots in all is what rounding to each venue's lot leaves (the
        # engine counts such a position flat); more than that, but less than any venue
        # takes, is dust, said as such; the rest no venue could take
        # (reported with what the children cancelled, in one cancellation of the order,
        # once no child works: `match`)
        if left > max(order.quantity * 1e-9, self.dust * (1.0 - 1e-9)):
            dust = below_every_minimum(wanted, offered, decided)
            parent.unrouted += left
            parent.why = NO_ROUTE if parent.why == NO_ROUTE or not dust else BELOW_MINIMUM
            self._rests.add(order.id)

    def _take(self, name: str, event: Fill | Cancellation, bar: Bar) -> None:
        if isinstance(event, Fill):
            self._held[name] = self._held.get(name, 0.0) + event.side * event.quantity
        parent_id = self._parent_of.get(event.order_id)
        if parent_id is None:  # an order the router did not send: passed on as it is
            self._events.append(event)
            return
        if isinstance(event, Fill):
            self._events.append(replace(event, order_id=parent_id))
            return
        parent = self._parents.get(parent_id)
        if parent is None:
            return  # a lost child's parent the engine heard end before a restart: not again
        if event.reason.startswith("REJECTED") and name in parent.refused:
            return  # refused when sent: its quantity was routed on already
        if parent.cancelling:
            parent.cancelled += event.remaining
            done = self._cancelled(parent, bar.index, event.timestamp, event.reason)
            if done is not None:
                self._events.append(done)
            return
        if event.remaining <= 0.0:
            self._events.append(replace(event, order_id=parent_id))
            return
        if event.order_id in self._resumed:
            # a child of before a restart (not found at its venue after its window,
            # never sent, or stopped): the restart sends nothing of it again, as it
            # sends no market's order again; the engine hears the parent cancelled,
            # once no child works (a sibling's fill may come later in this batch)
            parent.cancelled += event.remaining
            parent.why = parent.why or event.reason
            self._rests.add(parent_id)
            return
        # the venue stopped working a child with a quantity left: the others take it
        parent.refused.add(name)
        self._failed(name, f"order {event.order_id}: {event.reason}")
        self._send(parent, event.remaining, bar=bar.index, timestamp=bar.timestamp)

    def _works(self, name: str, child_id: str) -> bool:
        return any(o.id == child_id for o in self.venues[name].exchange.pending())

    def _cancelled(
        self, parent: _Parent, bar: int, timestamp: pd.Timestamp, reason: str
    ) -> Cancellation | None:
        """Return the parent's one cancellation once no child works (None: not yet, or
        nothing was left): what its children's cancels left and what no venue took."""
        if any(self._works(name, child) for child, name in parent.children.items()):
            return None
        left = parent.cancelled + parent.unrouted
        if left <= 0.0 or parent.reported:
            return None
        parent.reported = True
        return Cancellation(parent.order.id, bar, timestamp, left, reason)

    def _failed(self, name: str, reason: str) -> None:
        row = self.health.failed(name, reason)
        if row is not None:
            self._record(row)

    def _route_order(self, order: Order, quantity: float) -> RouteOrder:
        limit = order.limit_price if order.kind == "limit" else math.nan
        return RouteOrder(order.side, quantity, order.reference_price, limit_price=limit)

    def _candidates(self, order: Order, refused: set[str]) -> list[Candidate]:
        return [
            self._candidate(name, routed, "refused this order" if name in refused else "")
            for name, routed in self.venues.items()
        ]

    def _candidate(self, name: str, routed: RoutedExchange, unavailable: str) -> Candidate:
        venue = routed.exchange.venue
        client = venue.client
        down = self.health.is_down(name)
        market = client.market(venue.symbol)
        limits = market.get("limits") or {}
        bids: tuple[tuple[float, float], ...] = ()
        asks: tuple[tuple[float, float], ...] = ()
        free: dict[str, float] = {}
        last = math.nan
        if not (unavailable or down):
            started = time.perf_counter()
            try:
                book = client.fetch_order_book(venue.symbol, self.policy.book_levels)
                balance = client.fetch_balance()
            except Exception as error:  # any failed read: this venue sits this order out
                self._failed(name, f"{type(error).__name__}: {error}")
                unavailable = f"unreachable: {type(error).__name__}"
            else:
                self.health.observed(name, time.perf_counter() - started)
                bids = tuple((float(p), float(q)) for p, q, *_ in book.get("bids") or ())
                asks = tuple((float(p), float(q)) for p, q, *_ in book.get("asks") or ())
                free = {str(k): float(v) for k, v in (balance.get("free") or {}).items() if v}
                if bids and asks:
                    last = (bids[0][0] + asks[0][0]) / 2.0
                # read all the same, so that a slow venue is measured until it is fast
                slowest = self.policy.max_latency_ms
                latency = self.health.latency(name) * 1e3
                if slowest is not None and latency > slowest:
                    unavailable = f"slow: median latency {latency:.0f} ms"
        return Candidate(
            name,
            taker_fee=routed.costs.taker,
            maker_fee=routed.costs.maker,
            last_price=last,
            slippage=routed.costs.slippage,
            bids=bids,
            asks=asks,
            free_quote=free.get(str(market.get("quote")), 0.0),
            free_base=free.get(str(market.get("base")), 0.0),
            lot=float((market.get("precision") or {}).get("amount") or 0.0),
            min_amount=float((limits.get("amount") or {}).get("min") or 0.0),
            min_notional=float((limits.get("cost") or {}).get("min") or 0.0),
            down=down,
            unavailable=unavailable,
        )


def open_router_venue(
    files: RunFiles, link: JournalLink, markets: Markets, state: JournalState | None = None
) -> tuple[RouterVenue, dict[str, Any]]:
    """Open each venue's account; return the router and what a new run's ``started``
    row records.

    Each venue gets its own client (its own keys), its own journaled order layer and
    its own market of the data's symbol. A new run (``state`` None) takes
    ``live.capital``, or the venues' free quote in all, as its capital, and keeps a
    `VenueAtStart` row per venue (``at_start``) for the caller to journal; a restart
    takes the capital from the journal and polls each venue's trades after the last
    one the journal counted there.

    Raises:
        ConfigError: A venue has no keys.
        UserError: A venue's exchange has no market of the data's symbol, the venues
            quote the symbol in different assets, or they hold less quote in all than
            ``live.capital``.
    """
    from tradeloom.live.accounts.venues import trouble_of
    from tradeloom.live.orders.order_journal import JournalOrders

    router = markets.p.router
    assert router is not None
    journal = link.journal_or_fail
    config = files.config
    path = config.execution.path
    symbol = files.symbol
    bar_clock = markets.bar_in_progress

    routed: dict[str, RoutedExchange] = {}
    markets_of: dict[str, ExchangeMarket] = {}
    quotes: dict[str, float] = {}
    rows: list[VenueAtStart] = []
    down: list[tuple[str, Exception]] = []
    for entry in router.venue_terms():
        built = entry.component
        assert isinstance(built, LiveVenue)  # live_problems refused a simulated venue
        where = f"{path}.venues.{entry.index}"
        try:
            client = built.trading_client()
        except ParamError as exc:
            at = f"{where}.{exc.key}" if exc.key else where
            raise ConfigError([Problem(config.locate(at), at, exc.message)]) from exc
        orders = JournalOrders(journal, bar_clock, symbol=symbol, mark=link.sent_mark)
        after = None if state is None else _last_trade_id(state, entry.name)
        venue = CcxtVenue(client, symbol, orders, bar_clock=bar_clock, after_trade_id=after)
        try:
            venue.load_markets()
            free = venue.balance() if state is None else {}
        except (ccxt.NetworkError, RetriesExhausted) as error:
            # a venue that only trades (the data comes from the data source): the run
            # can start without it, as long as another venue can route
            if state is not None and any(r.venue == entry.name for r in state.routes.values()):
                raise  # the journal sent orders there: it must be reconciled first
            down.append((entry.name, error))
            continue
        if symbol not in venue.client.markets:
            raise UserError(
                f"{config.locate(where)} {where}: {entry.name} ({built.exchange}) has "
                f"no market {symbol} (the data's symbol) to trade"
            )
        market = venue.client.market(symbol)
        costs = VenueCosts(entry.taker_fee, entry.maker_fee, entry.slippage)
        exchange = ExchangeMarket(
            venue,
            initial_cash=0.0,  # the router holds the run's capital
            costs=replace(costs, slippage=0.0),
            on_trouble=trouble_of(link, entry.name),
            orders=router.order_keys,
        )
        routed[entry.name] = RoutedExchange(exchange, costs)
        markets_of[entry.name] = exchange
        if state is None:
            quotes[entry.name] = free.get(str(market["quote"]), 0.0)
            base = free.get(exchange.base, 0.0)
            rows.append(
                VenueAtStart(
                    venue=entry.name, base=exchange.base, base_at_start=base, dust=exchange.dust
                )
            )
    if not routed:  # no venue can route: one line, exit 1 (an exchange that cannot be reached)
        said = "; ".join(f"{name}: {' '.join(str(fault).split())[:200]}" for name, fault in down)
        raise ccxt.ExchangeNotAvailable(f"no venue of {path} is up at start ({said})") from None
    quoted = {str(r.exchange.venue.client.market(symbol)["quote"]) for r in routed.values()}
    if len(quoted) > 1:
        raise UserError(
            f"{config.locate(path)} {path}: the venues quote {symbol} in "
            f"{', '.join(sorted(quoted))}; a router trades one quote asset"
        )
    if state is not None and state.started is not None:
        capital = state.started.capital
    else:
        held = sum(quotes.values())
        capital = config.live.capital or held
        if capital > held:
            raise UserError(
                f"{config.locate('live.capital')} live.capital: {capital:g} is more "
                f"than the venues' {held:g} {quoted.pop()} in all"
            )
    # a buy is sized by the largest fee of every venue configured, down at start or not:
    # by those up only, a restart with one down sized differently from the replay of a
    # later restart with all up, which then refused the journal (seed 71)
    opened = RouterVenue(
        routed,
        policy=router.policy,
        record=link.recorder_or_fail.record,
        initial_cash=float(capital),
        taker=max(entry.taker_fee for entry in router.venue_terms()),
    )
    if state is not None and state.venues:
        # the lots in all are those of the run's first start (its venue_at_start rows): a
        # venue down at a restart left its lot out, the run stated the smaller lots in its
        # BELOW_MINIMUM refusals, and the next restart, every venue up, replayed those bars
        # with all the lots and refused a sound journal (seed 75)
        opened.dust = sum(row.dust for row in state.venues.values())
    opened.at_start = rows
    # a child due to end ORDER_LOST is reconciled with its venue's account at once
    at_start = {r.venue: r.base_at_start for r in rows}
    if state is not None:
        at_start = {name: row.base_at_start for name, row in state.venues.items()}
    for name, exchange in markets_of.items():
        exchange.standing = Standing(
            at_start.get(name, math.nan),
            config.live.position_tolerance,
            _held_on(markets, opened, name),
        )
    for name, fault in down:
        reason = " ".join(f"down at start: {type(fault).__name__}: {fault}".split())[:300]
        _log.warning("venue_down_at_start", venue=name, reason=reason)
        link.recorder_or_fail.record(
            VenueHealth(venue=name, state="down", failures=1, reason=reason)
        )
    extra = {"base_at_start": sum(r.base_at_start for r in rows), "fee_rate": opened.costs.taker}
    return opened, extra


def _held_on(markets: Markets, router: RouterVenue, name: str) -> Callable[[], tuple[float, float]]:
    """Return what reads the engine's position at venue ``name`` (`RouterVenue.held_on`)
    and the band around zero the core counts as flat for the router's one symbol
    (`Standing.held`), as the restart's reconcile of the venue judges it."""

    def held() -> tuple[float, float]:
        state = markets.session_or_fail.engine.state
        return router.held_on(name), flat_within(state.sym, state.prm, 0)

    return held


def _last_trade_id(state: JournalState, venue: str) -> str | None:
    ids = [
        int(f.trade_id)
        for f in state.all_venue_fills
        if f.order_id in state.routes
        and state.routes[f.order_id].venue == venue
        and f.trade_id.isdigit()
    ]
    return str(max(ids)) if ids else None


def _filled(state: JournalState, child_id: str) -> float:
    """Return what a child's counted trades filled."""
    return sum(f.quantity for f in state.venue_fills.get(child_id, ()))


def _unapplied(state: JournalState, parent_id: str) -> list[TradeFill]:
    """Return the trades of ``parent_id``'s children the engine had not applied."""

    mine = [f for f in state.all_venue_fills if _parent(state, f.order_id) == parent_id]
    return [trade_fill(f) for f in mine[state.engine_fills.get(parent_id, 0) :]]


def _positions(state: JournalState, router: RouterVenue) -> dict[str, float]:
    """Return the position the engine applied on each venue (the trades it booked).

    The engine books each parent's fills in the order the venues counted them: the
    first ``n`` of a parent's trades, ``n`` its journaled fills, are applied.
    """

    by_parent: dict[str, list[Any]] = {}
    for row in state.all_venue_fills:
        parent = _parent(state, row.order_id)
        if parent is not None:
            by_parent.setdefault(parent, []).append(row)
    positions: dict[str, float] = {}
    for parent, rows in by_parent.items():
        for row in rows[: state.engine_fills.get(parent, 0)]:
            name = state.routes[row.order_id].venue
            fill = router.venues[name].exchange.book(trade_fill(row))
            positions[name] = positions.get(name, 0.0) + fill.side * fill.quantity
    return positions


def _parent(state: JournalState, child_id: str) -> str | None:
    decision = state.routes.get(child_id)
    return None if decision is None else decision.parent_id
