"""Several emulated venues on one bar clock: what a router is tested against.

Each venue is its own `ExchangeEmulator` (own port, balances, fees, prices, book,
fault schedule and request log) replaying the same bars; `EmulatedVenues` starts
and stops them together and moves their clocks in step, so that at any moment
every venue quotes the same bar, each at its own offset and spread.

Example:
    >>> venues = [
    ...     VenueSpec("cheap", {"USDT": 10_000}, taker_fee=Decimal("0.0005")),
    ...     VenueSpec("dear", {"USDT": 10_000}, price_offset_bps=Decimal(5)),
    ... ]
    >>> with EmulatedVenues({"BTC/USDT": bars}, venues, start=100) as emulated:  # doctest: +SKIP
    ...     clients = emulated.clients()
    ...     emulated["dear"].faults.next("POST /api/v3/order", ServerError())
    ...     emulated.advance()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Self

import ccxt
import pandas as pd

from tradeloom.testing.emulator.bars import BarSeries
from tradeloom.testing.emulator.emulator import ExchangeEmulator
from tradeloom.testing.emulator.lifecycle import Started
from tradeloom.testing.emulator.records import BookProfile, MarketRules

__all__ = ["EmulatedVenues", "VenueSpec"]


@dataclass(frozen=True)
class VenueSpec:
    """One venue of `EmulatedVenues`: how it differs from the others.

    Attributes:
        name: The venue's name, unique among the venues (``venue_a``).
        balances: Starting free balance per asset.
        price_offset_bps: Its prices are the bars' times ``1 + offset / 10_000``.
        maker_fee: Fee rate of its resting limit orders that fill.
        taker_fee: Fee rate of its market and marketable orders.
        book: Spread and depth of its book.
        rules: Price, lot and notional filters, for every market or per symbol.
        fill_fraction: Most of an order's quantity filled per bar.
        volume_participation: Most of a bar's volume its fills may take (None: no cap).
    """

    name: str
    balances: Mapping[str, Decimal | int | str]
    price_offset_bps: Decimal = Decimal(0)
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    book: BookProfile = field(default_factory=BookProfile)
    rules: MarketRules | Mapping[str, MarketRules] | None = None
    fill_fraction: Decimal = Decimal(1)
    volume_participation: Decimal | None = None


class EmulatedVenues(Started):
    """Two or more loopback venues replaying the same bars on one clock.

    Args:
        markets: Bars per unified symbol, as `ExchangeEmulator` takes them; every
            venue lists every market.
        venues: One `VenueSpec` per venue.
        start: Initial bar position of every venue.
        timeframe: Bar length, inferred when omitted.
        wall_clock: Seconds since the epoch, for request signatures.
        include_open_kline: Serve the kline in progress, as Binance does (False: closed
            klines only, so that a live run's history download stops at the last one).

    Raises:
        ValueError: No venue, or two venues with the same name (and whatever
            `ExchangeEmulator` refuses).
    """

    def __init__(
        self,
        markets: Mapping[str, pd.DataFrame | BarSeries],
        venues: Sequence[VenueSpec],
        *,
        start: int = 0,
        timeframe: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        include_open_kline: bool = True,
    ) -> None:
        if not venues:
            raise ValueError("EmulatedVenues needs at least one VenueSpec")
        names = [v.name for v in venues]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"venue names must be unique; repeated: {', '.join(repeated)}")
        series = {
            symbol: bars if isinstance(bars, BarSeries) else BarSeries.from_frame(bars, timeframe)
            for symbol, bars in markets.items()
        }
        self._venues: dict[str, ExchangeEmulator] = {
            spec.name: ExchangeEmulator(
                series,
                spec.balances,
                rules=spec.rules,
                maker_fee=spec.maker_fee,
                taker_fee=spec.taker_fee,
                fill_fraction=spec.fill_fraction,
                volume_participation=spec.volume_participation,
                start=start,
                wall_clock=wall_clock,
                price_offset_bps=spec.price_offset_bps,
                book=spec.book,
                include_open_kline=include_open_kline,
            )
            for spec in venues
        }
        self.specs: dict[str, VenueSpec] = {spec.name: spec for spec in venues}
        self._stack: ExitStack | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Start every venue, each on its own free port."""
        with ExitStack() as stack:
            for venue in self._venues.values():
                stack.enter_context(venue)
            self._stack = stack.pop_all()
        return self

    def stop(self) -> None:
        """Stop every venue."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    # --- the venues -------------------------------------------------------------------

    def __getitem__(self, name: str) -> ExchangeEmulator:
        """Return one venue's emulator: its ``faults``, ``exchange``, ``log``...

        Raises:
            KeyError: No venue has that name (the message lists the names).
        """
        try:
            return self._venues[name]
        except KeyError:
            raise KeyError(f"no venue '{name}'; the venues are {', '.join(self._venues)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._venues)

    def __len__(self) -> int:
        return len(self._venues)

    @property
    def names(self) -> list[str]:
        """The venues' names, in the order given."""
        return list(self._venues)

    @property
    def position(self) -> int:
        """The shared clock: the bar in progress."""
        return next(iter(self._venues.values())).exchange.position

    def clients(self, **config: Any) -> dict[str, ccxt.binance]:
        """Return a real ``ccxt.binance`` per venue, by name (see `ExchangeEmulator.client`)."""
        return {name: venue.client(**config) for name, venue in self._venues.items()}

    def errors(self) -> dict[str, list[BaseException]]:
        """Return the venues that raised while serving (a bug), with what they raised."""
        return {name: v.errors for name, v in self._venues.items() if v.errors}

    # --- the clock ----------------------------------------------------------------------

    def advance(self, bars: int = 1) -> None:
        """Play ``bars`` bars on every venue (see `Exchange.advance`)."""
        for venue in self._venues.values():
            venue.advance(bars)

    def set_bar(self, index: int) -> None:
        """Move every venue's clock forward to bar ``index`` (see `Exchange.set_bar`)."""
        for venue in self._venues.values():
            venue.set_bar(index)
