"""Replay a journal's bars through a new session, each bar under the file in force then.

A restart rebuilds a run's state by running its history and every journaled tick through
a new `LiveSession` again, with the model's journaled verdicts (``live_bar`` rows), into a
scratch journal (`ScratchJournal`) that nobody hears of (`SilentHook`), on the journaled
wall times (`PinnedClock`): every bar under the strategy file in force at that bar (the
start's document, then each ``config_reloaded`` row's, swapped with the `Reload` a running
run applies), with the kill switch's journaled halts, resumes and cancels at their
bars, with each canary's share of the sizing's size from its start to its end
(`tradeloom.live.lifecycle.canary`), with each promotion's signal rule and sizing from
its bar (a portfolio file's member's for its books), and with the allocation layer's
journaled decisions in place of its solves
(`tradeloom.live.tick.allocation_solver.JournaledSolver`). `compare` then
checks the rows it wrote against the journal's, bar by bar: the last bar may have been
cut short by the crash, and its replayed rows beyond the journal's are returned, to be
journaled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradeloom.core import layout as L
from tradeloom.domain import Order
from tradeloom.engine.driver import UnknownOrder
from tradeloom.journal import ConfigReloaded, ControlRequest, Event, RunIdentity
from tradeloom.journal.schema import schema_of
from tradeloom.live.lifecycle.promoted_signal import rule_in_force
from tradeloom.live.lifecycle.reload import MODEL, journaled_reload, reload_to
from tradeloom.live.lifecycle.reload_apply import apply_reload
from tradeloom.live.recovery.journal_state import (
    ENGINE_TYPES,
    JournaledReload,
    JournalState,
    LiveBarRow,
)
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.live.tick.allocation_solver import JournaledSolver
from tradeloom.live.tick.session import KILL_CODE, LiveSession

if TYPE_CHECKING:
    from tradeloom.engine.allocating import Solver
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles
    from tradeloom.schemas import StrategyConfig

__all__ = ["PinnedClock", "edited_while_down", "replay_ticks"]


class PinnedClock:
    """The runner's clock, or during a replay the journaled wall time of the bar."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.pinned: pd.Timestamp | None = None

    def __call__(self) -> pd.Timestamp:
        return self.pinned if self.pinned is not None else self.clock()


class ScratchJournal:
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

    def flush(self, *, durable: bool = True) -> None:
        pass

    def write_columns(self, batches: Any, *, durable: bool = True) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass


class SilentHook:
    """A hook relay that tells no observer anything (a replay's events were told)."""

    def __getattr__(self, name: str) -> Any:
        return lambda **kwargs: None


def replay_ticks(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    session: LiveSession,
    state: JournalState,
    clock: PinnedClock,
) -> list[Event]:
    """Warm ``session`` up and replay the journal's ticks through it, silently.

    ``session`` must journal through ``link``'s recorder; its rows go to a scratch
    journal meanwhile. Returns the replayed rows the journal lacks (of its last bar,
    cut short by the crash).

    Raises:
        RestartRefused: The replay's rows are not the journal's.
    """
    started = state.started
    assert started is not None
    recorder = link.recorder_or_fail
    real_journal, real_hook = recorder.journal, recorder.hook
    scratch = ScratchJournal(real_journal.identity)
    recorder.journal, recorder.hook = scratch, SilentHook()  # type: ignore[assignment]
    head = len(session.history)
    rebalancer = session.engine.rebalancer
    solver: Solver | None = None
    if rebalancer is not None:  # the journal's decisions, not a solve
        solver = rebalancer.solver
        rebalancer.solver = JournaledSolver(state.allocations, solver)
    try:
        # each bar under the file in force at that bar: the start's, then each reload's (a
        # portfolio file's strategies are not reloaded: its document is the account's)
        if markets.portfolio is None:
            _swap(files, markets, session, started.document)
        reloads = list(state.reloads)
        rules = list(state.rules)
        member_rules = list(state.member_rules)
        session.warm_up()
        kills = list(state.kill_switch)
        looked_up = list(state.looked_up)
        _apply_kills(session, kills, head - 1)
        _apply_reloads(files, markets, session, reloads, rules, head - 1)
        _apply_member_rules(markets, session, member_rules, head - 1)
        scales = list(state.scales)
        _apply_scales(session, scales, head - 1)
        _looked_up(session, looked_up, head - 1)
        ticks: dict[int, list[LiveBarRow]] = {}
        for row in state.bars:
            ticks.setdefault(row.index, []).append(row)
        equity: dict[int, float] = {}
        for bar in sorted(ticks):
            tick = ticks[bar]
            prices, verdicts = session.replayed(tick)
            clock.pinned = tick[0].wall_time
            try:
                session.step(tick[0].time, prices, given=verdicts)
            except UnknownOrder as error:
                raise RestartRefused(
                    f"the journal and a replay of its bars disagree at bar {bar}: the journal "
                    f"reports what the venue did with order {error}, which the replay did not "
                    "decide; the strategy file or tradeloom changed since the run started: "
                    "start a new run (another --out)"
                ) from None
            # as the run's challengers read it after the bar (`LiveSession.replayed_equity`)
            equity[bar] = float(session.engine.state.acct[L.A_EQUITY])
            _apply_kills(session, kills, bar)
            _apply_reloads(files, markets, session, reloads, rules, bar)
            _apply_member_rules(markets, session, member_rules, bar)
            _apply_scales(session, scales, bar)
            _looked_up(session, looked_up, bar)
        clock.pinned = None
        session.replayed_equity = equity
    finally:
        recorder.journal, recorder.hook = real_journal, real_hook
        if rebalancer is not None and solver is not None:
            rebalancer.solver = solver
    return _compare(state, scratch.events)


def edited_while_down(
    files: RunFiles, link: JournalLink, session: LiveSession, current: StrategyConfig, bar: int
) -> None:
    """Swap in the file as it is now when it was edited (swappably) while the run was
    down, journaled as a hot reload after the last bar replayed.

    Raises:
        RestartRefused: The edit cannot be swapped.
    """
    from tradeloom.live.lifecycle.reload import ReloadRefused

    reload = reload_to(files.config, current, restart=True)
    if reload is None:
        return
    if isinstance(reload, ReloadRefused):  # changes_while_down refused these already
        raise RestartRefused(reload.describe())
    apply_reload(reload, session, files)
    recorder = link.recorder_or_fail
    recorder.record(
        ConfigReloaded(
            **recorder.at(bar),
            changed=list(reload.changed),
            changes=list(reload.changes),
            document=dict(current.document),
        )
    )


def _swap(
    files: RunFiles, markets: Markets, session: LiveSession, document: dict[str, Any] | None
) -> None:
    """Trade ``session`` under the journaled strategy ``document`` from the next bar on.

    The replay takes the model's verdicts from the journal: a journaled document's
    ``model`` section (a hot reload's model swap) is not built again, the running one
    stands in; the model in force is put in after the replay
    (`tradeloom.live.lifecycle.model_swap.restore_in_force`).
    """
    if document is None:
        return  # a journal that does not record it: the file now
    document = {**document, MODEL: files.config.document.get(MODEL)}
    reload = journaled_reload(files.config, document, markets.plugins)
    if reload is not None:
        apply_reload(reload, session, files)


def _apply_reloads(
    files: RunFiles,
    markets: Markets,
    session: LiveSession,
    reloads: list[JournaledReload],
    rules: list[tuple[int, int, str, str]],
    bar: int,
) -> None:
    """Put the documents journaled at or before ``bar`` in force, with the signal rules
    and sizings of the ``model_swapped`` rows (`rule_in_force`), in the order of their
    rows."""
    while (reloads and reloads[0].bar <= bar) or (rules and rules[0][0] <= bar):
        if rules and rules[0][0] <= bar and (not reloads or rules[0][1] < reloads[0].seq):
            _, _, rule, size = rules.pop(0)
            rule_in_force(files.config, markets.plugins, session, rule, size)
        else:
            _swap(files, markets, session, reloads.pop(0).document)


def _apply_member_rules(
    markets: Markets, session: LiveSession, rules: list[tuple[int, str, str, str]], bar: int
) -> None:
    """Put in force, for its strategy's books, the signal rule and sizing of each member's
    ``model_swapped`` row journaled at or before ``bar`` (a portfolio file's run:
    `rule_in_force` over its strategy file, as its promotion did), in the order of their rows."""
    from tradeloom.live.tick.portfolio_session import PortfolioSession

    while rules and rules[0][0] <= bar:
        _, strategy, rule, size = rules.pop(0)
        assert isinstance(session, PortfolioSession)
        member = next(m for m in session.members if m.owner == strategy)
        config = session.strategy_file(member)
        rule_in_force(config, markets.plugins, member, rule, size)


def _apply_scales(session: LiveSession, scales: list[tuple[int, float]], bar: int) -> None:
    """Size entries after bar ``bar`` as the journal's canaries did
    (`tradeloom.live.lifecycle.canary`, `tradeloom.engine.driver.Engine.replay_scales`)."""
    session.engine.replay_scales(scales, bar)


def _looked_up(
    session: LiveSession, looked_up: list[tuple[int, str, Order | None]], bar: int
) -> None:
    """Do again what a restart's lookup beyond its journal did before bar ``bar + 1``:
    take each order it adopted as the engine's (working at the venue since then), and
    number the engine's orders past the mark's last id it found never sent."""
    engine = session.engine
    while looked_up and looked_up[0][0] <= bar + 1:
        _, client_id, order = looked_up.pop(0)
        if order is None:
            engine.sequence = max(engine.sequence, int(client_id.rsplit("-", 1)[-1]))
            continue
        engine.adopt(order)
        engine.venue.submit(order)  # the replay's venue (only a live run looks up its ids)


def _apply_kills(session: LiveSession, kills: list[tuple[int, Any]], bar: int) -> None:
    while kills and kills[0][0] <= bar:
        _, change = kills.pop(0)
        if change is None:
            session.cancel_for_kill()
        elif isinstance(change, ControlRequest):  # a flatten: its kill's row follows
            session.engine.flatten()
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
