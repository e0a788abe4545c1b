"""A paper or live run's venue and its restart: what the venue reported and delivered, the
orders sent and their states, the fills it counted, the routes, the books, what a
restart found and reconciled.

One frozen dataclass per kind (`tradeloom.journal.events`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tradeloom.domain import (
    Fill,
    Order,
)
from tradeloom.journal.events.base import Event, kind
from tradeloom.runtime.lazy import pandas as pd

_NAN = math.nan

__all__ = [
    "BookProblem",
    "BookSnapshotTaken",
    "FillRefused",
    "JournalReconnected",
    "MarketAtStart",
    "OrderSent",
    "OrderStateChanged",
    "Reconciled",
    "Restarted",
    "RouteDecision",
    "RouteModel",
    "StaleData",
    "StopBound",
    "StopFellBack",
    "StrategyAtStart",
    "VenueAtStart",
    "VenueDelivered",
    "VenueFill",
    "VenueHealth",
    "VenueReported",
    "VenueUnreachable",
]


@kind("venue_delivered", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class VenueDelivered(Event):
    """How many fills and cancellations the live venue reported at a phase of a bar.

    Written by tradeloom before `VenueReported`; a restart still reads it (the report's
    call unnumbered, and which orders it ended not known).
    """

    phase: str
    events: int


@kind("venue_reported", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class VenueReported(Event):
    """What the live venue reported at one call of a phase of a bar: a fact a restart's
    replay reads back, never derives.

    Attributes:
        phase: ``open``, ``intrabar`` (a stop), ``close``, ``cancel`` (the engine
            cancelled an order: its cancellation, if it took effect then), or
            ``cancel_fills`` (after the engine's cancels: the fills they turned up).
        call: Which call of the phase at the bar it was, from 0 (a universe asks each
            symbol's stop at ``intrabar``).
        events: How many fills and cancellations it reported.
        ended: The orders the venue stopped working at it (filled, cancelled, refused;
            a router's order: once no child works), which the engine may then replace.
    """

    phase: str
    call: int
    events: int
    ended: list[str]


@kind("venue_unreachable", read_by=("status", "status_error", "alert"))
@dataclass(frozen=True, kw_only=True)
class VenueUnreachable(Event):
    """A request to the exchange failed every retry (operation ``reconcile``: an order
    found nowhere waits, working, for the account to say what it filled)."""

    operation: str
    error: str


@kind("stale_data", read_by=("status", "status_error", "alert", "metrics"))
@dataclass(frozen=True, kw_only=True)
class StaleData(Event):
    """The next bar is late (the stale-data alarm)."""

    message: str


@kind("book_snapshot")
@dataclass(frozen=True, kw_only=True)
class BookSnapshotTaken(Event):
    """An order-book snapshot a paper or live run read and kept (a restart reads it back).

    Journaled at the tick that read it, before its bars are stepped; ``bar`` is the
    first of them (the snapshot is read at its close).

    Attributes:
        read_at: Its time: when the run read it (the time the as-of join uses).
        bids: ``[price, size]`` levels, best (highest) first.
        asks: ``[price, size]`` levels, best (lowest) first.
    """

    read_at: pd.Timestamp
    bids: list[list[float]]
    asks: list[list[float]]


@kind("book_problem")
@dataclass(frozen=True, kw_only=True)
class BookProblem(Event):
    """A paper or live run has no new order-book snapshot: the one before stays in force.

    Attributes:
        code: ``unreachable`` (no answer after every retry, or the exchange refused),
            ``malformed`` (the answer is not a book: non-numeric levels...), or the
            check the snapshot failed (``crossed``, ``empty``, ``negative_size``,
            ``unsorted_levels``, ``duplicate_timestamp``, ``unsorted``).
        message: One line saying what and when.
    """

    code: str
    message: str


@kind("restarted", read_by=("status", "live_timeline", "alert"))
@dataclass(frozen=True, kw_only=True)
class Restarted(Event):
    """A paper or live run restarted from its journal."""

    bars_replayed: int
    rows_completed: int
    position: float
    cash: float
    state: str
    wall_time: pd.Timestamp


@kind("market_at_start", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class MarketAtStart(Event):
    """One market of a live run over a universe, as its account held it at the first start.

    A restart reconciles the market (its ``symbol``) against these values: the base
    balance then plus the journal's position is what the account must hold.

    Attributes:
        base: The market's base asset (``ETH`` of ``ETH/USDT``).
        base_at_start: The account's balance of ``base`` at the run's first start.
        dust: The market's smallest tradable amount (its lot step or minimum).
        fee_rate: The market's taker fee.
    """

    base: str
    base_at_start: float
    dust: float
    fee_rate: float


@kind("strategy_at_start", read_by=("status", "lifecycle"))
@dataclass(frozen=True, kw_only=True)
class StrategyAtStart(Event):
    """One strategy of a portfolio file's paper or live run, as it started: what parity
    replays it under (`tradeloom.diagnostics.parity_portfolio`), whatever its file
    holds later.

    Attributes:
        strategy: The strategy's name.
        file: Its file, as the portfolio file names it.
        document: Its strategy document, as the run loaded it.
    """

    strategy: str
    file: str
    document: dict[str, Any]


@kind("journal_reconnected")
@dataclass(frozen=True, kw_only=True)
class JournalReconnected(Event):
    """The journal's database was lost and is back: the gap, journaled once it could be.

    No bar ran and no order was sent between ``lost_at`` and ``back_at``; the run then
    rebuilt itself from the journal as a restart does (``restarted`` follows).
    """

    lost_at: pd.Timestamp
    back_at: pd.Timestamp
    error: str
    last_seq: int
    events_lost: int


@kind("reconciled")
@dataclass(frozen=True, kw_only=True)
class Reconciled(Event):
    """A restarted live run compared the journal's position with the venue's balance.

    Attributes:
        position: The journal's position (and the fills counted, not yet reported).
        venue_position: What the venue holds beyond the balance at the first start (a
            swap: its position).
        base_balance: The account's base balance (NaN: a swap).
        tolerance: The difference allowed (``live.position_tolerance``, the flat band).
        unknown_orders: The orders whose fills are not all known, which widen it: those
            not finished (unknown: a lookup failed; or working when the restart's
            read of their trades failed) and those the venue reported filled beyond
            the trades counted (a read of them failed).
    """

    position: float
    venue_position: float
    base_balance: float
    tolerance: float
    unknown_orders: list[str]


@kind("order_sent", read_by=("restart", "metrics"))
@dataclass(frozen=True, kw_only=True)
class OrderSent(Order, Event):
    """A live order as it will be sent, committed before the request leaves.

    The order's ``id`` is the client order id; ``symbol`` is the market.

    Attributes:
        order_type: ``market``, ``limit``, ``stop_loss`` or ``take_profit``.
        amount: The quantity after the market's precision (0: it rounds away).
        limit_price: The limit price after the market's precision (NaN: not a limit order).
        sent_at: When it was sent, seconds since the epoch.
        trigger_price: A stop's trigger price after the market's precision (NaN: not a
            stop).
        post_only: A limit order sent post-only.
        time_in_force: A limit order's ``GTC``, ``IOC`` or ``FOK``.
    """

    order_type: str
    amount: float
    limit_price: float
    sent_at: float
    trigger_price: float = _NAN
    post_only: bool = False
    time_in_force: str = "GTC"


@kind("order_state", read_by=("restart", "status"))
@dataclass(frozen=True, kw_only=True)
class OrderStateChanged(Event):
    """A live order moved from one state to another.

    Attributes:
        client_id: The order's client order id.
        previous: The state it left.
        state: The state it entered.
        reason: Why (``sent``, ``acknowledged``, ``RequestTimeout: ...``).
        filled: The quantity filled when it moved.
        code: A rejection's reason code ('' unless rejected).
        message: A rejection's message.
    """

    client_id: str
    previous: str
    state: str
    reason: str
    filled: float
    code: str = ""
    message: str = ""


@kind("venue_fill", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class VenueFill(Fill, Event):
    """A venue trade counted against one of the run's orders (once, by its trade id).

    Attributes:
        trade_id: The venue's trade id.
        venue_order_id: The venue's id of the order (None: not known).
        fee_cost: The fee as the venue charged it.
        fee_currency: Its currency (None: no fee reported).
    """

    trade_id: str
    venue_order_id: str | None
    fee_cost: float
    fee_currency: str | None


@kind("stop_fallback", read_by=("status", "status_error"))
@dataclass(frozen=True, kw_only=True)
class StopFellBack(Event):
    """A stop the exchange did not take: the bar-close market exit guards instead.

    Attributes:
        client_id: The stop order's client order id.
        order_type: ``stop_loss`` or ``take_profit``.
        trigger_price: The level the bar-close exit watches.
        code: ``STOP_UNSUPPORTED`` (the exchange or market cannot take it; not sent)
            or the exchange's rejection code (``VENUE_REJECTED``).
        reason: Why, as the check or the exchange said it.
    """

    client_id: str
    order_type: str
    trigger_price: float
    code: str
    reason: str


@kind("route_decision", read_by=("restart", "metrics"))
@dataclass(frozen=True, kw_only=True)
class RouteDecision(Event):
    """One child order the router sends, journaled before it is sent.

    Attributes:
        order_id: The child's client order id (``{parent}-r{k}``), as sent to ``venue``.
        parent_id: The engine's order id the child is part of.
        venue: The venue's name (``execution.venues[].name``).
        quantity: The child's base quantity.
        expected_price: The average price the policy expects, before fees.
        expected_cost_bps: Its expected cost after fees against the order's decision
            price, adverse positive.
        candidates: JSON text: every venue with its capacity, expected price, cost and
            why it was excluded ('' when it was not).
    """

    order_id: str
    parent_id: str
    venue: str
    quantity: float
    expected_price: float
    expected_cost_bps: float
    candidates: str


@kind("route_model")
@dataclass(frozen=True, kw_only=True)
class RouteModel(Event):
    """The venues a backtest or paper run modelled its router with, before each venue was
    modelled (one row at its start; no longer written, still read).

    Attributes:
        market_venue: The venue of market orders: lowest taker fee plus slippage.
        limit_venue: The venue of resting limit orders: lowest maker fee.
        taker_fee: The market venue's taker fee rate.
        slippage: The market venue's slippage, as a fraction.
        maker_fee: The limit venue's maker fee rate.
        initial_cash: The sum of the venues' cash.
    """

    market_venue: str
    limit_venue: str
    taker_fee: float
    slippage: float
    maker_fee: float
    initial_cash: float


@kind("venue_at_start", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class VenueAtStart(Event):
    """One venue of a live router when the run first started: what a restart
    reconciles that venue's account against.

    Attributes:
        venue: The venue's name.
        base: The base asset of the traded market on it.
        base_at_start: Its base balance then.
        dust: Its market's lot (a position within it of zero is flat).
    """

    venue: str
    base: str
    base_at_start: float
    dust: float


@kind("venue_health")
@dataclass(frozen=True, kw_only=True)
class VenueHealth(Event):
    """A router's venue was marked down, or came back after its cool-off.

    Attributes:
        venue: The venue's name.
        state: ``down`` or ``up``.
        failures: Consecutive failed requests when it changed.
        reason: The last failure's message ('' when it came back).
    """

    venue: str
    state: str
    failures: int
    reason: str


@kind("stop_bound", read_by=("restart",))
@dataclass(frozen=True, kw_only=True)
class StopBound(Event):
    """An exit of the engine's booked as a stop order resting at the exchange.

    The live runner rests a position's stop-loss (take-profit) at the exchange under
    ``client_id``; when the engine's exit ``order_id`` comes (the stop the bar
    reached, or another exit of the position) the resting order's fills are that
    exit's: nothing more is sent for it.

    Attributes:
        client_id: The resting stop order's client order id (``{entry}-sl``, ``-tp``).
        order_id: The engine's exit order its fills are booked to.
        state: The resting order's state when it was bound (``filled``, ``accepted``...).
    """

    client_id: str
    order_id: str
    state: str


@kind("fill_refused", read_by=("status", "status_error"))
@dataclass(frozen=True, kw_only=True)
class FillRefused(Event):
    """A trade or status that would overfill an order, not counted."""

    client_id: str
    trade_id: str | None
    quantity: float
    message: str
