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
from typing import TYPE_CHECKING, Any

import structlog

from tradeloom.domain import Universe
from tradeloom.engine.features import universe_features
from tradeloom.engine.universe import absences
from tradeloom.engine.wiring import modelled_venue
from tradeloom.journal import SymbolAbsent
from tradeloom.live.account_venue import AccountVenue, open_account_venue
from tradeloom.live.history import MarketHistory, warm_up_row
from tradeloom.live.session import LiveSession

if TYPE_CHECKING:
    from tradeloom.live.context import StartingRun
    from tradeloom.live.portfolio_session import PortfolioSession

__all__ = ["go_live", "journal_start", "start"]

_log = structlog.get_logger("tradeloom.live")


def start(runner: StartingRun, universe: Universe) -> LiveSession:
    """Start a new paper or live run over ``universe`` (the history); return its session."""
    assert runner.journal is not None
    recorder = runner.recorder_or_fail
    runner.run_key = key = secrets.token_hex(4)
    account, capital = journal_start(runner, universe.symbols)
    # paper: a router's venues each modelled, as in the backtest
    venue: Any = account if account is not None else modelled_venue(runner.p, recorder.record)
    history = MarketHistory(universe, universe_features(runner.p, universe))
    session = runner.build_session(history, venue, key)
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
    go_live(runner, session, capital, symbols=len(universe.symbols), history_bars=len(universe))
    return session


def journal_start(
    runner: StartingRun, symbols: tuple[str, ...]
) -> tuple[AccountVenue | None, float]:
    """Journal the start of a new run: live, open its markets on the exchange account.

    Live, the account venue (`open_account_venue`) is opened and each market's state
    at start journaled (``market_at_start``: what a restart reconciles it against).

    Returns:
        The account venue (None on paper) and the starting capital.
    """
    assert runner.journal is not None
    venue: AccountVenue | None = None
    extra: dict[str, Any] = {}
    if runner.mode == "live":
        venue = open_account_venue(runner, symbols, None)
        extra = venue.started
    capital = float((venue or runner.p.venue).initial_cash)
    runner.journal.append(runner.started_row(capital, extra))
    for row in [] if venue is None else venue.at_start:
        runner.recorder_or_fail.record(row)
    return venue, capital


def go_live(
    runner: StartingRun,
    session: LiveSession | PortfolioSession,
    capital: float,
    **facts: int,
) -> None:
    """Warm up and train a new run's session, commit the journal, log ``live_started``.

    Args:
        runner: The run.
        session: Its session, built over the history.
        capital: The starting capital.
        **facts: What the log line says of the history (symbols, books, bars).
    """
    assert runner.journal is not None
    session.warm_up()
    session.train(None, in_effect=True)
    runner.journal.flush()
    _log.info(
        "live_started",
        mode=runner.mode,
        run_dir=str(runner.run_dir),
        **facts,
        capital=capital,
    )
