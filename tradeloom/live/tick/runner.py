"""A paper or live run in its run directory: start or restart, then one tick at a time.

A run trades its markets keyed by symbol, as a backtest does: one market is the
universe of one, a universe (``data.symbols``) several on one clock, a portfolio file
several strategies on one account. `LiveRunner.start` opens the run directory's
journal. A new run loads the history (the data source: cache, then the exchange up to
the last closed bar; each market's order book or auxiliary series as of each bar),
steps the features and the engine through it without trading, trains the model's fold
in effect (`tradeloom.live.tick.start`), and journals how it started. A run whose journal
exists is restarted from it (`tradeloom.live.recovery.restart`).

`LiveRunner.tick` is one wake-up of the clock (`tradeloom.live.tick.loop` schedules them;
tests and ``--clock simulated`` call it after moving a simulated clock): it acts on the
kill switch's requests and hands each other request to the stage that declares its
action, lets its stages act at this bar boundary, then runs every clock bar that has
closed since the last one (`BarTicker`) through the `LiveSession`, each stage acting at
each bar's close, and raises the stale-data alarm when the next bar is late. A request
for the closed bars that fails every retry is journaled (``venue_unreachable``) and
made again at the next tick: an outage does not end the run.

The runner keeps the tick, the session and the order of things; what acts at a bar
boundary is a `Stage` of the run's ordered list (`tradeloom.live.tick.services.Stage`,
built by `tradeloom.live.lifecycle.stages`), which the runner calls and never names.

Paper mode trades the simulated venue of ``execution:`` against the live bars (a
router's venues each modelled); it needs no keys. Live mode trades, through each
market's `CcxtVenue` (`tradeloom.live.accounts.account_venue`), on the account of
``execution: {kind: ccxt}``, or with ``kind: simulated`` on the data source's exchange
with its ``${ENV}`` keys (`tradeloom.engine.capabilities.live_account`), or over a
router's exchanges.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import structlog

from tradeloom.domain import Universe
from tradeloom.engine.capabilities import live_problems, one_account_problems
from tradeloom.engine.control_inbox import ControlInbox
from tradeloom.engine.events import Recorder
from tradeloom.engine.universe import load_universe
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import ConfigError, UserError
from tradeloom.journal import (
    JournalStore,
    JournalUnavailable,
    RunStarted,
    RunStopped,
    StaleData,
    VenueUnreachable,
)
from tradeloom.live.accounts.market import ExchangeAccount
from tradeloom.live.lifecycle.reload_apply import cron_of
from tradeloom.live.lifecycle.stages import StageOptions, answering, build_stages
from tradeloom.live.outputs.bar_line import Counts, bar_line
from tradeloom.live.outputs.observers import attach_observers
from tradeloom.live.outputs.refresh import LiveOutputs, OutputsSource, data_calendar
from tradeloom.live.tick.book_feed import BookFeed, open_book_feed
from tradeloom.live.tick.history import MarketHistory
from tradeloom.live.tick.journal_outage import JournalOutage, lose_journal
from tradeloom.live.tick.mailbox import answer_mailbox
from tradeloom.live.tick.markets_feed import MarketsFeed
from tradeloom.live.tick.provides import provides
from tradeloom.live.tick.run_journal import open_journal, read_journal
from tradeloom.live.tick.services import (
    JournalLink,
    Markets,
    Mode,
    Observer,
    RunFiles,
    Stage,
    Ticking,
    wall_clock,
)
from tradeloom.live.tick.session import LiveSession
from tradeloom.live.tick.stale_data import StaleDataWatch
from tradeloom.live.tick.ticker import BarTicker
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

if TYPE_CHECKING:
    from tradeloom.live.recovery.journal_state import JournalState
    from tradeloom.live.tick.portfolio_session import LivePortfolio

__all__ = ["LiveRunner", "Mode", "wall_clock"]


_log = structlog.get_logger("tradeloom.live")

S = TypeVar("S", bound=Stage)


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
        stage_options: What the command starting the run hands its stages (`StageOptions`).

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
        stage_options: StageOptions | None = None,
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
        self.answered_requests: set[str] = set()
        """The mailbox's requests answered, by `ControlInbox.name_of` (the journal's, then
        this process's): one found again (the process died before its file was done) is
        done without a second answer."""
        self.answered_keys: set[str] = set()
        """The idempotency keys journaled (`tradeloom.engine.control.ControlRequest.key`,
        the journal's, then this process's): a request of one, written again by a sender
        that crashed before it saved that it had written it, is done without an answer."""
        self.stale: StaleDataWatch | None = None
        self.exchange_venue: ExchangeAccount | None = None
        """Live: the account's markets (None on paper)."""
        self.bars_processed = 0
        self._stale_alarmed = 0
        self.ticker: BarTicker | None = None
        self.echo = echo
        self.outputs = LiveOutputs(run_dir) if refresh else None
        self._source: OutputsSource | None = None
        """The outputs' view of the run last handed over (`_outputs_source`)."""
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
        self.bar_stages: list[Stage] = build_stages(
            self.files,
            self.link,
            self.markets,
            overrides=self.overrides,
            watch_file=watch_file,
            live_rows=self._live_rows,
            wake=self.inbox.wake.set,
            ready=None if self.outputs is None else self.outputs.wait,
            options=stage_options or StageOptions(),
        )
        """What acts at the run's bar boundaries, in order (`Stage`)."""
        self._answering: Mapping[str, Stage] = answering(self.bar_stages)
        """The stage that answers each control action but the kill switch's."""
        # each tick calls only the stages that act at each point (in order): most
        # stages act at one or two of them, and each call of a hook that does nothing
        # is a call a tick pays for
        self._before_bars = _acting(self.bar_stages, "before_bars")
        self._at_close = _acting(self.bar_stages, "at_close")
        self._after_tick_stages = _acting(self.bar_stages, "after_tick")
        self._before_commit = _acting(self.bar_stages, "before_commit")
        if self._before_commit:
            self.link.before_commit = self._committing

    def stage(self, kind: type[S]) -> S | None:
        """Return the run's stage of type ``kind`` (None: the run has none)."""
        return next((s for s in self.bar_stages if isinstance(s, kind)), None)

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
        if not self._observers:
            return  # the trading state is read for them only
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
        (`tradeloom.live.outputs.observers`); undone when ``stack`` closes."""
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

    # --- start ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the run directory and start the run, or restart it from its journal.

        Raises:
            UserError: The run directory belongs to another strategy or mode, or a
                restart found the journal and the venue in disagreement.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.inbox.claim_pid()
        link = self.link
        state, opening = read_journal(self.files, self.markets, link)
        if state is not None:
            assert state.started is not None  # else: read as a new run
            self._check_owner(state.started)
        for stage in self.bar_stages:  # a file changed while down, a folder not the run's
            stage.check(state)  # refused first
        if state is not None:
            self.answered_requests = set(state.answered_requests)
            self.answered_keys = set(state.answered_keys)
        journal = open_journal(self.files, link, state, opening)
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
            from tradeloom.live.tick.portfolio_start import restart_portfolio, start_portfolio

            if state is None:
                session = start_portfolio(files, link, markets, markets.portfolio)
            else:
                session = restart_portfolio(files, link, markets, markets.portfolio, state)
            markets.session = session
            venue = session.engine.venue
            self.exchange_venue = venue if provides(venue, ExchangeAccount) else None
            self._restore(state)
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
            from tradeloom.live.tick.start import start

            session = start(self.files, self.link, self.markets, universe, self.build_session)
        else:
            from tradeloom.live.recovery.restart import restart

            session = restart(
                self.files, self.link, self.markets, state, universe, self.build_session
            )
        venue = session.engine.venue
        self.exchange_venue = venue if provides(venue, ExchangeAccount) else None
        self.markets.session = session
        self._restore(state)
        return session

    def _restore(self, state: JournalState | None) -> None:
        """Have each stage start, or take ``state`` up, once the session is built (and
        act before each new bar's commit)."""
        self.session_or_fail.before_commit = self.link.before_commit
        for stage in self.bar_stages:
            stage.restore(state)

    def _committing(self) -> None:
        for stage in self._before_commit:
            stage.before_commit()

    def rebuild(self, state: JournalState) -> None:
        """Rebuild the session from ``state`` (the journal's database is back after an
        outage), as a restart of the process does."""
        if self.markets.portfolio is not None:
            raise JournalUnavailable("a portfolio's journal cannot be rejoined while it runs")
        self._stop_streams()
        self.answered_requests = set(state.answered_requests)  # what the journal answered
        self.answered_keys = set(state.answered_keys)
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
        # one for the ticks that change neither (frozen: a tick hands over the same one)
        made = self._source
        if (
            made is None
            or made.first_live_bar != self.first_live_bar
            or made.book_feed is not self.book_feed
        ):
            made = self._source = OutputsSource(
                self.files, self.link, self.markets, self.first_live_bar, self.book_feed
            )
        return made

    def changing(self) -> AbstractContextManager[Any]:
        """Hold off the files' snapshot while the run changes (`LiveOutputs.lock`)."""
        return nullcontext() if self.outputs is None else self.outputs.lock

    @property
    def trading_state(self) -> str:
        """Return the trading state: the session's, REDUCING while the journal is lost."""
        return "REDUCING" if self.journal_outage is not None else self.session_or_fail.state

    def _tick(self) -> int:
        session = self.markets.session_or_fail  # (`session_or_fail`, one call not two)
        now = self.files.now  # the run's clock (`now`), read once
        self._control(session)
        for stage in self._before_bars:
            stage.before_bars()
        ticker = self.ticker
        assert ticker is not None
        recorder = self.link.recorder_or_fail
        reached = True
        started = time.perf_counter()
        try:
            ticker.poll(session.history.last_time, now())
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
        while reached and (due := ticker.due(session.history.last_time, now)):
            when, prices = due
            index = len(session.history)  # the bar's lines carry its decision's correlation id
            if processed == 0 and self.book_feed is not None:
                self.book_feed.tick(recorder, index)  # read before the bars' features step
            structlog.contextvars.bind_contextvars(bar=index, correlation_id=f"bar-{index}")
            before = None if self.echo is None else Counts.of(recorder)
            t = session.step(when, prices)
            for stage in self._at_close:  # at the bar's close, before the next decision
                stage.at_close(when, prices)
            processed += 1
            self.bars_processed += 1
            if before is not None:
                assert self.echo is not None
                self.echo(bar_line(session, recorder, t, before))
            if self.exchange_venue is not None:  # paper: none to refuse a fill
                self._check_refused()
            if self.stale is not None:
                self.stale.observe(when)
        if self.stale is not None and processed == 0:
            alarm = self.stale.check(now())
            if alarm is not None and alarm.missed_bars != self._stale_alarmed:
                self._stale_alarmed = alarm.missed_bars  # once per missed bar, not per tick
                one = len(session.history.symbols) == 1
                at = recorder.at(len(session.history) - 1, market=one)
                recorder.record(StaleData(**at, message=alarm.message()))
                _log.warning("stale_data", message=alarm.message())
        # a tick that sends nothing commits without fsync (an order's intent was
        # committed durably before it was sent): docs/guides/operating-live-runs.md
        self._commit(durable=False)
        if self.book_feed is not None:
            self.book_feed.write()  # after the commit: the journal first, always
        if self._observers:  # the trading state is read for them only
            self._after_tick(processed)
        if processed and self.outputs is not None:
            # after the commit (the journal first, always) and last: the writer's thread
            # finds it at its next look and snapshots the run once the tick lets go of
            # `outputs.lock`
            self.outputs.refresh(self._outputs_source())
        journaled = False
        for stage in self._after_tick_stages:  # after the files' hand-over: a stage may read them
            journaled = stage.after_tick(processed) or journaled
        if journaled:
            self._commit(durable=False)
        return processed

    def _commit(self, *, durable: bool = True) -> None:
        """Commit the rows the tick journaled, what they rest on durable first
        (`JournalLink.prepare_commit`: a reload's challenger, or the last bar's
        challengers, may have read answers no bar's commit made durable)."""
        self.link.prepare_commit()
        self.link.journal_or_fail.flush(durable=durable)

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

    def _control(self, session: LiveSession) -> None:
        """Answer the control mailbox's requests (`tradeloom.live.tick.mailbox`)."""
        answer_mailbox(
            session,
            self.inbox,
            lambda: self.recorder_or_fail,  # read when a request needs it, as the
            self._answering,  # journal is (a tick of an outage answers nothing)
            self._commit,
            self.answered_requests,
            self.answered_keys,
        )

    # --- stop -----------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Journal why the run stops, commit, refresh its files, release the run directory."""
        try:
            if self.link.journal is not None:
                # before `changing`: a stage may wait for the files, which take its lock
                for stage in self.bar_stages:
                    stage.close()
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


def _acting(stages: Sequence[Stage], hook: str) -> list[Stage]:
    """Return the stages whose ``hook`` is not `Stage`'s, which does nothing (in order)."""
    default = getattr(Stage, hook)
    return [s for s in stages if hook in vars(s) or getattr(type(s), hook, default) is not default]


_LOG_CONTEXT = ("run_id", "strategy", "mode", "bar", "correlation_id")
"""The keys a run binds into structlog's context (unbound when it stops)."""
