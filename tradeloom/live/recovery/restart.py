"""Restart a paper or live run from its journal, then check it against the venue.

The journal is the source of truth. A restart:

1. checks that the history the run started from is the same: each symbol's bars up to
   its journaled ``warm_up`` (their count and SHA-256);
2. replays the history and every journaled tick through a new session
   (`tradeloom.live.recovery.replay`): the model's journaled verdicts, the journal's fills
   (`ReplayVenue`; a paper run simply replays its simulated venue, a router's venues
   each modelled), the kill switch's journaled halts and resumes, each bar under the
   strategy file in force at that bar. The rows it writes must be the journal's; this
   rebuilds cash, positions, peak equity, the signal, risk and monitor state and the
   client-id counter exactly;
3. live: asks the venue about every client id the run could have sent beyond its
   journal, adopts the orders it has and journals the others as never sent
   (`tradeloom.live.recovery.sent_lookup`); then hands every order still pending to its
   symbol's market (`tradeloom.live.recovery.handover`: looked up by client order id, never
   resent; a router's children at their venues, `RouterVenue.recover`) and tracks the
   stops resting at the exchange again;
4. puts in the model in force at the last committed bar when the journal swapped one
   (`tradeloom.live.lifecycle.model_swap.restore_models`: from the copy the run directory keeps;
   a portfolio file's run, each strategy's last), else retrains the fold in effect when
   the run stopped (same rows, same seed), and swaps in the file as it is now if it
   was edited while the run was down (journaled as a hot reload after the last bar);
5. live: reconciles each market (a router: each venue), named in a refusal over several:
   resolves and polls it, then compares the account's base balance with the balance
   at the first start plus the journal's position, and refuses to trade on a difference
   beyond ``live.position_tolerance`` and what the orders whose fills are not all known
   may have filled (not finished, up to what they have left: unknown, their lookups
   failed, or still working when the poll of their trades failed; or reported filled
   beyond the trades counted: a read of those failed), or on an open order of this run
   the journal does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from tradeloom.domain import Bars, Universe
from tradeloom.engine.features import universe_features
from tradeloom.engine.wiring import modelled_venue
from tradeloom.journal import Restarted
from tradeloom.live.accounts.account_venue import AccountVenue, markets_at_start, open_account_venue
from tradeloom.live.lifecycle.model_swap import restore_models
from tradeloom.live.recovery.journal_state import JournalState
from tradeloom.live.recovery.reconcile import HeldPosition, Reconciling, RestartRefused
from tradeloom.live.recovery.replay import PinnedClock, edited_while_down, replay_ticks
from tradeloom.live.recovery.replay_venue import ReplayVenue
from tradeloom.live.tick.history import MarketHistory, history_sha256
from tradeloom.live.tick.session import LiveSession
from tradeloom.live.tick.start import said_sides
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.accounts.market import Market
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles
    from tradeloom.plugins.protocols import Venue

__all__ = ["hand_over", "rebuild", "reconcile", "restart"]

_log = logger("tradeloom.live")


def restart(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    state: JournalState,
    universe: Universe,
    build: Callable[[MarketHistory, Venue | None, str], LiveSession],
) -> LiveSession:
    """Rebuild the run's session over ``universe`` from ``state``; return it.

    ``build`` makes the session over a history, trading a venue, with the run's key.

    Raises:
        RestartRefused: A symbol's history changed, the replay disagrees with the
            journal, or the venue disagrees with the journal's positions.
    """
    assert state.started is not None
    head = _head(files, state, universe)
    history = MarketHistory(head, universe_features(markets.p, head))
    symbols = universe.symbols
    current = files.config  # the file now

    def session_of(venue: Venue | None) -> LiveSession:
        if venue is None:  # paper: the strategy's venue, or a router's model of its venues
            venue = modelled_venue(markets.p, link.recorder_or_fail.record)
        assert state.started is not None
        return build(history, venue, state.started.run_key)

    def positions(session: LiveSession) -> dict[str, tuple[float, int]]:
        return {symbol: session.held_in(s) for s, symbol in enumerate(symbols)}

    def edited(session: LiveSession) -> None:
        edited_while_down(files, link, session, current, len(session.history) - 1)

    return rebuild(
        files,
        link,
        markets,
        state,
        symbols,
        session_of,
        market_of=lambda symbol: symbol,
        positions=positions,
        names=(files.config.name,),
        before_restarted=edited,
    )


def rebuild(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    state: JournalState,
    symbols: tuple[str, ...],
    session_of: Callable[[Venue | None], LiveSession],
    *,
    market_of: Callable[[str], str],
    positions: Callable[[LiveSession], Mapping[str, tuple[float, int]]],
    names: Sequence[str],
    before_restarted: Callable[[LiveSession], None] | None = None,
) -> LiveSession:
    """Rebuild a run's session from its journal (a strategy's or a portfolio's).

    Live, the account's markets (``symbols``) are opened again with what the journal recorded of
    each, the session replays against the journal (`ReplayVenue`), then every pending
    order is handed over to its market and each market is reconciled.

    Args:
        files: The run's files (its clock pinned to the journal's times meanwhile).
        link: Its journal.
        markets: What it trades (the session is set there before the hand-over).
        state: Its journal, read.
        symbols: The markets it trades, in order.
        session_of: A new session over the history the run started from, trading the
            given venue (None: its own venue, on paper).
        market_of: The market of the symbol the engine journals an order with.
        positions: Per market, the journal's position and the core's row of its flat band.
        names: The names its client order ids start with (its strategies').
        before_restarted: Called after the fold in effect trained, before the
            ``restarted`` row (a strategy swaps in a file edited while it was down).

    Raises:
        RestartRefused: The replay disagrees with the journal, or a market's balance
            with the journal's position.
    """
    assert state.started is not None
    journal = link.journal_or_fail
    started = state.started
    clock = PinnedClock(files.now)
    files.now = clock
    exchange: AccountVenue | None = None
    replay_venue: ReplayVenue | None = None
    if files.mode == "live":
        exchange = open_account_venue(files, link, markets, symbols, state)
        said_sides(files, exchange, markets)  # the markets now, as a new run's start
        replay_venue = ReplayVenue(
            state,
            initial_cash=started.capital,
            costs=exchange.costs,
            dust=exchange.dust,
            dusts=exchange.dusts if len(symbols) > 1 else (),
            min_notional=exchange.min_notional,
            min_costs=exchange.min_costs if len(symbols) > 1 else (),
            allow_short=exchange.allow_short,
        )
    session = session_of(replay_venue)
    extra = replay_ticks(files, link, markets, session, state, clock)
    for event in extra:
        journal.append(event)
    # the client-id counter: never below an id the journal holds (after a hot reload the
    # replay may have decided fewer orders than the run did)
    ids = (int(i.rsplit("-", 1)[-1]) for i in state.orders)
    session.engine.sequence = max(session.engine.sequence, *ids, 0)
    last = len(session.history) - 1
    if exchange is not None and replay_venue is not None:
        # the venues stamp what they learn from here on with the bar in progress
        markets.session = session
        replay_venue.adopt_journaled(last)
        hand_over(files, link, session, state, exchange, replay_venue, market_of, names)
        session.engine.use_venue(exchange)
    # before the catch-up: a saved model trains nothing
    restore_models(files, markets.plugins, session, state)
    session.catch_up(state.trainings)
    if before_restarted is not None:
        before_restarted(session)
    recorder = link.recorder_or_fail
    book = session.engine.portfolio
    recorder.record(
        Restarted(
            **recorder.at(last, session.history.time(last)),  # the bar it went on from
            bars_replayed=len({row.index for row in state.bars}),
            rows_completed=len(extra),
            position=book.position,
            cash=book.cash,
            state=session.state,
            wall_time=pd.Timestamp.now(tz="UTC"),
        )
    )
    link.prepare_commit()  # what the replay's features read, before its rows
    journal.flush()
    if exchange is not None:
        reconcile(files, link, session, state, exchange, positions(session))
    _log.info(
        "live_restarted",
        bars_replayed=len({row.index for row in state.bars}),
        positions={s: position for s, (position, _) in positions(session).items()},
        state=session.state,
    )
    return session


def hand_over(
    files: RunFiles,
    link: JournalLink,
    session: LiveSession,
    state: JournalState,
    exchange: AccountVenue,
    replayed: ReplayVenue,
    market_of: Callable[[str], str],
    names: Sequence[str],
) -> None:
    """Ask about what a cut journal may have lost, then hand every pending order over.

    Args:
        market_of: The market of the symbol the engine journaled an order with (one
            strategy's: the symbol; a portfolio's book: its market).
        names: The names the run's client order ids start with (its strategies').
    """
    markets = list(exchange.markets.values())
    if len(markets) == 1 and len(names) == 1:
        # one market: what it has beyond a journal that lost its tail (the other shapes,
        # and a router, refuse such a journal, and their marks are checked)
        markets[0].look_up_lost(files, link, session, state, name=names[0])
    recorder = link.recorder_or_fail
    symbol_of = {**recorder.order_symbols, **state.order_symbols}

    def market_for(order_id: str) -> Market:
        return exchange.markets[market_of(symbol_of[order_id])] if len(markets) > 1 else markets[0]

    def owned_by(market: Market) -> Callable[[str], bool]:
        return lambda order_id: market_for(order_id) is market

    # each market its own: an exchange's stops and orders, a router's children at its venues
    for market in markets:
        market.recover(state, replayed, owns=owned_by(market))


def reconcile(
    files: RunFiles,
    link: JournalLink,
    session: LiveSession,
    state: JournalState,
    exchange: AccountVenue,
    positions: Mapping[str, tuple[float, int]],
) -> None:
    """Reconcile each market with the journal's position in it (a router: each venue).

    Args:
        positions: Per market, the journal's position (a portfolio's: its books' in all)
            and the core's row whose flat band it is judged by.
    """
    several = len(exchange.markets) > 1
    at_start = markets_at_start(state, tuple(exchange.markets))
    run = Reconciling(files, link, session, state)
    for symbol, market in exchange.markets.items():
        position, index = positions[symbol]
        base_at_start = at_start[symbol].base_at_start
        held = HeldPosition(position, base_at_start, symbol if several else "", index)
        market.reconcile(run, held)


def _head(files: RunFiles, state: JournalState, universe: Universe) -> Universe:
    """Return the history the run started from: each symbol's journaled warm-up bars.

    Raises:
        RestartRefused: The journal warmed up other symbols, or a symbol's bars up to
            its warm-up's end are not the ones it journaled (their count or SHA-256).
    """
    warm = {w.symbol: w for w in state.warm_ups}
    symbols = universe.symbols
    if len(symbols) == 1 and len(warm) == 1:
        warm = {symbols[0]: next(iter(warm.values()))}  # one market, whatever it was named
    missing = [s for s in symbols if s not in warm]
    if missing or len(warm) != len(symbols):
        raise RestartRefused(
            f"{files.run_dir}: the journal's warm-up covers {sorted(warm)}, the data "
            f"source lists {list(symbols)}: not the markets this run started from"
        )
    end = max(w.last for w in warm.values())
    bars: list[Bars] = []
    for own in universe.bars:
        w = warm[own.symbol]
        frame = own.frame.loc[own.frame.index <= end]
        head = Bars(
            frame, own.symbol, own.timeframe, own.timeframe_seconds, documents=own.documents
        )
        if len(head) != w.bars or history_sha256(head) != w.sha256:
            raise RestartRefused(
                f"{files.run_dir}: the data source's bars of {own.symbol} up to {end} are "
                "not the ones this run started from (their count or SHA-256 differs); the "
                "cache or data.start changed"
            )
        bars.append(head)
    index = universe.index[universe.index <= end]
    return Universe(tuple(bars), index)
