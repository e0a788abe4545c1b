"""A paper or live run in its run directory: start or restart, then one tick at a time.

A run trades its markets keyed by symbol, as a backtest does: one market is the
universe of one, a universe (``data.symbols``) several on one clock, a portfolio file
several strategies on one account. `LiveRunner.start` opens the run directory's
journal. A new run loads the history (the data source: cache, then the exchange up to
the last closed bar; each market's order book or auxiliary series as of each bar),
steps the features and the engine through it without trading, trains the model's fold
in effect (`tradeloom.live.start`), and journals how it started. A run whose journal
exists is restarted from it (`tradeloom.live.restart`).

`LiveRunner.tick` is one wake-up of the clock (`tradeloom.live.loop` schedules them;
tests and ``--clock simulated`` call it after moving a simulated clock): it acts on the
kill switch's requests, swaps a valid edited strategy file in at this bar boundary,
then runs every clock bar that has closed since the last one (`BarTicker`) through the
`LiveSession`, and raises the stale-data alarm when the next bar is late. A request
for the closed bars that fails every retry is journaled (``venue_unreachable``) and
made again at the next tick: an outage does not end the run.

Paper mode trades the simulated venue of ``execution:`` against the live bars (a
router's venues each modelled); it needs no keys. Live mode trades, through each
market's `CcxtVenue` (`tradeloom.live.account_venue`), on the account of
``execution: {kind: ccxt}``, or with ``kind: simulated`` on the data source's exchange
with its ``${ENV}`` keys (`tradeloom.engine.capabilities.live_account`), or over a
router's exchanges.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import structlog

from tradeloom.core import layout as L
from tradeloom.core.codes import refusal_stage
from tradeloom.domain import Universe
from tradeloom.engine.capabilities import live_problems, one_account_problems, uncalibrated
from tradeloom.engine.control import ControlInbox
from tradeloom.engine.control import ControlRequest as Request
from tradeloom.engine.events import Recorder
from tradeloom.engine.universe import load_universe
from tradeloom.engine.universe_checks import declared_symbols
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError, UserError
from tradeloom.journal import (
    ConfigReloaded,
    ConfigReloadRefused,
    ControlRequest,
    JournalError,
    JournalStore,
    JournalUnavailable,
    ModelSwapped,
    RunIdentity,
    RunStarted,
    RunStopped,
    StaleData,
    VenueUnreachable,
    journal_path,
    open_store,
    verify,
)
from tradeloom.journal.owner import strategy_digest
from tradeloom.journal.tail import TailCut
from tradeloom.live.book_feed import BookFeed, open_book_feed
from tradeloom.live.history import MarketHistory
from tradeloom.live.journal_outage import JournalOutage, lose_journal
from tradeloom.live.market import ExchangeAccount
from tradeloom.live.markets_feed import MarketsFeed
from tradeloom.live.model_swap import (
    ModelSwap,
    SwapRefused,
    already_in_force,
    build_swap,
    checked_swap,
    described,
    is_kept,
    journal_refusal,
    journal_swap,
    keep_file,
    member_problem,
    saved_section,
    standing_for,
)
from tradeloom.live.observers import attach_observers
from tradeloom.live.parity_monitor import ParityMonitor
from tradeloom.live.provides import provides
from tradeloom.live.refresh import LiveOutputs, OutputsSource, data_calendar
from tradeloom.live.reload import CHALLENGERS, MODEL, Reload, ReloadRefused, StrategyWatcher
from tradeloom.live.sent_mark import (
    PgSentMark,
    SentMark,
    check_sent_mark,
    open_sent_mark,
)
from tradeloom.live.services import (
    JournalLink,
    Markets,
    Mode,
    Observer,
    RunFiles,
    Ticking,
    wall_clock,
)
from tradeloom.live.session import LiveSession
from tradeloom.live.stale_data import StaleDataWatch
from tradeloom.live.swap import apply_reload, cron_of
from tradeloom.live.ticker import BarTicker
from tradeloom.plugins.manager import Plugins
from tradeloom.plugins.protocols import (
    LiveAuxiliaryFeed,
    LiveFeed,
    Venue,
)
from tradeloom.plugins.protocols_orders.client_ids import client_order_id
from tradeloom.plugins.protocols_steps import LiveRows
from tradeloom.reporting import outputs
from tradeloom.runtime.retrying import RetriesExhausted
from tradeloom.schemas.journal import journal_target

if TYPE_CHECKING:
    from tradeloom.live.canary import Shadowing
    from tradeloom.live.challenger_roster import RosterChange
    from tradeloom.live.challengers import ShadowBooks
    from tradeloom.live.journal_state import JournalState
    from tradeloom.live.member_challengers import MemberShadows
    from tradeloom.live.portfolio_session import LivePortfolio, PortfolioSession
    from tradeloom.live.promotion_stage import PromotionStage
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["LiveRunner", "Mode", "wall_clock"]


_log = structlog.get_logger("tradeloom.live")


def _check_first_strategy(path: Path, identity: RunIdentity) -> None:
    """Refuse to start again, under another strategy file, a run whose first start failed.

    Its journal's first record binds the file it was started with (its
    ``strategy.yaml`` is written again now: it must stay that file).
    """
    from tradeloom.journal.source import open_source

    source = open_source(path)
    try:
        recorded = source.meta.get("strategy_sha256", "")
    finally:
        source.close()
    if recorded and recorded != identity.strategy_sha256:
        raise JournalError(
            f"{path}: its first start, which failed before it traded, was under another "
            f"strategy file (sha256 {recorded[:12]}, the file now is "
            f"{identity.strategy_sha256[:12]}): put the file back, or start in another "
            "folder (--out); nothing was sent"
        )


class LiveRunner:
    """Run ``pipeline`` as ``mode`` in ``run_dir``.

    Args:
        pipeline: The built strategy; its data source must be a live feed (``kind:
            ccxt``). With ``portfolio``, the account's (`account_pipeline`).
        plugins: The plugin manager (observers hear of the run's events).
        mode: ``paper`` (simulated venue) or ``live`` (the exchange).
        run_dir: The run directory; its journal is the run's state.
        clock: The time now (UTC); the wall clock by default, the emulator's in tests.
        overrides: The run's ``--set`` values (re-applied to an edited strategy file).
        watch_file: Hot-reload the strategy file when it changes.
        echo: Told one line per bar processed live (`bar_line`); None: no lines.
        refresh: Rewrite ``metrics.json``, ``equity.csv``, ``trades.csv`` and (throttled)
            ``report.html`` after each tick that processed a bar (`LiveOutputs`).
        portfolio: A portfolio file's strategies on ``pipeline``'s account (None: one
            strategy).

    Raises:
        ConfigError: A component cannot trade in ``mode`` (`live_problems`): the data
            source is not a live feed, the model cannot predict one bar, live mode has
            no account to trade or no keys for it.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        plugins: Plugins,
        *,
        mode: Mode,
        run_dir: Path,
        clock: Callable[[], pd.Timestamp] = wall_clock,
        overrides: Sequence[str] = (),
        watch_file: bool = True,
        echo: Callable[[str], None] | None = None,
        refresh: bool = True,
        portfolio: LivePortfolio | None = None,
    ) -> None:
        members = (pipeline,) if portfolio is None else portfolio.pipelines
        problems = [  # each strategy's, on the account's venue
            problem
            for member in members
            for problem in live_problems(
                member.config, mode, data=member.data, model=member.model, venue=pipeline.venue
            )
        ]
        if mode == "live" and portfolio is not None:
            problems += one_account_problems(
                [(member.config, member.data) for member in members], pipeline.venue
            )
        if problems:
            raise ConfigError(problems)
        assert isinstance(pipeline.data, LiveFeed)
        self.files = RunFiles(pipeline.config, mode, run_dir, clock)
        """The run's file in force, mode, directory, clock and run key."""
        self.link = JournalLink()
        """The journal, the mark of the orders sent and the recorder (after `start`)."""
        self.markets = Markets(pipeline, plugins, portfolio)
        """The pipeline, the plugins, a portfolio file's strategies and the session."""
        self.overrides = tuple(overrides)
        self.source: LiveFeed = pipeline.data
        self.inbox = ControlInbox(run_dir)
        self.watcher: StrategyWatcher | None = None
        self._held_edit = False
        """A hot reload of ``model`` was refused while a stage was in progress: the file
        is read again once none is (`_reload`)."""
        self.answered_requests: set[str] = set()
        """The mailbox's requests answered, by `ControlInbox.name_of` (the journal's, then
        this process's): one found again (the process died before its file was done) is
        done without a second answer."""
        self._watch_file = watch_file
        self.stale: StaleDataWatch | None = None
        self.exchange_venue: ExchangeAccount | None = None
        """Live: the account's markets (None on paper)."""
        self.bars_processed = 0
        self._stale_alarmed = 0
        self.ticker: BarTicker | None = None
        self.echo = echo
        self.outputs = LiveOutputs(run_dir) if refresh else None
        self.first_live_bar = 0
        """The first bar traded live (the bars before it are the warm-up history)."""
        self.journal_outage: JournalOutage | None = None
        """Set while the journal's database is unreachable (no order is sent)."""
        self._observers: list[Observer] = []
        """Told of each timed stage and each tick (`observe`)."""
        self.stages: Callable[[str, float], None] | None = None
        """Told ``(stage, seconds)`` of each timed stage (None: no observer times them)."""
        self.metrics_port: int | None = None
        """The port the run's metrics are served on (``live.metrics``), once bound."""
        self.book_feed: BookFeed | None = None
        """Reads the exchange's order book at each tick (``data.order_book``; None: none)."""
        self.shadow: ShadowBooks | None = None
        """The challengers deciding in shadow on each bar (``challengers:``; None: none)."""
        self.member_shadows: MemberShadows | None = None
        """A portfolio file's strategies' challengers (None: none has any)."""
        self.shadowing: Shadowing | None = None
        """What a challenger's session is built from (set with the session)."""
        self.promotions: PromotionStage | None = None
        """The challengers' promotions and the canary in progress (None: no challengers)."""
        parity = pipeline.config.live.parity
        self.parity: ParityMonitor | None = None
        """Checks parity with the run's replay every few bars (``live.parity``; None: none)."""
        if parity is not None:
            ready = None if self.outputs is None else self.outputs.wait
            self.parity = ParityMonitor(
                run_dir,
                parity,
                ready=ready,
                wake=self.inbox.wake.set,
                in_progress=self._canary_note,
                killed=lambda: self.session_or_fail.killed,
            )

    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` of each timed stage and each tick from now on (register it
        before `start`: the stage timer is handed to the session as it is built)."""
        self._observers.append(observer)
        timed = [o for o in self._observers if o.times_stages]
        if len(timed) == 1:
            self.stages = timed[0].stage
        elif timed:

            def told(stage: str, seconds: float) -> None:
                for each in timed:
                    each.stage(stage, seconds)

            self.stages = told

    def _after_tick(self, processed: int) -> None:
        state = self.trading_state
        for observer in self._observers:
            observer.after_tick(processed, state)

    def ticking(self) -> Ticking:
        """Return what a clock drives (after `start`)."""
        return Ticking(
            self.tick,
            self.inbox.wake,
            lambda: self.bars_processed,
            self.files.config.live,
            self.session_or_fail.history.timeframe_seconds,
        )

    def attach_observers(self, stack: ExitStack) -> None:
        """Serve the run's metrics and start its alerts as ``live:`` asks, before `start`
        (`tradeloom.live.observers`); undone when ``stack`` closes."""
        self.metrics_port = attach_observers(
            self.files, self.link, self.markets, self.observe, stack, echo=self.echo
        )

    # --- the services, as the run's callers read them ---------------------------------

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        return self.files.run_dir

    @property
    def now(self) -> Callable[[], pd.Timestamp]:
        """The run's clock."""
        return self.files.now

    @property
    def journal(self) -> JournalStore | None:
        """The journal's store (None before the start and after the stop)."""
        return self.link.journal

    @property
    def session(self) -> LiveSession | None:
        """The session (None before the start)."""
        return self.markets.session

    @property
    def session_or_fail(self) -> LiveSession:
        """The session (after `start`)."""
        return self.markets.session_or_fail

    @property
    def recorder_or_fail(self) -> Recorder:
        """The recorder (after `start`)."""
        return self.link.recorder_or_fail

    @property
    def shadowing_or_fail(self) -> Shadowing:
        """What a challenger's session is built from (after `start`)."""
        if self.shadowing is None:
            raise RuntimeError("the run has not started")
        return self.shadowing

    # --- start ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the run directory and start the run, or restart it from its journal.

        Raises:
            UserError: The run directory belongs to another strategy or mode, or a
                restart found the journal and the venue in disagreement.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = journal_path(self.run_dir)
        self.inbox.claim_pid()
        state = None
        identity = RunIdentity(
            self.files.config.name,
            self.run_dir.name,
            self.files.mode,
            strategy_digest(self.files.config.document),  # the strategy.yaml it writes
        )
        # A live run on one market can ask it what it sent beyond a journal that lost its
        # tail (`tradeloom.live.sent_lookup`); paper's venue is the journal, and a
        # universe's, a portfolio file's and a router's restarts refuse a cut journal
        venue_can_tell = (
            self.files.mode == "live"
            and self.markets.portfolio is None
            and self.markets.p.router is None
            and declared_symbols(self.markets.p.data) == 1
        )
        cut = False
        if path.exists() or path.is_symlink():
            from tradeloom.live.journal_state import read_state

            try:
                try:  # the hash chain and the tail record, before anything is trusted
                    verify(path)
                except TailCut:
                    if not venue_can_tell:
                        raise
                    cut = self.link.cut = True
                state = read_state(path)
                # the journal must hold every order the run ever POSTed, or the venue
                # must say what became of the others
                if not venue_can_tell or state.started is None:
                    check_sent_mark(SentMark(self.run_dir), path, len(state.sent))
            except JournalError as error:
                raise JournalError(f"{error}; refusing to restart: nothing was sent") from None
            if state.started is None:  # the first start failed before it began trading
                _check_first_strategy(path, identity)
                state = None
            else:
                self._check_owner(state.started)
                self._check_unchanged(state.document, state.swapped)
                self.answered_requests = set(state.answered_requests)
        else:
            try:  # a journal gone whole, after orders were sent
                check_sent_mark(SentMark(self.run_dir), path, 0)
            except JournalError as error:
                raise JournalError(f"{error}; refusing to start: nothing was sent") from None
        link = self.link
        try:
            link.journal = journal = open_store(
                self.run_dir, identity, journal_target(self.files.config.journal), accept_cut=cut
            )
        except JournalError as error:
            said = str(error)  # a database's refusal says already that nothing was written
            raise JournalError(
                said if said.endswith("nothing was written") else f"{said}; nothing was sent"
            ) from None
        link.sent_mark = open_sent_mark(self.run_dir, journal)
        pg_mark = isinstance(link.sent_mark, PgSentMark)  # read once the store is open
        if state is not None and pg_mark and (not venue_can_tell or state.started is None):
            try:
                check_sent_mark(link.sent_mark, path, len(state.sent))
            except JournalError as error:
                journal.close()
                raise JournalError(f"{error}; refusing to restart: nothing was sent") from None
        if state is None:
            # after the journal's owner was checked: never over another run's file
            outputs.write_strategy(self.run_dir, self.files.config.document)
        run = self.files.run_info()
        link.recorder = Recorder(journal, self.markets.plugins.hook, run)
        link.recorder.tell_live_events()
        # every log line of the run names it (structlog's context, this thread's)
        structlog.contextvars.bind_contextvars(
            run_id=run.run_id, strategy=run.strategy, mode=self.files.mode
        )
        symbols = self._open(state)
        session = self.session_or_fail
        if self._watch_file and self.markets.portfolio is None:  # a portfolio file: not reloaded
            self.watcher = StrategyWatcher(
                self.files.config.source,
                self.files.config,
                self.overrides,
                plugins=self.markets.plugins,
                kept=self._kept(state),
            )
        history = session.history
        late = self.files.config.live.stale_after_bars
        if late is not None:
            self.stale = StaleDataWatch(
                ",".join(symbols),
                history.timeframe,
                grace_seconds=late * history.timeframe_seconds,
                started=self.now(),
                last_bar=history.last_time,
                # a closed market (a forex weekend) owes no bar, in every clock
                calendar=data_calendar(session),
            )
        self.markets.plugins.hook.tradeloom_run_started(run=run)
        journal.flush()
        if self.book_feed is not None:
            self.book_feed.write()
        if self.outputs is not None:
            # a restart's files are current before its first bar
            self.outputs.refresh(self._outputs_source())

    def _open(self, state: JournalState | None) -> tuple[str, ...]:
        """Start the session (``state`` None: a new run) or rebuild it from ``state``, and
        open the bar ticker; return the markets' symbols."""
        files, link, markets = self.files, self.link, self.markets
        if markets.portfolio is not None:
            from tradeloom.live.portfolio_start import restart_portfolio, start_portfolio

            if state is None:
                session = start_portfolio(files, link, markets, markets.portfolio)
            else:
                session = restart_portfolio(files, link, markets, markets.portfolio, state)
            markets.session = session
            venue = session.engine.venue
            self.exchange_venue = venue if provides(venue, ExchangeAccount) else None
            self.member_shadows = self._open_member_shadows(state, session)
            symbols = session.markets
            # each market read through the first strategy that trades it
            self.source = MarketsFeed((m.p.data, m.history.symbols) for m in session.members)
        else:
            universe = self._load(state)
            symbols = universe.symbols
            if len(symbols) == 1:  # the one market's rows carry its symbol
                link.recorder_or_fail.symbol = symbols[0]
            markets.session = self._resume(state, universe)
        files.symbol = symbols[0]
        history = markets.session_or_fail.history
        if state is None:
            self.first_live_bar = len(history)
        else:  # a row per symbol and tick replayed
            self.first_live_bar = len(history) - len({r.index for r in state.bars})
        self.ticker = BarTicker(
            self.source,
            symbols,
            history.timeframe_seconds,
            self.files.config.live.close_delay_seconds,
        )
        self.open_stream()
        return symbols

    def _load(self, state: JournalState | None) -> Universe:
        """Load the markets' history; one market's order book joined to its bars."""
        universe = load_universe(self.markets.p)
        self.files.symbol = universe.symbols[0]
        if self.book_feed is not None:
            self.book_feed.stop()
        self.book_feed = None
        if len(universe.symbols) == 1:
            bars = universe.bars[0]
            self.book_feed = open_book_feed(
                self.source, bars, state, self.run_dir, self.now, self.files.config.live.stream
            )
            if self.book_feed is not None:  # the book the bars saw, history and live
                universe = replace(universe, bars=(self.book_feed.book.join(bars),))
        return universe

    def _resume(self, state: JournalState | None, universe: Universe) -> LiveSession:
        if state is None:
            from tradeloom.live.start import start

            session = start(self.files, self.link, self.markets, universe, self.build_session)
        else:
            from tradeloom.live.restart import restart

            session = restart(
                self.files, self.link, self.markets, state, universe, self.build_session
            )
        venue = session.engine.venue
        self.exchange_venue = venue if provides(venue, ExchangeAccount) else None
        self.shadow = self._open_shadow(state, session)
        return session

    def _open_shadow(self, state: JournalState | None, session: LiveSession) -> ShadowBooks | None:
        """Start the challengers, or rebuild them from the journal
        (`tradeloom.live.challengers`), and their promotions, with a canary in progress
        taken up again (`tradeloom.live.promotion_stage`)."""
        from tradeloom.live.canary import Shadowing
        from tradeloom.live.challengers import ShadowBooks, open_shadow_books
        from tradeloom.live.promotion_stage import open_stage

        history = session.history
        live = 0 if state is None else len({row.index for row in state.bars})
        heads = None
        if state is not None and self.markets.portfolio is None:
            from tradeloom.live.challenger_roster import restart_roster

            heads = restart_roster(
                self.run_dir,
                self.markets.p.config,
                self._started_document(),
                history,
                self.link.journal_or_fail,
                self.recorder_or_fail,
            )
        shadowing = self.shadowing = Shadowing(
            history.universe(len(history) - live),
            clock=lambda: self.files.now(),  # the run's clock, after a restart's replay too
            live_rows=self._live_rows(history.symbols),
        )
        books = open_shadow_books(
            self.markets.p,
            self.link.journal_or_fail,
            self.recorder_or_fail,
            shadowing.head,
            state,
            run_dir=self.run_dir,
            clock=shadowing.clock,
            live_rows=shadowing.live_rows,
            heads=heads,
            replayed=session.replayed_equity,
        )
        if books is None and state is not None and (state.canary or state.watch) is not None:
            # a canary (or a watch) in progress whose challenger left the file: it goes
            # on, the champion's shadow (none in a watch) the only book
            books = ShadowBooks(self.link.journal_or_fail, [])
        self.promotions = open_stage(
            books,
            state,
            self.files,
            self.markets.plugins,
            session,
            self.recorder_or_fail,
            shadowing,
        )
        return books

    def _open_member_shadows(
        self, state: JournalState | None, session: PortfolioSession
    ) -> MemberShadows | None:
        """Start the portfolio's strategies' challengers, or rebuild them from the journal
        (`tradeloom.live.member_challengers`)."""
        from tradeloom.live.member_challengers import open_member_shadows

        return open_member_shadows(
            session,
            state,
            files=self.files,
            plugins=self.markets.plugins,
            recorder=self.recorder_or_fail,
            clock=lambda: self.files.now(),  # the run's clock, after a restart's replay too
        )

    def _started_document(self) -> dict[str, Any] | None:
        """The strategy document the run started with (its ``run_started`` row's)."""
        from tradeloom.journal import read_frames

        rows = read_frames(journal_path(self.run_dir), ["run_started"])["run_started"]
        document = rows["document"].iloc[0] if len(rows) else None
        return document if isinstance(document, dict) else None

    def rebuild(self, state: JournalState) -> None:
        """Rebuild the session from ``state`` (the journal's database is back after an
        outage), as a restart of the process does."""
        if self.markets.portfolio is not None:
            raise JournalUnavailable("a portfolio's journal cannot be rejoined while it runs")
        self._stop_streams()
        self.answered_requests = set(state.answered_requests)  # what the journal answered
        self.markets.session = self._resume(state, self._load(state))
        self.open_stream()

    def build_session(self, history: MarketHistory, venue: Venue | None, key: str) -> LiveSession:
        """Return a session over ``history`` trading ``venue``.

        ``venue`` is the account's markets (live), the journal (a live restart's replay),
        a router's modelled venues (paper), or None: the strategy's own venue, which the
        core runs itself (paper).
        """
        name = self.files.config.name
        if self.stages is not None and provides(venue, ExchangeAccount):
            venue.time_sends(self.stages)
        return LiveSession(
            self.markets.p,
            self.link.recorder_or_fail,
            history,
            order_id=lambda n: client_order_id(name, key, n),
            clock=self.now,
            venue=venue,
            on_delivery=self.link.record_delivery if self.files.mode == "live" else None,
            cron=cron_of(self.files.config.live.retrain_cron),
            stages=self.stages,
            live_rows=self._live_rows(history.symbols),
        )

    def _live_rows(self, symbols: tuple[str, ...]) -> dict[str, LiveRows]:
        """Each market's extra columns as its bars close: one market's order book, or each
        market's auxiliary series (`live_problems` refuses both at once)."""
        if self.book_feed is not None:
            return {symbols[0]: self.book_feed.book}
        source = self.source
        if isinstance(source, LiveAuxiliaryFeed):
            rows = {s: source.live_auxiliary(s) for s in symbols}
            return {s: r for s, r in rows.items() if r is not None}
        return {}

    def _check_unchanged(
        self, document: dict[str, Any] | None, swapped: ModelSwapped | None
    ) -> None:
        """Refuse a restart whose file changed what a running strategy cannot swap (a
        ``model`` section that loads the copy of the model in force is no change), or a
        challenger's entry as a reload would refuse it: changed (`changed_entries`), or
        added under a removed one's name (`reused_names`)."""
        from tradeloom.live.challenger_roster import changed_entries, reused_names
        from tradeloom.live.reload import changes_while_down

        if self.markets.portfolio is not None:
            self._check_members_unchanged()
            return
        problems = []
        if document is not None:
            section = self.files.config.document.get(MODEL)
            if swapped is not None and is_kept(section, swapped):
                document = {**document, MODEL: section}
            problems += changes_while_down(document, self.files.config, self.overrides)
            problems += changed_entries(document, self.files.config)
        if self.files.config.challengers:
            problems += reused_names(self.run_dir, self.files.config, self._started_document())
        if problems:
            raise ConfigError(problems)

    def _check_members_unchanged(self) -> None:
        """Refuse a portfolio's restart whose strategy file changed a challenger's entry
        the run has (its book is one candidate's), or took a removed one's name, as a
        strategy run alone's restart refuses them (`tradeloom.live.member_roster`)."""
        from tradeloom.live.member_roster import member_roster

        assert self.markets.portfolio is not None
        configs = self.markets.portfolio.config.strategies
        problems = member_roster(self.run_dir).problems(self.run_dir, configs)
        if problems:
            raise ConfigError(problems)

    def _kept(self, state: JournalState | None) -> tuple[list[Any], Any, str] | None:
        """Return the ``model`` sections the run traded under since its last swap, the
        one it is built as, when a restart built the kept copy in their place, and where
        that copy is kept."""
        if state is None or state.swapped is None:
            return None
        stands = standing_for(self.run_dir)
        section = self.files.config.document.get(MODEL)
        if not stands or not is_kept(section, state.swapped):
            return None
        return stands[0], section, stands[2]

    def _check_owner(self, started: RunStarted) -> None:
        if started.mode != self.files.mode or started.strategy != self.files.config.name:
            raise UserError(
                f"{self.run_dir}: this run directory holds a {started.mode} run of "
                f"'{started.strategy}'; it cannot continue as a {self.files.mode} run of "
                f"'{self.files.config.name}' (use another --out)"
            )

    # --- ticks ----------------------------------------------------------------------

    def tick(self) -> int:
        """Act on control requests and file edits, then run every newly closed bar.

        With the journal's database lost, only try to reconnect (`journal_outage`): no
        bar runs and no order is sent until it is back.

        Returns:
            How many bars were processed.
        """
        with self.changing():  # a rejoin rebuilds the session too
            if self.journal_outage is not None:
                if not self.journal_outage.rejoin(
                    self.files, self.link, self.markets, self.rebuild
                ):
                    self._after_tick(0)  # the metrics show REDUCING meanwhile
                    return 0
                self.journal_outage = None
            try:
                return self._tick()
            except JournalUnavailable as error:
                self.journal_outage = lose_journal(self.files, self.link, self.markets, error)
                return 0

    def _outputs_source(self) -> OutputsSource:
        return OutputsSource(
            self.files, self.link, self.markets, self.first_live_bar, self.book_feed
        )

    def changing(self) -> AbstractContextManager[Any]:
        """Hold off the files' snapshot while the run changes (`LiveOutputs.lock`)."""
        return nullcontext() if self.outputs is None else self.outputs.lock

    @property
    def trading_state(self) -> str:
        """Return the trading state: the session's, REDUCING while the journal is lost."""
        return "REDUCING" if self.journal_outage is not None else self.session_or_fail.state

    def _tick(self) -> int:
        session = self.session_or_fail
        self._control()
        self._reload()
        ticker = self.ticker
        assert ticker is not None
        recorder = self.recorder_or_fail
        reached = True
        started = time.perf_counter()
        try:
            ticker.poll(session.history.last_time, self.now())
        except RetriesExhausted as error:
            # No answer on any attempt: no bar is known closed; the next tick asks again
            # (every symbol: one not asked would read as missing its bar) and the
            # stale-data alarm says when the outage lasts.
            reached = False
            recorder.record(
                VenueUnreachable(
                    **recorder.at(len(session.history) - 1),
                    operation="closed_bars",
                    error=str(error),
                )
            )
            _log.error("venue_unreachable", operation="closed_bars", error=str(error))
        if self.stages is not None:
            self.stages("fetch", time.perf_counter() - started)
        processed = 0
        while reached and (due := ticker.due(session.history.last_time, self.now)):
            when, prices = due
            index = len(session.history)  # the bar's lines carry its decision's correlation id
            if processed == 0 and self.book_feed is not None:
                self.book_feed.tick(recorder, index)  # read before the bars' features step
            structlog.contextvars.bind_contextvars(bar=index, correlation_id=f"bar-{index}")
            before = None if self.echo is None else _Counts.of(recorder)
            t = session.step(when, prices)
            if self.shadow is not None:  # the challengers decide on the same bar, in shadow
                self._shadow_step(self.shadow, session, when, prices)
            if self.member_shadows is not None:  # a portfolio's strategies' challengers
                self.member_shadows.step(when, prices)
            processed += 1
            self.bars_processed += 1
            if before is not None:
                assert self.echo is not None
                self.echo(self.bar_line(t, before))
            self._check_refused()
            if self.stale is not None:
                self.stale.observe(when)
        if self.stale is not None and processed == 0:
            alarm = self.stale.check(self.now())
            if alarm is not None and alarm.missed_bars != self._stale_alarmed:
                self._stale_alarmed = alarm.missed_bars  # once per missed bar, not per tick
                one = len(session.history.symbols) == 1
                at = recorder.at(len(session.history) - 1, market=one)
                recorder.record(StaleData(**at, message=alarm.message()))
                _log.warning("stale_data", message=alarm.message())
        # a tick that sends nothing commits without fsync (an order's intent was
        # committed durably before it was sent): docs/guides/operating-live-runs.md
        self.link.journal_or_fail.flush(durable=False)
        if self.book_feed is not None:
            self.book_feed.write()  # after the commit: the journal first, always
        self._after_tick(processed)
        if processed and self.outputs is not None:
            # after the commit (the journal first, always) and last: the writer's thread
            # finds it at its next look and snapshots the run once the tick lets go of
            # `outputs.lock`
            self.outputs.refresh(self._outputs_source())
        if self.parity is not None:  # after the files' hand-over: a check reads them
            last = len(session.history) - 1
            if self.parity.after_tick(processed, last, recorder):
                self.link.journal_or_fail.flush(durable=False)
        return processed

    def _shadow_step(
        self, books: ShadowBooks, session: LiveSession, when: pd.Timestamp, prices: Any
    ) -> None:
        """Step the challengers on the bar the champion just closed; read the canary's
        rules, or promote a challenger whose gate passed (`tradeloom.live.promotion_stage`)."""
        books.step(when, prices, float(session.engine.state.acct[L.A_EQUITY]))
        if self.promotions is not None:
            self.promotions.after_bar(session)

    def bar_line(self, t: int, before: _Counts) -> str:
        """Return the one line printed for clock bar ``t``: one market's time, close,
        signal, decision, position, equity and state; a universe's symbols with a bar,
        signals, orders and fills, each symbol held, equity and state."""
        rec = self.recorder_or_fail
        session = self.session_or_fail
        history = session.history
        symbols = history.symbols
        new_orders = rec.orders[before.orders :]
        orders = ", ".join(f"{_SIDES[o.side]} {o.quantity:.8g}" for o in new_orders)
        fills = ", ".join(
            f"{_SIDES[f.side]} {f.quantity:.8g}@{f.price:.8g}" for f in rec.fills[before.fills :]
        )
        # what the bar sent, what filled and what was refused short (a router's NO_ROUTE, a
        # venue's refusal, a cut: `tradeloom.reporting.refusals`), after the decision
        refused = ", ".join(
            f"{c.remaining:.8g} {c.reason} ({rec.purpose_of(c.order_id)})"
            for c in rec.cancellations[before.cancels :]
            if refusal_stage(c.reason, cancelled=True) is not None
        )
        sent = (
            (f" order {orders}" if orders else "")
            + (f" | filled {fills}" if fills else "")
            + (f" | refused {refused}" if refused else "")
        )
        book = session.engine.portfolio
        state = session.state
        if len(symbols) > 1:
            prices = history.prices(t)
            present = int((~np.isnan(prices[:, 3])).sum())
            held = [
                f"{symbol} {book.position_of(s):.8g}"
                for s, symbol in enumerate(symbols)
                if book.position_of(s) != 0.0
            ]
            equity = float(session.engine.state.acct[L.A_EQUITY])
            return (
                f"{history.time(t):%Y-%m-%d %H:%M}Z bar {t} | {present}/{len(symbols)} symbols "
                f"| signals {rec.signals - before.signals}"
                + (" |" if orders else "")  # set apart from the signals count
                + sent
                + f" | held {', '.join(held) or '-'} | equity {equity:.2f} | {state}"
            )
        bar = history.bar(t)
        signal = "-"
        if rec.signals > before.signals:
            last = rec.signal_events[-1]
            side = {1: "long", -1: "short"}.get(last.direction, "flat")
            signal = f"{side} p={last.probability:.3f}"
        decision = rec.last_decision if rec.decision_count > before.decisions else "-"
        if decision == "-" and new_orders:  # an exit (a signal's, a stop's): no risk decision
            decision = new_orders[0].reason
        if session.engine.halted and state != "HALTED":
            state += f" halted:{session.engine.halt_code}"
        return (
            f"{bar.timestamp:%Y-%m-%d %H:%M}Z bar {bar.index} close {bar.close:.8g} "
            f"| signal {signal} | decision {decision}{sent}"
            f" | position {book.position:.8g} | equity {book.equity(bar.close):.2f} | {state}"
        )

    def open_stream(self) -> None:
        """Start the websocket streams of ``live.stream`` (``poll``: REST only).

        Raises:
            UserError: ``live.stream: websocket`` and the data source has no stream.
        """
        assert self.ticker is not None
        if not self.ticker.watch(self.files.config.live.stream, self.now):
            self._no_stream()

    def _stop_streams(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        if self.book_feed is not None:
            self.book_feed.stop()

    def _no_stream(self) -> None:
        """Refuse ``live.stream: websocket`` when the source has no stream (else: poll)."""
        if self.files.config.live.stream == "websocket":
            raise UserError(
                f"{self.files.config.locate('live.stream')} live.stream: the data source "
                f"(kind {self.files.config.data.kind}) has no websocket stream of closed bars "
                "here (for ccxt: no ccxt.pro OHLCV stream of the exchange); use auto or poll"
            )

    def _check_refused(self) -> None:
        venue = self.exchange_venue
        refused = None if venue is None else venue.take_refused()
        if refused is None:
            return
        self.session_or_fail.kill(f"FILL_REFUSED: {refused.message}")  # until resume

    def _control(self) -> None:
        session = self.session_or_fail
        self.inbox.wake.clear()
        last = len(session.history) - 1
        for request in self.inbox.pending():
            name = self.inbox.name_of(request)
            if name and name in self.answered_requests:
                self.inbox.done(request)  # answered before the process died
                continue
            if request.action == "swap":
                self._swap_asked(request)
                self.inbox.done(request)
                continue
            if request.action in ("promote", "rollback"):
                self._promotion_asked(request)
                self.inbox.done(request)
                continue
            repeated = request.action == "kill" and session.killed
            if repeated and request.by == "file":
                # the KILL file asks again at every tick: cancel anything new, journaled
                # once per cancel (a restart's replay cancels at the same bar)
                session.cancel_for_kill()
                self.inbox.done(request)
                continue
            recorder = self.recorder_or_fail
            recorder.record(
                ControlRequest(
                    **recorder.at(last),
                    action=request.action,
                    reason=request.reason,
                    by=request.by,
                    request=name,
                )
            )
            if repeated:  # journaled, as every operator's request; the halt stands
                session.cancel_for_kill()
                _log.warning("kill_repeated", reason=request.reason, by=request.by)
            elif request.action == "kill":
                session.kill(f"{request.reason} (by {request.by})")
            elif request.action == "flatten":
                session.flatten(f"flatten: {request.reason} (by {request.by})")
            else:
                session.resume(f"{request.reason} (by {request.by})")
            self.link.journal_or_fail.flush()
            if name:
                self.answered_requests.add(name)
            self.inbox.done(request)

    def _swap_asked(self, request: Request) -> None:
        """Check the model a ``swap`` request names; swap it in before the next bar, or
        journal why not (the run trades on with its model)."""
        name = self.inbox.name_of(request)
        target = self._swap_target(request.strategy)
        config = self.files.config if isinstance(target, str) else target[1]
        running = config.document.get(MODEL)
        section = saved_section(request.model, request.fold, running or {})
        outcome: ModelSwap | SwapRefused
        if isinstance(target, str):
            outcome = SwapRefused(described(section), (target,))
        elif (canary := self._canary_note()) is not None:
            outcome = SwapRefused(described(section), (canary,))
        else:
            outcome = build_swap(config, self.markets.plugins, target[0], section)
            if isinstance(outcome, ModelSwap) and (already := already_in_force(target[0], outcome)):
                outcome = SwapRefused(outcome.source, (already,))
        kept = outcome if isinstance(outcome, SwapRefused) else keep_file(self.run_dir, outcome)
        recorder = self.recorder_or_fail
        member = "" if isinstance(target, str) else target[2]
        asked = {"by": request.by, "reason": request.reason, "request": name}
        if isinstance(kept, SwapRefused):
            bar = self.markets.bar_in_progress() - 1
            at = self.session_or_fail.history.time(bar)  # the row's header: its bar's time
            journal_refusal(recorder, bar, kept, strategy=request.strategy or "", time=at, **asked)
        else:
            assert isinstance(outcome, ModelSwap) and not isinstance(target, str)
            journal_swap(recorder, target[0], outcome, kept, strategy=member, **asked)
        self.link.journal_or_fail.flush()
        # answered once committed: a flush that failed (the journal's database down) leaves
        # it unanswered, and `rebuild` takes the journal's answers, so it is asked again
        self.answered_requests.add(name)

    def _canary_note(self) -> str | None:
        """Why the model cannot be swapped now: a canary, or the watch after a full
        promotion, is in progress (None: neither is; `PromotionStage.in_progress`)."""
        return None if self.promotions is None else self.promotions.in_progress()

    def _promotion_asked(self, request: Request) -> None:
        """Promote a challenger or roll the canary back, as an operator asked, or journal
        why not (`tradeloom.live.promotion_stage`); answered once committed."""
        name = self.inbox.name_of(request)
        session = self.session_or_fail
        if self.member_shadows is not None:
            self.member_shadows.asked(request)
        elif self.promotions is None:
            from tradeloom.live.promotion_stage import refuse_request

            why = (
                "the portfolio file's strategies have no challengers"
                if self.markets.portfolio is not None
                else "the strategy has no challengers"
            )
            refuse_request(self.recorder_or_fail, session, request, why)
        else:
            self.promotions.asked(request, session)
        self.link.journal_or_fail.flush()
        self.answered_requests.add(name)

    def _swap_target(self, strategy: str | None) -> tuple[LiveSession, StrategyConfig, str] | str:
        """Return the session whose model a swap request for ``strategy`` swaps, its
        strategy in force and its member's name ('' for a strategy run alone); or why the
        request names none (`member_problem`)."""
        session = self.session_or_fail
        if self.markets.portfolio is None:
            if strategy is not None:
                return member_problem(strategy, ())
            return session, self.files.config, ""
        from tradeloom.live.portfolio_session import PortfolioSession

        assert isinstance(session, PortfolioSession)
        members = {member.owner: member for member in session.members}
        if strategy is None or strategy not in members:
            return member_problem(strategy, tuple(members))
        member = members[strategy]
        return member, member.p.config, strategy

    def _reload(self) -> None:
        if self.watcher is None:
            return
        if self._held_edit and self._canary_note() is None:
            # the stage that refused the model's edit has ended: the file's version, if it
            # still stands, is taken now (its refusal said to wait for the end)
            self._held_edit = False
            self.watcher.look_again()
        outcome = self.watcher.check()
        if outcome is None:
            return
        recorder = self.recorder_or_fail
        session = self.session_or_fail
        bar = len(session.history) - 1
        swap: tuple[ModelSwap, dict[str, Any]] | None = None
        canary = self._canary_note()
        if not isinstance(outcome, ReloadRefused) and MODEL in outcome.changed and canary:
            self._held_edit = True
            outcome = ReloadRefused((f"{outcome.config.locate(MODEL)} model: {canary}",))
        if not isinstance(outcome, ReloadRefused) and MODEL in outcome.changed:
            swap_or_not = self._reloaded_model(outcome)
            if isinstance(swap_or_not, ReloadRefused):
                outcome = swap_or_not
            else:
                swap = swap_or_not
        if not isinstance(outcome, ReloadRefused):
            outcome = self._calibrated_enough(
                outcome, session.p.model if swap is None else swap[0].model
            )
        roster: RosterChange | None = None
        if not isinstance(outcome, ReloadRefused) and CHALLENGERS in outcome.changed:
            from tradeloom.live.challenger_roster import roster_change, used_names

            roster_or_not = roster_change(
                self.files.config,
                outcome.pipeline,
                used_names(self.run_dir, self.files.config, self._started_document()),
            )
            if isinstance(roster_or_not, ReloadRefused):
                outcome = roster_or_not
            else:
                roster = roster_or_not
        if isinstance(outcome, ReloadRefused):
            # every refusal, the watcher's or one of the checks above: the next edit is
            # compared with the strategy running, not with the version refused
            if not self.watcher.refused(outcome):
                return  # this content, read again after a stage, refused as before
            errors = [str(e) for e in outcome.errors]
            recorder.record(ConfigReloadRefused(**recorder.at(bar), errors=errors))
            _log.error("config_reload_refused", errors=list(outcome.errors))
            return
        apply_reload(outcome, session, self.files)
        recorder.record(
            ConfigReloaded(
                **recorder.at(bar),
                changed=[str(c) for c in outcome.changed],
                changes=[str(c) for c in outcome.changes],
                document=dict(outcome.config.document),
            )
        )
        _log.warning("config_reloaded", changed=outcome.describe())
        if swap is not None:  # in the reload's commit: both or neither
            reason = "the strategy file's model section changed"
            journal_swap(recorder, session, *swap, by="reload", reason=reason)
        if roster is not None:  # in the reload's commit too: from the next bar
            shadowing = self.shadowing_or_fail
            self.shadow = roster.apply(
                self.shadow, self.link.journal_or_fail, recorder, session.history, shadowing
            )
            if self.promotions is None:  # the run's first challengers: their gates too
                from tradeloom.live.promotion_stage import open_stage

                self.promotions = open_stage(
                    self.shadow,
                    None,
                    self.files,
                    self.markets.plugins,
                    session,
                    recorder,
                    shadowing,
                )

    def _calibrated_enough(self, reload: Reload, model: object) -> Reload | ReloadRefused:
        """Refuse a reload whose sizing needs a calibrated model when ``model``, the model
        in force after it, is not (every restart would refuse to put it back)."""
        if not uncalibrated(reload.pipeline.sizer, model):
            return reload
        return ReloadRefused(
            (
                f"{reload.config.locate('risk.sizing')} risk.sizing: reads the probability "
                "as a probability (it needs a calibrated model) and the model in force is "
                "not calibrated; keep the sizing, or swap in a model trained with "
                "model.calibration first",
            )
        )

    def _reloaded_model(
        self, reload: Reload
    ) -> tuple[ModelSwap, dict[str, Any]] | ReloadRefused | None:
        """Check the model of a reload that changed the ``model`` section and keep its
        file; or the reload refused, located at the section; None: the section names the
        model in force (`already_in_force`), so nothing is swapped."""
        section = reload.config.document[MODEL]
        trusted = section.get("trusted_packages", ()) if isinstance(section, dict) else ()
        session = self.session_or_fail
        swap = checked_swap(session, reload.pipeline.model, described(section), trusted)
        if isinstance(swap, ModelSwap) and already_in_force(session, swap):
            return None
        kept = swap if isinstance(swap, SwapRefused) else keep_file(self.run_dir, swap)
        if isinstance(kept, SwapRefused):
            where = reload.config.locate(MODEL)
            return ReloadRefused(tuple(f"{where} {line}" for line in kept.errors))
        assert isinstance(swap, ModelSwap)
        return swap, kept

    # --- stop -----------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Journal why the run stops, commit, refresh its files, release the run directory."""
        try:
            if self.parity is not None and self.link.journal is not None:
                # before `changing`: the check waits for the files, which take its lock
                self.parity.close(self.recorder_or_fail)
            with self.changing():
                self._stop_and_close(reason)
            if self.outputs is not None:
                self.outputs.refresh(self._outputs_source(), final=True)
        finally:
            self.inbox.release_pid()
            structlog.contextvars.unbind_contextvars(*_LOG_CONTEXT)

    def _stop_and_close(self, reason: str) -> None:
        self._stop_streams()
        journal, self.link.journal = self.link.journal, None
        if journal is None:
            return
        try:
            journal.append(
                RunStopped(
                    reason=reason,
                    bars=self.bars_processed,
                    wall_time=pd.Timestamp(datetime.now(UTC)),
                )
            )
            journal.close()
        except (sqlite3.Error, OSError, JournalUnavailable) as exc:
            # A full disk: the error that stopped the run is the one to report.
            _log.error("stopped_row_not_journaled", reason=reason, error=str(exc))


_SIDES = {1: "buy", -1: "sell"}

_LOG_CONTEXT = ("run_id", "strategy", "mode", "bar", "correlation_id")
"""The keys a run binds into structlog's context (unbound when it stops)."""


@dataclass(frozen=True)
class _Counts:
    """What the recorder had counted before a bar (its line shows what the bar added)."""

    signals: int
    decisions: int
    orders: int
    fills: int
    cancels: int

    @classmethod
    def of(cls, rec: Recorder) -> _Counts:
        return cls(
            rec.signals, rec.decision_count, len(rec.orders), len(rec.fills), len(rec.cancellations)
        )
