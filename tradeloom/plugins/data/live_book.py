"""The order book of a paper or live run: its recorded history, then each snapshot read live.

A strategy with ``data.order_book`` reads its recorded book file for the history it
starts from, and a snapshot of the exchange's book at each tick. `LiveBook` holds
both, one market's, as one table of snapshots, and gives each bar the book a
backtest over that table would give it: the same as-of rule
(`tradeloom.plugins.data.auxiliary.asof_values`: a snapshot stamped ``x`` is visible
at a bar whose close is at or after ``x + available_after``) and the same checks
(`tradeloom.plugins.data.order_book.book_faults`, then no repeated or earlier time).

A snapshot that fails a check is rejected (`offer` says why and counts it by check)
and the snapshot before stays in force. The history keeps the recorded snapshots
published by the decision time of the last history bar (``cut_ns``): a recording
that goes on past the start of the run (a replay of old bars) cannot show a bar a
book from its future, and a restart, which cuts at the same time, rebuilds the same
table. `table` lays every snapshot held out as ``tradeloom data record-book`` writes
them, so a backtest over it makes the run's decisions again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tradeloom.domain import Bars
from tradeloom.plugins.data.auxiliary import AuxiliarySeries, asof_values, join_asof
from tradeloom.plugins.data.book_snapshots import BOOK_FIELDS, BookSnapshot, level_column
from tradeloom.plugins.data.order_book import (
    BOOK_PREFIX,
    EARLIER_TIME,
    REPEATED_TIME,
    book_column,
    book_faults,
)
from tradeloom.time.timeframes import format_timestamp

__all__ = ["BookRejection", "LiveBook"]


@dataclass(frozen=True)
class BookRejection:
    """Why a snapshot was not used.

    Attributes:
        code: The check it failed (``crossed``, ``empty``, ``negative_size``,
            ``unsorted_levels``, ``duplicate_timestamp``, ``unsorted``).
        message: One line naming the market, the snapshot's time and what it has.
    """

    code: str
    message: str


class LiveBook:
    """One market's book snapshots: the recorded history, then those read live.

    Args:
        symbol: The market (``BTC/USDT``).
        depth: Levels a side kept (the recorded file's).
        delay_ns: ``available_after`` in nanoseconds.
        timeframe_seconds: The bars' length (a bar decides at its close).
        history: The recorded book's series (`OrderBookInput.load`); those of other
            symbols are ignored.
        cut_ns: Keep the recorded snapshots published at or before this time.

    Attributes:
        columns: The bars' book columns (``book_bid_price_0``...), in table order.
        rejected: Snapshots rejected so far, by check.
        live: The snapshots taken by `offer`, in order.
    """

    def __init__(
        self,
        symbol: str,
        depth: int,
        delay_ns: int,
        timeframe_seconds: int,
        history: Sequence[AuxiliarySeries],
        cut_ns: int,
    ) -> None:
        self.symbol = symbol
        self.depth = depth
        self.delay_ns = delay_ns
        self.timeframe_ns = timeframe_seconds * 1_000_000_000
        self.columns = tuple(book_column(f, level) for level in range(depth) for f in BOOK_FIELDS)
        mine = {s.name: s for s in history if s.applies_to(symbol)}
        times = np.empty(0, np.int64)
        rows = np.empty((0, len(self.columns)))
        if mine:
            first = mine[self.columns[0]]
            keep = first.published() <= cut_ns
            times = first.times[keep].astype(np.int64)
            rows = np.column_stack([mine[c].values[keep] for c in self.columns])
        # arrays that double when full: an append is amortized O(1), a read a view
        capacity = max(2 * len(times), 64)
        self._times = np.empty(capacity, np.int64)
        self._rows = np.empty((capacity, len(self.columns)))
        self._times[: len(times)] = times
        self._rows[: len(times)] = rows
        self._n = len(times)
        self.rejected: Counter[str] = Counter()
        self.live: list[BookSnapshot] = []

    def __len__(self) -> int:
        return self._n

    @property
    def last_time_ns(self) -> int | None:
        """The time of the newest snapshot held (None: none)."""
        return int(self._times[self._n - 1]) if self._n else None

    def offer(self, snapshot: BookSnapshot) -> BookRejection | None:
        """Take ``snapshot`` if it passes the checks; return why not otherwise (counted)."""
        row = self._row_of(snapshot)
        time_ns = int(snapshot.time_ms) * 1_000_000
        values = {column: row[j : j + 1] for j, column in enumerate(self.columns)}
        failed = [(f.code, f.what) for f in book_faults(values, self.depth) if f.mask[0]]
        last = self.last_time_ns
        if not failed and last is not None and time_ns == last:
            failed = [("duplicate_timestamp", REPEATED_TIME)]
        elif not failed and last is not None and time_ns < last:
            failed = [("unsorted", EARLIER_TIME)]
        if failed:
            code, what = failed[0]
            self.rejected[code] += 1
            return BookRejection(
                code,
                f"order book of {self.symbol} at {format_timestamp(time_ns)}: {what}; rejected "
                f"({self.rejected[code]} so far), the snapshot before stays in force",
            )
        if self._n == len(self._times):
            self._times = np.concatenate([self._times, np.empty_like(self._times)])
            self._rows = np.concatenate([self._rows, np.empty_like(self._rows)])
        self._times[self._n] = time_ns
        self._rows[self._n] = row
        self._n += 1
        self.live.append(snapshot)
        return None

    def join(self, bars: Bars) -> Bars:
        """Return ``bars`` with their book columns rebuilt from this book, as-of."""
        times, rows = self._table()
        frame = bars.frame.drop(columns=[c for c in bars.frame.columns if c in self.columns])
        series = [
            AuxiliarySeries(name, times, rows[:, j], self.delay_ns, self.symbol)
            for j, name in enumerate(self.columns)
        ]
        return join_asof(replace(bars, frame=frame), series)

    def row_at(self, time: pd.Timestamp) -> pd.DataFrame:
        """Return the book columns of the bar opening at ``time`` (one row, NaN: none yet)."""
        times, rows = self._table()
        decision = np.array([time.value + self.timeframe_ns], np.int64)
        values = asof_values(times + self.delay_ns, rows, decision)
        index = pd.DatetimeIndex([time], name="timestamp")
        return pd.DataFrame(values, index=index, columns=list(self.columns))

    def table(self) -> pd.DataFrame:
        """Return every snapshot held as the book table (``timestamp``, ``symbol``, levels)."""
        times, rows = self._table()
        data: dict[str, object] = {
            "timestamp": pd.to_datetime(times, unit="ns", utc=True),
            "symbol": pd.array([self.symbol] * len(times), dtype="string"),
        }
        for j, column in enumerate(self.columns):
            data[column.removeprefix(BOOK_PREFIX)] = rows[:, j]
        return pd.DataFrame(data)

    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        return self._times[: self._n], self._rows[: self._n]

    def _row_of(self, snapshot: BookSnapshot) -> np.ndarray:
        row = np.full(len(self.columns), np.nan)
        at = {c: j for j, c in enumerate(self.columns)}
        for side, fields in (("bids", BOOK_FIELDS[:2]), ("asks", BOOK_FIELDS[2:])):
            for level, pair in enumerate(getattr(snapshot, side)[: self.depth]):
                for value, field in zip(pair, fields, strict=True):
                    row[at[BOOK_PREFIX + level_column(field, level)]] = value
        return row
