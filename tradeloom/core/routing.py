"""The routing policy: which venues take an order, how much each, at what expected cost.

One pure function, `route`, called by every mode: the live router per order, the
backtest once at build time (with no book), the benchmark in a loop. Given the order
and one `Candidate` per venue it returns the allocation and each candidate's
`Quote`; `decision_row` is the ``route_decision`` row each child is journaled as, by
the modelled router (backtest, paper) and the live one alike.

The rule (documented in docs/reference/execution.md, "Routing"):

1. A candidate is excluded when it is unavailable (it refused this order, its book
   or balance could not be read), marked down, has no free balance for the
   order's side (quote to buy, base to sell), no price, or cannot take one lot of at
   least the market's minimum amount and notional.
2. Taking: each remaining candidate is priced for the quantity it can take now, up to
   the order's: its book's levels on the order's side are walked best first, up to
   the limit price (every level for a market order), at the taker fee. Without a
   book, the last price moved against the order by the venue's slippage is the price,
   with unlimited depth (if it is within the limit). A buy's capacity is bounded by
   the free quote (fees included), a sell's by the free base. The expected cost per
   unit is the average price after fees (a buy pays ``price * (1 + fee)``, a sell
   receives ``price * (1 - fee)``); ``cost_bps`` is its distance from the order's
   reference price, adverse positive.
3. Candidates that can take are ranked by ``cost_bps``, ties by file order. The
   order's quantity goes to the best one up to its capacity, rounded down to its
   lot; what is left to the next one, and so on: an order splits when one venue's
   depth cannot take it at the limit price. A child below the market's minimum
   amount or notional is not sent (no dust children): its quantity moves on.
4. Resting (limit orders only): what no venue can take now rests at the limit price
   on the venue with the lowest maker fee, as far as its balance left goes, then on
   the next (ties: file order); a venue that also took part of the order gets one
   child for both (a limit order at the limit price takes, then rests). A candidate
   that cannot take at all is quoted at its resting cost (``rests``).
5. A market order's quantity no venue's depth or balance can take, or a limit
   order's that no venue's balance can rest, is left ``unfilled``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloom.domain import Order
from tradeloom.journal import RouteDecision

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BELOW_MINIMUM",
    "NO_ROUTE",
    "Allocation",
    "Candidate",
    "Quote",
    "Route",
    "RouteOrder",
    "below_every_minimum",
    "decision_row",
    "route",
]

Level = tuple[float, float]
"""A book level: ``(price, base quantity)``."""

_EPSILON = 1e-12

NO_ROUTE = "NO_ROUTE"
"""A router's cancellation reason of what no venue could take (depth, balance, cash,
base held, health, outages)."""

BELOW_MINIMUM = "BELOW_MINIMUM"
"""A router's cancellation reason of a rest less than any venue takes
(`below_every_minimum`)."""


@dataclass(frozen=True)
class RouteOrder:
    """The order to route.

    Attributes:
        side: +1 buy, -1 sell.
        quantity: Base quantity wanted (> 0).
        reference: The price the order was decided at; ``cost_bps`` are measured from it.
        limit_price: A limit order's price (NaN: a market order).
    """

    side: int
    quantity: float
    reference: float
    limit_price: float = math.nan

    @property
    def is_limit(self) -> bool:
        """Whether the order has a limit price."""
        return not math.isnan(self.limit_price)


@dataclass(frozen=True)
class Candidate:
    """What the policy knows of one venue when an order comes.

    Attributes:
        name: The venue's name.
        taker_fee: Fee rate of orders that take liquidity (0.001 = 10 bps).
        maker_fee: Fee rate of resting orders (may be negative: a rebate).
        last_price: The venue's last price (used without a book).
        slippage: Adverse price move without a book, as a fraction.
        bids: Book bids, best (highest) first; empty: no book.
        asks: Book asks, best (lowest) first; empty: no book.
        free_quote: Quote balance free to buy with (inf: not limited).
        free_base: Base balance free to sell (inf: not limited).
        lot: Quantity step (0: none).
        min_amount: Smallest quantity of an order (0: none).
        min_notional: Smallest notional of an order (0: none).
        down: Marked down by its health (recent failures): not routed to.
        unavailable: Why the caller cannot route to it now ('' when it can): a venue
            that refused this order, or whose book or balance could not be read.
    """

    name: str
    taker_fee: float
    maker_fee: float
    last_price: float
    slippage: float = 0.0
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    free_quote: float = math.inf
    free_base: float = math.inf
    lot: float = 0.0
    min_amount: float = 0.0
    min_notional: float = 0.0
    down: bool = False
    unavailable: str = ""


@dataclass(frozen=True)
class Quote:
    """One candidate as the policy priced it.

    Attributes:
        venue: The venue's name.
        capacity: Most it could take of the order (0 when excluded).
        expected_price: Average price before fees for that quantity (NaN: excluded).
        cost_bps: Cost after fees against the order's reference, adverse positive
            (NaN: excluded).
        excluded: Why it was not eligible ('' when it was).
        rests: It cannot take now: quoted for resting at the limit at its maker fee.
    """

    venue: str
    capacity: float
    expected_price: float
    cost_bps: float
    excluded: str = ""
    rests: bool = False

    def as_dict(self) -> dict[str, object]:
        """Return the quote as JSON-ready data (NaN as None)."""
        return {
            "venue": self.venue,
            "capacity": self.capacity,
            "expected_price": None if math.isnan(self.expected_price) else self.expected_price,
            "cost_bps": None if math.isnan(self.cost_bps) else self.cost_bps,
            "excluded": self.excluded,
            "rests": self.rests,
        }


@dataclass(frozen=True)
class Allocation:
    """One child order of the route.

    Attributes:
        venue: The venue it goes to.
        quantity: Its base quantity (a multiple of the venue's lot).
        expected_price: Average price expected before fees.
        cost_bps: Expected cost after fees against the order's reference.
    """

    venue: str
    quantity: float
    expected_price: float
    cost_bps: float


@dataclass(frozen=True)
class Route:
    """The policy's answer.

    Attributes:
        allocations: The child orders, best venue first.
        quotes: Every candidate, in the order given.
        unfilled: The quantity no venue could take (a market order's only).
    """

    allocations: tuple[Allocation, ...]
    quotes: tuple[Quote, ...]
    unfilled: float


def route(order: RouteOrder, candidates: Sequence[Candidate]) -> Route:
    """Split ``order`` over ``candidates`` by expected cost after fees.

    Args:
        order: The order.
        candidates: One per venue, in file order (the tie-break).

    Returns:
        The allocation (best venue first) and every candidate's quote.

    Raises:
        ValueError: A side other than +1/-1, or a quantity that is not positive.
    """
    if order.side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, was {order.side}")
    if not (order.quantity > 0 and math.isfinite(order.quantity)):
        raise ValueError(f"quantity must be > 0, was {order.quantity}")
    # each venue's pieces are read once per decision (the walks below reuse them)
    pieces = [_segments(order, c) for c in candidates]
    quotes = tuple(_quote(order, c, p) for c, p in zip(candidates, pieces, strict=True))
    ranked = sorted(
        (i for i, q in enumerate(quotes) if not q.excluded),
        key=lambda i: (quotes[i].rests, quotes[i].cost_bps, i),
    )
    taken = [0.0] * len(candidates)
    left = order.quantity
    for i in ranked:
        if quotes[i].rests or left <= order.quantity * _EPSILON:
            break
        candidate = candidates[i]
        take = _round_lot(min(left, quotes[i].capacity), candidate.lot)
        if take > 0.0 and _big_enough(order, candidate, pieces[i], take, 0.0):
            taken[i] = take
            left -= take
    rested = [0.0] * len(candidates)
    if order.is_limit and left > order.quantity * _EPSILON:
        for i in sorted(ranked, key=lambda i: (candidates[i].maker_fee, i)):
            if left <= order.quantity * _EPSILON:
                break
            candidate = candidates[i]
            room = _rest_capacity(order, candidate, pieces[i], taken[i])
            rest = _round_lot(min(left, room), candidate.lot)
            if rest > 0.0 and _big_enough(order, candidate, pieces[i], taken[i], rest):
                rested[i] = rest
                left -= rest
    allocations = tuple(
        _allocation(order, candidates[i], pieces[i], taken[i], rested[i])
        for i in ranked
        if taken[i] + rested[i] > 0.0
    )
    return Route(allocations, quotes, max(left, 0.0))


def below_every_minimum(order: RouteOrder, candidates: Sequence[Candidate], decided: Route) -> bool:
    """Return whether what ``decided`` left unfilled is dust: less than any venue takes.

    A buy's rest is dust when it is below every venue's smallest order (its lot, minimum
    amount and minimum notional at the order's price). A sell's, when the base each
    venue holds beyond its children of this route is below that venue's smallest order:
    the remainders a split leaves at each venue, which no venue can sell. A venue down,
    or without balance for a buy, leaves no dust: what it cannot take is unrouted.
    """
    rest = decided.unfilled
    if rest <= 0.0:
        return False
    price = order.limit_price if order.is_limit else order.reference
    taken = {a.venue: a.quantity for a in decided.allocations}
    for candidate in candidates:
        if candidate.unavailable or candidate.down:
            return False  # what it holds is not known, or not reachable: unrouted
        least = max(candidate.lot, candidate.min_amount)
        if price > 0.0:
            least = max(least, candidate.min_notional / price)
        room = rest
        if order.side < 0:
            room = min(rest, candidate.free_base - taken.get(candidate.name, 0.0))
        if room > 0.0 and room >= least * (1.0 - 1e-9):
            return False
    return True


def _quote(order: RouteOrder, candidate: Candidate, pieces: list[Level]) -> Quote:
    excluded = _why_excluded(order, candidate)
    if excluded:
        return Quote(candidate.name, 0.0, math.nan, math.nan, excluded)
    capacity = _take_capacity(order, candidate, pieces)
    take = _round_lot(min(order.quantity, capacity), candidate.lot)
    rests = take <= 0.0 and order.is_limit
    if rests:
        capacity = _rest_capacity(order, candidate, pieces, 0.0)
        take = _round_lot(min(order.quantity, capacity), candidate.lot)
    if take <= 0.0:
        reason = "no depth" if _depth(order, pieces) <= 0 else "balance below one lot"
        return Quote(candidate.name, 0.0, math.nan, math.nan, reason)
    taking, resting = (0.0, take) if rests else (take, 0.0)
    if not _big_enough(order, candidate, pieces, taking, resting):
        return Quote(candidate.name, 0.0, math.nan, math.nan, "below the minimum order")
    child = _allocation(order, candidate, pieces, taking, resting)
    return Quote(candidate.name, capacity, child.expected_price, child.cost_bps, rests=rests)


def _why_excluded(order: RouteOrder, candidate: Candidate) -> str:
    if candidate.unavailable:
        return candidate.unavailable
    if candidate.down:
        return "marked down"
    free = candidate.free_quote if order.side > 0 else candidate.free_base
    if not free > 0.0:
        return "no free " + ("quote" if order.side > 0 else "base")
    if not (candidate.last_price > 0 or _levels(order, candidate)):
        return "no price"
    return ""


def _levels(order: RouteOrder, candidate: Candidate) -> tuple[Level, ...]:
    return candidate.asks if order.side > 0 else candidate.bids


def _segments(order: RouteOrder, candidate: Candidate) -> list[Level]:
    """Return the ``(price, quantity)`` the venue can take now, best first (taker fee)."""
    levels = _levels(order, candidate)
    pieces: list[Level] = []
    if levels:
        for price, quantity in levels:
            if order.is_limit and (price - order.limit_price) * order.side > 0:
                break
            if quantity > 0:
                pieces.append((price, quantity))
    elif candidate.last_price > 0:
        price = candidate.last_price * (1.0 + order.side * candidate.slippage)
        if not order.is_limit or (price - order.limit_price) * order.side <= 0:
            pieces.append((price, math.inf))
    return pieces


def _depth(order: RouteOrder, pieces: list[Level]) -> float:
    depth = sum(q for _, q in pieces)
    return math.inf if order.is_limit else depth


def _take_capacity(order: RouteOrder, candidate: Candidate, segments: list[Level]) -> float:
    """Return the most the venue can take now: its depth, bounded by its free balance."""
    if order.side < 0:
        return min(sum(q for _, q in segments), candidate.free_base)
    budget = candidate.free_quote
    taken = 0.0
    for price, quantity in segments:
        unit = price * (1.0 + max(candidate.taker_fee, 0.0))
        if quantity * unit >= budget:
            return taken + budget / unit
        taken += quantity
        budget -= quantity * unit
    return taken


def _rest_capacity(
    order: RouteOrder, candidate: Candidate, pieces: list[Level], taken: float
) -> float:
    """Return how much more the venue's balance can rest at the limit after ``taken``."""
    if order.side < 0:
        return max(candidate.free_base - taken, 0.0)
    _, spent = _walk(order, candidate, pieces, taken)
    # a rebate is paid after the fill: the balance must cover the notional first
    unit = order.limit_price * (1.0 + max(candidate.maker_fee, 0.0))
    return max((candidate.free_quote - spent) / unit, 0.0) if unit > 0 else 0.0


def _walk(
    order: RouteOrder, candidate: Candidate, pieces: list[Level], quantity: float
) -> tuple[float, float]:
    """Return the notional before and after taker fees of taking ``quantity`` now."""
    gross = net = 0.0
    left = quantity
    for price, available in pieces:
        if left <= 0.0:
            break
        part = min(left, available)
        gross += part * price
        net += part * price * (1.0 + order.side * candidate.taker_fee)
        left -= part
    return gross, net


def _allocation(
    order: RouteOrder, candidate: Candidate, pieces: list[Level], taken: float, rested: float
) -> Allocation:
    gross, net = _walk(order, candidate, pieces, taken)
    gross += rested * order.limit_price if rested else 0.0
    net += rested * order.limit_price * (1.0 + order.side * candidate.maker_fee) if rested else 0.0
    quantity = taken + rested
    cost = order.side * (net / quantity / order.reference - 1.0) * 10_000.0
    return Allocation(candidate.name, quantity, gross / quantity, cost)


def _big_enough(
    order: RouteOrder, candidate: Candidate, pieces: list[Level], taken: float, rested: float
) -> bool:
    quantity = taken + rested
    notional, _ = _walk(order, candidate, pieces, taken)
    notional += rested * order.limit_price if rested else 0.0
    return quantity >= candidate.min_amount and notional >= candidate.min_notional


def _round_lot(quantity: float, lot: float) -> float:
    if lot <= 0.0 or math.isinf(quantity):
        return quantity
    # a hair of slack so that 0.3 / 0.1 is 3 lots, not 2
    return math.floor(quantity / lot + 1e-9) * lot


def decision_row(
    order: Order,
    child_id: str,
    allocation: Allocation,
    quotes: str,
    *,
    bar: int,
    timestamp: pd.Timestamp | None = None,
) -> RouteDecision:
    """Return the ``route_decision`` row of one child of ``order``, routed at ``bar``.

    Args:
        order: The engine's order.
        child_id: The child's client order id (``{parent}-r{k}``).
        allocation: What the policy gave the child's venue.
        quotes: Every candidate's quote, as JSON text.
        bar: The bar it is routed at (its decision's, or a later one's).
        timestamp: That bar's time (None: the order's).
    """
    return RouteDecision(
        bar=bar,
        timestamp=order.timestamp if timestamp is None else timestamp,
        correlation_id=order.bar,
        order_id=child_id,
        parent_id=order.id,
        venue=allocation.venue,
        quantity=allocation.quantity,
        expected_price=allocation.expected_price,
        expected_cost_bps=allocation.cost_bps,
        candidates=quotes,
    )
