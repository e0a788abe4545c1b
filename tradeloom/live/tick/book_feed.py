"""The order book of a paper or live run: read at each tick, checked, journaled, kept.

A strategy with ``data.order_book`` starts from its recorded book (a `KeptBook`, cut at
the decision time of the last history bar) and, at each tick that has closed bars to
run, reads the exchange's book (``fetch_order_book``, ``limit`` = the recorded depth,
the data layer's retries) before the bars' features are stepped. What happens to a
read is journaled before the bars run:

- a snapshot that passes the checks of recorded books (`book_faults`, then no
  repeated or earlier time) is kept (``book_snapshot``);
- one that fails them, an answer that is not a book (non-numeric levels...), an
  exchange that does not answer after every retry or refuses: ``book_problem`` with
  its code, one warning line in the log, and the snapshot before stays in force (the
  features see a stale book; the run goes on).

With a websocket (``live.stream`` ``auto`` or ``websocket``, and a ccxt.pro
``watch_order_book``), the snapshot is the stream's newest one, when the stream vouches
for it (the data source's ``book_stream``, a `BookStream`), else the REST read.

A snapshot is stamped with the time the run read it (its clock), not with a time the
exchange may send: a read never lands before a bar already decided, so the as-of join
over the journaled snapshots gives every past bar what it saw. A restart offers them
again in order, and rebuilds the same book; ``book.parquet`` in the run directory is
that book as ``tradeloom data record-book`` writes one (rewritten, atomically, after a
tick that kept a snapshot), so ``data.order_book.path: RUN_DIR/book.parquet`` backtests
the run's decisions again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from tradeloom.domain import BookSnapshot
from tradeloom.errors import DataError
from tradeloom.journal import BookProblem, BookSnapshotTaken, journal_path, read_events
from tradeloom.plugins.protocols_books import KeptBook, LiveBookFeed
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.retrying import describe
from tradeloom.time.timeframes import format_timestamp

if TYPE_CHECKING:
    from tradeloom.domain import Bars
    from tradeloom.engine.events import Recorder
    from tradeloom.live.recovery.journal_state import JournalState

__all__ = ["BOOK_FILE", "BookFeed", "open_book_feed"]

BOOK_FILE = "book.parquet"
"""The run directory's copy of the book it used, as a book table."""

_NO_ANSWER = ("unreachable", "malformed")
"""Codes of a read that brought no book to check."""

_log = logger("tradeloom.live")


class BookStream(Protocol):
    """What the feed asks of a websocket stream of the book (the data source's
    ``book_stream``): started, asked for its newest snapshot at each tick, stopped."""

    def start(self) -> None:
        """Start watching the book."""
        ...

    def latest(self) -> BookSnapshot | None:
        """Return the newest snapshot when the stream vouches for it, else None."""
        ...

    def stop(self) -> None:
        """Stop watching."""
        ...


class BookFeed:
    """Read one market's book at each tick into its `KeptBook`, journaling every outcome.

    Args:
        book: The book so far.
        read: Returns the exchange's book now (`CcxtSource.order_book` with the depth).
        now_ms: The run's clock, epoch milliseconds (a snapshot's time).
        run_dir: Where ``book.parquet`` is written.
        stream: The websocket stream of the book, started; its newest snapshot is taken
            when it vouches for one, else ``read`` is called (None: always ``read``).
    """

    def __init__(
        self,
        book: KeptBook,
        read: Callable[[], BookSnapshot],
        now_ms: Callable[[], int],
        run_dir: Path,
        stream: BookStream | None = None,
    ) -> None:
        self.book = book
        self.stream = stream
        self.problems: Counter[str] = Counter()
        """Reads without a new snapshot, by code, over the whole run (restarts included)."""
        self._read = read
        self._now_ms = now_ms
        self._path = run_dir / BOOK_FILE
        self._written = -1

    def tick(self, recorder: Recorder, bar: int) -> None:
        """Read the book and journal the outcome (``bar``: the first bar of the tick, read
        at its close)."""
        header = recorder.at(bar, market=True)
        try:
            streamed = None if self.stream is None else self.stream.latest()
            raw = self._read() if streamed is None else streamed
        except Exception as error:  # any failed read: the book before stays in force
            code = "malformed" if isinstance(error, DataError) else "unreachable"
            self._problem(recorder, header, code, self._stale(describe(error)))
            return
        snapshot = BookSnapshot(raw.symbol, int(self._now_ms()), raw.bids, raw.asks)
        rejected = self.book.offer(snapshot)
        if rejected is not None:
            self._problem(recorder, header, rejected.code, rejected.message)
            return
        recorder.record(
            BookSnapshotTaken(
                **header,
                read_at=pd.Timestamp(snapshot.time_ms, unit="ms", tz="UTC"),
                bids=[list(level) for level in snapshot.bids],
                asks=[list(level) for level in snapshot.asks],
            )
        )

    def summary(self) -> dict[str, Any]:
        """Return the book's figures for ``metrics.json``: snapshots held and read live,
        the newest one's time, and the reads without a new snapshot by code."""
        last = self.book.last_time_ns
        return {
            "snapshots": len(self.book),
            "live_snapshots": len(self.book.live),
            "last_snapshot": None if last is None else format_timestamp(last),
            "problems": dict(sorted(self.problems.items())),
        }

    def stop(self) -> None:
        """Stop the websocket stream, if any."""
        if self.stream is not None:
            self.stream.stop()

    def write(self) -> None:
        """Write ``book.parquet`` if the book changed since it was last written."""
        if len(self.book) == self._written:
            return
        temporary = self._path.with_name(self._path.name + ".tmp")
        self.book.table().to_parquet(temporary, index=False)
        os.replace(temporary, self._path)
        self._written = len(self.book)

    def _stale(self, error: str) -> str:
        last = self.book.last_time_ns
        since = "none yet" if last is None else format_timestamp(last)
        return (
            f"order book of {self.book.symbol}: no snapshot ({error}); the snapshot before "
            f"stays in force ({since})"
        )

    def _problem(self, recorder: Recorder, header: dict[str, Any], code: str, message: str) -> None:
        self.problems[code] += 1
        recorder.record(BookProblem(**header, code=code, message=message))
        _log.warning("order_book_problem", code=code, message=message)


def open_book_feed(
    source: Any,
    bars: Bars,
    state: JournalState | None,
    run_dir: Path,
    now: Callable[[], pd.Timestamp],
    stream: str = "poll",
) -> BookFeed | None:
    """Return the run's book feed, or None when the strategy reads no order book.

    A new run cuts the recorded book at its last history bar's decision time; a
    restart at the one its journal's warm-up names, then takes back the journaled
    snapshots. Unless ``stream`` is ``poll``, the book comes from the exchange's
    websocket (``watch_order_book``) where ccxt.pro has one, with REST as the
    fallback; the stream counts as stale after one bar without an update.

    Args:
        source: The live data source (`CcxtSource`: ``live_book``, ``order_book`` and
            ``book_stream``).
        bars: The history loaded at this start.
        state: The journal's state on a restart (None: a new run).
        run_dir: The run directory.
        now: The run's clock.
        stream: ``live.stream``: ``poll``, ``auto`` or ``websocket``.
    """
    warm = None if state is None else state.warm_up
    last = bars.frame.index[-1] if warm is None else warm.last
    cut = int(last.value) + bars.timeframe_seconds * 1_000_000_000
    # a feed without one reads no book
    book: KeptBook | None = source.live_book(cut) if isinstance(source, LiveBookFeed) else None
    if book is None:
        return None
    problems: Counter[str] = Counter()
    if state is not None:
        for event in read_events(journal_path(run_dir), [BookSnapshotTaken, BookProblem]):
            if isinstance(event, BookProblem):
                problems[event.code] += 1
                if event.code not in _NO_ANSWER:  # a check failed: it counts as before
                    book.rejected[event.code] += 1
                continue
            assert isinstance(event, BookSnapshotTaken)
            book.offer(
                BookSnapshot(
                    book.symbol,
                    int(event.read_at.value) // 1_000_000,
                    tuple((float(p), float(q)) for p, q in event.bids),
                    tuple((float(p), float(q)) for p, q in event.asks),
                )
            )
    depth = book.depth
    watched: BookStream | None = None
    if stream != "poll":
        watched = source.book_stream(
            depth, stale_after=float(bars.timeframe_seconds), clock=lambda: now().timestamp()
        )
        if watched is not None:
            watched.start()
    feed = BookFeed(
        book,
        lambda: source.order_book(depth),
        lambda: int(now().value) // 1_000_000,
        run_dir,
        watched,
    )
    feed.problems = problems
    return feed
