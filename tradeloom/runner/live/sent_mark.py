"""The sent-id mark: how many orders a live run has sent, kept outside its journal.

A live run journals each order (``order_sent``, committed) before it POSTs it. A
journal that loses its tail after a crash (a cut write-ahead log) forgets orders
the exchange has, and a restart that trusted it would send their client ids again:
an exchange takes a reused id as a new order once the first has filled. The mark
is a second witness in another file: ``sent.mark`` in the run directory holds the
count of orders sent and the last client id, written to a temporary file, fsync'd
and renamed over the old one after the journal's commit and before each POST.

A restart compares (`check_sent_mark`): a journal holding fewer sent orders than
the mark is behind it, naming both numbers. A live run on one market asks its venue
about the ids beyond the journal instead (`tradeloom.runner.live.sent_lookup`); a run
whose venue cannot be asked refuses to start. The journal may be one ahead (a crash
between its commit and the mark's write): the order is in the journal, which is what
a restart looks up at the venue.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tradeloom.journal.durable import replace_durably
from tradeloom.journal.errors import JournalDamaged

__all__ = ["MARK_FILE", "SentMark", "check_sent_mark"]

MARK_FILE = "sent.mark"
_MAX_BYTES = 4096


class SentMark:
    """The run's sent-id mark, advanced before each POST.

    Args:
        run_dir: The run directory (the mark is its ``sent.mark``).

    Raises:
        JournalDamaged: A mark file that is not a regular file or does not parse.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / MARK_FILE
        self.sent, self.last = _read(self.path)

    def advance(self, client_id: str) -> None:
        """Record one more order sent, ``client_id``, durably (before it is POSTed)."""
        self.rebase(self.sent + 1, client_id)

    def rebase(self, sent: int, last: str) -> None:
        """Record ``sent`` orders sent, the last ``last``, durably.

        A restart that asked the venue about the ids beyond its journal sets the count
        to what the journal now holds: ids the mark counted that the venue proved never
        arrived were not sent, and go again under the same id.
        """
        self.sent, self.last = sent, last
        replace_durably(self.path, json.dumps({"sent": sent, "last": last}).encode())

    @property
    def written_at(self) -> float | None:
        """When the mark was last advanced (seconds since the epoch; None: never).

        Every order it counts was POSTed after this, if at all: a venue's window for
        a request runs from its send time.
        """
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return None


def check_sent_mark(run_dir: Path, journal: Path, journaled: int) -> None:
    """Refuse a journal that holds fewer sent orders than the run's mark says it sent.

    Args:
        run_dir: The run directory.
        journal: The journal (named in the message).
        journaled: How many distinct orders its ``order_sent`` rows hold.

    Raises:
        JournalDamaged: The journal is behind the mark (one line, both numbers).
    """
    sent, last = _read(run_dir / MARK_FILE)
    if journaled < sent:
        raise JournalDamaged(
            f"{journal}: the journal is behind the sent-id mark: it holds {journaled} sent "
            f"orders, {run_dir / MARK_FILE} says {sent} were sent (the last {last}); its "
            "tail was lost"
        )


def _read(path: Path) -> tuple[int, str]:
    if not os.path.lexists(path):
        return 0, ""
    if path.is_symlink() or not path.is_file():
        raise JournalDamaged(f"{path}: the sent-id mark is not a regular file")
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
        if len(data) > _MAX_BYTES:
            raise ValueError("too large")
        values = json.loads(data.decode("utf-8"))
        return int(values["sent"]), str(values["last"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise JournalDamaged(f"{path}: the sent-id mark is damaged") from None
