"""What a router's run did at each venue, from its journal, in every mode.

Each child the router sent is a ``route_decision`` row naming its venue; each trade
of a child is a ``venue_fill`` row. Summed per venue: the fills, the base bought and
sold, what the venue holds of the run's position (bought less sold), the fees, and
the quote that moved (sells' proceeds less buys' cost, fees included), which with the
venue's starting cash is its cash now. A run without a router has no such rows, and
no block.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tradeloom.journal import Event, RouteDecision, VenueFill, read_events

__all__ = ["KINDS", "VenueLedger", "journal_venue_accounts", "venue_accounts"]


KINDS = ("route_decision", "venue_fill")
"""The journal kinds the accounts read."""


def venue_accounts(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Return one entry per venue a child went to, in the order first routed to.

    Args:
        events: The journal's ``route_decision`` and ``venue_fill`` rows, in order.
    """
    ledger = VenueLedger()
    ledger.add(events)
    return ledger.accounts()


class VenueLedger:
    """The venue accounts, accumulated event by event: `venue_accounts` is one `add`
    of every event; a live run's files add each refresh's new events to the same one."""

    def __init__(self) -> None:
        self._venue_of: dict[str, str] = {}
        self._accounts: dict[str, dict[str, Any]] = {}

    def add(self, events: Iterable[Event]) -> None:
        """Add ``events`` (``route_decision`` and ``venue_fill`` rows, in order)."""
        venue_of, accounts = self._venue_of, self._accounts
        for event in events:
            if isinstance(event, RouteDecision):
                venue_of[event.order_id] = event.venue
                accounts.setdefault(event.venue, _empty(event.venue))
            elif isinstance(event, VenueFill) and event.order_id in venue_of:
                account = accounts[venue_of[event.order_id]]
                notional = event.quantity * event.price
                account["fills"] += 1
                account["bought" if event.side > 0 else "sold"] += event.quantity
                account["base"] += event.side * event.quantity
                account["fees"] += event.fee
                account["quote_flow"] -= event.side * notional + event.fee

    def accounts(self) -> list[dict[str, Any]]:
        """Return `venue_accounts` of the events added so far (copies)."""
        return [dict(account) for account in self._accounts.values()]


def journal_venue_accounts(path: Path) -> list[dict[str, Any]]:
    """Return `venue_accounts` of the run journaled at ``path``.

    Raises:
        JournalError: Not a readable journal.
    """
    return venue_accounts(read_events(path, KINDS))


def _empty(venue: str) -> dict[str, Any]:
    return {
        "venue": venue,
        "fills": 0,
        "bought": 0.0,
        "sold": 0.0,
        "base": 0.0,
        "fees": 0.0,
        "quote_flow": 0.0,
    }
