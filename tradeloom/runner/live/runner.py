"""A paper or live run in its run directory: start or restart, then one tick at a time.

`LiveRunner.start` opens the run directory's journal. A new run loads the
history (the ``ccxt`` data source: cache, then the exchange up to the last
closed bar), steps the features and the engine through it without trading,
trains the model's current fold, and journals how it started. A run whose
journal exists is restarted (`tradeloom.runner.live.restore`).

`LiveRunner.tick` is one wake-up of the clock (`tradeloom.runner.live.loop`
schedules them; tests call it after moving a simulated clock): it acts on the
kill switch's requests, swaps a valid edited strategy file in at this bar
boundary, then runs every bar that has closed since the last one through the
`LiveSession`, and raises the stale-data alarm when the next bar is late. A
request for the closed bars that fails every retry is journaled
(``venue_unreachable``) and made again at the next tick: an outage does not end
the run.

A strategy over a universe (``data.symbols``) runs on paper or live through
`tradeloom.runner.live.universe_start`: one `UniverseSession` over every symbol, one
tick per bar of the common clock (`UniverseTicker`); live, each symbol's orders go to
its own market of the account (`tradeloom.runner.live.universe_venue`).

Paper mode trades the simulated venue of ``execution:`` against the live bars;
it needs no keys. Live mode trades, through `CcxtVenue`, on the account of
``execution: {kind: ccxt}``, or with ``kind: simulated`` on the data source's exchange
with its ``${ENV}`` keys (`tradeloom.runner.live.capabilities.live_account`).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import structlog

from tradeloom import __version__
from tradeloom.core import layout as L
from tradeloom.domain import OHLCV, Bar, Bars, RunInfo
from tradeloom.errors import ConfigError, UserError
from tradeloom.journal import (
    ConfigReloaded,
    ConfigReloadRefused,
    ControlRequest,
    JournalError,
    JournalStore,
    JournalUnavailable,
    RunIdentity,
    RunStarted,
    RunStopped,
    StaleData,
    VenueDelivered,
    VenueUnreachable,
    WarmUp,
    journal_path,
    open_store,
    verify,
)
from tradeloom.journal.owner import strategy_digest
from tradeloom.journal.tail import TailCut
from tradeloom.plugins.data.stale_data import StaleDataWatch
from tradeloom.plugins.execution.client_ids import client_order_id
from tradeloom.plugins.execution.router import Router
from tradeloom.plugins.manager import Plugins
from tradeloom.plugins.protocols import BarStream, LiveFeed, LiveUniverseFeed
from tradeloom.reporting import outputs
from tradeloom.retrying import RetriesExhausted
from tradeloom.runner.backtest import compute_features
from tradeloom.runner.events import Recorder
from tradeloom.runner.live.bar_history import BarHistory, history_sha256
from tradeloom.runner.live.book_feed import BookFeed, open_book_feed
from tradeloom.runner.live.capabilities import live_problems
from tradeloom.runner.live.control import ControlInbox
from tradeloom.runner.live.exchange_venue import ExchangeVenue
from tradeloom.runner.live.journal_outage import JournalOutage, lose_journal
from tradeloom.runner.live.refresh import LiveOutputs
from tradeloom.runner.live.reload import Reload, ReloadRefused, StrategyWatcher
from tradeloom.runner.live.restore import restart
from tradeloom.runner.live.sent_mark import (
    PgSentMark,
    SentMark,
    check_sent_mark,
    open_sent_mark,
)
from tradeloom.runner.live.session import LiveSession
from tradeloom.runner.wiring import Pipeline
from tradeloom.schemas.journal import journal_target

if TYPE_CHECKING:
    from tradeloom.runner.live.universe_start import UniverseTicker

__all__ = ["LiveRunner", "Mode"]

Mode = Literal["paper", "live"]

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


def wall_clock() -> pd.Timestamp:
    """Return the time now, UTC."""
    return pd.Timestamp.now(tz="UTC")


class LiveRunner:
    """Run ``pipeline`` as ``mode`` in ``run_dir``.

    Args:
        pipeline: The built strategy; its data source must be ``kind: ccxt``.
        plugins: The plugin manager (observers hear of the run's events).
        mode: ``paper`` (simulated venue) or ``live`` (the exchange).
        run_dir: The run directory; its journal is the run's state.
        clock: The time now (UTC); the wall clock by default, the emulator's in tests.
        overrides: The run's ``--set`` values (re-applied to an edited strategy file).
        watch_file: Hot-reload the strategy file when it changes.
        echo: Told one line per bar processed live (`bar_line`); None: no lines.
        refresh: Rewrite ``metrics.json``, ``equity.csv``, ``trades.csv`` and (throttled)
            ``report.html`` after each tick that processed a bar (`LiveOutputs`).

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
    ) -> None:
        problems = live_problems(
            pipeline.config, mode, data=pipeline.data, model=pipeline.model, venue=pipeline.venue
        )
        if problems:
            raise ConfigError(problems)
        assert isinstance(pipeline.data, LiveFeed)
        self.p = pipeline
        self.plugins = plugins
        self.mode = mode
        self.run_dir = run_dir
        self.now = clock
        self.overrides = tuple(overrides)
        self.source: LiveFeed = pipeline.data
        self.symbol = ""
        self.config = pipeline.config
        self.journal: JournalStore | None = None
        self.sent_mark: SentMark | None = None
        self.journal_cut = False
        """The journal's tail record said it lost rows: a live restart asks the venue."""
        """The orders POSTed, kept outside the journal (`tradeloom.runner.live.sent_mark`)."""
        self.recorder: Recorder | None = None
        self.session: LiveSession | None = None
        self.inbox = ControlInbox(run_dir)
        self.watcher: StrategyWatcher | None = None
        self._watch_file = watch_file
        self.stale: StaleDataWatch | None = None
        self.exchange_venue: Any = None
        self.bars_processed = 0
        self.run_key = ""
        self._stale_alarmed = 0
        self.stream: BarStream | None = None
        self.echo = echo
        self.outputs = LiveOutputs(run_dir) if refresh else None
        self.first_live_bar = 0
        """The first bar traded live (the bars before it are the warm-up history)."""
        self.universe = len(getattr(pipeline.config.data.params, "symbols", None) or ()) > 1
        """The data lists several symbols: the run ticks a universe."""
        self.ticker: UniverseTicker | None = None
        self.journal_outage: JournalOutage | None = None
        """Set while the journal's database is unreachable (no order is sent)."""
        if self.universe and refresh:
            from tradeloom.runner.live.universe_outputs import UniverseOutputs

            self.outputs = UniverseOutputs(run_dir)  # every symbol's columns and rows
        self.stages: Callable[[str, float], None] | None = None
        """Told ``(stage, seconds)`` of each timed stage of a tick (the metrics)."""
        self.tick_listeners: list[Callable[[LiveRunner, int], None]] = []
        """Told ``(runner, bars processed)`` after each tick (the metrics' gauges)."""
        self.metrics_port: int | None = None
        """The port the run's metrics are served on (``live.metrics``), once bound."""
        self.book_feed: BookFeed | None = None
        """Reads the exchange's order book at each tick (``data.order_book``; None: none)."""

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
            self.config.name,
            self.run_dir.name,
            self.mode,
            strategy_digest(self.config.document),  # the strategy.yaml it writes
        )
        # A live run on one market can ask its venue what it sent beyond a journal that
        # lost its tail (`tradeloom.runner.live.sent_lookup`); paper's venue is the
        # journal, and a universe's or a router's venues are not asked yet.
        venue_can_tell = self.mode == "live" and not self.universe
        venue_can_tell = venue_can_tell and not isinstance(self.p.venue, Router)
        cut = False
        if path.exists() or path.is_symlink():
            from tradeloom.runner.live.journal_state import read_state

            try:
                try:  # the hash chain and the tail record, before anything is trusted
                    verify(path)
                except TailCut:
                    if not venue_can_tell:
                        raise
                    cut = self.journal_cut = True
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
                self._check_unchanged(state.document)
        else:
            try:  # a journal gone whole, after orders were sent
                check_sent_mark(SentMark(self.run_dir), path, 0)
            except JournalError as error:
                raise JournalError(f"{error}; refusing to start: nothing was sent") from None
        try:
            self.journal = open_store(
                self.run_dir, identity, journal_target(self.config.journal), accept_cut=cut
            )
        except JournalError as error:
            said = str(error)  # a database's refusal says already that nothing was written
            raise JournalError(
                said if said.endswith("nothing was written") else f"{said}; nothing was sent"
            ) from None
        self.sent_mark = open_sent_mark(self.run_dir, self.journal)
        pg_mark = isinstance(self.sent_mark, PgSentMark)  # read once the store is open
        if state is not None and pg_mark and (not venue_can_tell or state.started is None):
            try:
                check_sent_mark(self.sent_mark, path, len(state.sent))
            except JournalError as error:
                self.journal.close()
                raise JournalError(f"{error}; refusing to restart: nothing was sent") from None
        if state is None:
            # after the journal's owner was checked: never over another run's file
            outputs.write_strategy(self.run_dir, self.config.document)
        run = RunInfo(
            run_id=self.run_dir.name,
            strategy=self.config.name,
            mode=self.mode,
            run_dir=str(self.run_dir),
        )
        self.recorder = Recorder(self.journal, self.plugins.hook, run)
        self.recorder.tell_live_events()
        # every log line of the run names it (structlog's context, this thread's)
        structlog.contextvars.bind_contextvars(
            run_id=run.run_id, strategy=run.strategy, mode=self.mode
        )
        if self.universe:
            self._start_universe(state)
            self.plugins.hook.tradeloom_run_started(run=run)
            self.journal.flush()
            if self.outputs is not None:
                self.outputs.refresh(self)
            return
        bars = self.source.load()
        self.symbol = bars.symbol
        self.recorder.symbol = bars.symbol
        self.book_feed = open_book_feed(
            self.source, bars, state, self.run_dir, self.now, self.config.live.stream
        )
        if self.book_feed is not None:
            bars = self.book_feed.book.join(bars)  # the book the bars saw, history and live
        features = compute_features(self.p, bars)
        if state is None:
            self.first_live_bar = len(bars)
            self._start_new(bars, features)
        else:
            self.first_live_bar = 0 if state.warm_up is None else state.warm_up.bars
            self.session, self.exchange_venue = restart(self, state, bars, features)
        if self._watch_file:
            self.watcher = StrategyWatcher(
                self.config.source, self.config, self.overrides, plugins=self.plugins
            )
        history = self.session_or_fail.history
        late = self.config.live.stale_after_bars
        if late is not None:
            self.stale = StaleDataWatch(
                history.symbol,
                history.timeframe,
                grace_seconds=late * history.timeframe_seconds,
                started=self.now(),
                last_bar=history.last_time,
            )
        self.open_stream()
        self.plugins.hook.tradeloom_run_started(run=run)
        self.journal.flush()
        if self.book_feed is not None:
            self.book_feed.write()
        if self.outputs is not None:
            self.outputs.refresh(self)  # a restart's files are current before its first bar

    def _start_universe(self, state: Any) -> None:
        from tradeloom.runner.live.universe_start import (
            UniverseTicker,
            restart_universe,
            start_universe,
        )
        from tradeloom.runner.universe import load_universe

        universe = load_universe(self.p)
        self.symbol = universe.symbols[0]
        if state is None:
            self.first_live_bar = len(universe)
            self.session = start_universe(self, universe)
        else:
            self.session = restart_universe(self, state, universe)
            ticks = len({row.index for row in state.bars})  # a row per symbol and tick
            self.first_live_bar = len(self.session.history) - ticks
        assert isinstance(self.source, LiveUniverseFeed)  # checked by live_problems
        self.ticker = UniverseTicker(
            self.source,
            universe.symbols,
            universe.timeframe_seconds,
            self.config.live.close_delay_seconds,
        )
        if not self.ticker.watch(self.config.live.stream, self.now):
            self._no_stream()
        if self._watch_file:
            self.watcher = StrategyWatcher(
                self.config.source, self.config, self.overrides, plugins=self.plugins
            )
        history = self.session.history
        late = self.config.live.stale_after_bars
        if late is not None:
            self.stale = StaleDataWatch(
                ",".join(universe.symbols),
                history.timeframe,
                grace_seconds=late * history.timeframe_seconds,
                started=self.now(),
                last_bar=history.last_time,
            )

    @property
    def recorder_or_fail(self) -> Recorder:
        """The recorder (after `start`)."""
        if self.recorder is None:
            raise RuntimeError("the runner has not started")
        return self.recorder

    @property
    def session_or_fail(self) -> LiveSession:
        """The session (after `start`)."""
        if self.session is None:
            raise RuntimeError("the runner has not started")
        return self.session

    def started_row(self, capital: float, extra: dict[str, Any]) -> RunStarted:
        """Return the first journal row of a new run (``extra``: the live venue's values)."""
        return RunStarted(
            mode=self.mode,
            strategy=self.config.name,
            source=str(self.config.source),
            tradeloom=__version__,
            wall_time=pd.Timestamp(datetime.now(UTC)),
            run_key=self.run_key,
            capital=capital,
            document=dict(self.config.document),
            clock="wall" if self.now is wall_clock else "simulated",
            **extra,
        )

    def _start_new(self, bars: Bars, features: pd.DataFrame) -> None:
        assert self.journal is not None and self.recorder is not None
        self.run_key = key = secrets.token_hex(4)
        venue: Any = self.p.venue
        extra: dict[str, Any] = {}
        at_start: list[Any] = []
        if self.mode == "live" and isinstance(venue, Router):
            from tradeloom.runner.live.router_venue import open_router_venue

            venue, extra = open_router_venue(self)
            self.exchange_venue = venue
            at_start = venue.at_start
        elif self.mode == "live":
            from tradeloom.runner.live.venues import open_exchange_venue

            venue, extra = open_exchange_venue(self, None)
            self.exchange_venue = venue
        capital = float(venue.initial_cash)
        self.journal.append(self.started_row(capital, extra))
        for row in at_start:  # a live router's venues, reconciled at a restart
            self.recorder.record(row)
        if isinstance(venue, Router):  # paper: the core models the router
            self.recorder.record(venue.route_model())
        session = self.build_session(BarHistory(bars, features), venue, key)
        self.session = session
        self.recorder.record(
            WarmUp(
                symbol=bars.symbol,
                bars=len(bars),
                first=bars.frame.index[0],
                last=bars.frame.index[-1],
                sha256=history_sha256(bars),
            )
        )
        self.warm_up(session)
        session.train(None, in_effect=True)
        self.journal.flush()
        _log.info(
            "live_started",
            mode=self.mode,
            run_dir=str(self.run_dir),
            history_bars=len(bars),
            capital=capital,
        )

    def build_session(self, history: BarHistory, venue: Any, key: str) -> LiveSession:
        """Return a session over ``history`` trading ``venue``.

        ``venue`` is the exchange (live), the journal (a live restart's replay), or the
        strategy's simulated venue (paper), which the core runs itself.
        """
        name = self.config.name
        python_venue = venue is not self.p.venue
        if self.stages is not None and hasattr(venue, "on_send"):
            venue.on_send = self.stages
        return LiveSession(
            self.p,
            self.recorder_or_fail,
            history,
            order_id=lambda n: client_order_id(name, key, n),
            clock=self.now,
            venue=venue if python_venue else None,
            on_delivery=self.record_delivery if self.mode == "live" else None,
            cron=_cron(self.config.live.retrain_cron),
            stages=self.stages,
            book=None if self.book_feed is None else self.book_feed.book,
        )

    def record_delivery(self, bar: int, phase: str, events: int) -> None:
        """Journal that the live venue reported ``events`` at ``phase`` of ``bar``."""
        recorder = self.recorder_or_fail
        recorder.record(VenueDelivered(**recorder.at(bar), phase=phase, events=events))

    def warm_up(self, session: LiveSession) -> None:
        """Step the features and the engine through the history, without predictions."""
        session.warm_up()

    def _check_unchanged(self, document: dict[str, Any] | None) -> None:
        """Refuse a restart whose file changed what a running strategy cannot swap."""
        from tradeloom.runner.live.reload import changes_while_down

        if document is None:
            return
        problems = changes_while_down(document, self.config)
        if problems:
            raise ConfigError(problems)

    def _check_owner(self, started: RunStarted) -> None:
        if started.mode != self.mode or started.strategy != self.config.name:
            raise UserError(
                f"{self.run_dir}: this run directory holds a {started.mode} run of "
                f"'{started.strategy}'; it cannot continue as a {self.mode} run of "
                f"'{self.config.name}' (use another --out)"
            )

    # --- ticks ----------------------------------------------------------------------

    def tick(self) -> int:
        """Act on control requests and file edits, then run every newly closed bar.

        With the journal's database lost, only try to reconnect (`journal_outage`): no
        bar runs and no order is sent until it is back.

        Returns:
            How many bars were processed.
        """
        if self.journal_outage is not None:
            if not self.journal_outage.rejoin(self):
                for listener in self.tick_listeners:  # the metrics show REDUCING meanwhile
                    listener(self, 0)
                return 0
            self.journal_outage = None
        try:
            return self._tick()
        except JournalUnavailable as error:
            self.journal_outage = lose_journal(self, error)
            return 0

    @property
    def trading_state(self) -> str:
        """Return the trading state: the session's, REDUCING while the journal is lost."""
        return "REDUCING" if self.journal_outage is not None else self.session_or_fail.state

    def _tick(self) -> int:
        session = self.session_or_fail
        self._control()
        self._reload()
        if self.ticker is not None:
            processed = self._tick_universe()
            for listener in self.tick_listeners:
                listener(self, processed)
            return processed
        try:
            started = time.perf_counter()
            frame = self._closed_bars()
            if self.stages is not None:
                self.stages("fetch", time.perf_counter() - started)
        except RetriesExhausted as error:
            # No answer on any attempt: no bar is known closed; the next tick asks again
            # and the stale-data alarm says when the outage lasts.
            recorder = self.recorder_or_fail
            recorder.record(
                VenueUnreachable(
                    **recorder.at(len(session.history) - 1),
                    operation="closed_bars",
                    error=str(error),
                )
            )
            _log.error("venue_unreachable", operation="closed_bars", error=str(error))
            frame = pd.DataFrame(columns=list(OHLCV), dtype=np.float64)
        if self.book_feed is not None and len(frame):
            self.book_feed.tick(self.recorder_or_fail, len(session.history))
        for ts, values in zip(frame.index, frame.to_numpy(np.float64), strict=True):
            index = len(session.history)  # the bar's lines carry its decision's correlation id
            structlog.contextvars.bind_contextvars(bar=index, correlation_id=f"bar-{index}")
            before = _Counts.of(self.recorder_or_fail)
            bar = session.step(ts, values)
            self.bars_processed += 1
            if self.echo is not None:
                self.echo(self.bar_line(bar, before))
            self._check_refused()
            if self.stale is not None:
                self.stale.observe(ts)
        if self.stale is not None and len(frame) == 0:
            alarm = self.stale.check(self.now())
            if alarm is not None and alarm.missed_bars != self._stale_alarmed:
                self._stale_alarmed = alarm.missed_bars  # once per missed bar, not per tick
                recorder = self.recorder_or_fail
                at = recorder.at(len(session.history) - 1, market=True)
                recorder.record(StaleData(**at, message=alarm.message()))
                _log.warning("stale_data", message=alarm.message())
        assert self.journal is not None
        self.journal.flush()
        if self.book_feed is not None:
            self.book_feed.write()  # after the commit: the journal first, always
        if len(frame) and self.outputs is not None:
            self.outputs.refresh(self)  # after the commit: the journal first, always
        for listener in self.tick_listeners:
            listener(self, len(frame))
        return len(frame)

    def _tick_universe(self) -> int:
        """Poll every symbol, then run each clock bar that is due (`UniverseTicker`)."""
        from tradeloom.runner.live.universe_session import UniverseSession

        session = self.session_or_fail
        assert isinstance(session, UniverseSession) and self.ticker is not None
        last = session.history.last_time
        reached = True
        try:
            self.ticker.poll(last, self.now())
        except RetriesExhausted as error:
            # The symbols not asked would read as missing their bars: no bar runs before
            # the next tick has asked every symbol again.
            reached = False
            recorder = self.recorder_or_fail
            recorder.record(
                VenueUnreachable(
                    **recorder.at(len(session.history) - 1),
                    operation="closed_bars",
                    error=str(error),
                )
            )
            _log.error("venue_unreachable", operation="closed_bars", error=str(error))
        processed = 0
        while reached and (due := self.ticker.due(session.history.last_time, self.now())):
            time, prices = due
            before = _Counts.of(self.recorder_or_fail)
            t = session.step(time, prices)
            processed += 1
            self.bars_processed += 1
            if self.echo is not None:
                self.echo(self.universe_line(t, time, prices, before))
            self._check_refused()
            if self.stale is not None:
                self.stale.observe(time)
        if self.stale is not None and processed == 0:
            alarm = self.stale.check(self.now())
            if alarm is not None and alarm.missed_bars != self._stale_alarmed:
                self._stale_alarmed = alarm.missed_bars
                recorder = self.recorder_or_fail
                recorder.record(
                    StaleData(**recorder.at(len(session.history) - 1), message=alarm.message())
                )
                _log.warning("stale_data", message=alarm.message())
        assert self.journal is not None
        self.journal.flush()
        if processed and self.outputs is not None:
            self.outputs.refresh(self)  # after the commit: the journal first, always
        return processed

    def universe_line(self, t: int, time: pd.Timestamp, prices: np.ndarray, before: _Counts) -> str:
        """Return the one line printed for a tick over a universe: time, symbols with a
        bar, signals, orders and fills, each symbol held, equity, state."""
        rec = self.recorder_or_fail
        session = self.session_or_fail
        symbols = self.session_or_fail.history.symbols  # type: ignore[attr-defined]
        present = int((~np.isnan(prices[:, 3])).sum())
        orders = [f"{_SIDES[o.side]} {o.quantity:.8g}" for o in rec.orders[before.orders :]]
        fills = [
            f"{_SIDES[f.side]} {f.quantity:.8g}@{f.price:.8g}" for f in rec.fills[before.fills :]
        ]
        book = session.engine.portfolio
        held = [
            f"{symbol} {book.position_of(s):.8g}"
            for s, symbol in enumerate(symbols)
            if book.position_of(s) != 0.0
        ]
        equity = float(session.engine.state.acct[L.A_EQUITY])
        return (
            f"{time:%Y-%m-%d %H:%M}Z bar {t} | {present}/{len(symbols)} symbols "
            f"| signals {rec.signals - before.signals}"
            + (f" | order {', '.join(orders)}" if orders else "")
            + (f" | filled {', '.join(fills)}" if fills else "")
            + f" | held {', '.join(held) or '-'} | equity {equity:.2f} | {session.state}"
        )

    def bar_line(self, bar: Bar, before: _Counts) -> str:
        """Return the one line printed for a bar: time, close, signal, decision, position,
        equity, state."""
        rec = self.recorder_or_fail
        session = self.session_or_fail
        signal = "-"
        if rec.signals > before.signals:
            last = rec.signal_events[-1]
            side = {1: "long", -1: "short"}.get(last.direction, "flat")
            signal = f"{side} p={last.probability:.3f}"
        new_orders = rec.orders[before.orders :]
        decision = rec.last_decision if rec.decision_count > before.decisions else "-"
        if decision == "-" and new_orders:  # an exit (a signal's, a stop's): no risk decision
            decision = new_orders[0].reason
        orders = [f"{_SIDES[o.side]} {o.quantity:.8g}" for o in new_orders]
        fills = [
            f"{_SIDES[f.side]} {f.quantity:.8g}@{f.price:.8g}" for f in rec.fills[before.fills :]
        ]
        book = session.engine.portfolio
        state = session.state
        if session.engine.halted and state != "HALTED":
            state += f" halted:{session.engine.halt_code}"
        return (
            f"{bar.timestamp:%Y-%m-%d %H:%M}Z bar {bar.index} close {bar.close:.8g} "
            f"| signal {signal} | decision {decision}"
            + (f" order {', '.join(orders)}" if orders else "")
            + (f" | filled {', '.join(fills)}" if fills else "")
            + f" | position {book.position:.8g} | equity {book.equity(bar.close):.2f} | {state}"
        )

    def _closed_bars(self) -> pd.DataFrame:
        last = self.session_or_fail.history.last_time
        if self.stream is not None:
            frame = self.stream.closed_since(last)
            if frame is not None:
                return frame
        # a bar is taken close_delay_seconds after its close: the exchange's last
        # update of it has arrived by then
        delay = pd.Timedelta(seconds=self.config.live.close_delay_seconds)
        return self.source.closed_bars(last, self.now() - delay)

    def open_stream(self) -> None:
        """Start the websocket stream of ``live.stream`` (None: poll REST only).

        Raises:
            UserError: ``live.stream: websocket`` and the data source has no stream.
        """
        choice = self.config.live.stream
        if choice == "poll":
            return
        stream = self.source.bar_stream(
            grace_seconds=self.config.live.close_delay_seconds,
            clock=lambda: self.now().timestamp(),
        )
        if stream is None:
            self._no_stream()
            return
        self.stream = stream
        self.stream.start()

    def _no_stream(self) -> None:
        """Refuse ``live.stream: websocket`` when the source has no stream (else: poll)."""
        if self.config.live.stream == "websocket":
            raise UserError(
                f"{self.config.locate('live.stream')} live.stream: the data source "
                f"(kind {self.config.data.kind}) has no websocket stream of closed bars "
                "here (for ccxt: no ccxt.pro OHLCV stream of the exchange); use auto or poll"
            )

    def _check_refused(self) -> None:
        venue = self.exchange_venue
        if venue is None or not venue.refused:
            return
        refused = venue.refused[0]
        venue.refused.clear()  # halted until resume; a later refusal halts again
        self.session_or_fail.kill(f"FILL_REFUSED: {refused.message}")

    def _control(self) -> None:
        session = self.session_or_fail
        self.inbox.wake.clear()
        last = len(session.history) - 1
        for request in self.inbox.pending():
            if request.action == "kill" and session.killed:
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
                )
            )
            if request.action == "kill":
                session.kill(f"{request.reason} (by {request.by})")
            else:
                session.resume(f"{request.reason} (by {request.by})")
            assert self.journal is not None
            self.journal.flush()
            self.inbox.done(request)

    def _reload(self) -> None:
        if self.watcher is None:
            return
        outcome = self.watcher.check()
        if outcome is None:
            return
        assert self.recorder is not None
        session = self.session_or_fail
        bar = len(session.history) - 1
        if isinstance(outcome, ReloadRefused):
            errors = [str(e) for e in outcome.errors]
            self.recorder.record(ConfigReloadRefused(**self.recorder.at(bar), errors=errors))
            _log.error("config_reload_refused", errors=list(outcome.errors))
            return
        self.apply_reload(outcome, session)
        self.recorder.record(
            ConfigReloaded(
                **self.recorder.at(bar),
                changed=[str(c) for c in outcome.changed],
                changes=[str(c) for c in outcome.changes],
                document=dict(outcome.config.document),
            )
        )
        _log.warning("config_reloaded", changed=outcome.describe())

    def apply_reload(self, reload: Reload, session: LiveSession) -> None:
        """Swap ``reload``'s layers into ``session`` (at a bar boundary, positions kept)."""
        swapped = reload.apply(session.p)
        config = reload.config
        session.p = swapped
        session.engine.reconfigure(
            swapped, monitoring="monitoring" in reload.changed or "health" in reload.changed
        )
        venue = session.engine.venue
        if isinstance(venue, ExchangeVenue) and venue.stops is not None:
            # the next position's resting stops are at the new levels (a resting one stays)
            venue.stops.stop_loss = swapped.config.stop_loss
            venue.stops.take_profit = swapped.config.take_profit
        if "regime" in reload.changed:
            session.reset_regimes(config.regime)
        if "live" in reload.changed and config.live.retrain_cron != self.config.live.retrain_cron:
            session.set_cron(_cron(config.live.retrain_cron))
        self.config = config

    # --- stop -----------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Journal why the run stops, commit, refresh its files, release the run directory."""
        try:
            if self.stream is not None:
                self.stream.stop()
            if self.ticker is not None:
                self.ticker.stop()
            if self.book_feed is not None:
                self.book_feed.stop()
            if self.journal is not None:
                journal, self.journal = self.journal, None
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
            if self.outputs is not None:
                self.outputs.refresh(self, final=True)
        finally:
            self.inbox.release_pid()
            structlog.contextvars.unbind_contextvars(*_LOG_CONTEXT)


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

    @classmethod
    def of(cls, rec: Recorder) -> _Counts:
        return cls(rec.signals, rec.decision_count, len(rec.orders), len(rec.fills))


def _cron(expression: str | None) -> Callable[[pd.Timestamp], pd.Timestamp | None] | None:
    if expression is None:
        return None
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(expression, timezone="UTC")

    def following(now: pd.Timestamp) -> pd.Timestamp | None:
        later = now + pd.Timedelta(seconds=1)  # not the fire time that is now
        fire = trigger.get_next_fire_time(None, later.to_pydatetime())
        return None if fire is None else pd.Timestamp(fire)

    return following
