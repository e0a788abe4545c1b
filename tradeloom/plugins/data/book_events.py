"""L2 events for the book backtest (`tradeloom.core.kernels.book`): from the snapshots
tradeloom records, or imported from hftbacktest's event arrays.

`BookEvents` is the kernel's feed: per event its kind (``EV_*``), which side of the
replay sees it (``SEEN_*`` bits), the exchange's and the strategy's times (ns), a price
and a quantity, sorted by both times.

- `events_from_snapshots` turns the book table ``tradeloom data record-book`` writes
  (`tradeloom.plugins.data.book_snapshots.snapshots_frame`) into level updates: the first
  snapshot sets every level it shows, each later one sets the levels that changed and
  empties the levels it no longer shows (the visible book is the snapshot: a market
  order never walks a level that left it). Snapshots carry no trades, so on them a
  resting order's queue moves only by depth changes (the probabilistic models) and it
  fills when the opposite best reaches its price; the risk-averse queue never moves.
  The strategy sees a snapshot ``available_after`` after its time, as the bars' book
  columns are (`tradeloom.plugins.data.order_book`).
- `events_from_hftbacktest` reads hftbacktest's event array (``.npz`` / ``.npy`` as
  its data utilities write, with depth, trade, snapshot and clear events): imported L2
  data with trades.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tradeloom.core.kernels.book import (
    EV_ASK_DEPTH,
    EV_BID_DEPTH,
    EV_BUY_TRADE,
    EV_SELL_TRADE,
    SEEN_EXCH,
    SEEN_LOCAL,
)
from tradeloom.errors import DataError
from tradeloom.plugins.data.book_snapshots import level_column
from tradeloom.plugins.data.order_book import recorded_depth
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = ["BookEvents", "events_from_hftbacktest", "events_from_snapshots", "read_book_events"]

_EXCH, _LOCAL, _BUY, _SELL = 1 << 31, 1 << 30, 1 << 29, 1 << 28
_DEPTH, _TRADE, _CLEAR, _SNAPSHOT = 1, 2, 3, 4


@dataclass(frozen=True)
class BookEvents:
    """One market's L2 events, the columns `tradeloom.core.kernels.book.new_state` takes."""

    kind: np.ndarray
    seen: np.ndarray
    exch_ts: np.ndarray
    local_ts: np.ndarray
    price: np.ndarray
    qty: np.ndarray

    def __len__(self) -> int:
        return len(self.kind)

    def columns(self) -> tuple[np.ndarray, ...]:
        """Return the six columns in `new_state`'s order."""
        return self.kind, self.seen, self.exch_ts, self.local_ts, self.price, self.qty


def events_from_snapshots(frame: pd.DataFrame, available_after_ns: int = 0) -> BookEvents:
    """Return the level updates that replay a table of snapshots.

    Args:
        frame: The book table (``timestamp`` and ``bid_price_i``... per level), one
            market, sorted by time.
        available_after_ns: How long after its time the strategy sees a snapshot.

    Raises:
        DataError: The table has no complete level, or its times are not increasing.
    """
    depth = recorded_depth(frame.columns)
    if depth == 0:
        raise DataError("order book: no complete level (bid_price_0, bid_size_0, ...) to replay")
    stamps = (
        pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    )
    if len(stamps) > 1 and not (np.diff(stamps) > 0).all():
        raise DataError("order book: snapshot times must increase; sort the file first")
    sides = []
    for side in ("bid", "ask"):
        prices = np.column_stack(
            [frame[level_column(f"{side}_price", i)].to_numpy(float) for i in range(depth)]
        )
        sizes = np.column_stack(
            [frame[level_column(f"{side}_size", i)].to_numpy(float) for i in range(depth)]
        )
        sides.append((EV_BID_DEPTH if side == "bid" else EV_ASK_DEPTH, prices, sizes))
    kinds: list[int] = []
    times: list[int] = []
    px: list[float] = []
    qty: list[float] = []
    before: dict[int, dict[float, float]] = {EV_BID_DEPTH: {}, EV_ASK_DEPTH: {}}
    for row, stamp in enumerate(stamps):
        for kind, prices, sizes in sides:
            now = {
                float(p): float(q)
                for p, q in zip(prices[row], sizes[row], strict=True)
                if np.isfinite(p) and np.isfinite(q)
            }
            last = before[kind]
            for p in sorted(set(last) - set(now)):  # gone from the visible book
                kinds.append(kind)
                times.append(int(stamp))
                px.append(p)
                qty.append(0.0)
            for p, q in sorted(now.items()):
                if last.get(p) != q:
                    kinds.append(kind)
                    times.append(int(stamp))
                    px.append(p)
                    qty.append(q)
            before[kind] = now
    exch = np.asarray(times, dtype=np.int64)
    return BookEvents(
        np.asarray(kinds, dtype=np.int64),
        np.full(len(kinds), SEEN_EXCH | SEEN_LOCAL, dtype=np.int64),
        exch,
        exch + int(available_after_ns),
        np.asarray(px, dtype=np.float64),
        np.asarray(qty, dtype=np.float64),
    )


def events_from_hftbacktest(events: np.ndarray) -> BookEvents:
    """Return the feed of an hftbacktest event array (its ``event_dtype``).

    Depth, snapshot and trade events are kept; clear events are refused (replay the
    snapshot that follows instead) and other kinds (market-by-order) are skipped.

    Raises:
        DataError: A clear event, or fields missing.
    """
    names = events.dtype.names or ()
    missing = {"ev", "exch_ts", "local_ts", "px", "qty"} - set(names)
    if missing:
        raise DataError(f"hftbacktest events: missing fields {', '.join(sorted(missing))}")
    ev = events["ev"].astype(np.uint64)
    code = (ev & np.uint64(0xFF)).astype(np.int64)
    if (code == _CLEAR).any():
        first = int(np.argmax(code == _CLEAR))
        raise DataError(
            f"hftbacktest events: a depth clear event (row {first}) cannot be replayed yet; "
            "convert the data with its snapshots instead of clears"
        )
    buy = (ev & np.uint64(_BUY)) != 0
    depth = (code == _DEPTH) | (code == _SNAPSHOT)
    trade = code == _TRADE
    keep = depth | trade
    kind = np.where(
        trade, np.where(buy, EV_BUY_TRADE, EV_SELL_TRADE), np.where(buy, EV_BID_DEPTH, EV_ASK_DEPTH)
    )
    seen = ((ev & np.uint64(_EXCH)) != 0) * SEEN_EXCH + ((ev & np.uint64(_LOCAL)) != 0) * SEEN_LOCAL
    return BookEvents(
        kind[keep].astype(np.int64),
        seen[keep].astype(np.int64),
        events["exch_ts"][keep].astype(np.int64),
        events["local_ts"][keep].astype(np.int64),
        events["px"][keep].astype(np.float64),
        events["qty"][keep].astype(np.float64),
    )


def read_book_events(path: Path) -> BookEvents:
    """Read a file of L2 events: hftbacktest's ``.npz`` (its ``data`` array) or ``.npy``.

    Raises:
        DataError: Not such a file.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not an event array ({exc})") from None
    if hasattr(loaded, "files"):
        if "data" not in loaded.files:
            raise DataError(f"{path}: no 'data' array (has {', '.join(loaded.files)})")
        loaded = loaded["data"]
    return events_from_hftbacktest(loaded)
