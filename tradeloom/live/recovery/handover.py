"""Hand a restarted live run's open business to its markets: what the replay left pending.

After a replay (`tradeloom.live.recovery.replay`), the orders the engine still counts as pending
go to the market that tracks each (`track_pending`): one whose intent was journaled is
looked up by its client order id (`CcxtVenue.recover`; the trades the journal counted are
not counted again, the ones it counted but had not applied are applied once), unless the
journal shows it filled or rejected (a cancelled one may owe trades: the venue held its
cancellation when the process died); one whose intent was not journaled was never sent.
The stops rested at the exchange that no exit was booked to are tracked again too
(`recover_stops`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tradeloom.domain import Cancellation, Fill, Order
from tradeloom.journal import OrderStateChanged
from tradeloom.live.orders.ccxt_venue import ORDER_LOST, RECONCILED_TRADE
from tradeloom.live.recovery.journal_state import JournalState
from tradeloom.live.recovery.reconcile import sent_request, trade_fill
from tradeloom.live.recovery.replay_venue import ReplayVenue
from tradeloom.plugins.protocols_orders.client_ids import derived_client_id
from tradeloom.plugins.protocols_orders.order_terms import STOP_TYPES
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.orders.exchange_venue import ExchangeVenue

__all__ = ["NOT_SENT", "look_up", "lost_unbooked", "never_sent", "recover_stops", "track_pending"]

_log = logger("tradeloom.live")

NOT_SENT = "NOT_SENT"
"""The cancellation reason of an order a restart found decided and never sent (declared in
`tradeloom.core.codes.CANCEL_NAMES`): it is not sent now either."""


def track_pending(
    state: JournalState,
    replayed: ReplayVenue,
    market_of: Callable[[str], ExchangeVenue | None],
) -> None:
    """Hand the orders still pending after the replay to the exchange venue of each.

    Args:
        state: The journal, read.
        replayed: The replay's venue, at the end of the replay.
        market_of: The exchange venue (the market) of an order, by client order id
            (None: another's, handed over there).
    """
    held: dict[int, tuple[ExchangeVenue, list[Fill | Cancellation]]] = {}
    pending = replayed.pending()
    ended = {
        event.order_id
        for events in state.events.values()
        for event in events
        if isinstance(event, Cancellation)
    }
    for order in pending:
        exchange = market_of(order.id)
        if exchange is None:
            continue
        _, events = held.setdefault(id(exchange), (exchange, []))
        sent = state.sent.get(order.id)
        if sent is None and order.kind == "stop" and exchange.await_stop_exit(order):
            continue  # booked to the stop resting at the exchange, or sent, at the next open
        if sent is None:
            events.append(never_sent(order, exchange))
            continue
        fallback = state.sent.get(derived_client_id(order.id, "f"))
        fallback_fills = state.venue_fills.get(fallback.id, []) if fallback else []
        # A cancelled order is still pending here when the venue owed it trades (a
        # cancel it answered "canceled" with more filled than counted, a later read
        # having failed) and the process died: whether or not the engine heard of its
        # cancellation (then it is not told again), the journal's row says what was
        # counted, not what the venue said had filled: it is looked up, never resent.
        if order.id in ended:
            exchange.ended_before(order.id)
        # a restart's reconcile booked the account's word to it (its trades could not be
        # told apart): ended, never looked up again (a trade found later would count twice)
        booked = _booked_unaccounted(state, order.id)
        finished = state.order_states.get(order.id) in ("filled", "rejected") or booked
        if finished:
            exchange.adopt(order)
            rejected = state.rejections.get(order.id)
            if rejected is not None and sent.order_type not in STOP_TYPES:
                # the venue refused it and the process died before the engine heard:
                # the engine hears now what it would have heard then (a stop's refusal,
                # never: its fallback is journaled, as `ExchangeVenue` has it)
                events.append(_refused(order, sent.amount, rejected))
                continue
        else:
            look_up(state, order.id, exchange)
        if fallback is not None and not finished:
            journaled = state.order_states.get(fallback.id)
            exchange.recover_fallback(
                order,
                sent_request(fallback),
                sent_at=fallback.sent_at,
                venue_id=next((f.venue_order_id for f in fallback_fills if f.venue_order_id), None),
                counted=[(f.trade_id, f.quantity) for f in fallback_fills],
                journaled=journaled,
            )
            refused = state.rejections.get(fallback.id)
            if journaled == "rejected" and refused is not None and not fallback_fills:
                # the venue refused the rest's market order and the process died before
                # the engine heard: it hears the journal's refusal now, as it would have
                # then (the fallback is not looked up: `CcxtVenue.recover`)
                events.append(_refused(order, fallback.amount, refused))
        events.extend(_owed(state, order.id, exchange))
        if booked and order.id not in ended:
            left = sent.amount - sum(f.quantity for f in state.venue_fills.get(order.id, []))
            if left > 0.0 and state.order_states.get(order.id) != "filled":
                events.append(Cancellation(order.id, order.bar, order.timestamp, left, ORDER_LOST))
    # An order the engine had finished (cancelled) whose cancel the venue answered with
    # trades the engine had not heard of: they were counted, to be reported at the next
    # open, and the process died before it.
    told = {order.id for order in pending}
    for order_id, order in state.orders.items():
        if order_id in told or order_id not in state.sent:
            continue
        exchange = market_of(order_id)
        if exchange is None:
            continue
        owed = _owed(state, order_id, exchange)
        if owed:
            exchange.adopt(order)
            held.setdefault(id(exchange), (exchange, []))[1].extend(owed)
    # An order a run ended ``ORDER_LOST`` (five lookups found it nowhere, the engine was
    # told it cancelled) that no reconcile booked yet: what it filled is still the
    # account's alone. It is looked up again, and the reconcile counts it unaccounted
    # and books the balance to it, whichever restart this is (not only the first after
    # its send, where it was still pending).
    for order_id in lost_unbooked(state, told):
        exchange = market_of(order_id)
        if exchange is None:
            continue
        exchange.track_lost(order_id)
        look_up(state, order_id, exchange)
        held.setdefault(id(exchange), (exchange, []))
    for exchange, events in held.values():
        exchange.hold(events)


def never_sent(order: Order, exchange: ExchangeVenue) -> Cancellation:
    """Return the ``NOT_SENT`` cancellation of ``order``, whose intent was not journaled.

    It never left (the intent is committed before the request), and a restart does
    not send it now: the decision is a bar the run traded before it died. The market
    counts it pending until the cancellation, held for the next open, is reported.
    """
    _log.warning("order_never_sent", client_id=order.id)
    exchange.adopt(order)
    return Cancellation(order.id, order.bar, order.timestamp, order.quantity, NOT_SENT)


def look_up(state: JournalState, client_id: str, exchange: ExchangeVenue) -> None:
    """Track ``client_id``, whose intent was journaled, at its market again.

    The venue is asked for it by its client order id at each bar (`CcxtVenue.recover`),
    the trades the journal counted not counted again: found, it is followed; not found
    once the venue's window for the request is over, it is rejected as never arrived
    (``ORDER_NEVER_ARRIVED``), unless the journal has it acknowledged (accepted, partly
    filled, cancelled): that one stays as the journal has it and is asked again. It is
    never sent again. An order the journal left unknown is not journaled unknown a
    second time.
    """
    sent = state.sent[client_id]
    fills = state.venue_fills.get(client_id, [])
    exchange.venue.recover(
        sent_request(sent),
        sent_at=sent.sent_at,
        venue_id=next((f.venue_order_id for f in fills if f.venue_order_id), None),
        counted=[(f.trade_id, f.quantity) for f in fills],
        journaled=state.order_states.get(client_id),
    )


def _booked_unaccounted(state: JournalState, order_id: str) -> bool:
    """Whether a reconcile booked the balance to ``order_id`` (`CcxtVenue.book_unaccounted`)."""
    fills = state.venue_fills.get(order_id, [])
    return any(f.trade_id.startswith(RECONCILED_TRADE) for f in fills)


def lost_unbooked(
    state: JournalState, told: set[str], engine_of: Callable[[str], str | None] | None = None
) -> list[str]:
    """Return the sent orders the engine heard ended ``ORDER_LOST`` with no trade counted
    (a ``reconciled-`` fill included), but those of ``told`` (pending after the replay),
    in journal order: a restart looks each up again (`track_pending`).

    Args:
        engine_of: The engine order a sent order's end was told as (None: itself; a
            router's child: its parent, whose cancellation says ``ORDER_LOST``).
    """
    lost = {
        event.order_id
        for events in state.events.values()
        for event in events
        if isinstance(event, Cancellation) and event.reason == ORDER_LOST
    }
    return [
        order_id
        for order_id in state.sent
        if (order_id if engine_of is None else engine_of(order_id)) in lost
        and order_id not in told
        and not state.venue_fills.get(order_id)
        and state.order_states.get(order_id) != "rejected"  # a refused sibling
    ]


def _owed(state: JournalState, order_id: str, exchange: ExchangeVenue) -> list[Fill]:
    """Return the fills of ``order_id``'s counted trades the engine did not apply, booked.

    A limit order that fell back to market: its rest went as ``{id}-f``, whose fills
    the engine booked as the limit order's.
    """
    fills = list(state.venue_fills.get(order_id, []))
    fallback = state.sent.get(derived_client_id(order_id, "f"))
    if fallback is not None:
        fills += state.venue_fills.get(fallback.id, [])
    applied = state.engine_fills.get(order_id, 0)
    return [replace(exchange.book(trade_fill(f)), order_id=order_id) for f in fills[applied:]]


def _refused(order: Order, amount: float, row: OrderStateChanged) -> Cancellation:
    """Return the cancellation a venue's refusal of ``order`` is to the engine.

    As `ExchangeVenue` delivers it live: stamped with the order's decision bar, for
    what the refusal left unfilled, the reason ``REJECTED {code}``.
    """
    remaining = max(amount - row.filled, 0.0)
    return Cancellation(order.id, order.bar, order.timestamp, remaining, f"REJECTED {row.code}")


def recover_stops(state: JournalState, exchange: ExchangeVenue) -> None:
    """Track again the stops the run rested at the exchange and booked to no exit.

    Each is looked up by its client order id (never placed again); trades the journal
    counted for it wait for the engine's exit, as they did. The position's entry (the
    anchor its stops rest under) is the last buy or partial take-profit
    (``risk.scaling``) the engine booked fills of, as `ExchangeVenue` took it.
    """
    stops = exchange.stops
    if stops is None:
        return
    for order_id, order in state.orders.items():
        anchor = order.side > 0 or order.reason == "TAKE_PROFIT_PARTIAL"
        if anchor and state.engine_fills.get(order_id):
            exchange.entry_id = order_id
    bound = set(state.bound.values())
    for client_id, sent in state.sent.items():
        if sent.order_type not in STOP_TYPES:
            continue
        if sent.parent_id is not None:
            stops.placed_for.add(sent.parent_id)
        if client_id in bound or state.order_states.get(client_id) in ("cancelled", "rejected"):
            continue
        fills = state.venue_fills.get(client_id, [])
        stops.recover(
            sent_request(sent),
            sent_at=sent.sent_at,
            venue_id=next((f.venue_order_id for f in fills if f.venue_order_id), None),
            counted=[(f.trade_id, f.quantity) for f in fills],
            held=[trade_fill(f) for f in fills],
            journaled=state.order_states.get(client_id),
        )
