"""Restart a paper or live run from its journal, then check it against the venue.

The journal is the source of truth. A restart:

1. checks that the history the run started from is the same (its SHA-256);
2. replays the history and every journaled bar through a new engine, with the
   model's journaled verdicts, the journal's fills (`ReplayVenue`; a paper run
   simply replays its simulated venue), the kill switch's journaled halts and
   resumes, and each bar under the strategy file in force at that bar (the start's
   document, then each ``config_reloaded`` row's), into a scratch journal; the rows
   it writes must be the journal's, every bar (the last bar may have been cut short
   by the crash: its replayed rows beyond the journal's are appended). This rebuilds
   cash, position, peak equity, the signal, risk and monitor state and the client-id
   counter exactly;
3. live: asks the venue about every client id the run could have sent beyond its
   journal, adopts the orders it has and journals the others as never sent
   (`tradeloom.runner.live.sent_lookup`); then tracks again every order still pending
   (a router's: each of its children at its venue, `RouterVenue.recover`), and the
   stops resting at the exchange that no exit was booked to (`recover_stops`): one
   whose intent was journaled is looked up by its client order id
   (`CcxtVenue.recover`; the trades the journal counted are not counted again, the
   ones it counted but had not applied are applied once), unless the journal shows it
   filled or rejected (a cancelled one may owe trades: the venue held its cancellation
   when the process died); one whose intent was not journaled was never sent;
4. retrains the fold in effect when the run stopped (same rows, same seed), and swaps
   in the file as it is now if it was edited while the run was down (journaled as a
   hot reload after the last bar);
5. live: reconciles (a router: each venue, named in a refusal): resolves and polls
   the venue, then compares the account's base balance with the balance at the
   first start plus the position, and refuses to trade on a difference beyond
   ``live.position_tolerance`` and what the orders still unknown (their lookups
   failed) may have filled, or on an open order of this run the journal does not
   know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd
import structlog

from tradeloom.domain import Bars, Cancellation, Fill
from tradeloom.journal import (
    ConfigReloaded,
    Event,
    Restarted,
    RunIdentity,
    WarmUp,
)
from tradeloom.journal.schema import schema_of
from tradeloom.plugins.execution.client_ids import derived_client_id
from tradeloom.plugins.execution.order_terms import STOP_TYPES
from tradeloom.plugins.execution.router import Router
from tradeloom.runner.live.bar_history import BarHistory, history_sha256
from tradeloom.runner.live.journal_state import ENGINE_TYPES, JournalState
from tradeloom.runner.live.reconcile import (
    RestartRefused,
    reconcile_market,
    sent_request,
    trade_fill,
)
from tradeloom.runner.live.reload import ReloadRefused, journaled_reload, reload_to
from tradeloom.runner.live.replay_venue import ReplayVenue
from tradeloom.runner.live.sent_lookup import look_up_beyond_journal
from tradeloom.runner.live.session import KILL_CODE, LiveSession
from tradeloom.schemas import StrategyConfig

if TYPE_CHECKING:
    from tradeloom.runner.live.exchange_venue import ExchangeVenue
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["recover_stops", "restart", "track_pending"]

_log = structlog.get_logger("tradeloom.live")


class _PinnedClock:
    """The runner's clock, or during a replay the journaled wall time of the bar."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.pinned: pd.Timestamp | None = None

    def __call__(self) -> pd.Timestamp:
        return self.pinned if self.pinned is not None else self.clock()


class _Scratch:
    """Where a replay's events go: kept in memory, to be compared with the journal's."""

    def __init__(self, identity: RunIdentity) -> None:
        self.identity = identity
        self.events: list[Event] = []

    @property
    def last_seq(self) -> int:
        return len(self.events)

    def append(self, event: Event) -> int:
        self.events.append(event)
        return len(self.events)

    def flush(self) -> None:
        pass

    def write_columns(self, batches: Any) -> None:  # pragma: no cover - not a backtest
        raise NotImplementedError

    def close(self) -> None:
        pass


class _SilentHook:
    """A hook relay that tells no observer anything (a replay's events were told)."""

    def __getattr__(self, name: str) -> Any:
        return lambda **kwargs: None


def restart(
    runner: LiveRunner, state: JournalState, bars: Bars, features: pd.DataFrame
) -> tuple[LiveSession, Any]:
    """Rebuild the run's session from ``state``; return it and the live venue (if live):
    an `ExchangeVenue`, or a router's `RouterVenue`.

    Raises:
        RestartRefused: The history changed, the replay disagrees with the journal,
            or the venue disagrees with the journal's position.
    """
    assert runner.journal is not None and runner.recorder is not None
    started = state.started
    assert started is not None  # checked by the runner
    warm = state.warm_up
    first = 0 if warm is None else warm.bars
    history = _history(runner, bars, features, first, warm)
    clock = _PinnedClock(runner.now)
    runner.now = clock
    exchange: Any = None
    routed = runner.mode == "live" and isinstance(runner.p.venue, Router)
    if routed:
        from tradeloom.runner.live.router_venue import open_router_venue

        exchange, _ = open_router_venue(runner, state)
    elif runner.mode == "live":
        from tradeloom.runner.live.venues import open_exchange_venue

        exchange, _ = open_exchange_venue(runner, started, after_trade_id=state.max_trade_id)
    if exchange is not None:
        replay_venue: Any = ReplayVenue(
            state,
            initial_cash=started.capital,
            fee_rate=exchange.fee_rate,
            dust=exchange.dust,
        )
    else:
        replay_venue = runner.p.venue
    recorder = runner.recorder
    real_journal, real_hook = recorder.journal, recorder.hook
    scratch = _Scratch(real_journal.identity)
    recorder.journal, recorder.hook = scratch, _SilentHook()  # type: ignore[assignment]
    current = runner.config  # the file now
    try:
        session = runner.build_session(history, replay_venue, started.run_key)
        # each bar under the file in force at that bar: the start's, then each reload's
        _swap(runner, session, started.document)
        reloads = list(state.reloads)
        runner.warm_up(session)
        kills = list(state.kill_switch)
        _apply_kills(session, kills, first - 1)
        _apply_reloads(runner, session, reloads, first - 1)
        for live in state.bars:
            clock.pinned = live.wall_time
            session.step(live.time, live.values, given=live.verdict)
            _apply_kills(session, kills, live.index)
            _apply_reloads(runner, session, reloads, live.index)
        clock.pinned = None
        replayed = scratch.events
    finally:
        recorder.journal, recorder.hook = real_journal, real_hook
    extra = _compare(state, replayed)
    for event in extra:
        real_journal.append(event)
    # the client-id counter: never below an id the journal holds (after a hot reload the
    # replay may have decided fewer orders than the run did)
    session.engine.sequence = max(
        session.engine.sequence, *(int(i.rsplit("-", 1)[-1]) for i in state.orders), 0
    )
    if exchange is not None:
        # The venue stamps what it learns from here on with the session's bar in
        # progress (`open_exchange_venue`'s bar clock), not bar 0.
        runner.session = session
        replay_venue.adopt_journaled(len(history) - 1)
        if routed:
            exchange.recover(state, replay_venue)
        else:
            assert runner.sent_mark is not None
            look_up_beyond_journal(
                runner, state, exchange, runner.sent_mark, cut=runner.journal_cut
            )
            recover_stops(state, exchange)
            track_pending(state, replay_venue, lambda _: exchange)
        session.engine.use_venue(exchange)
    session.catch_up(state.training)
    _edited_while_down(runner, session, current, len(history) - 1)
    recorder.record(
        Restarted(
            **recorder.at(len(history) - 1),
            bars_replayed=len(state.bars),
            rows_completed=len(extra),
            position=session.engine.portfolio.position,
            cash=session.engine.portfolio.cash,
            state=session.state,
            wall_time=pd.Timestamp.now(tz="UTC"),
        )
    )
    real_journal.flush()
    if routed:
        exchange.reconcile(runner, state, started.run_key)
    elif exchange is not None:
        reconcile_market(
            runner,
            exchange,
            position=session.engine.portfolio.position,
            base_at_start=started.base_at_start,
            run_key=started.run_key,
        )
    _log.info(
        "live_restarted",
        bars_replayed=len(state.bars),
        position=session.engine.portfolio.position,
        state=session.state,
    )
    return session, exchange


def _history(
    runner: LiveRunner, bars: Bars, features: pd.DataFrame, first: int, warm: WarmUp | None
) -> BarHistory:
    if first < 1 or len(bars) < first:
        raise RestartRefused(
            f"{runner.run_dir}: the journal's warm-up covers {first} bars, the data source "
            f"has {len(bars)}: not the history this run started from"
        )
    head = Bars(bars.frame.iloc[:first], bars.symbol, bars.timeframe, bars.timeframe_seconds)
    if warm is None or history_sha256(head) != warm.sha256:
        raise RestartRefused(
            f"{runner.run_dir}: the data source's first {first} bars are not the ones this "
            "run started from (their SHA-256 differs); the cache or data.start changed"
        )
    return BarHistory(head, features.iloc[:first])


def _swap(runner: LiveRunner, session: LiveSession, document: dict[str, Any] | None) -> None:
    """Trade ``session`` under the journaled strategy ``document`` from the next bar on."""
    if document is None:
        return  # a journal that does not record it: the file now
    reload = journaled_reload(runner.config, document, runner.plugins)
    if reload is not None:
        runner.apply_reload(reload, session)


def _apply_reloads(
    runner: LiveRunner, session: LiveSession, reloads: list[tuple[int, Any]], bar: int
) -> None:
    while reloads and reloads[0][0] <= bar:
        _, document = reloads.pop(0)
        _swap(runner, session, document)


def _edited_while_down(
    runner: LiveRunner, session: LiveSession, current: StrategyConfig, bar: int
) -> None:
    """Swap in the file as it is now when it was edited (swappably) while the run was
    down, journaled as a hot reload after the last bar replayed."""
    reload = reload_to(runner.config, current)
    if reload is None:
        return
    if isinstance(reload, ReloadRefused):  # changes_while_down refused these already
        raise RestartRefused(reload.describe())
    runner.apply_reload(reload, session)
    recorder = runner.recorder_or_fail
    recorder.record(
        ConfigReloaded(
            **recorder.at(bar),
            changed=list(reload.changed),
            changes=list(reload.changes),
            document=dict(current.document),
        )
    )


def _apply_kills(session: LiveSession, kills: list[tuple[int, Any]], bar: int) -> None:
    while kills and kills[0][0] <= bar:
        _, change = kills.pop(0)
        if change is None:
            session.cancel_for_kill()
        elif change.code == KILL_CODE:
            session.kill(change.message, since=change.at)
        else:
            session.resume(change.message)


def _compare(state: JournalState, replayed: list[Event]) -> list[Event]:
    """Check the replay's engine events against the journal's, bar by bar.

    Every bar was replayed under the file in force at that bar (the journaled hot
    reloads). The last bar may have been cut short by the crash: the replay's events of
    it beyond the journal's are returned, to be journaled. Events are compared as
    stored (their typed values, NaN equal to NaN).
    """
    mine = _by_bar(replayed)
    theirs = _by_bar(state.engine_events)
    last = state.bars[-1].index if state.bars else None
    extra: list[Event] = []
    for bar in sorted(set(mine) | set(theirs)):
        again, journaled = mine.get(bar, []), theirs.get(bar, [])
        common = min(len(again), len(journaled))
        for i in range(common):
            if _stored(again[i]) != _stored(journaled[i]):
                raise RestartRefused(
                    f"the journal and a replay of its bars disagree at bar {bar}: journal "
                    f"{_shown(journaled[i])}, replay {_shown(again[i])}; the strategy file or "
                    "tradeloom changed since the run started: start a new run (another --out)"
                )
        if len(journaled) > common:
            raise RestartRefused(
                f"the journal has rows at bar {bar} the replay does not make "
                f"({journaled[common].KIND}); the strategy file or tradeloom changed since the "
                "run started: start a new run (another --out)"
            )
        if len(again) > common:
            if bar != last:
                raise RestartRefused(
                    f"a replay of the journal makes a {again[common].KIND} row at bar {bar} the "
                    f"journal does not have; only the last bar ({last}) may have been cut short"
                )
            extra.extend(again[common:])
    return extra


def _stored(event: Event) -> tuple[str, list[Any]]:
    return event.KIND, schema_of(event.KIND).to_sql(event)


def _shown(event: Event) -> str:
    schema = schema_of(event.KIND)
    values = dict(zip(schema.names, schema.to_sql(event), strict=True))
    return f"{event.KIND} {values}"[:200]


def _by_bar(events: Iterable[Event]) -> dict[int, list[Event]]:
    grouped: dict[int, list[Event]] = {}
    for event in events:
        if event.KIND in ENGINE_TYPES:
            grouped.setdefault(event.bar, []).append(event)
    return grouped


def track_pending(
    state: JournalState, replayed: ReplayVenue, market_of: Callable[[str], ExchangeVenue]
) -> None:
    """Hand the orders still pending after the replay to the exchange venue of each.

    Args:
        state: The journal, read.
        replayed: The replay's venue, at the end of the replay.
        market_of: The exchange venue (the market) of an order, by client order id.
    """
    held: dict[int, tuple[ExchangeVenue, list[Fill | Cancellation]]] = {}
    for order in replayed.pending():
        exchange = market_of(order.id)
        _, events = held.setdefault(id(exchange), (exchange, []))
        sent = state.sent.get(order.id)
        if sent is None and order.kind == "stop" and exchange.await_stop_exit(order):
            continue  # booked to the stop resting at the exchange, or sent, at the next open
        if sent is None:
            _log.warning("order_never_sent", client_id=order.id)
            events.append(
                Cancellation(order.id, order.bar, order.timestamp, order.quantity, "NOT_SENT")
            )
            continue
        fills = state.venue_fills.get(order.id, [])
        applied = state.engine_fills.get(order.id, 0)
        # A limit order that fell back to market: its rest went as {id}-f, whose
        # fills the engine booked as the limit order's.
        fallback = state.sent.get(derived_client_id(order.id, "f"))
        fallback_fills = state.venue_fills.get(fallback.id, []) if fallback else []
        venue_id = next((f.venue_order_id for f in fills if f.venue_order_id), None)
        request = sent_request(sent)
        # A cancelled order is still pending here only when the engine never heard of
        # its cancellation: the venue held it, a later read of that call having failed
        # (the missing trades of a cancel the venue said had filled more), and the
        # process died. The journal's row says what was counted, not what the venue
        # said had filled: the order is looked up again, never resent.
        finished = state.order_states.get(order.id) in ("filled", "rejected")
        if finished:
            exchange.adopt(order)
        else:
            exchange.venue.recover(
                request,
                sent_at=sent.sent_at,
                venue_id=venue_id,
                counted=[(f.trade_id, f.quantity) for f in fills],
            )
        if fallback is not None and not finished:
            exchange.recover_fallback(
                order,
                sent_request(fallback),
                sent_at=fallback.sent_at,
                venue_id=next((f.venue_order_id for f in fallback_fills if f.venue_order_id), None),
                counted=[(f.trade_id, f.quantity) for f in fallback_fills],
            )
        for fill in (fills + fallback_fills)[applied:]:
            events.append(replace(exchange.book(trade_fill(fill)), order_id=order.id))
    for exchange, events in held.values():
        exchange.hold(events)


def recover_stops(state: JournalState, exchange: ExchangeVenue) -> None:
    """Track again the stops the run rested at the exchange and booked to no exit.

    Each is looked up by its client order id (never placed again); trades the journal
    counted for it wait for the engine's exit, as they did. The position's entry is
    the last buy the engine booked fills of.
    """
    stops = exchange.stops
    if stops is None:
        return
    for order_id, order in state.orders.items():
        if order.side > 0 and state.engine_fills.get(order_id):
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
        )
