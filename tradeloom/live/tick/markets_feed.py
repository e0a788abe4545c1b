"""The closed bars of every market a portfolio file's strategies trade, through their sources.

A portfolio's tick runs when every market has its bar (`tradeloom.live.tick.ticker.BarTicker`).
`MarketsFeed` reads each market through the data source of the first strategy that
trades it (a `LiveFeed`, over symbols), by the market's symbol; the same for their
websocket streams.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from tradeloom.domain import Universe
from tradeloom.plugins.protocols import BarStream, LiveFeed

__all__ = ["MarketsFeed"]


class MarketsFeed:
    """Each market's closed bars, read through the source that has it.

    Args:
        sources: ``(source, symbols)`` of each strategy, in file order: its data source
            and the markets it trades.
    """

    def __init__(self, sources: Iterable[tuple[object, tuple[str, ...]]]) -> None:
        self._of: dict[str, LiveFeed] = {}
        for source, symbols in sources:
            assert isinstance(source, LiveFeed)  # checked by live_problems
            for symbol in symbols:
                self._of.setdefault(symbol, source)

    def load_universe(self) -> Universe:  # pragma: no cover - each strategy loads its own
        raise NotImplementedError("a portfolio's strategies each load their own markets")

    def closed_bars_of(
        self, symbol: str, last_seen: pd.Timestamp, now: pd.Timestamp
    ) -> pd.DataFrame:
        """Return ``symbol``'s bars opened after ``last_seen`` and closed by ``now``."""
        return self._of[symbol].closed_bars_of(symbol, last_seen, now)

    def bar_stream_of(
        self, symbol: str, *, grace_seconds: float, clock: Callable[[], float]
    ) -> BarStream | None:
        """Return ``symbol``'s websocket stream of closed bars, or None (poll REST)."""
        source = self._of[symbol]
        return source.bar_stream_of(symbol, grace_seconds=grace_seconds, clock=clock)
