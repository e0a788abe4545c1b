"""Start, restart and tick a paper or live run over a universe (`LiveRunner` over N symbols).

A new run journals one ``warm_up`` per symbol (its own bars, their SHA-256) and each
stretch of the history where a symbol has no bar (``symbol_absent``), warms the session
up and trains the fold in effect. A restart checks every symbol's history against its
``warm_up``, replays the journaled ticks (each symbol's ``live_bar`` rows, with the
model's verdicts; a symbol without a row at a tick had no bar) through a new session
into a scratch journal whose engine rows must be the journal's, as
`tradeloom.runner.live.restore` does for one symbol: every symbol's position, the
working orders and the client-id counter are rebuilt, and no order is decided twice.

Live, a new run opens each symbol's market on the account (`UniverseVenue`) and
journals what the account held of each base asset (``market_at_start``). A restart
replays against the journal (`ReplayVenue`: what each market reported, bar by bar),
hands every order still pending to its symbol's market to be looked up by client
order id (never resent), and reconciles each market: the account's balance of its
base asset must be the balance at the first start plus the journal's position in
that symbol, and the market's open orders of this run must be the journal's
(`reconcile_market`, as for one market; a refusal names the symbol).

Each tick of the clock (`UniverseTicker`) asks every symbol for its closed bars (its
websocket stream with ``live.stream``, else REST; a
symbol behind the newest bar another one returned is asked once more) and runs the
clock bar ``T`` (the earliest bar not run yet) once every symbol has a bar at
or after ``T``, or once ``live.close_delay_seconds`` have passed since ``T`` closed: a
symbol whose bar has not arrived by then has no bar at ``T`` (no signal, no fill) and a
bar of it that arrives later is dropped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import structlog

from tradeloom.domain import OHLCV, Bars, Universe
from tradeloom.journal import MarketAtStart, Restarted, SymbolAbsent, WarmUp
from tradeloom.plugins.execution.client_ids import client_order_id
from tradeloom.plugins.protocols import BarStream, LiveUniverseFeed, LiveUniverseStreams, Venue
from tradeloom.runner.features import universe_features
from tradeloom.runner.live.bar_history import history_sha256
from tradeloom.runner.live.journal_state import JournalState
from tradeloom.runner.live.reconcile import RestartRefused, reconcile_market
from tradeloom.runner.live.replay_venue import ReplayVenue
from tradeloom.runner.live.restore import (
    _apply_kills,
    _apply_reloads,
    _compare,
    _edited_while_down,
    _PinnedClock,
    _Scratch,
    _SilentHook,
    _swap,
    track_pending,
)
from tradeloom.runner.live.session import BarInput
from tradeloom.runner.live.universe_history import UniverseHistory
from tradeloom.runner.live.universe_session import UniverseSession
from tradeloom.runner.live.universe_venue import UniverseVenue, open_universe_venue
from tradeloom.runner.universe import absences

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner

__all__ = ["UniverseTicker", "restart_universe", "start_universe"]

_log = structlog.get_logger("tradeloom.live")


def _session(
    runner: LiveRunner, history: UniverseHistory, key: str, venue: Venue | None = None
) -> UniverseSession:
    name = runner.config.name
    return UniverseSession(
        runner.p,
        runner.recorder_or_fail,
        history,
        order_id=lambda n: client_order_id(name, key, n),
        clock=runner.now,
        venue=venue,
        on_delivery=runner.record_delivery if runner.mode == "live" else None,
    )


def start_universe(runner: LiveRunner, universe: Universe) -> UniverseSession:
    """Start a new paper or live run over ``universe`` (the history); return its session.

    Live, each symbol's market is opened on the account (`open_universe_venue`) and
    journaled (``market_at_start``) before the warm-up.
    """
    assert runner.journal is not None
    recorder = runner.recorder_or_fail
    runner.run_key = key = secrets.token_hex(4)
    venue: UniverseVenue | None = None
    markets: list[MarketAtStart] = []
    extra: dict[str, Any] = {}
    if runner.mode == "live":
        venue, markets = open_universe_venue(runner, universe.symbols, None)
        runner.exchange_venue = venue
        extra = {"fee_rate": venue.fee_rate, "dust": venue.dust}
    capital = float((venue or runner.p.venue).initial_cash)
    runner.journal.append(runner.started_row(capital, extra))
    for market in markets:
        recorder.record(market)
    history = UniverseHistory(universe, universe_features(runner.p, universe))
    session = _session(runner, history, key, venue)
    for bars in universe.bars:
        recorder.record(
            WarmUp(
                symbol=bars.symbol,
                bars=len(bars),
                first=bars.frame.index[0],
                last=bars.frame.index[-1],
                sha256=history_sha256(bars),
            )
        )
    present = universe.present()
    for s, symbol in enumerate(universe.symbols):
        for first, last in absences(present[:, s]):
            recorder.record(
                SymbolAbsent(
                    bar=first,
                    timestamp=universe.index[first],
                    symbol=symbol,
                    correlation_id=first,
                    last=universe.index[last],
                    bars=last - first + 1,
                )
            )
    session.warm_up()
    session.train(None, in_effect=True)
    runner.journal.flush()
    _log.info(
        "live_started",
        mode=runner.mode,
        run_dir=str(runner.run_dir),
        symbols=len(universe.symbols),
        history_bars=len(universe),
        capital=capital,
    )
    return session


def restart_universe(
    runner: LiveRunner, state: JournalState, universe: Universe
) -> UniverseSession:
    """Rebuild a paper run over ``universe`` from ``state``; return its session.

    Raises:
        RestartRefused: A symbol's history changed, or the replay disagrees with the
            journal.
    """
    assert runner.journal is not None and state.started is not None
    started = state.started
    head = _head(runner, state, universe)
    history = UniverseHistory(head, universe_features(runner.p, head))
    clock = _PinnedClock(runner.now)
    runner.now = clock
    exchange: UniverseVenue | None = None
    replay_venue: ReplayVenue | None = None
    if runner.mode == "live":
        exchange = _reopen(runner, state, universe.symbols)
        replay_venue = ReplayVenue(
            state,
            initial_cash=started.capital,
            fee_rate=exchange.fee_rate,
            dust=exchange.dust,
            dusts=exchange.dusts,
        )
    recorder = runner.recorder_or_fail
    real_journal, real_hook = recorder.journal, recorder.hook
    recorder.journal = _Scratch(real_journal.identity)  # type: ignore[assignment]
    recorder.hook = _SilentHook()  # type: ignore[assignment]
    scratch = recorder.journal
    current = runner.config  # the file now
    try:
        session = _session(runner, history, started.run_key, replay_venue)
        # each bar under the file in force at that bar: the start's, then each reload's
        _swap(runner, session, started.document)
        reloads = list(state.reloads)
        session.warm_up()
        kills = list(state.kill_switch)
        _apply_kills(session, kills, len(head) - 1)
        _apply_reloads(runner, session, reloads, len(head) - 1)
        at = {s: k for k, s in enumerate(universe.symbols)}
        m = len(universe.symbols)
        ticks: dict[int, list[Any]] = {}
        for row in state.bars:
            ticks.setdefault(row.index, []).append(row)
        for bar in sorted(ticks):
            rows = ticks[bar]
            prices = np.full((m, len(OHLCV)), np.nan)
            verdicts: list[BarInput | None] = [None] * m
            for row in rows:
                prices[at[row.symbol]] = row.values
                verdicts[at[row.symbol]] = row.verdict
            clock.pinned = rows[0].wall_time
            session.step(rows[0].time, prices, given=verdicts)
            _apply_kills(session, kills, bar)
            _apply_reloads(runner, session, reloads, bar)
        clock.pinned = None
        replayed = scratch.events  # type: ignore[attr-defined]
    finally:
        recorder.journal, recorder.hook = real_journal, real_hook
    extra = _compare(state, replayed)
    for event in extra:
        real_journal.append(event)
    ids = (int(i.rsplit("-", 1)[-1]) for i in state.orders)
    session.engine.sequence = max(session.engine.sequence, *ids, 0)
    if exchange is not None and replay_venue is not None:
        # the venues stamp what they learn from here on with the bar in progress
        runner.session = session
        replay_venue.adopt_journaled(len(history) - 1)
        symbol_of = {**recorder.order_symbols, **state.order_symbols}
        track_pending(state, replay_venue, lambda i: exchange.markets[symbol_of[i]])
        session.engine.use_venue(exchange)
    session.catch_up(state.training)
    _edited_while_down(runner, session, current, len(history) - 1)
    book = session.engine.portfolio
    recorder.record(
        Restarted(
            **recorder.at(len(history) - 1),
            bars_replayed=len(ticks),
            rows_completed=len(extra),
            position=book.position,
            cash=book.cash,
            state=session.state,
            wall_time=pd.Timestamp.now(tz="UTC"),
        )
    )
    real_journal.flush()
    if exchange is not None:
        for s, symbol in enumerate(universe.symbols):
            reconcile_market(
                runner,
                exchange.markets[symbol],
                position=book.position_of(s),
                base_at_start=state.markets[symbol].base_at_start,
                run_key=started.run_key,
                symbol=symbol,
                index=s,
            )
    _log.info(
        "live_restarted",
        bars_replayed=len(ticks),
        positions={s: book.position_of(k) for k, s in enumerate(universe.symbols)},
        state=session.state,
    )
    return session


def _reopen(runner: LiveRunner, state: JournalState, symbols: tuple[str, ...]) -> UniverseVenue:
    """Open a restarted live run's markets with what its journal recorded of each."""
    assert state.started is not None
    missing = [s for s in symbols if s not in state.markets]
    if missing:
        raise RestartRefused(
            f"{runner.run_dir}: the journal records no market_at_start of "
            f"{', '.join(missing)}: not the universe this live run started with"
        )
    venue, _ = open_universe_venue(
        runner,
        symbols,
        state.markets,
        capital=state.started.capital,
        after_trade_ids={s: state.max_trade_id_of(s) for s in symbols},
    )
    runner.exchange_venue = venue
    return venue


def _head(runner: LiveRunner, state: JournalState, universe: Universe) -> Universe:
    """Return the history the run started from: each symbol's journaled warm-up bars."""
    warm = {w.symbol: w for w in state.warm_ups}
    missing = [s for s in universe.symbols if s not in warm]
    if missing or len(warm) != len(universe.symbols):
        raise RestartRefused(
            f"{runner.run_dir}: the journal's warm-up covers {sorted(warm)}, the data "
            f"source lists {list(universe.symbols)}: not the universe this run started from"
        )
    end = max(w.last for w in warm.values())
    bars: list[Bars] = []
    for own in universe.bars:
        w = warm[own.symbol]
        frame = own.frame.loc[own.frame.index <= end]
        head = Bars(frame, own.symbol, own.timeframe, own.timeframe_seconds)
        if len(head) != w.bars or history_sha256(head) != w.sha256:
            raise RestartRefused(
                f"{runner.run_dir}: the data source's bars of {own.symbol} up to {end} are "
                "not the ones this run started from (their count or SHA-256 differs); the "
                "cache or data.start changed"
            )
        bars.append(head)
    index = universe.index[universe.index <= end]
    return Universe(tuple(bars), index)


class UniverseTicker:
    """Each symbol's closed bars, held until the clock bar they belong to is run.

    With `watch`, each symbol's bars come from its websocket stream; a symbol whose
    stream cannot vouch for every bar since the last one it gave is asked by REST, as
    one market's stream is backed.

    Args:
        source: The data source.
        symbols: The universe's symbols, in order.
        timeframe_seconds: The common timeframe.
        grace_seconds: How long after a bar's close the tick waits for a symbol's bar.
    """

    def __init__(
        self,
        source: LiveUniverseFeed,
        symbols: tuple[str, ...],
        timeframe_seconds: int,
        grace_seconds: float,
    ) -> None:
        self.source = source
        self.symbols = symbols
        self.bar = pd.Timedelta(seconds=timeframe_seconds)
        self.grace = pd.Timedelta(seconds=grace_seconds)
        empty = pd.DatetimeIndex([], tz="UTC", name="timestamp")
        self.held = [
            pd.DataFrame(columns=list(OHLCV), index=empty, dtype=np.float64) for _ in symbols
        ]
        self.streams: list[BarStream] = []

    def watch(self, choice: str, clock: Callable[[], pd.Timestamp]) -> bool:
        """Start each symbol's websocket stream for ``live.stream`` = ``choice``.

        Returns:
            Whether the symbols are watched: False with ``poll``, or with ``auto`` when
            the source has no stream; the ticks then poll REST.
        """
        if choice == "poll" or not isinstance(self.source, LiveUniverseStreams):
            return False
        source = self.source
        streams = [
            source.bar_stream_of(
                symbol,
                grace_seconds=self.grace.total_seconds(),
                clock=lambda: clock().timestamp(),
            )
            for symbol in self.symbols
        ]
        if any(stream is None for stream in streams):
            return False
        self.streams = [stream for stream in streams if stream is not None]
        for stream in self.streams:
            stream.start()
        return True

    def stop(self) -> None:
        """Stop every symbol's stream."""
        for stream in self.streams:
            stream.stop()

    def poll(self, last: pd.Timestamp, now: pd.Timestamp) -> None:
        """Ask each symbol for its bars closed since ``last`` (the clock's newest bar).

        Raises:
            RetriesExhausted: The exchange did not answer for a symbol (the bars
                fetched before it are kept).
        """
        for s in range(len(self.symbols)):
            self._ask(s, last, now)
        # The symbols answer one after the other: one asked before a bar closed at the
        # exchange lags one asked after. A symbol behind the newest bar held is asked
        # once more, so that a bar is missing only when the exchange had none.
        newest = max((held.index[-1] for held in self.held if len(held)), default=last)
        for s, held in enumerate(self.held):
            if (held.index[-1] if len(held) else last) < newest:
                self._ask(s, last, now)

    def _ask(self, s: int, last: pd.Timestamp, now: pd.Timestamp) -> None:
        held = self.held[s]
        seen = held.index[-1] if len(held) else last
        frame = self.streams[s].closed_since(seen) if self.streams else None
        if frame is None:
            frame = self.source.closed_bars_of(self.symbols[s], seen, now - self.grace)
        if len(frame):
            self.held[s] = frame if not len(held) else pd.concat([held, frame])

    def due(self, last: pd.Timestamp, now: pd.Timestamp) -> tuple[pd.Timestamp, np.ndarray] | None:
        """Return the next clock bar to run and its ``[symbols, OHLCV]``, or None (wait).

        Bars at or before ``last`` (arrived after their tick) are dropped first.
        """
        for s, held in enumerate(self.held):
            late = held.index <= last
            if late.any():
                _log.warning("bar_after_its_tick", symbol=self.symbols[s], bars=int(late.sum()))
                self.held[s] = held.loc[~late]
        firsts = [held.index[0] if len(held) else None for held in self.held]
        known = [f for f in firsts if f is not None]
        if not known:
            return None
        time = min(known)
        if any(f is None for f in firsts) and now < time + self.bar + self.grace:
            return None  # a symbol's bar may still come
        prices = np.full((len(self.symbols), len(OHLCV)), np.nan)
        for s, first in enumerate(firsts):
            if first == time:
                held = self.held[s]
                prices[s] = held.iloc[0][list(OHLCV)].to_numpy(np.float64)
                self.held[s] = held.iloc[1:]
        return time, prices
