"""The sent-id mark: how many orders a live run has sent, kept outside its journal.

A live run journals each order (``order_sent``, committed) before it POSTs it. A
journal that loses its tail after a crash (a cut write-ahead log) forgets orders
the exchange has, and a restart that trusted it would send their client ids again:
an exchange takes a reused id as a new order once the first has filled. The mark
is a second witness in another file: ``sent.mark`` in the run directory holds the
count of orders sent, the last client id and when it was sent (on the clock the
intent's ``sent_at`` is journaled with), written to a temporary file, fsync'd and
renamed over the old one after the journal's commit and before each POST.

A restart compares (`check_sent_mark`): a journal holding fewer sent orders than
the mark is behind it, naming both numbers. A live run on one market asks its venue
about the ids beyond the journal instead (`tradeloom.live.recovery.sent_lookup`); a run
whose venue cannot be asked refuses to start. The journal may be one ahead (a crash
between its commit and the mark's write): the order is in the journal, which is what
a restart looks up at the venue.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.journal.durable import read_record, replace_durably
from tradeloom.journal.errors import JournalDamaged

if TYPE_CHECKING:
    from tradeloom.journal import JournalStore
    from tradeloom.journal.postgres import PostgresJournal

__all__ = ["MARK_FILE", "PgSentMark", "SentMark", "check_sent_mark", "open_sent_mark"]

MARK_FILE = "sent.mark"


class SentMark:
    """The run's sent-id mark, advanced before each POST.

    Args:
        run_dir: The run directory (the mark is its ``sent.mark``).

    Raises:
        JournalDamaged: A mark file that is not a regular file or does not parse.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / MARK_FILE
        self.where = str(self.path)
        """What a message names the mark by."""
        self.sent, self.last, self._at, self.bar = _read(self.path)
        """``bar``: the bar the last order was decided at (None: a mark without it)."""

    def advance(self, client_id: str, *, at: float | None = None, bar: int | None = None) -> None:
        """Record one more order sent, ``client_id``, durably (before it is POSTed).

        Args:
            at: When it is sent (seconds since the epoch, on the clock its intent's
                ``sent_at`` is journaled with); None: now.
            bar: The bar it was decided at.
        """
        self.rebase(self.sent + 1, client_id, at=at, bar=bar)

    def rebase(
        self, sent: int, last: str, *, at: float | None = None, bar: int | None = None
    ) -> None:
        """Record ``sent`` orders sent, the last ``last``, durably.

        A restart that asked the venue about the ids beyond its journal sets the count
        to what the journal now holds (with what it adopted).
        """
        self.sent, self.last = sent, last
        self._at = time.time() if at is None else at
        self.bar = self.bar if bar is None else bar
        self._write()

    def _write(self) -> None:
        record = {"sent": self.sent, "last": self.last, "at": self._at, "bar": self.bar}
        replace_durably(self.path, json.dumps(record).encode())

    @property
    def written_at(self) -> float | None:
        """When the mark was last advanced (seconds since the epoch; None: never).

        Every order it counts was POSTed after this, if at all: a venue's window for
        a request runs from its send time. A mark written before it recorded the time:
        its file's modification time.
        """
        if self._at is not None:
            return self._at
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return None


class PgSentMark(SentMark):
    """The sent-id mark of a run journaled in PostgreSQL: its rows of ``sent_marks``.

    A row per advance, committed in its own transaction before the order is sent
    (`PostgresJournal.write_mark`); the last row is the mark.

    Args:
        store: The run's journal.
    """

    def __init__(self, store: PostgresJournal) -> None:
        self.store = store
        self.path = Path(MARK_FILE)  # not used: the mark is in the database
        self.where = f"{store.target.where} run {store.identity.run_id} (its sent_marks)"
        self.sent, self.last, self._at = store.read_mark()
        self.bar = None  # not kept in the database: a journal there is never cut

    def _write(self) -> None:
        assert self._at is not None
        self.store.write_mark(self.sent, self.last, self._at)


def open_sent_mark(run_dir: Path, store: JournalStore) -> SentMark:
    """Return the run's mark: in its PostgreSQL journal, or ``sent.mark`` beside a file."""
    # A PostgreSQL journal exists only once its module was imported; a run journaled in a
    # file never imports it, nor psycopg (the [postgres] extra) with it.
    postgres = sys.modules.get("tradeloom.journal.postgres")
    if postgres is not None and isinstance(store, postgres.PostgresJournal):
        return PgSentMark(store)
    return SentMark(run_dir)


def check_sent_mark(mark: SentMark, journal: Path, journaled: int) -> None:
    """Refuse a journal that holds fewer sent orders than the run's mark says it sent.

    Args:
        mark: The run's mark.
        journal: The journal (named in the message).
        journaled: How many distinct orders its ``order_sent`` rows hold.

    Raises:
        JournalDamaged: The journal is behind the mark (one line, both numbers).
    """
    if journaled < mark.sent:
        raise JournalDamaged(
            f"{journal}: the journal is behind the sent-id mark: it holds {journaled} sent "
            f"orders, {mark.where} says {mark.sent} were sent (the last {mark.last}); its "
            "tail was lost"
        )


def _read(path: Path) -> tuple[int, str, float | None, int | None]:
    def parse(values: Any) -> tuple[int, str, float | None, int | None]:
        at = values.get("at") if isinstance(values, dict) else None
        bar = values.get("bar") if isinstance(values, dict) else None
        return (
            int(values["sent"]),
            str(values["last"]),
            None if at is None else float(at),
            None if bar is None else int(bar),
        )

    read = read_record(path, "the sent-id mark", parse)
    return (0, "", None, None) if read is None else read
