"""What a paper or live run's journal says, read back for a restart.

`read_state` groups the events a restart needs: how the run started (mode, run
key, capital), the bars it processed with the model's verdicts, what the venue
delivered at each bar, the intents sent and every trade counted, the last
trading state change, and the last model training.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from tradeloom.core.codes import RENAMED
from tradeloom.domain import Cancellation, Fill, Order
from tradeloom.journal import (
    AllocationDecided,
    CanaryPassed,
    CanaryRolledBack,
    CanaryStarted,
    ConfigReloaded,
    ControlRefused,
    ControlRequest,
    Event,
    FillEvent,
    KillCancel,
    LiveBar,
    MarketAtStart,
    ModelSwapped,
    ModelSwapRefused,
    ModelTrained,
    OrderCancelled,
    OrderEvent,
    OrderSent,
    OrderStateChanged,
    ParityGapLost,
    PromotionRolledBack,
    RejectionEvent,
    RouteDecision,
    RunStarted,
    StopBound,
    TradingStateChanged,
    VenueAtStart,
    VenueDelivered,
    VenueFill,
    VenueReported,
    WarmUp,
    WatchPassed,
    WatchStarted,
    read_sequenced,
)
from tradeloom.journal.events import dispatch, kinds_read_by
from tradeloom.journal.events.documents import DocumentUnscored
from tradeloom.live.lifecycle.verdict import BarInput

__all__ = [
    "ENGINE_TYPES",
    "JournalState",
    "JournaledReload",
    "LiveBarRow",
    "Report",
    "domain_value",
    "read_state",
]

ENGINE_TYPES = frozenset(kinds_read_by("replayed"))
"""Kinds the engine writes: a replay of the journal's bars must write the same
(declared ``replayed``: `tradeloom.journal.events.Reader`)."""


@dataclass(frozen=True)
class Report:
    """What the live venue reported at one call: how many events, which orders it ended
    (None: not recorded)."""

    events: int
    ended: list[str] | None


@dataclass(frozen=True)
class LiveBarRow:
    """One bar the run processed live: its prices, the model's verdict, the wall time."""

    index: int
    time: pd.Timestamp
    values: np.ndarray
    verdict: BarInput
    wall_time: pd.Timestamp
    symbol: str = ""


@dataclass(frozen=True)
class JournaledReload:
    """One hot reload as journaled (its ``config_reloaded`` row).

    Attributes:
        bar: Its row's bar: the document is traded from the bar after it on.
        seq: Its row's sequence number: where it falls among rows of the same bar (a
            stage that starts at its bar may start before or after it).
        document: The strategy document it swapped in.
    """

    bar: int
    seq: int
    document: dict[str, Any]


@dataclass
class JournalState:
    """The events of a journal a restart needs, grouped.

    Attributes:
        started: The run's start (None: the first start failed before it).
        warm_up: The history the run warmed up on (None: not journaled); over a
            universe, the last symbol's.
        warm_ups: Every ``warm_up`` row: one per symbol over a universe.
        bars: The bars processed live, in order.
        engine_events: Events of `ENGINE_TYPES`, in order.
        reports: ``(bar, phase)`` -> what the live venue reported at each call of that
            phase of that bar (a universe asks each symbol's stop at ``intrabar``), by
            the call's number: how many fills and cancellations, and the orders it
            stopped working (None: a journal that did not record them, written before
            ``venue_reported``: its reports' calls are numbered in order); a cancel is
            the phase ``cancel``.
        legacy_reports: The journal was written before ``venue_reported`` (its
            ``venue_delivered`` rows say less: which orders a report or a cancel ended
            is inferred).
        events: Bar -> the engine's fills and cancellations at that bar, in order.
        sent: Client id -> its ``order_sent`` event.
        order_states: Client id -> the last state journaled.
        rejections: Client id -> the row of its move to ``rejected``.
        venue_fills: Client id -> its ``venue_fill`` events, in order.
        engine_fills: Client id -> how many ``fill`` rows the engine journaled.
        bound: The engine's exit -> the client id of the stop resting at the exchange
            whose fills are its (``stop_bound``).
        trading_state: The last trading state change (None: ACTIVE throughout).
        kill_switch: The kill switch's halts, resumes, later cancels (None) and flatten
            requests (their ``control_request`` rows): ``(bar, change)``, in order; the
            bar is the last one processed when it happened.
        training: The last live model training: ``(predicts_from, reason)``.
        trainings: Each model's last live training, by the symbol it was journaled with
            ('' for a strategy's own model; a portfolio member's: its strategy's name).
        orders: Client id -> the engine's order, as journaled.
        order_symbols: Client id -> the symbol the engine journaled its order with.
        markets: Symbol -> its ``market_at_start`` row (a live run over a universe).
        document: The strategy document the run last traded under (its start's, or
            its last hot reload's); None in a journal that does not record it.
        reloads: Each hot reload, in order.
        swapped: The last model swap (its ``model_swapped`` row: the model in force from
            the bar after its bar on, kept in the run directory); None: never swapped.
            A portfolio file's run: see ``member_swaps``.
        member_swaps: Per strategy of a portfolio file's run, its last model swap.
        answered_requests: The mailbox's requests answered (a kill, flatten or resume
            journaled; a swap, promotion or rollback swapped, refused or ended), by their
            file's name: a restart marks them done without answering them again.
        answered_keys: The idempotency keys of the requests journaled (a
            ``control_request``'s or a ``control_refused``'s ``key``): a request of one,
            asked again by a sender that crashed, is done without a second answer.
        canary: The canary in progress (its ``canary_started`` row); None: none.
        canary_seq: The sequence number of ``canary``'s row (0: none).
        watch: The watch after a full promotion in progress (its ``watch_started``
            row); None: none.
        watch_seq: The sequence number of ``watch``'s row (0: none).
        scales: Each change of the share of the sizing's size entries take: ``(bar,
            fraction)``, in force from the bar after ``bar`` (a canary's start and end).
        looked_up: What a restart's lookup beyond the journal found, in order: ``(bar,
            id, order)``, the bar it processed next; the order the venue had, which the
            engine took as its own, or None: the sent-id mark's last, never sent (the
            engine numbers its orders past it).
        routes: A live router's child client id -> its ``route_decision`` row.
        venues: A live router's venue -> its ``venue_at_start`` row.
        all_venue_fills: Every ``venue_fill`` row, in journal order.
        parity_lost: The ``parity_gap_lost`` rows, each with its sequence number: a
            stage's ``max_parity_gap`` rule that stopped reading its gap, in order.
        allocations: The allocation layer's decisions (``allocation_decided``), by bar:
            a replay takes them instead of solving again
            (`tradeloom.live.tick.allocation_solver.JournaledSolver`).
        last_seq: The journal's last sequence number (None: the journal was read for
            some kinds only, `read_state`'s ``kinds``: its last row may be of another).
    """

    started: RunStarted | None = None
    warm_up: WarmUp | None = None
    warm_ups: list[WarmUp] = field(default_factory=list)
    bars: list[LiveBarRow] = field(default_factory=list)
    engine_events: list[Event] = field(default_factory=list)
    reports: dict[tuple[int, str], dict[int, Report]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    legacy_reports: bool = False
    events: dict[int, list[Fill | Cancellation]] = field(default_factory=lambda: defaultdict(list))
    sent: dict[str, OrderSent] = field(default_factory=dict)
    order_states: dict[str, str] = field(default_factory=dict)
    rejections: dict[str, OrderStateChanged] = field(default_factory=dict)
    venue_fills: dict[str, list[VenueFill]] = field(default_factory=lambda: defaultdict(list))
    engine_fills: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bound: dict[str, str] = field(default_factory=dict)
    trading_state: TradingStateChanged | None = None
    kill_switch: list[tuple[int, TradingStateChanged | ControlRequest | None]] = field(
        default_factory=list
    )
    training: tuple[int, str] | None = None
    trainings: dict[str, tuple[int, str]] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    order_symbols: dict[str, str] = field(default_factory=dict)
    markets: dict[str, MarketAtStart] = field(default_factory=dict)
    document: dict[str, Any] | None = None
    reloads: list[JournaledReload] = field(default_factory=list)
    swapped: ModelSwapped | None = None
    member_swaps: dict[str, ModelSwapped] = field(default_factory=dict)
    rules: list[tuple[int, int, str, str]] = field(default_factory=list)
    """Each ``model_swapped`` row's signal and sizing sections (a strategy run alone's), in
    order: ``(bar, seq, signal, sizing)``, put in force after its bar (`tradeloom.live.
    lifecycle.promoted_signal`)."""
    member_rules: list[tuple[int, str, str, str]] = field(default_factory=list)
    """A portfolio file's run: each ``model_swapped`` row's of a member, in order: ``(bar,
    strategy, signal, sizing)``, put in force for that strategy after its bar."""
    answered_requests: set[str] = field(default_factory=set)
    answered_keys: set[str] = field(default_factory=set)
    unscored: set[tuple[str, str, str]] = field(default_factory=set)
    """The documents journaled unscored, by strategy, feature and id: a restart's text
    stage journals none of them again (`tradeloom.live.lifecycle.text_stage`)."""
    canary: CanaryStarted | None = None
    canary_seq: int = 0
    watch: WatchStarted | None = None
    watch_seq: int = 0
    scales: list[tuple[int, float]] = field(default_factory=list)
    looked_up: list[tuple[int, str, Order | None]] = field(default_factory=list)
    routes: dict[str, RouteDecision] = field(default_factory=dict)
    venues: dict[str, VenueAtStart] = field(default_factory=dict)
    all_venue_fills: list[VenueFill] = field(default_factory=list)
    parity_lost: list[tuple[int, ParityGapLost]] = field(default_factory=list)
    allocations: dict[int, AllocationDecided] = field(default_factory=dict)
    last_seq: int | None = 0

    @property
    def max_trade_id(self) -> str | None:
        """The largest numeric trade id counted (the venue's poll goes on after it)."""
        ids = [
            int(f.trade_id)
            for fills in self.venue_fills.values()
            for f in fills
            if f.trade_id.isdigit()
        ]
        return str(max(ids)) if ids else None

    def max_trade_id_of(self, symbol: str) -> str | None:
        """The largest numeric trade id counted in ``symbol``'s market."""
        ids = [
            int(f.trade_id)
            for fills in self.venue_fills.values()
            for f in fills
            if f.symbol == symbol and f.trade_id.isdigit()
        ]
        return str(max(ids)) if ids else None


_D = TypeVar("_D")
_Answer = ModelSwapped | ModelSwapRefused | CanaryPassed | CanaryRolledBack | PromotionRolledBack
"""A row that answers a request of the mailbox: a swap done or refused, a stage ended."""


def domain_value(event: Event, cls: type[_D]) -> _D:
    """Return the plain domain object (``Fill``, ``Order``...) an event of its kind holds."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: getattr(event, name) for name in names})


def read_state(path: Path, kinds: Iterable[str] | None = None) -> JournalState:
    """Read the journal at ``path`` into a `JournalState` (its events of ``kinds`` only,
    with ``last_seq`` None: the journal's last row may be of another kind; None: all).

    Raises:
        JournalError: Not a readable journal (one line: what is wrong).
    """
    state = JournalState(last_seq=None if kinds is not None else 0)
    for seq, event in read_sequenced(path, kinds):
        if kinds is None:
            state.last_seq = seq
        if event.KIND in ENGINE_TYPES:
            state.engine_events.append(_renamed(event))
        fold = _FOLDS.get(event.KIND)
        if fold is not None:
            fold(state, event, seq)
    return state


def _renamed(event: Event) -> Event:
    """Return ``event`` with a code journaled under a former name under its name now
    (`tradeloom.core.codes.RENAMED`): a replay, which journals today's, agrees with it."""
    if isinstance(event, RejectionEvent) and event.code in RENAMED:
        return dataclasses.replace(event, code=RENAMED[event.code])
    return event


def _run_started(state: JournalState, event: RunStarted, seq: int) -> None:
    if state.started is None:
        state.started = event
        state.document = event.document


def _warm_up(state: JournalState, event: WarmUp, seq: int) -> None:
    state.warm_up = event
    state.warm_ups.append(event)


def _live_bar(state: JournalState, event: LiveBar, seq: int) -> None:
    state.bars.append(
        LiveBarRow(
            event.bar,
            event.timestamp,
            np.array([event.open, event.high, event.low, event.close, event.volume]),
            BarInput(event.probability, event.anomalous, event.anomaly_score),
            event.wall_time,
            event.symbol,
        )
    )


def _venue_reported(state: JournalState, event: VenueReported, seq: int) -> None:
    state.reports[(event.bar, event.phase)][event.call] = Report(event.events, event.ended)


def _venue_delivered(state: JournalState, event: VenueDelivered, seq: int) -> None:
    # before venue_reported
    state.legacy_reports = True
    calls = state.reports[(event.bar, event.phase)]
    calls[len(calls)] = Report(event.events, None)


def _fill(state: JournalState, event: FillEvent, seq: int) -> None:
    state.events[event.bar].append(domain_value(event, Fill))
    state.engine_fills[event.order_id] += 1


def _order_cancelled(state: JournalState, event: OrderCancelled, seq: int) -> None:
    state.events[event.bar].append(domain_value(event, Cancellation))


def _kill_cancel(state: JournalState, event: KillCancel, seq: int) -> None:
    state.kill_switch.append((event.bar, None))


def _control_request(state: JournalState, event: ControlRequest, seq: int) -> None:
    if event.action == "flatten":
        state.kill_switch.append((event.bar, event))
    if event.request:  # '' in an older journal, and for the KILL file or a signal
        state.answered_requests.add(event.request)
    if event.key:
        state.answered_keys.add(event.key)


def _control_refused(state: JournalState, event: ControlRefused, seq: int) -> None:
    if event.request:
        state.answered_requests.add(event.request)
    if event.key:
        state.answered_keys.add(event.key)


def _order(state: JournalState, event: OrderEvent, seq: int) -> None:
    state.orders[event.id] = domain_value(event, Order)
    state.order_symbols[event.id] = event.symbol


def _market_at_start(state: JournalState, event: MarketAtStart, seq: int) -> None:
    state.markets[event.symbol] = event


def _config_reloaded(state: JournalState, event: ConfigReloaded, seq: int) -> None:
    state.document = event.document
    state.reloads.append(JournaledReload(event.bar, seq, event.document))


def _order_sent(state: JournalState, event: OrderSent, seq: int) -> None:
    state.sent[event.id] = event


def _order_state(state: JournalState, event: OrderStateChanged, seq: int) -> None:
    state.order_states[event.client_id] = event.state
    if event.state == "rejected":
        state.rejections[event.client_id] = event
    elif event.state == "adopted" and event.client_id in state.sent:
        order = domain_value(state.sent[event.client_id], Order)
        state.looked_up.append((event.bar, event.client_id, order))
    elif event.state == "never_sent":
        state.looked_up.append((event.bar, event.client_id, None))


def _venue_fill(state: JournalState, event: VenueFill, seq: int) -> None:
    state.venue_fills[event.order_id].append(event)
    state.all_venue_fills.append(event)


def _route_decision(state: JournalState, event: RouteDecision, seq: int) -> None:
    state.routes[event.order_id] = event


def _venue_at_start(state: JournalState, event: VenueAtStart, seq: int) -> None:
    state.venues[event.venue] = event


def _stop_bound(state: JournalState, event: StopBound, seq: int) -> None:
    state.bound[event.order_id] = event.client_id


def _trading_state(state: JournalState, event: TradingStateChanged, seq: int) -> None:
    state.trading_state = event
    if event.code in ("KILL_SWITCH", "RESUME"):
        state.kill_switch.append((event.bar, event))


def _model_swapped(state: JournalState, event: ModelSwapped, seq: int) -> None:
    if event.strategy:
        state.member_swaps[event.strategy] = event
        state.member_rules.append((event.bar, event.strategy, event.signal, event.sizing))
    else:
        state.swapped = event
        state.rules.append((event.bar, seq, event.signal, event.sizing))
    _answer(state, event, seq)


def _answer(state: JournalState, event: _Answer, seq: int) -> None:
    """The mailbox's request the row answers is done: a promotion's
    ``challenger:NAME@FILE`` names its file after the ``@``
    (`tradeloom.live.lifecycle.challengers.promotion_request`)."""
    state.answered_requests.add(event.request.rsplit("@", 1)[-1])


def _canary_started(state: JournalState, event: CanaryStarted, seq: int) -> None:
    state.canary, state.canary_seq = event, seq
    state.scales.append((event.bar, event.fraction))


def _canary_ended(state: JournalState, event: CanaryPassed | CanaryRolledBack, seq: int) -> None:
    state.canary, state.canary_seq = None, 0
    state.scales.append((event.bar, 1.0))
    _answer(state, event, seq)


def _watch_started(state: JournalState, event: WatchStarted, seq: int) -> None:
    state.watch, state.watch_seq = event, seq


def _watch_passed(state: JournalState, event: WatchPassed | PromotionRolledBack, seq: int) -> None:
    state.watch, state.watch_seq = None, 0


def _promotion_rolled_back(state: JournalState, event: PromotionRolledBack, seq: int) -> None:
    _watch_passed(state, event, seq)
    _answer(state, event, seq)


def _parity_gap_lost(state: JournalState, event: ParityGapLost, seq: int) -> None:
    state.parity_lost.append((seq, event))


def _allocation_decided(state: JournalState, event: AllocationDecided, seq: int) -> None:
    state.allocations[event.bar] = event


def _model_trained(state: JournalState, event: ModelTrained, seq: int) -> None:
    if not event.skipped and event.bar >= 0:
        state.training = (event.predict_start, event.reason)
        state.trainings[event.symbol] = state.training


def _document_unscored(state: JournalState, event: DocumentUnscored, seq: int) -> None:
    state.unscored.add((event.strategy, event.feature, event.document_id))


_FOLDS: dict[str, Callable[[JournalState, Any, int], None]] = dispatch(
    {
        RunStarted: _run_started,
        WarmUp: _warm_up,
        LiveBar: _live_bar,
        VenueReported: _venue_reported,
        VenueDelivered: _venue_delivered,
        FillEvent: _fill,
        OrderCancelled: _order_cancelled,
        KillCancel: _kill_cancel,
        ControlRequest: _control_request,
        ControlRefused: _control_refused,
        OrderEvent: _order,
        MarketAtStart: _market_at_start,
        ConfigReloaded: _config_reloaded,
        OrderSent: _order_sent,
        OrderStateChanged: _order_state,
        VenueFill: _venue_fill,
        RouteDecision: _route_decision,
        VenueAtStart: _venue_at_start,
        StopBound: _stop_bound,
        TradingStateChanged: _trading_state,
        ModelSwapped: _model_swapped,
        ModelSwapRefused: _answer,
        CanaryStarted: _canary_started,
        CanaryPassed: _canary_ended,
        CanaryRolledBack: _canary_ended,
        WatchStarted: _watch_started,
        WatchPassed: _watch_passed,
        PromotionRolledBack: _promotion_rolled_back,
        ParityGapLost: _parity_gap_lost,
        AllocationDecided: _allocation_decided,
        ModelTrained: _model_trained,
        DocumentUnscored: _document_unscored,
    },
    "restart",
)
"""How each kind the restart reads folds into its `JournalState`: one function a kind,
declared read by the restart (`tradeloom.journal.events.kind`'s ``restart``)."""
