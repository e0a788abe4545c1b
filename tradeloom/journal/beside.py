"""A journal whose bulk write runs in a thread of its own while the run goes on.

A backtest journals its core's rows in one bulk write (`JournalStore.write_columns`):
hashing the rows, inserting their blocks and committing (an fsync) take a tenth of a
million-bar run, and nothing the run computes next needs them written. `WritesBeside`
hands that write to its thread and returns; every other call of the journal (an
append, a flush, a read of its sequence, the close) first waits for it and raises its
error, so the journal's order, its chain and what a failed write tells are those of a
write made in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from tradeloom.journal.events import Event
from tradeloom.journal.store import ColumnBatch, JournalStore, RunIdentity

__all__ = ["WritesBeside"]


class WritesBeside:
    """``store`` (a `JournalStore`) with its bulk writes made in a thread of their own."""

    def __init__(self, store: JournalStore) -> None:
        self._store = store
        self._thread: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

    @property
    def store(self) -> JournalStore:
        """The journal written to, once every write handed to the thread is made."""
        self._settle()
        return self._store

    @property
    def identity(self) -> RunIdentity:
        return self._store.identity  # (set when the journal opened: no write changes it)

    @property
    def last_seq(self) -> int:
        return self.store.last_seq

    def append(self, event: Event) -> int:
        return self.store.append(event)

    def flush(self, *, durable: bool = True) -> None:
        self.store.flush(durable=durable)

    def write_columns(self, batches: Sequence[ColumnBatch]) -> None:
        """Start writing ``batches`` (after any write started before) and return; the
        next call of the journal waits for the write and raises its error."""
        self._settle()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="tradeloom-journal")
        self._pending = self._thread.submit(self._store.write_columns, batches)

    def close(self) -> None:
        """Wait for the write started last, then close the journal (whatever the write
        raised, which is raised after)."""
        try:
            self._settle()
        finally:
            try:
                self._store.close()
            finally:
                if self._thread is not None:
                    self._thread.shutdown()

    def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
