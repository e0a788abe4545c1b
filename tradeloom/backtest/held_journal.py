"""A backtest's journal held in memory until its run is saved (`tradeloom.api`'s runs).

A run held in memory journals as every run does, through the `JournalStore` its
recorder writes to; `HeldJournal` keeps each call (an event appended, a bulk write, a
commit) in order and hashes nothing. `HeldJournal.write_into` makes the same calls on
a real store (`tradeloom.journal.open_store`) once the run has a folder: the store
chains and writes the rows then, exactly as it would have during the run, so the saved
journal holds the rows, the blocks and the hash chain the same run would have written
into that folder (its wall-clock times are the run's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tradeloom.journal import ColumnBatch, Event, JournalStore, RunIdentity

__all__ = ["HeldJournal"]


@dataclass
class HeldJournal:
    """A `JournalStore` that keeps every call for a store to make later.

    Attributes:
        identity: The run; its ``run_id`` is a placeholder until the run has a folder.
    """

    identity: RunIdentity
    _calls: list[tuple[str, Any]] = field(default_factory=list)
    _seq: int = 0
    _closed: bool = False

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event kept (0: none)."""
        return self._seq

    @property
    def calls(self) -> int:
        """How many calls were kept: a point of the journal (`write_into`'s ``stop``)."""
        return len(self._calls)

    def append(self, event: Event) -> int:
        """Keep ``event``; return its sequence number."""
        self._open()
        self._seq += 1
        self._calls.append(("append", event))
        return self._seq

    def flush(self, *, durable: bool = True) -> None:
        """Keep a commit (its place among the rows)."""
        self._open()
        self._calls.append(("flush", durable))

    def write_columns(self, batches: Sequence[ColumnBatch], *, durable: bool = True) -> None:
        """Keep a bulk write of ``batches`` (and how it commits)."""
        self._open()
        self._seq += sum(len(batch.positions) for batch in batches)
        self._calls.append(("columns", (list(batches), durable)))

    def close(self) -> None:
        """Keep nothing more."""
        self._closed = True

    def write_into(self, store: JournalStore, start: int = 0, stop: int | None = None) -> int:
        """Make the kept calls ``start`` to ``stop`` (None: the last) on ``store``, in
        order; return ``stop``."""
        end = len(self._calls) if stop is None else stop
        for call, value in self._calls[start:end]:
            if call == "append":
                store.append(value)
            elif call == "flush":
                store.flush(durable=value)
            else:
                batches, durable = value
                store.write_columns(batches, durable=durable)
        return end

    def _open(self) -> None:
        if self._closed:
            raise RuntimeError("the held journal is closed")
