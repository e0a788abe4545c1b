"""What a book backtest (``execution.fill: book``) cannot serve, refused before it runs.

A venue that fills against a recorded book (`tradeloom.plugins.protocols_venues.BookFills`)
fills one market's market and limit orders decided at bar closes, in a backtest. Refused,
each at its key: ``--mode paper`` and ``live`` (they fill at their venue); a universe of
several symbols (or an allocation); a book of another market than ``data.symbol``; the
exits that rest at the venue and trigger inside a bar (``risk.stop_loss``,
``take_profit``, ``trailing_stop``, ``break_even``, ``risk.scaling``'s partial
take-profits): the bar's range triggers them, and a book has no bar; and a book that does
not cover the bars (`coverage_problem`, checked here when the data says its clock before
loading, else once the bars are loaded).
"""

from __future__ import annotations

from tradeloom.engine.universe_checks import declared_symbols
from tradeloom.errors import Problem
from tradeloom.plugins.protocols import KnownClock
from tradeloom.plugins.protocols_venues import BookCoverage, BookFills
from tradeloom.schemas.config import StrategyConfig
from tradeloom.time.timeframes import format_timestamp, parse_timeframe

__all__ = ["book_of", "book_problems", "coverage_problem"]

_STOPS = (
    ("stop_loss", "risk.stop_loss"),
    ("take_profit", "risk.take_profit"),
    ("trailing_stop", "risk.trailing_stop"),
    ("break_even", "risk.break_even"),
)


def book_of(venue: object) -> BookCoverage | None:
    """Return the recorded book ``venue`` fills against (None: it fills on the bars)."""
    return venue.recorded_book() if isinstance(venue, BookFills) else None


def book_problems(
    config: StrategyConfig, mode: str, *, data: object, venue: object
) -> list[Problem]:
    """Return what a strategy under ``fill: book`` asks that its book cannot serve."""
    book = book_of(venue)
    if book is None:
        return []
    path = config.execution.path
    problems: list[Problem] = []

    def refuse(where: str, message: str) -> None:
        problems.append(Problem(config.locate(where), where, message))

    if mode != "backtest":
        refuse(
            f"{path}.fill",
            f"fill: book fills backtests only; --mode {mode} fills at its venue: set fill: "
            "next_open (or --set execution.fill=next_open)",
        )
    for name, key in _STOPS:
        if getattr(config, name) is not None:
            refuse(
                key,
                "fill: book cannot fill an exit resting at the venue (a bar's range "
                "triggers it, and a book has no bar): remove it, or use fill: next_open",
            )
    if config.risk_scaling.take_profit_levels:
        key = "risk.scaling.take_profit_levels"
        refuse(
            key,
            "fill: book cannot fill partial take-profits (a bar's range triggers "
            "them): remove them, or use fill: next_open",
        )
    symbols = declared_symbols(data)
    if config.allocation is not None or (symbols is not None and symbols > 1):
        refuse(
            config.data.path,
            "fill: book replays one market's book: trade one symbol (data.symbol), without "
            "an allocation",
        )
    symbol = getattr(config.data.params, "symbol", None)
    if isinstance(symbol, str) and book.symbol is not None and book.symbol != symbol:
        refuse(
            f"{path}.book.source",
            f"{book.source} records {book.symbol}, and the strategy trades {symbol} (data.symbol)",
        )
    clock = data.declared_clock() if isinstance(data, KnownClock) else None
    if clock is not None:
        timeframe, first, bars = clock
        step = parse_timeframe(timeframe) * 1_000_000_000
        problem = coverage_problem(config, book, first, first + (bars - 1) * step, step)
        if problem is not None:
            problems.append(problem)
    return problems


def coverage_problem(
    config: StrategyConfig, book: BookCoverage, first_open: int, last_open: int, step: int
) -> Problem | None:
    """Return the problem of a book that does not cover the bars, else None.

    The book must hold the first decision's close (``first_open + step``: the first order
    reaches it then) and run to the last bar's open (the last fills a bar reports).
    """
    start, end = first_open + step, last_open
    if book.first_ns <= start and book.last_ns >= end:
        return None
    where = f"{config.execution.path}.book.source"
    return Problem(
        config.locate(where),
        where,
        f"{book.source} covers {format_timestamp(book.first_ns)} to "
        f"{format_timestamp(book.last_ns)}; the bars need {format_timestamp(start)} (the "
        f"first bar's close) to {format_timestamp(end)} (the last bar's open): record more, "
        "or shorten the data",
    )
