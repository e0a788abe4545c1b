"""Start a new paper or live run over its markets (one market is the universe of one).

`start` journals the run's start (``run_started``; live, each market's ``market_at_start``,
or a router's ``venue_at_start`` rows, before the warm-up), then one ``warm_up`` per
symbol (its own bars, their SHA-256) and each stretch of the history where a symbol has
no bar (``symbol_absent``), warms the session up, and trains the fold in effect at the
first live bar (the backtest's fold for that bar).

Live, each symbol's market is opened on the account (`open_account_venue`); on paper the
strategy's own venue trades in the compiled core, a router's venues each modelled
(`modelled_venue`), as in its backtest.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tradeloom.domain import Universe
from tradeloom.engine.features import universe_features
from tradeloom.engine.sides import market_sides
from tradeloom.engine.universe import absences
from tradeloom.engine.wiring import modelled_venue
from tradeloom.errors import ConfigError
from tradeloom.journal import SymbolAbsent
from tradeloom.live.accounts.account_venue import AccountVenue, open_account_venue
from tradeloom.live.tick.history import MarketHistory, warm_up_row
from tradeloom.live.tick.session import LiveSession
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.live.tick.portfolio_session import PortfolioSession
    from tradeloom.live.tick.services import JournalLink, Markets, RunFiles
    from tradeloom.plugins.protocols import Venue

__all__ = ["go_live", "journal_start", "said_sides", "start"]

_log = logger("tradeloom.live")


def start(
    files: RunFiles,
    link: JournalLink,
    markets: Markets,
    universe: Universe,
    build: Callable[[MarketHistory, Venue | None, str], LiveSession],
) -> LiveSession:
    """Start a new paper or live run over ``universe`` (the history); return its session.

    ``build`` makes the session over a history, trading a venue, with a run key.
    """
    recorder = link.recorder_or_fail
    files.run_key = key = secrets.token_hex(4)
    account, capital = journal_start(files, link, markets, universe.symbols)
    # paper: a router's venues each modelled, as in the backtest
    venue: Any = account if account is not None else modelled_venue(markets.p, recorder.record)
    history = MarketHistory(universe, universe_features(markets.p, universe))
    session = build(history, venue, key)
    for bars in universe.bars:
        recorder.record(warm_up_row(bars))
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
    go_live(
        files, link, session, capital, symbols=len(universe.symbols), history_bars=len(universe)
    )
    return session


def journal_start(
    files: RunFiles, link: JournalLink, markets: Markets, symbols: tuple[str, ...]
) -> tuple[AccountVenue | None, float]:
    """Journal the start of a new run: live, open its markets on the exchange account.

    Live, the account venue (`open_account_venue`) is opened and each market's state
    at start journaled (``market_at_start``: what a restart reconciles it against).

    Returns:
        The account venue (None on paper) and the starting capital.
    """
    venue: AccountVenue | None = None
    extra: dict[str, Any] = {}
    if files.mode == "live":
        venue = open_account_venue(files, link, markets, symbols, None)
        extra = venue.started
        # the markets' spot or swap nature is known now, not when the file was validated
        said_sides(files, venue, markets)
    capital = float((venue or markets.p.venue).initial_cash)
    link.journal_or_fail.append(files.started_row(capital, extra))
    for row in [] if venue is None else venue.at_start:
        link.recorder_or_fail.record(row)
    return venue, capital


def said_sides(files: RunFiles, account: AccountVenue, markets: Markets) -> None:
    """Check ``signal.sides`` against the exchange's markets ``account`` opened (a new
    live run's start, and each restart's: the markets may have changed since), which
    decide whatever the file's venue says (`market_sides`): refuse what could never
    trade, and keep its warnings for the start's lines (``files.notes``).

    Raises:
        ConfigError: ``signal.sides`` cannot trade on these markets.
    """
    refused, warnings = market_sides(files.config, account, markets.p.venue)
    if refused:
        raise ConfigError(refused)
    files.notes.extend(str(warning) for warning in warnings)


def go_live(
    files: RunFiles,
    link: JournalLink,
    session: LiveSession | PortfolioSession,
    capital: float,
    **facts: int,
) -> None:
    """Warm up and train a new run's session, commit the journal, log ``live_started``.

    Args:
        files: The run's files.
        link: Its journal.
        session: Its session, built over the history.
        capital: The starting capital.
        **facts: What the log line says of the history (symbols, books, bars).
    """
    journal = link.journal_or_fail
    session.warm_up()
    session.train(None, in_effect=True)
    link.prepare_commit()  # what the history's features read, before the training rows
    journal.flush()
    _log.info(
        "live_started",
        mode=files.mode,
        run_dir=str(files.run_dir),
        **facts,
        capital=capital,
    )
