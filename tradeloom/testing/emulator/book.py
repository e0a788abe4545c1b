"""The order book an emulated venue quotes: a deterministic ladder around the price now.

No order book is replayed: the bars carry none. The book is built from the price of
the bar in progress and the venue's `BookProfile`, so a test can say what it holds
at any bar (`book_levels`), and two venues with different profiles quote different
depth around the same bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from tradeloom.testing.emulator.records import BookProfile, MarketRules

__all__ = ["Level", "OrderBook", "book_levels"]

Level = tuple[Decimal, Decimal]
"""One price level: ``(price, base quantity)``."""

_BPS = Decimal(10_000)


@dataclass(frozen=True)
class OrderBook:
    """A snapshot of one market's book.

    Attributes:
        bids: Buy levels, best (highest) first.
        asks: Sell levels, best (lowest) first.
        time_ms: Market time of the snapshot: the open of the bar in progress.
    """

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    time_ms: int

    @property
    def best_bid(self) -> Decimal:
        """The highest bid."""
        return self.bids[0][0]

    @property
    def best_ask(self) -> Decimal:
        """The lowest ask."""
        return self.asks[0][0]


def book_levels(
    price: Decimal,
    rules: MarketRules,
    profile: BookProfile,
    time_ms: int,
    limit: int | None = None,
) -> OrderBook:
    """Return the book the profile puts around ``price``.

    Level ``k`` (0 = best) of the bids is at ``price * (1 - (spread_bps / 2 + k *
    level_gap_bps) / 10_000)`` rounded down to the tick, of the asks at ``price * (1 +
    ...)`` rounded up, each at least one tick beyond the level before; it holds
    ``size * growth ** k`` (times ``1 + tilt`` on the bids, ``1 - tilt`` on the asks)
    rounded down to the lot step (at least one step). Bids
    that would fall below the market's minimum price are left out.

    Args:
        price: The price now.
        rules: The market's tick, lot step and minimum price.
        profile: Spread and depth.
        time_ms: Market time of the snapshot.
        limit: At most this many levels a side (the profile's ``levels`` when None).
    """
    count = profile.levels if limit is None else min(limit, profile.levels)
    tick, step = rules.tick_size, rules.step_size
    bids: list[Level] = []
    asks: list[Level] = []
    for k in range(count):
        distance = (profile.spread_bps / 2 + k * profile.level_gap_bps) / _BPS
        size = profile.size * profile.growth**k
        bid_size = max(step, _round(size * (1 + profile.tilt), step, ROUND_FLOOR))
        ask_size = max(step, _round(size * (1 - profile.tilt), step, ROUND_FLOOR))
        bid = _round(price * (1 - distance), tick, ROUND_FLOOR)
        ask = _round(price * (1 + distance), tick, ROUND_CEILING)
        if bids:
            bid = min(bid, bids[-1][0] - tick)
            ask = max(ask, asks[-1][0] + tick)
        if bid >= rules.min_price:
            bids.append((bid, bid_size))
        asks.append((ask, ask_size))
    return OrderBook(tuple(bids), tuple(asks), time_ms)


def _round(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step
