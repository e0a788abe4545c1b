"""The ``metrics.json`` blocks a live run's files read from its journal, kept current
by following it: ``execution_quality``, a router's ``venues``, a perpetual's net
``funding`` and an allocating strategy's ``allocation`` (its rebalances, as a backtest's
metrics count them: `tradeloom.reporting.allocation_figures.allocation_block`).

Each refresh reads only the events committed since the last (`EventFollower`, one open
journal) and adds them to the same ledgers (`ExecutionLedger`, `VenueLedger`); a
block is computed again only when an event of its kinds arrived, else the last one is
handed back. A new run key (a restart, a new engine, a journal rebuilt after it was
lost) or new execution terms (a reload) start them again from the journal's first row.
The blocks equal `journal_execution_quality` and `journal_venue_accounts` of the
journal as read: the ledgers are the batch functions' own accumulation.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from tradeloom.journal import EventFollower, FundingPayment, journal_path
from tradeloom.reporting.allocation_figures import RebalanceTally, allocation_block
from tradeloom.reporting.execution_quality import ExecutionLedger, journal_kinds, terms_of
from tradeloom.reporting.venue_accounts import KINDS as VENUE_KINDS
from tradeloom.reporting.venue_accounts import VenueLedger

__all__ = ["JournalFigures"]


class JournalFigures:
    """Follow one journal for the blocks of ``metrics.json`` read from it.

    Args:
        run_dir: The run directory (its journal: ``journal_path(run_dir)``).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._key: Hashable = None
        self._follower: EventFollower | None = None
        self._execution: ExecutionLedger | None = None
        self._venues = VenueLedger()
        self._rebalances = RebalanceTally()
        self._blocks: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
        self.events = 0
        """Events read since the last start."""
        self.funding = 0.0
        """Net funding booked (+ received, - paid), as of the last `blocks`."""

    def blocks(
        self, key: Hashable, document: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Return the ``execution_quality`` block and the venue accounts of the journal now.

        Args:
            key: The run the journal is read for: another key starts again.
            document: The run's strategy document (the execution terms).

        Raises:
            JournalError: Not a readable journal (the next call starts again).
        """
        self._read(key, document)
        assert self._execution is not None  # `_read` made it
        if self._blocks is None:  # events arrived since the blocks were computed
            self._blocks = (self._execution.figures(), self._venues.accounts())
        return self._blocks

    def allocation(
        self,
        key: Hashable,
        document: Mapping[str, Any] | None,
        refusals: Mapping[str, Mapping[str, Mapping[str, int]]],
    ) -> dict[str, Any] | None:
        """Return the ``allocation`` block of the journal now (None: the strategy does not
        allocate).

        Args:
            key: The run the journal is read for: another key starts again.
            document: The run's strategy document (its ``allocation.kind``).
            refusals: The run's ``metrics.json`` ``refusals`` (its rebalance orders').

        Raises:
            JournalError: Not a readable journal (the next call starts again).
        """
        section = (document or {}).get("allocation")
        if not isinstance(section, Mapping):
            return None
        self._read(key, document)
        kind = str(section.get("kind", "?"))
        return allocation_block(kind, self._rebalances.decisions, refusals)

    def _read(self, key: Hashable, document: Mapping[str, Any] | None) -> None:
        """Add the events committed since the last read to the ledgers and tallies (all
        of them again for a new run key, new execution terms or a new journal)."""
        terms = terms_of(document)
        path = journal_path(self.run_dir)
        if self._follower is None or self._execution is None or (key, terms, path) != self._key:
            self.close()
            kinds = [*journal_kinds(), *VENUE_KINDS, "funding", "allocation_decided"]
            self._follower = EventFollower(path, list(dict.fromkeys(kinds)))
            self._execution, self._venues = ExecutionLedger(terms), VenueLedger()
            self._rebalances = RebalanceTally()
            self._key, self._blocks, self.events = (key, terms, path), None, 0
            self.funding = 0.0
        try:
            events = self._follower.read()
        except Exception:
            self.close()
            raise
        if events:
            self.funding += sum(e.amount for e in events if isinstance(e, FundingPayment))
            self._execution.add(events)
            self._venues.add(events)
            self._rebalances.add(events)
            self._blocks = None  # computed again when next asked for
            self.events += len(events)

    def close(self) -> None:
        """Close the journal; the next `blocks` reads it again from its first row."""
        if self._follower is not None:
            self._follower.close()
        self._follower = None
