"""Execution layer: what ``--mode live`` asks of a venue that only models its fills.

A venue of the contract (`tradeloom.plugins.protocols.Venue`) fills a backtest's and a
paper run's orders. One that models them from the strategy file's fee and slippage keys
says so by being a `ModelledVenue`; ``--mode live`` then knows that those keys model
backtest and paper fills only, and, when the venue has no exchange account of its own
(it is no `LiveVenue`), trades its orders on the data source's account
(`tradeloom.engine.capabilities.live_account`). The engine asks with ``isinstance``,
never by the component's class, so a third-party venue gains the behaviour by
implementing it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tradeloom.core.costs import VenueCosts

__all__ = ["ModelledVenue"]


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
