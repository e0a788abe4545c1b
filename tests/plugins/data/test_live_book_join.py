"""A live run's book: the recorded history cut at the start, then snapshots read live,
checked as recorded ones are and joined by the backtest's as-of rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeloom.domain import Bars
from tradeloom.plugins.data.auxiliary import AuxiliarySeries, join_asof
from tradeloom.plugins.data.book_snapshots import BookSnapshot
from tradeloom.plugins.data.live_book import BookRejection, LiveBook

T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOUR = 3_600_000_000_000
SYMBOL = "BTC/USDT"


def _history(times_h: list[int], depth: int = 1) -> list[AuxiliarySeries]:
    times = np.array([T0.value + h * HOUR for h in times_h], np.int64)
    n = len(times)
    out = []
    for level in range(depth):
        for field, base in (("bid_price", 99.0), ("bid_size", 1.0), ("ask_price", 100.0)):
            values = base - level + np.arange(n) * (1 if "price" in field else 0.5)
            out.append(AuxiliarySeries(f"book_{field}_{level}", times, values, 0, None))
        sizes = 2.0 + np.arange(n, dtype=float)
        out.append(AuxiliarySeries(f"book_ask_size_{level}", times, sizes, 0, None))
    return out


def _bars(n: int) -> Bars:
    index = pd.date_range(T0, periods=n, freq="1h", name="timestamp")
    close = np.arange(n, dtype=float) + 100
    frame = pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index
    )
    return Bars(frame, SYMBOL, "1h", 3600)


def _at(hours: float) -> int:
    return int((T0.value + hours * HOUR) // 1_000_000)


def test_the_history_is_cut_at_the_start_and_a_live_snapshot_joins_as_of() -> None:
    # recorded at 01:00 .. 05:00; the run starts after bar 1 (its decision at 02:00)
    book = LiveBook(SYMBOL, 1, 0, 3600, _history([1, 2, 3, 4, 5]), cut_ns=T0.value + 2 * HOUR)

    assert len(book) == 2  # 03:00 .. 05:00 were not published by the start
    assert book.offer(BookSnapshot(SYMBOL, _at(2.5), ((200.0, 7.0),), ((201.0, 8.0),))) is None
    joined = book.join(_bars(4))

    assert joined.frame["book_bid_price_0"].tolist() == [99.0, 100.0, 200.0, 200.0]
    for time in joined.frame.index:  # the per-bar row is the joined row, bit for bit
        row = book.row_at(time)
        assert row.index.tolist() == [time]
        np.testing.assert_array_equal(row.to_numpy(), joined.frame.loc[[time], list(book.columns)])
    assert book.table()["bid_price_0"].tolist() == [99.0, 100.0, 200.0]
    assert book.live == [BookSnapshot(SYMBOL, _at(2.5), ((200.0, 7.0),), ((201.0, 8.0),))]


def test_a_bad_snapshot_is_rejected_counted_and_the_one_before_stays() -> None:
    book = LiveBook(SYMBOL, 2, 0, 3600, _history([1], depth=2), cut_ns=T0.value + 2 * HOUR)
    good = ((99.0, 1.0), (98.0, 1.0)), ((100.0, 1.0), (101.0, 1.0))

    verdicts = [
        book.offer(BookSnapshot(SYMBOL, _at(2), ((100.0, 1.0),), ((100.0, 1.0),))),
        book.offer(BookSnapshot(SYMBOL, _at(2), ((101.0, 1.0),), ((100.0, 1.0),))),
        book.offer(BookSnapshot(SYMBOL, _at(2), (), good[1])),
        book.offer(BookSnapshot(SYMBOL, _at(2), ((99.0, -1.0),), good[1])),
        book.offer(BookSnapshot(SYMBOL, _at(2), good[0], ((100.0, 1.0), (100.0, 1.0)))),
        book.offer(BookSnapshot(SYMBOL, _at(1), *good)),
        book.offer(BookSnapshot(SYMBOL, _at(0.5), *good)),
    ]

    assert verdicts == [
        BookRejection(
            "crossed",
            "order book of BTC/USDT at 2024-01-01T02:00Z: a crossed book (best bid >= best "
            "ask); rejected (1 so far), the snapshot before stays in force",
        ),
        BookRejection(
            "crossed",
            "order book of BTC/USDT at 2024-01-01T02:00Z: a crossed book (best bid >= best "
            "ask); rejected (2 so far), the snapshot before stays in force",
        ),
        BookRejection(
            "empty",
            "order book of BTC/USDT at 2024-01-01T02:00Z: an empty side (no best bid or no "
            "best ask); rejected (1 so far), the snapshot before stays in force",
        ),
        BookRejection(
            "negative_size",
            "order book of BTC/USDT at 2024-01-01T02:00Z: a level with a negative size; "
            "rejected (1 so far), the snapshot before stays in force",
        ),
        BookRejection(
            "unsorted_levels",
            "order book of BTC/USDT at 2024-01-01T02:00Z: levels out of order (bids not "
            "falling, asks not rising); rejected (1 so far), the snapshot before stays in force",
        ),
        BookRejection(
            "duplicate_timestamp",
            "order book of BTC/USDT at 2024-01-01T01:00Z: the time of an earlier snapshot; "
            "rejected (1 so far), the snapshot before stays in force",
        ),
        BookRejection(
            "unsorted",
            "order book of BTC/USDT at 2024-01-01T00:30Z: a time earlier than the snapshot "
            "before; rejected (1 so far), the snapshot before stays in force",
        ),
    ]
    assert dict(book.rejected) == {
        "crossed": 2,
        "empty": 1,
        "negative_size": 1,
        "unsorted_levels": 1,
        "duplicate_timestamp": 1,
        "unsorted": 1,
    }
    assert len(book) == 1 and book.live == []
    assert book.row_at(T0 + pd.Timedelta(hours=3))["book_bid_price_0"].tolist() == [99.0]


def test_the_join_is_the_backtests_join_of_the_same_table() -> None:
    history = _history([0, 1, 2, 3, 4, 5, 6, 7])
    book = LiveBook(SYMBOL, 1, 30 * 60 * 10**9, 3600, history, cut_ns=T0.value + 9 * HOUR)
    bars = _bars(9)

    mine = book.join(bars).frame
    recorded = join_asof(bars, [AuxiliarySeries(s.name, s.times, s.values, 30 * 60 * 10**9)
                                for s in history]).frame  # fmt: skip

    pd.testing.assert_frame_equal(mine, recorded[mine.columns])


def test_the_book_grows_past_its_first_capacity_and_keeps_every_snapshot() -> None:
    book = LiveBook(SYMBOL, 1, 0, 3600, _history([0]), cut_ns=T0.value + HOUR)
    for k in range(1, 201):
        price = 100.0 + k
        assert (
            book.offer(BookSnapshot(SYMBOL, _at(k), ((price, 1.0),), ((price + 1, 1.0),))) is None
        )

    table = book.table()
    assert len(book) == len(table) == 201 and len(book.live) == 200
    assert table["bid_price_0"].tolist() == [99.0] + [100.0 + k for k in range(1, 201)]
    assert book.row_at(T0 + pd.Timedelta(hours=149))["book_bid_price_0"].tolist() == [250.0]
