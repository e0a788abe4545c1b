"""Every bar a paper or live run knows, on the common clock, grown one tick at a time.

One row of the clock per tick, holding each symbol's OHLCV and feature row (NaN where
the symbol had no bar at that tick), from which each symbol's own bars and the universe
are built again for training. One market is the universe of one: its clock is its own
bars.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import OHLCV, Bar, Bars, Universe
from tradeloom.engine.features import SymbolFeatures
from tradeloom.journal import WarmUp
from tradeloom.text.documents import DocumentFeed

__all__ = ["MarketHistory", "history_sha256", "warm_up_row"]


class MarketHistory:
    """The universe a run started from, then each tick's bars, with their feature rows.

    Args:
        universe: The history (every symbol's bars on the clock).
        features: Its features (`SymbolFeatures.array` gives the rows on the clock).
    """

    def __init__(self, universe: Universe, features: SymbolFeatures) -> None:
        self.symbols = universe.symbols
        self.symbol = universe.symbols[0]
        self.timeframe = universe.timeframe
        self.timeframe_seconds = universe.timeframe_seconds
        self.calendar = universe.bars[0].calendar  # one market's calendar per strategy
        self.columns = features.columns
        self._documents = [bars.documents for bars in universe.bars]
        self.feeds: Mapping[str, DocumentFeed] = {}
        """The run's text sources as they grow (`LiveSession` sets them): the bars built
        from here on (`own_bars`, `universe`) carry every document known when they are
        built; until set, those the history started with. A text feature keeps only the
        documents visible at each bar's close, so a newer document changes no older row."""
        n, m = len(universe), len(self.symbols)
        capacity = max(2 * n, 1024)
        self._times = np.empty(capacity, "datetime64[ns]")
        self._times[:n] = universe.index.tz_convert("UTC").tz_localize(None).to_numpy()
        self._ns = self._times.view(np.int64)
        """The same times as integers (a view): a `pd.Timestamp` from one costs ~1 us,
        from a ``datetime64`` localized to UTC ~17 us (a tick asks for several)."""
        self._px = np.full((capacity, m, len(OHLCV)), np.nan)
        for s, bars in enumerate(universe.bars):
            frame = bars.frame.reindex(universe.index)
            self._px[:n, s] = frame[list(OHLCV)].to_numpy(np.float64)
        self._features = np.full((capacity, m, len(self.columns)), np.nan)
        self._features[:n] = features.array()
        self._n = n
        self._last: pd.Timestamp | None = None
        """`last_time`, once asked (a tick asks several times; `append` forgets it)."""

    def __len__(self) -> int:
        return self._n

    @property
    def last_time(self) -> pd.Timestamp:
        """Open time of the newest bar of the clock."""
        if self._last is None:
            # the zone as an object: a name is looked up again at each call (~3 us)
            self._last = pd.Timestamp(int(self._ns[self._n - 1]), tz=UTC)
        return self._last

    def time(self, index: int) -> pd.Timestamp:
        """Return the open time of clock bar ``index``."""
        if index == self._n - 1:  # a tick's rows are of its bar: one Timestamp for them
            last = self._last  # (`last_time`, made once: read without its frame)
            return self.last_time if last is None else last
        return pd.Timestamp(int(self._ns[index]), tz=UTC)

    def bar(self, index: int, symbol: int = 0) -> Bar:
        """Return clock bar ``index`` of the ``symbol``-th symbol (NaN prices: no bar)."""
        o, h, lo, c, v = (float(x) for x in self._px[index, symbol])
        return Bar(index, self.time(index), o, h, lo, c, v, self.symbols[symbol])

    def prices(self, index: int) -> npt.NDArray[np.float64]:
        """Return clock bar ``index``'s ``[symbols, OHLCV]`` (a view)."""
        return np.asarray(self._px[index])

    def closes(self, end: int | None = None) -> npt.NDArray[np.float64]:
        """Return ``[bars, symbols]``: each clock bar's close of each symbol (a view; NaN:
        no bar)."""
        n = self._n if end is None else end
        return self._px[:n, :, 3]

    def present(self, end: int | None = None) -> npt.NDArray[np.bool_]:
        """Return ``[bars, symbols]``: True where the symbol has a bar."""
        n = self._n if end is None else end
        return np.asarray(~np.isnan(self._px[:n, :, 3]))

    def times_ns(self, end: int) -> npt.NDArray[np.int64]:
        """Return the open times of the first ``end`` bars, UTC nanoseconds."""
        return self._ns[:end]

    def feature_row(self, index: int) -> npt.NDArray[np.float64]:
        """Return clock bar ``index``'s ``[symbols, columns]`` feature rows (a view)."""
        return np.asarray(self._features[index])

    def rows(self) -> npt.NDArray[np.float64]:
        """Return ``[capacity, symbols, columns]``: every clock bar's feature rows (a view;
        the rows past `len` are NaN, and `append` may move it)."""
        return self._features

    def append(self, time: pd.Timestamp, prices: npt.ArrayLike, features: npt.ArrayLike) -> int:
        """Add the next tick's ``[symbols, OHLCV]`` and feature rows; return its bar."""
        if self._n == len(self._times):
            grow = len(self._times)
            self._times = np.concatenate([self._times, np.empty(grow, self._times.dtype)])
            self._ns = self._times.view(np.int64)
            self._px = np.concatenate([self._px, np.full_like(self._px, np.nan)])
            self._features = np.concatenate([self._features, np.full_like(self._features, np.nan)])
        i = self._n
        self._ns[i] = time.value  # a UTC time's nanoseconds (whatever its zone)
        self._px[i] = prices
        self._features[i] = features
        self._n += 1
        # the tick's own time is the newest bar's, as `last_time` would make it again
        self._last = time if time.tzinfo is UTC and time.unit == "ns" else None
        return i

    def index(self, end: int | None = None) -> pd.DatetimeIndex:
        """Return the clock of the first ``end`` bars (all by default)."""
        n = self._n if end is None else end
        return pd.DatetimeIndex(self._times[:n], name="timestamp").tz_localize("UTC")

    def own_bars(self, symbol: int, end: int | None = None) -> Bars:
        """Return the ``symbol``-th symbol's own bars among the first ``end`` of the clock."""
        n = self._n if end is None else end
        here = self.present(n)[:, symbol]
        frame = pd.DataFrame(
            self._px[:n, symbol][here], index=self.index(n)[here], columns=list(OHLCV)
        )
        documents = (
            {name: feed.documents() for name, feed in self.feeds.items()}
            if self.feeds
            else self._documents[symbol]
        )
        return Bars(
            frame,
            self.symbols[symbol],
            self.timeframe,
            self.timeframe_seconds,
            calendar=self.calendar,
            documents=documents,
        )

    def own_features(self, symbol: int, end: int | None = None) -> pd.DataFrame:
        """Return the ``symbol``-th symbol's feature rows, indexed like `own_bars`."""
        n = self._n if end is None else end
        here = self.present(n)[:, symbol]
        return pd.DataFrame(
            self._features[:n, symbol][here],
            index=self.index(n)[here],
            columns=list(self.columns),
        )

    def bars(self, end: int | None = None) -> Bars:
        """Return the first symbol's own bars among the first ``end`` of the clock (one
        market: its bars)."""
        return self.own_bars(0, end)

    def features(self, end: int | None = None) -> pd.DataFrame:
        """Return the first symbol's feature rows, indexed like `bars`."""
        return self.own_features(0, end)

    def universe(self, end: int | None = None) -> Universe:
        """Return the first ``end`` bars of the clock as a `Universe`."""
        n = self._n if end is None else end
        bars = tuple(self.own_bars(s, n) for s in range(len(self.symbols)))
        return Universe(bars, self.index(n))


def history_sha256(bars: Bars) -> str:
    """Return a SHA-256 over the bars' open times and OHLCV (a restart checks it).

    The times count in nanoseconds whatever the index's resolution (pandas 3 makes
    microseconds by default): the same instants, the same digest.
    """
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(bars.frame.index.as_unit("ns").asi8).tobytes())
    digest.update(np.ascontiguousarray(bars.frame[list(OHLCV)].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


def warm_up_row(bars: Bars) -> WarmUp:
    """Return the ``warm_up`` row of ``bars``: the history a run starts from (a restart
    checks it bar for bar by its SHA-256)."""
    return WarmUp(
        symbol=bars.symbol,
        bars=len(bars),
        first=bars.frame.index[0],
        last=bars.frame.index[-1],
        sha256=history_sha256(bars),
    )
