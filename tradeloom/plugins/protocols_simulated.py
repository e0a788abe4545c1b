"""Data layer, ``--clock simulated``: a live feed that reads the markets the emulator serves.

``tradeloom run FILE --mode paper --clock simulated`` serves the strategy's own bars
from the built-in exchange emulator (`tradeloom.testing.ExchangeEmulator`, which speaks
Binance) and swaps the file's data source for a live feed of the data kind
`SERVED_KIND`, built through the registry as any component is, with the file's keys
that still apply (`tradeloom.live.tick.sim_clock.SimulatedMarket.live_pipeline`). The feed it
builds must be a `ServedFeed`: told what the file's bars are that an exchange's are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tradeloom.plugins.protocols import DataSource
    from tradeloom.time.calendars import TradingCalendar

__all__ = ["SERVED_KIND", "ServedFeed"]

SERVED_KIND = "ccxt"
"""The data kind ``--clock simulated`` reads the emulator with (its keys: ``exchange``,
``symbol`` or ``symbols``, ``timeframe``, ``start``, ``cache_dir``, ``order_book``,
``auxiliary``, ``validation``)."""


@runtime_checkable
class ServedFeed(Protocol):
    """A live feed that can read a strategy's own bars as the emulator serves them."""

    def serving(
        self,
        *,
        calendar: TradingCalendar,
        without_volume: frozenset[str],
        served_as: Mapping[str, str],
    ) -> DataSource:
        """Return this feed reading the served bars as the file's (a `LiveFeed` too).

        Args:
            calendar: The file's trading calendar: its closures are no gaps.
            without_volume: The markets whose file has no volume (served as zeros,
                read back as none).
            served_as: The emulator's name of each market not served under its own
                (a plain ``IBM`` as ``IBM/USD``); the bars keep the run's name.
        """
        ...
