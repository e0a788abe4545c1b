"""What a restart rebuilds from journal rows, and how it checks the venue against them.

`sent_request` and `trade_fill` turn ``order_sent`` and ``venue_fill`` rows back into
the venue's request and trade; `reconcile_market` refuses to trade when a market's base
balance (a perpetual swap's: its position at the exchange) is not the journal's
position. A restart (`tradeloom.live.recovery.restart`), its hand-over of pending orders
(`tradeloom.live.recovery.handover`) and a router's venues call them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tradeloom.core.accounting import flat_within
from tradeloom.domain import Fill, Order
from tradeloom.errors import UserError
from tradeloom.journal import OrderSent, Reconciled, VenueFill
from tradeloom.live.recovery.journal_state import domain_value
from tradeloom.plugins.protocols_orders.order_events import OrderView, TradeFill, VenueOrder
from tradeloom.plugins.protocols_orders.order_state import TERMINAL, OrderState
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.retrying import RetriesExhausted

if TYPE_CHECKING:
    from tradeloom.live.orders.exchange_venue import ExchangeVenue
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.services import JournalLink, RunFiles
    from tradeloom.live.tick.session import LiveSession

__all__ = [
    "UNRECONCILED",
    "HeldPosition",
    "Reconciling",
    "RestartRefused",
    "Standing",
    "UnknownBand",
    "account_position",
    "book_difference",
    "reconcile_lost",
    "reconcile_market",
    "sent_request",
    "trade_fill",
    "unknown_band",
]

_log = logger("tradeloom.live")


class RestartRefused(UserError):
    """The journal, the data or the venue disagree: the run must not trade."""


@dataclass(frozen=True)
class Reconciling:
    """A restarted run, as each of its markets reconciles its balances with the journal
    (`tradeloom.live.accounts.market.Market.reconcile`).

    Attributes:
        files: The restarted run's files.
        link: Its journal.
        session: Its session, rebuilt.
        state: Its journal, read.
    """

    files: RunFiles
    link: JournalLink
    session: LiveSession
    state: JournalState


@dataclass(frozen=True)
class HeldPosition:
    """The journal's position in one market of a restarted run.

    Attributes:
        position: The journal's position in the market.
        base_at_start: The base balance at the run's first start (NaN: 0).
        symbol: The market, named in the rows and the refusal ('' for a run of one).
        index: The market's symbol in the engine, whose flat band it is judged by.
    """

    position: float
    base_at_start: float
    symbol: str
    index: int


def sent_request(sent: OrderSent) -> VenueOrder:
    """Return the order a journaled ``order_sent`` row asked the venue for."""
    order = domain_value(sent, Order)
    side: Any = "buy" if order.side > 0 else "sell"
    price = None if math.isnan(sent.limit_price) else sent.limit_price
    trigger = None if math.isnan(sent.trigger_price) else sent.trigger_price
    order_type: Any = sent.order_type
    tif: Any = sent.time_in_force
    return VenueOrder(
        order, sent.symbol, order_type, side, sent.amount, price, trigger, sent.post_only, tif
    )


def trade_fill(row: VenueFill) -> TradeFill:
    """Return the trade a journaled ``venue_fill`` row counted."""
    fill = Fill(
        row.order_id,
        row.bar,
        row.timestamp,
        row.side,
        row.quantity,
        row.price,
        0.0 if math.isnan(row.fee) else row.fee,
        0.0 if math.isnan(row.slippage) else row.slippage,
        row.liquidity,
    )
    fee_cost = 0.0 if math.isnan(row.fee_cost) else row.fee_cost
    return TradeFill(row.trade_id, row.venue_order_id, fill, fee_cost, row.fee_currency)


@dataclass(frozen=True)
class UnknownBand:
    """What the orders whose fills are not all known may have moved a market's position.

    Attributes:
        unknown: Those orders, in submission order.
        low: The most they may have sold (signed, <= 0).
        high: The most they may have bought (>= 0).
        unaccounted: Of all the orders, those whose trades the venue cannot tell
            (`CcxtVenue.unaccounted`), by client order id.
    """

    unknown: list[OrderView]
    low: float
    high: float
    unaccounted: frozenset[str]

    def allows(self, difference: float, tolerance: float) -> bool:
        """Whether the account's position less the journal's is one these orders (and
        ``tolerance``) can make."""
        return bool(
            np.isfinite(difference) and self.low - tolerance <= difference <= self.high + tolerance
        )

    @property
    def only_unaccounted(self) -> bool:
        """Whether every order whose fills are not known is one whose trades the venue
        cannot tell (so only they can make a difference, booked to them)."""
        return {view.client_id for view in self.unknown} <= self.unaccounted


def account_position(exchange: ExchangeVenue, base_at_start: float) -> tuple[float, float]:
    """Read the account's position in the market, with retries.

    Returns:
        The base balance (a perpetual swap's: NaN, its balance is margin) and the
        position the account holds: the balance less ``base_at_start`` (NaN: 0), a
        swap's position at the exchange (ccxt's ``fetch_positions``).

    Raises:
        RetriesExhausted: The exchange did not answer.
    """
    venue = exchange.venue
    if exchange.swap:
        return math.nan, venue.position()
    balance = venue.balance().get(exchange.base, 0.0)
    return balance, balance - (0.0 if math.isnan(base_at_start) else base_at_start)


def unknown_band(exchange: ExchangeVenue, *, polled: bool, flat: float) -> UnknownBand:
    """Return what the market's orders whose fills are not all known may have filled.

    Args:
        exchange: The market.
        polled: Whether its last poll was answered (a working order's trades counted).
        flat: What counts as no position (an order with less left counts for nothing).
    """
    venue = exchange.venue
    # An order not finished may have filled anything up to what it has left: unknown
    # (the venue did not answer a lookup; the next tick asks again), or working when
    # the poll of its trades failed (it traded on while the run was down). One the venue
    # says filled more than its trades counted (a read of them failed) has filled up to
    # that much more. Less a fee charged in the base asset; their trades are counted
    # later. (With the poll answered, a working order's trades are counted: a resting
    # stop does not widen the band.)
    unknown: list[OrderView] = []
    moves: list[float] = []
    # An order acknowledged in the journal with no venue id (none of its trades counted)
    # that a lookup by client id found nowhere (an exchange that archives finished
    # orders, or finds only open ones by id) may have filled anything up to what it has
    # left; its trades cannot be told apart. Only such orders making the difference,
    # the account's position is adopted: booked to them (`book_difference`).
    unaccounted = frozenset(view.client_id for view in venue.unaccounted())
    for view in venue.orders():
        left = max(view.quantity - view.filled, 0.0)
        working = view.state not in TERMINAL and not polled
        if view.state is OrderState.UNKNOWN or (
            (working or view.client_id in unaccounted) and left > flat
        ):
            unknown.append(view)
            moves.append(view.request.order.side * left)
        elif view.venue_filled - view.filled > flat:  # not a rounding residue
            unknown.append(view)
            moves.append(view.request.order.side * (view.venue_filled - view.filled))
    low, high = sum(min(m, 0.0) for m in moves), sum(max(m, 0.0) for m in moves)
    return UnknownBand(unknown, low, high, unaccounted)


def book_difference(
    exchange: ExchangeVenue,
    band: UnknownBand,
    *,
    position: float,
    held: float,
    tolerance: float,
    symbol: str = "",
) -> list[tuple[str, float, float]]:
    """Book the account's difference to the orders whose trades the venue cannot tell.

    The one rule of a restart's reconcile and of the run's own when an order ends
    ``ORDER_LOST`` (`reconcile_lost`): when the account's position differs from the
    journal's beyond ``tolerance`` and only such orders can have made it, it is booked
    to them (`ExchangeVenue.adopt_unaccounted`: trade ``reconciled-{client id}`` at the
    order's own price with the fee the market charges it, `CcxtVenue.book_unaccounted`;
    the order ends ``ORDER_LOST`` for its rest), logged ``reconcile_adopted_position``.

    Returns:
        ``(client id, quantity, price)`` of each booking (empty: none).
    """
    difference = held - position
    if abs(difference) <= tolerance or not band.only_unaccounted:
        return []
    booked = exchange.adopt_unaccounted(difference, tolerance)
    if booked:
        _log.warning(
            "reconcile_adopted_position",
            symbol=symbol or exchange.venue.symbol,
            journal_position=position,
            venue_position=held,
            booked=[
                {"client_id": client_id, "quantity": quantity, "price": price}
                for client_id, quantity, price in booked
            ],
            why="orders acknowledged without a venue id, found nowhere by their client "
            "id: what they filled is booked from the balance at their own price with "
            "the market's fee, and they end ORDER_LOST",
        )
    return booked


@dataclass(frozen=True)
class Standing:
    """What a market reconciles the account against while the run trades.

    Attributes:
        base_at_start: The account's base balance at the run's first start (NaN: 0; a
            swap's: 0).
        position_tolerance: ``live.position_tolerance``.
        held: The engine's position in the market now and how near zero counts as flat
            there (the core's band for it).
    """

    base_at_start: float
    position_tolerance: float
    held: Callable[[], tuple[float, float]]


UNRECONCILED = "ORDER_LOST_UNRECONCILED"
"""Why an order due to end ``ORDER_LOST`` works on for the engine (journaled as a venue's
trouble, ``reconcile``): the account could not say what it filled, so nothing more is
sent for its market (the engine's next order there is refused ``CANCEL_UNCONFIRMED``)."""


def reconcile_lost(exchange: ExchangeVenue, standing: Standing, *, polled: bool) -> str | None:
    """Book what the orders due to end ``ORDER_LOST`` filled, from the account, at once.

    Lookups by client id found them nowhere (`CcxtVenue.lost_due`): what they filled is
    the account's word alone. The account's position is read as a restart's reconcile
    reads it, against the engine's (with what was counted and not delivered yet), and
    the difference booked to them by the same rule (`book_difference`): the engine hears
    the fill at this open, and decides on the position the account holds. The caller
    then ends the ones nothing was booked to (`CcxtVenue.end_lost`).

    Returns:
        None when the account answered and its position is explained; otherwise why
        they wait, working for the engine (nothing more is sent for the market), to be
        asked again at the next open: the account could not be read, another order's
        fills are not known yet, or the difference is none these orders can make.
    """
    due = exchange.venue.lost_due()
    position, band_of_zero = standing.held()
    position += exchange.undelivered_position()
    try:
        _, held = account_position(exchange, standing.base_at_start)
    except RetriesExhausted as error:
        return (
            f"{UNRECONCILED}: {', '.join(due)} found nowhere by client order id, and the "
            f"account's position could not be read ({error}); nothing more is sent for "
            f"{exchange.venue.symbol} until it is"
        )
    flat = max(exchange.dust, band_of_zero)
    tolerance = standing.position_tolerance * abs(position) + flat
    band = unknown_band(exchange, polled=polled, flat=flat)
    others = [v.client_id for v in band.unknown if v.client_id not in band.unaccounted]
    if others:
        return (
            f"{UNRECONCILED}: {', '.join(due)} found nowhere by client order id, and the "
            f"fills of {', '.join(others)} are not all known yet; nothing more is sent for "
            f"{exchange.venue.symbol} until they are"
        )
    difference = held - position
    if abs(difference) <= tolerance:
        return None  # they filled nothing
    booked = []
    if band.allows(difference, tolerance):
        booked = book_difference(exchange, band, position=position, held=held, tolerance=tolerance)
    if booked:
        return None
    base = exchange.base
    return (
        f"{UNRECONCILED}: {', '.join(due)} found nowhere by client order id; the engine's "
        f"position is {position:.8g} {base}, the account's {held:.8g} {base} (tolerance "
        f"{tolerance:.3g}), which they cannot be booked to alone; nothing more is sent "
        f"for {exchange.venue.symbol} until it is"
    )


def reconcile_market(
    files: RunFiles,
    link: JournalLink,
    session: LiveSession,
    exchange: ExchangeVenue,
    *,
    position: float,
    base_at_start: float,
    run_key: str,
    symbol: str = "",
    index: int = 0,
) -> None:
    """Refuse to trade when the venue's base balance is not the journal's position.

    A perpetual swap's position is the exchange's (ccxt's ``fetch_positions``: signed
    contracts times the contract size), compared as it is: its balance is margin, not
    the position. Journals what it compared (``reconciled``, stamped with ``symbol``;
    a swap's ``base_balance`` NaN).

    Args:
        files: The restarted run's files.
        link: Its journal.
        session: Its session, rebuilt.
        exchange: The market's exchange venue, its pending orders handed over.
        position: The journal's position in the market (the replay's).
        base_at_start: The account's base balance at the run's first start (NaN: 0).
        run_key: The run's key (its client order ids carry it).
        symbol: The market, named in the row and the refusal (a universe's); '' for a
            run of one market.
        index: The market's symbol in the engine (a universe's; 0 otherwise), whose
            flat band the core trades by: a difference within it is no position.

    Raises:
        RestartRefused: The balance differs from the position beyond the tolerance and
            what the orders whose fills are not all known may have filled, or the venue
            has an open order of this run that the journal does not know.
    """
    polled = exchange.refresh()
    venue = exchange.venue
    base = exchange.base
    position += exchange.undelivered_position()
    balance, held = account_position(exchange, base_at_start)
    # what the core counts as flat (a lot, or what the minimum notional buys at the
    # mark): a venue position worth less than the minimum is no position here either
    state = session.engine.state
    flat = max(exchange.dust, flat_within(state.sym, state.prm, index))
    tolerance = files.config.live.position_tolerance * abs(position) + flat
    band = unknown_band(exchange, polled=polled, flat=flat)
    unknown = band.unknown
    recorder = link.recorder_or_fail
    header = recorder.at(len(session.history) - 1)
    recorder.record(
        Reconciled(
            **{**header, "symbol": symbol},
            position=position,
            venue_position=held,
            base_balance=balance,
            tolerance=tolerance,
            unknown_orders=[view.client_id for view in unknown],
        )
    )
    link.journal_or_fail.flush()
    market = f" {symbol}:" if symbol else ""
    difference = held - position
    if not band.allows(difference, tolerance):
        pending = f", {len(unknown)} order(s) whose fills are not all known" if unknown else ""
        if exchange.swap:
            raise RestartRefused(
                f"{files.run_dir}:{market} the journal's position is {position:.8g} {base}, "
                f"the exchange's position in {venue.symbol} is {held:.8g} {base} (tolerance "
                f"{tolerance:.3g}{pending}); refusing to trade: find the difference (a manual "
                "trade? another run on this account?) before restarting"
            )
        raise RestartRefused(
            f"{files.run_dir}:{market} the journal's position is {position:.8g} {base}, the "
            f"venue holds {held:.8g} {base} more than at the first start (tolerance "
            f"{tolerance:.3g}{pending}); refusing to trade: find the difference (a manual "
            "trade? another run on this account?) before restarting"
        )
    book_difference(
        exchange, band, position=position, held=held, tolerance=tolerance, symbol=symbol
    )
    tracked = {view.client_id for view in venue.orders()}
    for order in venue.open_orders():
        client_id = str(order.get("clientOrderId") or "")
        if f"-{run_key}-" in client_id and client_id not in tracked:
            raise RestartRefused(
                f"{files.run_dir}:{market} the venue has an open order {client_id} of this "
                "run that the journal does not know; refusing to trade"
            )
