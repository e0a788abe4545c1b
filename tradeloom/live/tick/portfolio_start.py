"""Start a portfolio file's paper or live run, or restart it from its journal.

A new run journals its start, then each book's warm-up (its market's bars, their SHA-256:
one ``warm_up`` per book, named ``STRATEGY:SYMBOL``), warms every member and the account
up, and trains each member's fold in effect (`start_portfolio`).

A restart (`restart_portfolio`) checks each book's bars against its journaled warm-up,
replays the journaled ticks through new members and a new account (each book's
``live_bar`` row: its prices and its model's verdict) into a scratch journal whose engine
rows must be the journal's (`tradeloom.live.recovery.replay`), and trains each member's fold in
effect, as a single strategy's restart does (`tradeloom.live.recovery.restart`).
"""

from __future__ import annotations

import secrets
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from tradeloom.domain import Bars, Universe
from tradeloom.engine.account import SEPARATOR, Books
from tradeloom.engine.features import SymbolFeatures, universe_features
from tradeloom.engine.universe import load_universe
from tradeloom.errors import UserError
from tradeloom.journal import StrategyAtStart
from tradeloom.live.recovery.journal_state import JournalState
from tradeloom.live.recovery.reconcile import RestartRefused
from tradeloom.live.recovery.restart import rebuild
from tradeloom.live.tick.history import MarketHistory, history_sha256, warm_up_row
from tradeloom.live.tick.portfolio_session import LivePortfolio, PortfolioSession
from tradeloom.live.tick.session import LiveSession
from tradeloom.live.tick.start import go_live, journal_start
from tradeloom.plugins.protocols import LiveAuxiliaryFeed
from tradeloom.plugins.protocols_orders.client_ids import client_order_id
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tradeloom.engine.wiring import Pipeline
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles
    from tradeloom.plugins.protocols import Venue
    from tradeloom.plugins.protocols_steps import LiveRows

__all__ = [
    "market_of_book",
    "markets_of",
    "member_live_rows",
    "restart_portfolio",
    "start_portfolio",
]

_log = logger("tradeloom.live")


def start_portfolio(
    files: RunFiles, link: JournalLink, markets: Markets, portfolio: LivePortfolio
) -> PortfolioSession:
    """Start a new paper or live run of ``portfolio``; return its session.

    Each strategy's document is journaled (``strategy_at_start``); live, each market of
    the books is opened on the one exchange account (`open_account_venue`) and journaled
    (``market_at_start``) before the warm-up.

    Raises:
        UserError: The strategies' bars are not on one clock.
    """
    recorder = link.recorder_or_fail
    files.run_key = key = secrets.token_hex(4)
    universes = _universes(portfolio)
    venue, capital = journal_start(files, link, markets, markets_of(universes))
    listed = portfolio.config
    for entry, config in zip(listed.file.strategies, listed.strategies, strict=True):
        recorder.record(  # what parity replays each under, whatever its file holds later
            StrategyAtStart(
                **recorder.at(None),
                strategy=config.name,
                file=entry.file,
                document=dict(config.document),
            )
        )
    session = _session(files, link, markets, portfolio, universes, key, venue)
    for bars in _book_bars(portfolio, universes):
        recorder.record(warm_up_row(bars))
    go_live(
        files,
        link,
        session,
        capital,
        strategies=len(portfolio.pipelines),
        books=len(session.names),
        history_bars=len(session.history),
    )
    return session


def restart_portfolio(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    portfolio: LivePortfolio,
    state: JournalState,
) -> PortfolioSession:
    """Rebuild a portfolio's paper or live run from ``state``; return its session.

    Raises:
        RestartRefused: A book's history changed, the replay disagrees with the journal,
            or a market's balance with its books' positions.
        UserError: The strategies' bars are not on one clock.
    """
    assert state.started is not None
    key = state.started.run_key
    universes = _heads(files, portfolio, state, _universes(portfolio))

    def session_of(venue: Venue | None) -> PortfolioSession:
        return _session(files, link, markets, portfolio, universes, key, venue)

    def positions(session: LiveSession) -> dict[str, tuple[float, int]]:
        # a market: its books' in all (`PortfolioSession.held_in`)
        return {symbol: session.held_in(m) for m, symbol in enumerate(markets_of(universes))}

    session = rebuild(
        files,
        link,
        markets,
        state,
        markets_of(universes),
        session_of,
        market_of=market_of_book,
        positions=positions,
        names=tuple(p.config.name for p in portfolio.pipelines),
    )
    assert isinstance(session, PortfolioSession)
    return session


def _universes(portfolio: LivePortfolio) -> list[Universe]:
    """Load each strategy's markets; they must share one clock."""
    universes = [load_universe(p) for p in portfolio.pipelines]
    index = universes[0].index
    for pipeline, universe in zip(portfolio.pipelines, universes, strict=True):
        if not universe.index.equals(index):
            raise UserError(
                f"{portfolio.config.source}: the strategies' bars must share one clock: "
                f"{pipeline.config.name} has {len(universe):,} bars where "
                f"{portfolio.pipelines[0].config.name} has {len(index):,}"
            )
    return universes


def _book_bars(portfolio: LivePortfolio, universes: list[Universe]) -> tuple[Bars, ...]:
    """Each book's bars, named ``STRATEGY:SYMBOL``, in the books' order."""
    return tuple(
        Bars(
            bars.frame,
            f"{pipeline.config.name}{SEPARATOR}{bars.symbol}",
            bars.timeframe,
            bars.timeframe_seconds,
            documents=bars.documents,
        )
        for pipeline, universe in zip(portfolio.pipelines, universes, strict=True)
        for bars in universe.bars
    )


def markets_of(universes: list[Universe]) -> tuple[str, ...]:
    """Every market the strategies trade, in order of first appearance."""
    return tuple(dict.fromkeys(symbol for u in universes for symbol in u.symbols))


def market_of_book(book: str) -> str:
    """Return the market of a book named ``STRATEGY:SYMBOL`` (a symbol may hold ``:``)."""
    return book.split(SEPARATOR, 1)[1]


def _session(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    portfolio: LivePortfolio,
    universes: list[Universe],
    key: str,
    venue: Venue | None = None,
) -> PortfolioSession:
    """Return the account's session over ``universes``: a member per strategy, trading
    ``venue`` (None: the account's own, in the compiled core)."""
    recorder = link.recorder_or_fail
    names = tuple(p.config.name for p in portfolio.pipelines)
    books = Books(
        strategies=names,
        owner=tuple(k for k, u in enumerate(universes) for _ in u.symbols),
        symbols=tuple(symbol for u in universes for symbol in u.symbols),
    )
    members: list[LiveSession] = []
    for k, (pipeline, universe) in enumerate(zip(portfolio.pipelines, universes, strict=True)):
        history = MarketHistory(universe, universe_features(pipeline, universe))
        rows = member_live_rows(pipeline, universe.symbols)
        member = LiveSession(
            pipeline,
            recorder,
            history,
            order_id=partial(client_order_id, names[k], key),
            clock=files.now,
            live_rows=rows,
        )
        member.names = tuple(f"{names[k]}{SEPARATOR}{s}" for s in universe.symbols)
        member.owner = names[k]
        members.append(member)
    book_bars = _book_bars(portfolio, universes)
    index = universes[0].index
    empty = tuple(pd.DataFrame(index=index) for _ in book_bars)
    history = MarketHistory(Universe(book_bars, index), SymbolFeatures(empty, empty))
    return PortfolioSession(
        markets.p,
        recorder,
        portfolio,
        members,
        history,
        books,
        markets_of(universes),
        key=key,
        clock=files.now,
        venue=venue,
        on_delivery=link.record_delivery if files.mode == "live" else None,
    )


def member_live_rows(pipeline: Pipeline, symbols: Sequence[str]) -> dict[str, LiveRows]:
    """Return each market's auxiliary series as its bar closes, for a strategy of the
    file (its data source's; empty: it has none)."""
    data = pipeline.data
    if not isinstance(data, LiveAuxiliaryFeed):
        return {}
    found = {s: data.live_auxiliary(s) for s in symbols}
    return {s: r for s, r in found.items() if r is not None}


def _heads(
    files: RunFiles, portfolio: LivePortfolio, state: JournalState, universes: list[Universe]
) -> list[Universe]:
    """Return each strategy's history as the run started from it (its books' warm-ups).

    Raises:
        RestartRefused: The journal warmed up other books, or a book's bars up to its
            warm-up's end are not the ones it journaled (their count or SHA-256).
    """
    warm = {w.symbol: w for w in state.warm_ups}
    books = _book_bars(portfolio, universes)
    names = [b.symbol for b in books]
    if sorted(warm) != sorted(names):
        raise RestartRefused(
            f"{files.run_dir}: the journal's warm-up covers {sorted(warm)}, the portfolio's "
            f"strategies trade {names}: not the books this run started from"
        )
    end = max(w.last for w in warm.values())
    heads: list[Universe] = []
    for pipeline, universe in zip(portfolio.pipelines, universes, strict=True):
        own: list[Bars] = []
        for bars in universe.bars:
            name = f"{pipeline.config.name}{SEPARATOR}{bars.symbol}"
            head = Bars(
                bars.frame.loc[bars.frame.index <= end],
                bars.symbol,
                bars.timeframe,
                bars.timeframe_seconds,
                documents=bars.documents,
            )
            if len(head) != warm[name].bars or history_sha256(head) != warm[name].sha256:
                raise RestartRefused(
                    f"{files.run_dir}: the bars of {name} up to {end} are not the ones this "
                    "run started from (their count or SHA-256 differs); the data changed"
                )
            own.append(head)
        heads.append(Universe(tuple(own), universe.index[universe.index <= end]))
    return heads
