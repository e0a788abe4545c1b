"""Data layer, live: the order book a paper or live run keeps, as the run sees it.

A data source that reads the exchange's book (`LiveBookFeed`)
gives the run one market's book: the recorded history cut at the run's start, then each
snapshot the run reads and offers to it. The run checks nothing itself: the book refuses a
snapshot that fails the checks of recorded books and says why (`BookRefusal`); the run
journals the outcome, joins the book to the bars, steps the book features on its rows and
writes it as ``book.parquet`` (`tradeloom.live.tick.book_feed`). The built-in ``ccxt`` source's
book (`tradeloom.plugins.data.live_book.LiveBook`) is one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tradeloom.plugins.protocols_steps import LiveRows

if TYPE_CHECKING:
    import pandas as pd

    from tradeloom.domain import Bars, BookSnapshot

__all__ = ["BookRefusal", "KeptBook", "LiveBookFeed"]


class BookRefusal(Protocol):
    """Why a book did not take a snapshot."""

    @property
    def code(self) -> str:
        """The check it failed (``crossed``, ``empty``, ``duplicate_timestamp``...)."""
        ...

    @property
    def message(self) -> str:
        """One line naming the market, the snapshot's time and what it has."""
        ...


class KeptBook(LiveRows, Protocol):
    """One market's book snapshots kept by a live run: the recorded ones, then those read.

    Its `LiveRows` are the bars' book columns, as of each bar's decision time.
    """

    symbol: str
    """The market (``BTC/USDT``)."""

    depth: int
    """Levels kept a side (the recorded book's)."""

    rejected: Counter[str]
    """Snapshots refused so far, by check."""

    @property
    def live(self) -> Sequence[BookSnapshot]:
        """The snapshots taken by `offer`, in order."""
        ...

    def __len__(self) -> int:
        """Return how many snapshots it holds."""
        ...

    @property
    def last_time_ns(self) -> int | None:
        """The time of the newest snapshot held (None: none)."""
        ...

    def offer(self, snapshot: BookSnapshot) -> BookRefusal | None:
        """Take ``snapshot`` if it passes the checks; return why not otherwise (counted)."""
        ...

    def join(self, bars: Bars) -> Bars:
        """Return ``bars`` with their book columns rebuilt from this book, as of each bar."""
        ...

    def table(self) -> pd.DataFrame:
        """Return every snapshot held as a book table (``timestamp``, ``symbol``, levels)."""
        ...


@runtime_checkable
class LiveBookFeed(Protocol):
    """A live feed that reads the exchange's order book at each bar."""

    def live_book(self, cut_ns: int) -> KeptBook | None:
        """Return the book as of ``cut_ns`` (None: the strategy reads no book)."""
