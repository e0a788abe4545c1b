"""What every data source with ``symbols: [...]`` shares: the key's rules and one clock.

A source takes either ``symbol`` (one market) or ``symbols`` (a universe), not both;
a symbol listed twice is refused. `universe_of` puts the symbols' validated bars on
one clock: the sorted union of their timestamps. A symbol without a bar at a time of
the clock has no row in its own `Bars` there (`tradeloom.domain.Universe.present`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, Field

from tradeloom.domain import Bars, Universe
from tradeloom.errors import DataError
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "MAX_SYMBOLS",
    "SYMBOLS_HELP",
    "MarketSymbol",
    "Symbols",
    "check_symbol",
    "check_symbols",
    "one_market_only",
    "symbol_file_part",
    "symbol_problem",
    "universe_of",
]

SYMBOLS_HELP = (
    "Several market symbols (a universe), instead of symbol; each listed once. Their bars "
    "share one clock, the union of their timestamps."
)
"""The description of every built-in source's ``symbols`` key."""

MAX_SYMBOLS = 10_000
"""Most symbols in a universe."""


def symbol_problem(symbol: str) -> str | None:
    """Return why ``symbol`` is not a market symbol, or None.

    A market symbol (``BTC/USDT``, ``BTC/USDT:USDT``, ``AAPL``) is one line of text
    without control characters or spaces around it, and no path: a part between two
    ``/`` that is empty, ``.`` or ``..``, a backslash or a leading ``~`` (a symbol names
    folders and files of a run, `symbol_file_part`).
    """
    if not symbol.strip():
        return "is blank"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in symbol):
        return "holds a line break or a control character"
    if symbol != symbol.strip():
        return "has spaces around it"
    if (
        "\\" in symbol
        or symbol.startswith("~")
        or any(part in ("", ".", "..") for part in symbol.split("/"))
    ):
        return "is shaped like a path"
    return None


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is a market symbol (`symbol_problem`).

    Raises:
        ValueError: It is not, saying why and showing one that is.
    """
    problem = symbol_problem(symbol)
    if problem is not None:
        raise ValueError(f"{problem}; write a market symbol such as BTC/USDT")
    return symbol


def check_symbols(symbols: list[str] | None) -> list[str] | None:
    """Return ``symbols`` if each is a market symbol (`check_symbol`) listed once.

    Raises:
        ValueError: An empty list, a blank symbol or one that is not a market symbol
            (naming its position), or a symbol listed twice (naming both positions).
    """
    if symbols is None:
        return None
    if not symbols:
        raise ValueError("must list at least one symbol")
    seen: dict[str, int] = {}
    for position, symbol in enumerate(symbols):
        if not symbol.strip():
            raise ValueError(f"item {position} is blank; write a market symbol such as BTC/USDT")
        problem = symbol_problem(symbol)
        if problem is not None:
            raise ValueError(
                f"item {position}, {symbol!r}, {problem}; write a market symbol such as BTC/USDT"
            )
        if symbol in seen:
            raise ValueError(
                f"'{symbol}' is listed twice (items {seen[symbol]} and {position}); "
                "list each symbol once"
            )
        seen[symbol] = position
    return symbols


MarketSymbol = Annotated[str, Field(min_length=1), AfterValidator(check_symbol)]
"""The type of a source's ``symbol`` key, checked by `check_symbol`."""

Symbols = Annotated[
    list[str] | None,
    Field(max_length=MAX_SYMBOLS, description=SYMBOLS_HELP),
    AfterValidator(check_symbols),
]
"""The type of a source's ``symbols`` key (default None), checked by `check_symbols`."""


def one_market_only(symbols: Sequence[str]) -> DataError:
    """Return the error of ``load()`` (one market's bars) on a source with ``symbols``.

    A caller that trades a universe calls ``load_universe()``; one that calls ``load()``
    would otherwise trade the first symbol and silently drop the others.
    """
    return DataError(
        f"data.symbols: {len(symbols)} symbols ({', '.join(symbols[:3])}"
        f"{', ...' if len(symbols) > 3 else ''}) need a run that trades a universe; this one "
        "trades one market: set data.symbol instead"
    )


def symbol_file_part(symbol: str) -> str:
    """Return ``symbol`` as it appears in a file name: ``/`` as ``-``, ``:`` as ``_``.

    ``BTC/USDT`` -> ``BTC-USDT``, ``BTC/USDT:USDT`` -> ``BTC-USDT_USDT`` (the cache's
    spelling, `tradeloom.plugins.data.ohlcv_cache`).
    """
    return symbol.replace("/", "-").replace(":", "_")


def universe_of(bars: Sequence[Bars]) -> Universe:
    """Return the symbols' bars on one clock, the sorted union of their timestamps.

    Raises:
        DataError: Two symbols' timeframes differ (naming both).
    """
    if not bars:
        raise ValueError("a universe needs at least one symbol's bars")
    first = bars[0]
    for other in bars[1:]:
        if other.timeframe_seconds != first.timeframe_seconds:
            raise DataError(
                f"data: {other.symbol} has {other.timeframe} bars and {first.symbol} "
                f"{first.timeframe} bars; every symbol of a universe needs the same timeframe"
            )
    index = first.frame.index
    for other in bars[1:]:
        index = index.union(other.frame.index)
    clock = pd.DatetimeIndex(index, name="timestamp")
    return Universe(bars=tuple(bars), index=clock)
