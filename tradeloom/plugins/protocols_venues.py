"""Execution layer: what ``--mode live`` asks of a venue that only models its fills.

A venue of the contract (`tradeloom.plugins.protocols.Venue`) fills a backtest's and a
paper run's orders. One that models them from the strategy file's fee and slippage keys
says so by being a `ModelledVenue`; ``--mode live`` then knows that those keys model
backtest and paper fills only, and, when the venue has no exchange account of its own
(it is no `LiveVenue`), trades its orders on the data source's account
(`tradeloom.engine.capabilities.live_account`). The engine asks with ``isinstance``,
never by the component's class, so a third-party venue gains the behaviour by
implementing it.

A venue whose backtest fills against a recorded order book (``execution.fill: book``)
is a `BookFills`: the backtest trades its `BookFills.book_venue` in place of the
compiled bar's fills, and validation checks its `BookCoverage` against the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tradeloom.core.costs import VenueCosts

if TYPE_CHECKING:
    from tradeloom.plugins.protocols import Venue

__all__ = ["BookCoverage", "BookFills", "ModelledVenue"]


@dataclass(frozen=True)
class BookCoverage:
    """What a recorded order book holds, read without replaying it.

    Attributes:
        path: Its file.
        source: The file as the strategy names it (``execution.book.source``).
        symbol: The market it records (None: it names none).
        first_ns, last_ns: Its first and last exchange time (UTC ns).
    """

    path: Path
    source: str
    symbol: str | None
    first_ns: int
    last_ns: int


@runtime_checkable
class BookFills(Protocol):
    """Execution layer: a venue that can fill a backtest's orders against a recorded
    order book instead of the bars (the built-in ``simulated`` with ``fill: book``)."""

    def recorded_book(self) -> BookCoverage | None:
        """Return the book its orders fill against (None: they fill on the bars)."""
        ...

    def book_venue(self, timeframe_seconds: int) -> Venue:
        """Return a new `Venue` filling orders decided at the closes of bars
        ``timeframe_seconds`` long against the book, for one backtest."""
        ...


@runtime_checkable
class ModelledVenue(Protocol):
    """Execution layer: a venue whose fills are modelled from the file's ``fee_bps``,
    ``maker_fee_bps`` and ``slippage_bps`` (the built-in ``simulated``, and the venues
    built on it).

    In ``--mode live`` a live order pays the exchange's fee and buys are sized with the
    market's taker fee as ccxt describes it: the file's keys model backtest and paper
    fills only. Unless the venue is also a `LiveVenue` (an account of its own) or a
    `MultiVenue` (the accounts of its venues), its live orders go to the data source's
    exchange account, with the data source's keys.
    """

    def modelled_costs(self) -> VenueCosts:
        """Return the fee rates and slippage its backtest and paper fills model."""
        ...
