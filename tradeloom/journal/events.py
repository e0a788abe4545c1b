"""The journal's events: one frozen dataclass per kind, and the registry of kinds.

Every event carries the header of `Event`: the bar it belongs to, that bar's time
(UTC), the market symbol ('' where none) and the correlation id (the bar of the
decision it belongs to; logs print it as ``bar-N``). Each kind adds its own fields.

Where a value object of `tradeloom.domain` already holds a kind's fields (a fill,
an order, a signal...), the event *is* that object: ``FillEvent`` subclasses
`tradeloom.domain.Fill` and `Event`, so its fields are written once, in the domain,
and a consumer that wants a `Fill` can use the event as one. Such events take their
``bar`` and ``timestamp`` from the domain object. The other kinds are declared here.

A field's Python type chooses its column (`tradeloom.journal.schema`): ``int``,
``bool``, ``float``, ``str``, ``str | None``, ``pandas.Timestamp``, and anything
else (mappings, lists, a strategy document) as a JSON column. The header values
``bar = -1``, ``timestamp = NaT`` and ``correlation_id = -1`` mean "none".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from tradeloom.domain import (
    Cancellation,
    Fill,
    Halt,
    HealthAction,
    HealthChange,
    ModelTraining,
    Order,
    Rejection,
    Signal,
)
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "NO_BAR",
    "NO_TIME",
    "READ_FORMATS",
    "RUN_KINDS",
    "AllocationDecided",
    "BookProblem",
    "BookSnapshotTaken",
    "CanaryPassed",
    "CanaryRolledBack",
    "CanaryStarted",
    "ChallengerAdded",
    "ChallengerBar",
    "ChallengerFailed",
    "ChallengerFill",
    "ChallengerGate",
    "ChallengerRemoved",
    "ChallengerStarted",
    "ConfigReloadRefused",
    "ConfigReloaded",
    "ControlRequest",
    "DataLoaded",
    "Event",
    "FillEvent",
    "FillRefused",
    "FundingPayment",
    "HaltEvent",
    "HealthActionFired",
    "HealthChanged",
    "JournalReconnected",
    "KillCancel",
    "Liquidation",
    "LiveBar",
    "MarketAtStart",
    "ModelSwapRefused",
    "ModelSwapped",
    "ModelTrained",
    "ModelsSaved",
    "OrderCancelled",
    "OrderEvent",
    "OrderExpired",
    "OrderSent",
    "OrderStateChanged",
    "ParityChecked",
    "ParityGapLost",
    "Reconciled",
    "RegimeChanged",
    "RejectionEvent",
    "Restarted",
    "RetrainSkipped",
    "RiskDecision",
    "RouteDecision",
    "RouteModel",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "RunStopped",
    "SignalEvent",
    "SlicedOrder",
    "StaleData",
    "StopBound",
    "StopFellBack",
    "StrategyAtStart",
    "SymbolAbsent",
    "TradingStateChanged",
    "VenueAtStart",
    "VenueDelivered",
    "VenueFill",
    "VenueHealth",
    "VenueUnreachable",
    "WarmUp",
    "correlation",
    "event_class",
    "table_of",
]

FORMAT_VERSION = 3
"""The journal format this tradeloom writes (1: the JSON ``events`` table; 2: a table
per kind; 3: and a SQLite file's bulk rows in typed blocks, `tradeloom.journal.blocks`)."""

READ_FORMATS = frozenset({2, FORMAT_VERSION})
"""The formats this tradeloom reads (a format-2 file reopened to append stays format 2)."""

NO_BAR = -1
"""``bar`` and ``correlation_id`` of an event that belongs to no bar (NULL in SQL)."""

if TYPE_CHECKING:
    NO_TIME: pd.Timestamp = pd.NaT
    """``timestamp`` of an event that belongs to no bar (NULL in SQL): ``pd.NaT``."""


def __getattr__(name: str) -> Any:
    # PEP 562: ``NO_TIME`` is pandas' NaT, read on first use, so that reading a journal's
    # rows without their times (`tradeloom.journal.verify`) does not import pandas
    if name == "NO_TIME":
        return pd.NaT
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _no_time() -> pd.Timestamp:
    return pd.NaT


_NAN = math.nan

KINDS: dict[str, type[Event]] = {}
"""Kind name -> event class, for every kind a journal can hold."""

_TABLES: dict[str, str] = {}

_E = TypeVar("_E", bound="type[Event]")


def _kind(name: str, *, table: str | None = None) -> Any:
    """Register the decorated event class as kind ``name`` (stored in ``table``)."""

    def register(cls: _E) -> _E:
        if name in KINDS:
            raise ValueError(f"journal kind {name!r} registered twice")
        cls.KIND = name
        KINDS[name] = cls
        _TABLES[name] = table or name
        return cls

    return register


def event_class(kind: str) -> type[Event]:
    """Return the event class of ``kind``.

    Raises:
        KeyError: No such kind.
    """
    return KINDS[kind]


def table_of(kind: str) -> str:
    """Return the SQL table that holds the events of ``kind``."""
    return _TABLES[kind]


def correlation(bar: int | None) -> int:
    """Return the correlation id of a decision made at ``bar`` (-1: none)."""
    return NO_BAR if bar is None else bar


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every journal row carries.

    Attributes:
        bar: The bar the event belongs to (-1: none, e.g. a run's start).
        timestamp: That bar's open time, UTC (NaT: none); a venue's fill carries the
            trade's time.
        symbol: The market ('' where the event concerns no single market).
        correlation_id: The bar of the decision the event belongs to (a fill carries
            its order's decision bar; -1: none). Logs print it as ``bar-N``.
    """

    KIND: ClassVar[str] = ""

    bar: int = NO_BAR
    timestamp: pd.Timestamp = field(default_factory=_no_time)  # NO_TIME
    symbol: str = ""
    correlation_id: int = NO_BAR


# --- the run ---------------------------------------------------------------------


@_kind("run_started")
@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """A run started (the first row of a journal).

    Attributes:
        mode: ``backtest``, ``paper`` or ``live``.
        strategy: The strategy's name.
        source: The strategy file.
        tradeloom: The tradeloom version.
        wall_time: When it started.
        run_key: A paper or live run's key (client order ids carry it); '' for a backtest.
        capital: A paper or live run's starting cash (NaN: a backtest).
        document: The strategy document a paper or live run trades under (None: not kept).
        base_at_start: A live run's base currency balance at its first start.
        fee_rate: A live run's taker fee.
        dust: A live run's smallest tradeable quantity.
        clock: ``simulated``: the run's clock is not the wall clock (``--clock
            simulated``, an emulator's market time), so its staleness is judged by
            the run's own clock, journaled with each live bar; ``wall`` (or '', a
            journal from before the field): the wall clock.
    """

    mode: str
    strategy: str
    source: str
    tradeloom: str
    wall_time: pd.Timestamp
    run_key: str = ""
    capital: float = _NAN
    document: dict[str, Any] | None = None
    base_at_start: float = _NAN
    fee_rate: float = _NAN
    dust: float = _NAN
    clock: str = field(default="", metadata={"added": True})


@_kind("run_finished")
@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    """A backtest finished and wrote its outputs."""

    wall_time: pd.Timestamp
    seconds: float


@_kind("run_failed")
@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    """A run ended with an error (``Type: message``)."""

    error: str
    wall_time: pd.Timestamp


@_kind("run_stopped")
@dataclass(frozen=True, kw_only=True)
class RunStopped(Event):
    """A paper or live run stopped (a signal, the operator): why, after how many bars."""

    reason: str
    bars: int
    wall_time: pd.Timestamp


RUN_KINDS: frozenset[str] = frozenset({"run_started", "run_finished", "run_failed", "run_stopped"})
"""Run bookkeeping, with wall-clock times: left out of `journal_digest`."""


@_kind("data_loaded")
@dataclass(frozen=True, kw_only=True)
class DataLoaded(Event):
    """The market data of a backtest, validated.

    Attributes:
        timeframe: The bar length as written in the strategy.
        bars: How many bars.
        first: The first bar's time.
        last: The last bar's time.
        repaired: The issues ``validation: repair`` fixed (``code``, ``count``,
            ``first``, ``rows``), as `tradeloom.domain.DataIssue` fields.
        gaps: The gaps kept.
    """

    timeframe: str
    bars: int
    first: pd.Timestamp
    last: pd.Timestamp
    repaired: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)


@_kind("symbol_absent")
@dataclass(frozen=True, kw_only=True)
class SymbolAbsent(Event):
    """A stretch of the common clock where one symbol of a universe has no bar.

    The symbol gets no signal and no fill there (not listed yet, delisted, halted);
    journaled once per stretch, at its first bar (``bar``, ``timestamp``, ``symbol``).

    Attributes:
        last: The time of the stretch's last bar of the clock.
        bars: How many bars of the clock it spans.
    """

    last: pd.Timestamp
    bars: int


@_kind("warm_up")
@dataclass(frozen=True, kw_only=True)
class WarmUp(Event):
    """The history a paper or live run warmed up on (a restart checks its SHA-256)."""

    bars: int
    first: pd.Timestamp
    last: pd.Timestamp
    sha256: str


@_kind("live_bar")
@dataclass(frozen=True, kw_only=True)
class LiveBar(Event):
    """A bar a paper or live run processed, with the model's verdict (a restart replays it)."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    probability: float
    anomalous: bool
    anomaly_score: float
    wall_time: pd.Timestamp


# --- decisions -------------------------------------------------------------------


@_kind("signal")
@dataclass(frozen=True, kw_only=True)
class SignalEvent(Signal, Event):
    """A signal (`tradeloom.domain.Signal`)."""


@_kind("risk_decision")
@dataclass(frozen=True, kw_only=True)
class RiskDecision(Event):
    """What the risk layer did with a signal, when it did not reject it.

    Attributes:
        outcome: ``accepted``, ``hold`` (already positioned), ``ignored`` (an exit
            of the bar closes the position) or ``filtered`` (a regime the signal
            does not trade).
        reason: ``ENTRY`` or ``REVERSE`` when accepted; otherwise why, in words.
        target_fraction: The signed fraction of equity to hold (NaN unless accepted).
        trend: The bar's trend regime (filtered only).
        volatility: The bar's volatility regime (filtered only).
    """

    outcome: str
    reason: str
    target_fraction: float = _NAN
    trend: str = ""
    volatility: str = ""


@_kind("rejection")
@dataclass(frozen=True, kw_only=True)
class RejectionEvent(Rejection, Event):
    """A risk rejection with its reason code and values (`tradeloom.domain.Rejection`)."""


@_kind("order", table="orders")
@dataclass(frozen=True, kw_only=True)
class OrderEvent(Order, Event):
    """An order, journaled before the venue receives it (`tradeloom.domain.Order`)."""


@_kind("fill")
@dataclass(frozen=True, kw_only=True)
class FillEvent(Fill, Event):
    """A fill (`tradeloom.domain.Fill`); its correlation id is its order's decision bar."""


@_kind("order_cancelled")
@dataclass(frozen=True, kw_only=True)
class OrderCancelled(Cancellation, Event):
    """The venue stopped working an order (`tradeloom.domain.Cancellation`)."""


@_kind("order_expired")
@dataclass(frozen=True, kw_only=True)
class OrderExpired(Event):
    """An order still working when the data ended."""

    order_id: str
    reason: str


@_kind("halt")
@dataclass(frozen=True, kw_only=True)
class HaltEvent(Halt, Event):
    """Trading halted (`tradeloom.domain.Halt`)."""


@_kind("liquidation")
@dataclass(frozen=True, kw_only=True)
class Liquidation(Event):
    """A position closed by the venue because equity fell below the maintenance margin.

    Attributes:
        quantity: The quantity closed.
        side: The side of the closing trade (+1 buy, -1 sell).
        price: The liquidation price.
        fee: The liquidation fee, in quote currency.
        equity_before: Equity just before the liquidation.
        maintenance: The maintenance margin required at that moment.
    """

    quantity: float
    side: int
    price: float
    fee: float
    equity_before: float
    maintenance: float


@_kind("funding")
@dataclass(frozen=True, kw_only=True)
class FundingPayment(Event):
    """A perpetual's funding, booked at the bar whose interval holds the funding time.

    ``amount = -position x price x rate``: a long pays and a short receives when the
    rate is positive (`tradeloom.core.funding`).

    Attributes:
        rate: The funding rate (the sum of the bar's funding times' rates).
        price: The price it is applied at: the bar's open.
        position: The signed position it is applied to: the one carried into the bar.
        amount: The cash it moved, in quote currency (+ received, - paid).
        cash: The account's cash after it.
    """

    rate: float
    price: float
    position: float
    amount: float
    cash: float


@_kind("sliced_order")
@dataclass(frozen=True, kw_only=True)
class SlicedOrder(Event):
    """An order sent as child orders (``execution.orders.slicing``): the parent.

    Its children are orders whose ``parent_id`` is this ``id``; their quantities sum
    to this ``quantity``, less what was left unfilled when the parent ended.

    Attributes:
        id: The parent's id (numbered as an order is; no venue sees it).
        side: +1 buy, -1 sell.
        quantity: The parent's quantity.
        reason: Why the engine sent it (``ENTRY``, ``REVERSE``, ``EXIT_SIGNAL``).
        reference_price: The price it was sized at (the decision bar's close).
        slicing: ``twap`` or ``participation``.
        children: ``twap``: the number of children (0: participation).
        max_volume_fraction: ``participation``: a child's most, as a share of the
            volume of the bar it is sent at (NaN: twap).
    """

    id: str
    side: int
    quantity: float
    reason: str
    reference_price: float
    slicing: str
    children: int
    max_volume_fraction: float


@_kind("regime_changed")
@dataclass(frozen=True, kw_only=True)
class RegimeChanged(Event):
    """The bar's regime differs from the previous bar's."""

    trend: str
    volatility: str
    previous_trend: str
    previous_volatility: str


# --- monitoring and models ---------------------------------------------------------


@_kind("health")
@dataclass(frozen=True, kw_only=True)
class HealthChanged(HealthChange, Event):
    """A monitor's health status changed (`tradeloom.domain.HealthChange`)."""


@_kind("health_action")
@dataclass(frozen=True, kw_only=True)
class HealthActionFired(HealthAction, Event):
    """A health rule fired (`tradeloom.domain.HealthAction`; ``reason`` is derived)."""


@_kind("model_trained")
@dataclass(frozen=True, kw_only=True)
class ModelTrained(ModelTraining, Event):
    """A walk-forward fold, journaled at the first bar it predicts (its feature
    reference is not journaled)."""


@_kind("retrain_skipped")
@dataclass(frozen=True, kw_only=True)
class RetrainSkipped(Event):
    """A health rule asked for a retraining the model could not do."""

    reason: str
    why: str


@_kind("models_saved")
@dataclass(frozen=True, kw_only=True)
class ModelsSaved(Event):
    """The run's trained folds were saved (folder relative to the run, the latest fold)."""

    dir: str
    count: int
    latest: str
    sha256: str


# --- paper and live ----------------------------------------------------------------


@_kind("trading_state")
@dataclass(frozen=True, kw_only=True)
class TradingStateChanged(Event):
    """The trading state moved (ACTIVE, REDUCING, HALTED).

    Attributes:
        previous: The state before.
        state: The state after.
        code: Why, as a reason code (``DAILY_LOSS``, ``KILL_SWITCH``, ``RESUME``...).
        message: Why, in words.
        at: When (the run's clock).
    """

    previous: str
    state: str
    code: str
    message: str
    at: pd.Timestamp


@_kind("kill_cancel")
@dataclass(frozen=True, kw_only=True)
class KillCancel(Event):
    """The kill switch cancelled what was pending (a restart cancels at the same bar)."""


@_kind("control_request")
@dataclass(frozen=True, kw_only=True)
class ControlRequest(Event):
    """An operator's request (``kill``, ``flatten`` or ``resume``), before it is acted on.

    Attributes:
        action: What was asked.
        reason: Why, as the operator gave it.
        by: Who asked (`tradeloom.engine.control.ControlRequest.by`).
        request: The mailbox's request file it answers (its name in ``control/``); ''
            for the ``RUN_DIR/KILL`` file, a signal's request held in memory, and a
            journal written before the field was (a restart answers those again).
    """

    action: str
    reason: str
    by: str
    request: str = field(default="", metadata={"added": True})


@_kind("config_reloaded")
@dataclass(frozen=True, kw_only=True)
class ConfigReloaded(Event):
    """An edited strategy file was swapped in after this bar.

    Attributes:
        changed: The top-level sections that changed.
        changes: Each change in words.
        document: The strategy document traded from the next bar on.
    """

    changed: list[str]
    changes: list[str]
    document: dict[str, Any]


@_kind("config_reload_refused")
@dataclass(frozen=True, kw_only=True)
class ConfigReloadRefused(Event):
    """An edited strategy file was refused; the run trades on under the old one."""

    errors: list[str]


@_kind("model_swapped")
@dataclass(frozen=True, kw_only=True)
class ModelSwapped(Event):
    """Another model decides from the bar after this one (a swap at the bar boundary).

    The row is the source of truth a restart honours: it runs the model of the last one,
    from the copy kept in the run directory (``file``), never from where it came from.

    Attributes:
        by: Who asked: ``cli``, ``console``, ``api`` (the mailbox) or ``reload`` (the
            strategy file's ``model`` section changed).
        reason: Why, as the operator gave it.
        source: Where the model came from, as asked (a run directory and its fold, a file).
        previous: The model that decided until this bar, in words.
        previous_sha256: Its file's SHA-256 ('' for a model trained in this run).
        sha256: The new model's file's SHA-256.
        file: The copy of that file kept in the run directory (relative to it).
        model: The model section a restart builds the model in force from (``file``,
            ``sha256`` and the packages it trusts).
        request: The mailbox's request file it answers ('' for a hot reload): a request
            a restart finds still there (the process died before it was done) was
            answered, and is not again.
        strategy: The portfolio file's strategy whose model it swapped ('' for a
            strategy run alone); a restart runs each member's last.
    """

    by: str
    reason: str
    source: str
    request: str
    previous: str
    previous_sha256: str
    sha256: str
    file: str
    model: dict[str, Any]
    strategy: str = field(default="", metadata={"added": True})


@_kind("model_swap_refused")
@dataclass(frozen=True, kw_only=True)
class ModelSwapRefused(Event):
    """A model swap was refused before it happened; the run trades on with its model.

    Attributes:
        by: Who asked (as `ModelSwapped`).
        reason: Why they asked.
        source: The model asked for.
        request: The mailbox's request file it answers (as `ModelSwapped`).
        errors: Why it was refused, one line each.
        strategy: The portfolio file's strategy it was asked for (as `ModelSwapped`).
    """

    by: str
    reason: str
    source: str
    request: str
    errors: list[str]
    strategy: str = field(default="", metadata={"added": True})


@_kind("venue_delivered")
@dataclass(frozen=True, kw_only=True)
class VenueDelivered(Event):
    """How many fills and cancellations the live venue reported at a phase of a bar.

    Written by tradeloom before `VenueReported`; a restart still reads it (the report's
    call unnumbered, and which orders it ended not known).
    """

    phase: str
    events: int


@_kind("venue_reported")
@dataclass(frozen=True, kw_only=True)
class VenueReported(Event):
    """What the live venue reported at one call of a phase of a bar: a fact a restart's
    replay reads back, never derives.

    Attributes:
        phase: ``open``, ``intrabar`` (a stop), ``close``, or ``cancel`` (the engine
            cancelled an order: its cancellation, if it took effect then).
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


@_kind("venue_unreachable")
@dataclass(frozen=True, kw_only=True)
class VenueUnreachable(Event):
    """A request to the exchange failed every retry."""

    operation: str
    error: str


@_kind("stale_data")
@dataclass(frozen=True, kw_only=True)
class StaleData(Event):
    """The next bar is late (the stale-data alarm)."""

    message: str


@_kind("book_snapshot")
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


@_kind("book_problem")
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


@_kind("restarted")
@dataclass(frozen=True, kw_only=True)
class Restarted(Event):
    """A paper or live run restarted from its journal."""

    bars_replayed: int
    rows_completed: int
    position: float
    cash: float
    state: str
    wall_time: pd.Timestamp


@_kind("market_at_start")
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


@_kind("strategy_at_start")
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


@_kind("journal_reconnected")
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


@_kind("reconciled")
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


@_kind("order_sent")
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


@_kind("order_state")
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


@_kind("venue_fill")
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


@_kind("stop_fallback")
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


@_kind("route_decision")
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


@_kind("route_model")
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


@_kind("venue_at_start")
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


@_kind("venue_health")
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


@_kind("stop_bound")
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


@_kind("fill_refused")
@dataclass(frozen=True, kw_only=True)
class FillRefused(Event):
    """A trade or status that would overfill an order, not counted."""

    client_id: str
    trade_id: str | None
    quantity: float
    message: str


@_kind("allocation_decided")
@dataclass(frozen=True, kw_only=True)
class AllocationDecided(Event):
    """The allocation layer's answer at a rebalance, journaled before its orders; or a
    portfolio file's weights between its strategies recomputed at a bar's close
    (``symbols`` its strategies' names; journaled before a sizing reads them).

    Attributes:
        allocator: The allocator's kind (``allocation.kind``).
        status: ``ok``; ``infeasible`` or ``failed`` (the allocator's); ``too_few_bars``
            (a symbol without a bar in the window); ``error`` (the allocator raised, or
            answered weights that are not finite or break a constraint); ``late`` (paper
            and live: the solve passed ``live.allocation_deadline_seconds``, or the
            last one still runs).
        message: Why it is not ``ok``, in one line; empty when ok.
        weights: The target weights in force after the decision, one per symbol of
            ``symbols``: the allocator's when ok, else the last feasible ones, which
            hold (empty: none yet, and nothing is traded).
        held: The weights held at the decision bar's close (signed, of the equity).
        symbols: The universe's symbols (a portfolio file's: its strategies), in the
            weights' order.
        inputs_hash: SHA-256 (hex, 16 characters) of the trailing returns, the
            probabilities and the held weights the allocator was given.
        window: The returns the allocator was given (bars).
    """

    allocator: str
    status: str
    message: str
    weights: list[float]
    held: list[float]
    symbols: list[str]
    inputs_hash: str
    window: int


# --- challengers in shadow (`tradeloom.live.challengers`) ---------------------------


@_kind("challenger_fill")
@dataclass(frozen=True, kw_only=True)
class ChallengerFill(Fill, Event):
    """A fill a challenger's shadow book simulated (never sent): the run's paper fill
    model at the run's prices, fees and slippage (`tradeloom.domain.Fill`).

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str = ""
    strategy: str = field(default="", metadata={"added": True})


@_kind("challenger_bar")
@dataclass(frozen=True, kw_only=True)
class ChallengerBar(Event):
    """A challenger's shadow book at a clock bar's close, journaled after its fills of
    that bar: a restart continues each book from its last ``challenger_bar``.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        probabilities: Its model's probability per symbol (NaN: the symbol had no bar).
        signals: The signals its rule gave at this bar (entries, exits, reversals).
        positions: Its position per symbol, after the bar.
        cash: Its cash after the bar.
        equity: Its equity at the bar's close.
        traded: The notional its fills of this bar traded (sum of price x quantity).
        champion_equity: The champion's equity at the same close (its promotion gate
            compares the two books' per-bar returns); a portfolio file's strategy's: that
            strategy's own equity (`tradeloom.live.member_equity`).
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str
    probabilities: list[float]
    signals: int
    positions: list[float]
    cash: float
    equity: float
    traded: float
    champion_equity: float = float("nan")
    strategy: str = field(default="", metadata={"added": True})


@_kind("challenger_failed")
@dataclass(frozen=True, kw_only=True)
class ChallengerFailed(Event):
    """A challenger raised (building, training or deciding on a bar): it is dropped from
    the run, which trades on; a restart does not start it again.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        message: What it raised, one line (``ExceptionType: message``).
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str
    message: str
    strategy: str = field(default="", metadata={"added": True})


@_kind("challenger_gate")
@dataclass(frozen=True, kw_only=True)
class ChallengerGate(Event):
    """A challenger's promotion gate changed its verdict at this bar's close, with the
    evidence (`tradeloom.live.promotion_gate`): ``waiting`` (too few bars or fills),
    ``hold`` (the test does not pass), ``promote`` (it passes: the champion's model is
    swapped for the challenger's in the same commit, ``model_swapped`` by ``gate``).

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        bars: The bars both books have (their per-bar returns are one fewer).
        fills: The challenger's simulated fills.
        mean_difference: The mean per-bar return difference, challenger minus champion.
        t: The paired t statistic (NaN: fewer than two returns, or no spread).
        p: Its one-sided p-value (NaN with ``t``).
        alpha: The gate's significance level.
        verdict: ``waiting``, ``hold`` or ``promote``.
        health: The figures its health rules read, as JSON (`tradeloom.live.
            prediction_health`): ``{"auc", "calibration_error", "samples"}`` over the
            challenger's resolved predictions, null where there are too few; '' when
            the gate has no health rule.
        strategy: The portfolio file's strategy whose challenger it is ('' for a strategy
            run alone); ``challenger`` is then ``STRATEGY/NAME``.
    """

    challenger: str
    bars: int
    fills: int
    mean_difference: float
    t: float
    p: float
    alpha: float
    verdict: str
    health: str = field(default="", metadata={"added": True})
    strategy: str = field(default="", metadata={"added": True})


@_kind("challenger_started")
@dataclass(frozen=True, kw_only=True)
class ChallengerStarted(Event):
    """A portfolio file's strategy's challenger starts its shadow book, flat, with
    ``capital``: the strategy's share of the account at the run's first live bar (its
    weight then times the account's equity then). A restart reads the capital here.

    Attributes:
        challenger: Its name, ``STRATEGY/NAME``.
        strategy: The portfolio file's strategy whose challenger it is.
        capital: The cash its book starts with.
        first_bar: The first clock bar it decides on.
        entry: Its entry in the strategy file's ``challengers:`` as it started: a
            restart refuses one changed since (its book is this candidate's,
            `tradeloom.live.member_roster`).
    """

    challenger: str
    strategy: str
    capital: float
    first_bar: int
    entry: dict[str, Any]


@_kind("challenger_added")
@dataclass(frozen=True, kw_only=True)
class ChallengerAdded(Event):
    """A hot reload added a challenger to the running run (its file's ``challengers:``
    gained an entry): its shadow book starts flat, with the run's starting capital, at
    ``first_bar``; a restart starts it there again.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        first_bar: The first clock bar it decides on (the bar after this row's).
    """

    challenger: str
    first_bar: int


@_kind("challenger_removed")
@dataclass(frozen=True, kw_only=True)
class ChallengerRemoved(Event):
    """A hot reload removed a challenger from the running run (its entry left the file's
    ``challengers:``): its shadow book ends at its last ``challenger_bar``; its name is
    not given to another challenger of the run.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
    """

    challenger: str


# --- a canary stage and its rollback (`tradeloom.live.canary`) ---------------------------


@_kind("canary_started")
@dataclass(frozen=True, kw_only=True)
class CanaryStarted(Event):
    """A challenger's model decides from the next bar on at a fraction of the champion's
    size (its ``model_swapped`` row is in the same commit); the champion's model decides
    in shadow (challenger ``(champion)``) until the canary passes or is rolled back.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        fraction: The share of the sizing's size each entry takes.
        bars: The bars the canary lasts when no rollback rule fires.
        by: Who asked: ``gate``, or ``cli``, ``console``, ``api`` (by hand).
        reason: Why, in words.
        request: What it answers (``challenger:NAME``, ``@`` and the mailbox's request
            file by hand).
        champion: The champion's ``model`` section: the file a rollback swaps back in.
        champion_sha256: That file's SHA-256.
        equity: The run's equity at this bar's close (its drawdown is measured from here).
        rollback_when: The canary's rollback rules (``promote_when.canary.rollback_when``,
            every field, ``min_samples`` too) as JSON: a restart reads them here, not in
            the file, whose entry may have changed or gone since ('' in a journal written
            before they were journaled: the file's entry's).
        watch: The watch after its full promotion (``promote_when.watch``, every field)
            as JSON: its ``canary_passed`` starts it ('' none, or a journal written
            before watches were).
    """

    challenger: str
    fraction: float
    bars: int
    by: str
    reason: str
    request: str
    champion: dict[str, Any]
    champion_sha256: str
    equity: float
    rollback_when: str = field(default="", metadata={"added": True})
    watch: str = field(default="", metadata={"added": True})


@_kind("canary_passed")
@dataclass(frozen=True, kw_only=True)
class CanaryPassed(Event):
    """A canary ended with its candidate the full champion: its bars passed without a
    rollback rule firing (``by: canary``), or an operator promoted it by hand.

    Attributes:
        challenger: The challenger's name.
        bars: The bars the candidate decided at the canary's size.
        by: ``canary``, or ``cli``, ``console``, ``api``.
        reason: Why, in words.
        request: The mailbox's request file it answers ('' for ``canary``).
        drawdown: The run's drawdown from its highest close since the canary started.
        auc: The candidate's AUC over the canary's resolved predictions (NaN: too few).
        calibration_error: Their expected calibration error (NaN: too few).
        samples: How many resolved predictions those two read.
    """

    challenger: str
    bars: int
    by: str
    reason: str
    request: str
    drawdown: float
    auc: float
    calibration_error: float
    samples: int


@_kind("canary_rolled_back")
@dataclass(frozen=True, kw_only=True)
class CanaryRolledBack(Event):
    """A canary was rolled back: the champion's model decides again from the next bar at
    its full size (its ``model_swapped`` row is in the same commit).

    Attributes:
        challenger: The challenger's name.
        bars: The bars the candidate decided at the canary's size.
        by: ``canary`` (a rule fired), or ``cli``, ``console``, ``api``.
        rule: The rule that fired (``max_drawdown``, ``min_auc``,
            ``max_calibration_error``, ``max_parity_gap``; '' by hand).
        figure: Its figure at this bar's close (NaN by hand).
        limit: The rule's limit (NaN by hand).
        reason: Why, in words.
        request: The mailbox's request file it answers ('' for ``canary``).
        drawdown: As `CanaryPassed`.
        auc: As `CanaryPassed`.
        calibration_error: As `CanaryPassed`.
        samples: As `CanaryPassed`.
    """

    challenger: str
    bars: int
    by: str
    rule: str
    figure: float
    limit: float
    reason: str
    request: str
    drawdown: float
    auc: float
    calibration_error: float
    samples: int


# --- a watch after a full promotion (`tradeloom.live.promotion_watch`) ------------------


@_kind("watch_started")
@dataclass(frozen=True, kw_only=True)
class WatchStarted(Event):
    """A challenger became the full champion (its canary passed, or its promotion when it
    has none, in the same commit) and its ``promote_when.watch`` rules are read at each
    bar's close for ``bars`` bars: one that fires puts the previous champion back.

    Attributes:
        challenger: The challenger's name (``challengers[].name``).
        bars: The bars the watch lasts when no rollback rule fires.
        by: Who promoted: ``gate``, ``canary``, or ``cli``, ``console``, ``api``.
        reason: Why, in words.
        request: What the promotion answered (as its ``model_swapped`` or
            ``canary_passed`` row).
        champion: The previous champion's ``model`` section: the file a rollback swaps
            back in (kept in ``RUN_DIR/swapped/``).
        champion_sha256: That file's SHA-256.
        equity: The run's equity at this bar's close (the rules' figures start here).
        rollback_when: The watch's rollback rules, every field, as JSON (a restart reads
            them here, not in the file).
    """

    challenger: str
    bars: int
    by: str
    reason: str
    request: str
    champion: dict[str, Any]
    champion_sha256: str
    equity: float
    rollback_when: str


@_kind("watch_passed")
@dataclass(frozen=True, kw_only=True)
class WatchPassed(Event):
    """A watch ended with no rollback rule fired: the promotion is final.

    Attributes:
        challenger: The challenger's name.
        bars: The bars watched.
        drawdown: The run's drawdown from its highest close since the watch started.
        auc: The promoted model's AUC over the watch's resolved predictions (NaN: too few).
        calibration_error: Their expected calibration error (NaN: too few).
        samples: How many resolved predictions those two read.
        parity_gap: The run's return since the watch started minus its replay's (NaN:
            no ``max_parity_gap`` rule).
    """

    challenger: str
    bars: int
    drawdown: float
    auc: float
    calibration_error: float
    samples: int
    parity_gap: float


@_kind("parity_gap_lost")
@dataclass(frozen=True, kw_only=True)
class ParityGapLost(Event):
    """A canary's or a watch's ``max_parity_gap`` rule stopped reading its gap: the run's
    replay (`tradeloom.live.parity_twin`) cannot follow what the run did at this bar, so
    the rule reads no gap (NaN, never fires) until the stage ends; its other rules still
    read.

    Attributes:
        challenger: The challenger's name (the stage's).
        cause: ``reload`` (a hot reload: the replay trades the strategy the stage
            started with) or ``kill`` (the kill switch halted the run; the replay
            knows nothing of it).
        message: One line for a person.
    """

    challenger: str
    cause: str
    message: str


@_kind("promotion_rolled_back")
@dataclass(frozen=True, kw_only=True)
class PromotionRolledBack(Event):
    """A watched promotion was rolled back: the previous champion's model decides again
    from the next bar (its ``model_swapped`` row is in the same commit).

    Attributes:
        challenger: The challenger whose promotion was rolled back.
        bars: The bars watched.
        by: ``watch`` (a rule fired), or ``cli``, ``console``, ``api``.
        rule: The rule that fired ('' by hand).
        figure: Its figure at this bar's close (NaN by hand).
        limit: The rule's limit (NaN by hand).
        reason: Why, in words.
        request: The mailbox's request file it answers ('' for ``watch``).
        drawdown: As `WatchPassed`.
        auc: As `WatchPassed`.
        calibration_error: As `WatchPassed`.
        samples: As `WatchPassed`.
        parity_gap: As `WatchPassed`.
    """

    challenger: str
    bars: int
    by: str
    rule: str
    figure: float
    limit: float
    reason: str
    request: str
    drawdown: float
    auc: float
    calibration_error: float
    samples: int
    parity_gap: float


@_kind("parity_checked")
@dataclass(frozen=True, kw_only=True)
class ParityChecked(Event):
    """The live parity monitor (``live.parity``) compared the run's last window of bars
    with its replay as a backtest (journaled at the tick after the check ended).

    Attributes:
        first_bar: The window's first bar.
        last_bar: The window's last bar (the last bar the check read; ``bar`` is the
            bar it was journaled at).
        equity_gap: The run's equity less the replay's at ``last_bar``.
        window_gap: How much of that gap arose inside the window.
        unexplained_pnl: The P&L inside the window that no journaled fact explains.
        max_unexplained: The threshold (``live.parity.max_unexplained``).
        first_divergence: The window's first difference (``bar N field: cause``; '':
            none).
        verdict: ``ok`` (nothing unexplained past the threshold), ``diverged`` or
            ``failed`` (the check could not run: ``message`` says why).
        message: One line for a person.
    """

    first_bar: int
    last_bar: int
    equity_gap: float
    window_gap: float
    unexplained_pnl: float
    max_unexplained: float
    first_divergence: str
    verdict: str
    message: str
