"""A deterministic, realistic L2 stream in hftbacktest's event format (for the book benchmark).

No recorded L2 file with trades ships with tradeloom (``tradeloom data record-book``
records snapshots of the top levels, no trades), so the benchmark makes one: a book of
20 levels a side on a 0.01 tick, whose orders arrive, cancel and trade as a simple
zero-intelligence market does (most activity at the touch, sizes in whole lots of
0.001, queues growing with depth). A trade prints at the best level and the depth
update that reports it follows 50 µs later, as exchanges' trade and depth streams do;
a trade that empties the best level moves the price. The strategy sees each event a
feed latency (1 ms plus up to 0.5 ms of jitter, never out of order) after the
exchange made it.

The same seed gives the same stream, byte for byte.
"""

from __future__ import annotations

import random

import numpy as np

EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28
DEPTH_EVENT = 1
TRADE_EVENT = 2

EVENT_DTYPE = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ],
    align=True,
)

TICK = 0.01
LOT = 0.001
LEVELS = 20


def make_stream(n_events: int, seed: int = 87) -> np.ndarray:
    """Return ``n_events`` (about) events of one market, sorted by both times."""
    rng = random.Random(seed)
    out = np.zeros(n_events + 4 * LEVELS + 8, dtype=EVENT_DTYPE)
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    best_bid, best_ask = 10_000, 10_001  # price 100.00 / 100.01
    t = 1_700_000_000_000_000_000
    local = t
    n = 0

    def emit(kind: int, tick: int, lots: int, at: int) -> None:
        nonlocal n, local
        local = max(local, at + 1_000_000 + rng.randrange(500_000))
        out[n] = (EXCH_EVENT | LOCAL_EVENT | kind, at, local, tick * TICK, lots * LOT, 0, 0, 0.0)
        n += 1

    for d in range(LEVELS):
        bids[best_bid - d] = 1 + int(rng.expovariate(1 / (3 + 2 * d)))
        asks[best_ask + d] = 1 + int(rng.expovariate(1 / (3 + 2 * d)))
        emit(DEPTH_EVENT | BUY_EVENT, best_bid - d, bids[best_bid - d], t)
        emit(DEPTH_EVENT | SELL_EVENT, best_ask + d, asks[best_ask + d], t)

    while n < n_events:
        t += 1 + int(rng.expovariate(1 / 2_000_000))  # 2 ms between events on average
        u = rng.random()
        if u < 0.12:  # a trade at the touch
            buy = rng.random() < 0.5
            book, best = (asks, best_ask) if buy else (bids, best_bid)
            size = min(book[best], 1 + int(rng.expovariate(1 / 3)))
            emit(TRADE_EVENT | (BUY_EVENT if buy else SELL_EVENT), best, size, t)
            left = book[best] - size
            t += 50_000
            emit(DEPTH_EVENT | (SELL_EVENT if buy else BUY_EVENT), best, left, t)
            if left:
                book[best] = left
                continue
            del book[best]
            if buy:
                best_ask = min(asks) if asks else best_ask + 1
            else:
                best_bid = max(bids) if bids else best_bid - 1
            continue
        bid_side = rng.random() < 0.5
        if u < 0.2 and best_ask - best_bid > 1:  # an order inside the spread
            tick = best_bid + 1 if bid_side else best_ask - 1
            lots = 1 + int(rng.expovariate(1 / 3))
            (bids if bid_side else asks)[tick] = lots
            if bid_side:
                best_bid = tick
            else:
                best_ask = tick
            emit(DEPTH_EVENT | (BUY_EVENT if bid_side else SELL_EVENT), tick, lots, t)
            continue
        d = min(int(rng.expovariate(1 / 3)), LEVELS - 1)
        book = bids if bid_side else asks
        tick = best_bid - d if bid_side else best_ask + d
        have = book.get(tick, 0)
        if rng.random() < 0.55 or have == 0:  # an order joins the level
            have += 1 + int(rng.expovariate(1 / (2 + d)))
        else:  # one leaves it
            have -= min(have, 1 + int(rng.expovariate(1 / (2 + d))))
        if have == 0 and (len(book) < 3 or tick == (best_bid if bid_side else best_ask)):
            have = 1  # the touch empties by trades only, so the book never runs dry
        if have:
            book[tick] = have
        else:
            book.pop(tick, None)
        emit(DEPTH_EVENT | (BUY_EVENT if bid_side else SELL_EVENT), tick, have, t)
    return out[:n]


def tradeloom_columns(events: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the feed's columns for `tradeloom.core.kernels.book.new_state`."""
    ev = events["ev"]
    trade = (ev & 0xFF) == TRADE_EVENT
    buy = (ev & BUY_EVENT) != 0
    kind = np.where(trade, np.where(buy, 2, 3), np.where(buy, 0, 1)).astype(np.int64)
    seen = (((ev & EXCH_EVENT) != 0) * 1 + ((ev & LOCAL_EVENT) != 0) * 2).astype(np.int64)
    return kind, seen, events["exch_ts"], events["local_ts"], events["px"], events["qty"]
