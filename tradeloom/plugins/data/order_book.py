"""Recorded order books as data (``data.order_book``), joined to the bars as-of.

The file is the table ``tradeloom data record-book`` writes
(`tradeloom.plugins.data.book_snapshots`): a ``timestamp`` (UTC), an optional
``symbol`` and, per level ``i`` from 0 (the best), ``bid_price_i``, ``bid_size_i``,
``ask_price_i`` and ``ask_size_i``. Each of these level columns becomes an
auxiliary series (`tradeloom.plugins.data.auxiliary`) named ``book_<column>``
(``book_bid_price_0``...), so the book is joined exactly as any auxiliary series:
a snapshot stamped ``x`` is visible at a bar whose close is at or after ``x +
available_after``, never earlier, and `check_lookahead` rebuilds it from what was
published by each cut. The ``spread_bps``, ``book_imbalance`` and ``book_depth``
features read these columns.

A snapshot with an empty side (no best bid or no best ask), a crossed one (best
bid >= best ask), a negative size or levels out of order cannot be a book
(`book_faults`, the checks a paper or live run's snapshots pass too) and is
rejected as data, as are repeated and out-of-order times: under ``validation:
reject`` each kind is an error line with its count, its first time and the remedy;
under ``repair`` those snapshots are dropped (the rest sorted) and the counts are
logged as a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.data.auxiliary import AuxiliarySeries, parse_delay
from tradeloom.plugins.data.book_snapshots import BOOK_FIELDS, level_column
from tradeloom.plugins.data.timestamps import parse_timestamps
from tradeloom.plugins.data.validation import DataValidationError, ValidationPolicy
from tradeloom.runtime.lazy import logger
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.time.timeframes import format_timestamp

__all__ = [
    "BOOK_PREFIX",
    "EARLIER_TIME",
    "REPEATED_TIME",
    "BookFault",
    "OrderBookInput",
    "OrderBookParams",
    "book_column",
    "book_faults",
    "build_order_book",
    "recorded_depth",
]

BOOK_PREFIX = "book_"
"""What the book's columns are called in the bars: ``book_`` and the file's column."""

_LEVEL = re.compile(r"^(bid_price|bid_size|ask_price|ask_size)_(0|[1-9][0-9]{0,3})$")
_REPAIR = "set data.validation: repair"
_SHOWN = 3
_log = logger("tradeloom.data")


REPEATED_TIME = "the time of an earlier snapshot"
"""What a snapshot stamped at the time of one kept before has (rejected)."""

EARLIER_TIME = "a time earlier than the snapshot before"
"""What a snapshot stamped before the one kept before has (rejected)."""


@dataclass(frozen=True)
class BookFault:
    """Snapshots that cannot be a book, found by one check (`book_faults`).

    Attributes:
        code: The check's name (``empty``, ``crossed``, ``negative_size``,
            ``unsorted_levels``).
        mask: Per snapshot, whether it fails the check.
        what: What such a snapshot has, for a message.
    """

    code: str
    mask: np.ndarray
    what: str


def book_faults(values: Mapping[str, np.ndarray], depth: int) -> list[BookFault]:
    """Return, per check, the snapshots that cannot be a book (every mode calls this).

    A snapshot fails when a side is empty (no best bid or no best ask), when it is
    crossed (best bid >= best ask), when a level has a negative size, or when its
    levels are out of order (bids not falling, asks not rising, level by level). A
    level the snapshot lacks (NaN) fails nothing. A snapshot that fails an earlier
    check is not counted by a later one.

    Args:
        values: The book columns (`book_column`), one value per snapshot.
        depth: Levels a side held in ``values``.
    """
    bid, ask = values[book_column("bid_price", 0)], values[book_column("ask_price", 0)]
    empty = np.isnan(bid) | np.isnan(ask)
    crossed = ~empty & (bid >= ask)
    negative = np.zeros(len(bid), dtype=bool)
    unsorted = np.zeros(len(bid), dtype=bool)
    for level in range(depth):
        for field in ("bid_size", "ask_size"):
            negative |= values[book_column(field, level)] < 0
        if level:
            for field, falls in (("bid_price", True), ("ask_price", False)):
                above = values[book_column(field, level - 1)]
                here = values[book_column(field, level)]
                unsorted |= (here >= above) if falls else (here <= above)
    negative &= ~(empty | crossed)
    unsorted &= ~(empty | crossed | negative)
    return [
        BookFault("empty", empty, "an empty side (no best bid or no best ask)"),
        BookFault("crossed", crossed, "a crossed book (best bid >= best ask)"),
        BookFault("negative_size", negative, "a level with a negative size"),
        BookFault(
            "unsorted_levels", unsorted, "levels out of order (bids not falling, asks not rising)"
        ),
    ]


def book_column(field: str, level: int) -> str:
    """Return the bars' column of ``field`` (``bid_price``...) at ``level`` (0: best)."""
    return BOOK_PREFIX + level_column(field, level)


def recorded_depth(columns: Iterable[object]) -> int:
    """Return how many levels ``columns`` (the bars' or a file's) hold in full, from 0.

    Args:
        columns: Column names; bars' columns carry the ``book_`` prefix, a file's not.
    """
    names = {str(c).removeprefix(BOOK_PREFIX) for c in columns}
    depth = 0
    while all(level_column(f, depth) in names for f in BOOK_FIELDS):
        depth += 1
    return depth


class OrderBookParams(Params):
    """Keys of ``data.order_book``."""

    path: str = Field(
        description="A book file written by tradeloom data record-book (.parquet or .pq: "
        "Parquet, else CSV); relative to the strategy file."
    )
    available_after: str = Field(
        description="Required: how long after its timestamp a snapshot may be used, such as "
        "0s or 5s. A snapshot stamped x is used from the first bar whose close is at or "
        "after x + available_after."
    )

    @field_validator("available_after")
    @classmethod
    def _check_delay(cls, value: str) -> str:
        parse_delay(value)
        return value


@dataclass(frozen=True)
class OrderBookInput:
    """A declared book file, ready to load.

    Attributes:
        path: The file, absolute.
        delay_ns: ``available_after`` in nanoseconds.
        depth: Levels a side the file holds in full.
    """

    path: Path
    delay_ns: int
    depth: int

    def names(self) -> set[str]:
        """Return the columns the book becomes in the bars."""
        return {book_column(f, level) for level in range(self.depth) for f in BOOK_FIELDS}

    def load(
        self, symbols: list[str] | tuple[str, ...], policy: ValidationPolicy
    ) -> list[AuxiliarySeries]:
        """Read and check the snapshots: a series per level column (per symbol, if the
        file has a ``symbol`` column).

        Raises:
            DataError: The file cannot be read, a time cannot be parsed, a symbol has no
                snapshot, or (under ``reject``) snapshots fail the checks.
        """
        raw = _read(self.path)
        source = f"data.order_book: {self.path}"
        stamps, bad = parse_timestamps(raw["timestamp"])
        if bad.any():
            raise DataError(
                f"{source}: column 'timestamp' has {int(bad.sum())} unparsable timestamp(s) "
                f"(first at row {int(np.flatnonzero(bad)[0]) + 1}); expected ISO 8601 or epoch "
                "seconds or milliseconds"
            )
        values = {
            book_column(f, level): pd.to_numeric(
                raw[level_column(f, level)], errors="coerce"
            ).to_numpy(dtype=np.float64, na_value=np.nan)
            for level in range(self.depth)
            for f in BOOK_FIELDS
        }
        rows = np.arange(1, len(raw) + 1)
        if "symbol" not in raw.columns:
            return self._series(stamps, values, rows, None, source, policy)
        owner = raw["symbol"].astype("string").str.strip().to_numpy()
        out: list[AuxiliarySeries] = []
        for symbol in symbols:
            mine = owner == symbol
            if not mine.any():
                found = ", ".join(sorted({str(s) for s in owner})) or "none"
                raise DataError(
                    f"{source}: no snapshot of {symbol} (the file's symbols: {found}); record "
                    "its book or remove the symbol"
                )
            out.extend(
                self._series(
                    stamps[mine],
                    {name: column[mine] for name, column in values.items()},
                    rows[mine],
                    symbol,
                    f"{source} ({symbol})",
                    policy,
                )
            )
        return out

    def _series(
        self,
        stamps: np.ndarray,
        values: dict[str, np.ndarray],
        rows: np.ndarray,
        symbol: str | None,
        source: str,
        policy: ValidationPolicy,
    ) -> list[AuxiliarySeries]:
        faults = book_faults(values, self.depth)
        keep = np.ones(len(stamps), dtype=bool)
        for fault in faults:
            keep &= ~fault.mask
        kept = np.flatnonzero(keep)
        repeated = np.zeros(len(stamps), dtype=bool)
        repeated[kept[pd.Index(stamps[kept]).duplicated(keep="first")]] = True
        keep &= ~repeated
        kept = np.flatnonzero(keep)
        backwards = np.zeros(len(stamps), dtype=bool)
        backwards[kept[1:][np.diff(stamps[kept]) < 0]] = True
        checks = (
            *((f.code, f.mask, f.what, "drop") for f in faults),
            ("duplicate_timestamp", repeated, REPEATED_TIME, "drop"),
            ("unsorted", backwards, EARLIER_TIME, "sort"),
        )
        problems = [
            _line(source, mask, stamps, rows, what, remedy)
            for _, mask, what, remedy in checks
            if mask.any()
        ]
        if problems and policy == "reject":
            raise DataValidationError(problems)
        if problems:
            _log.warning(
                "order_book_repaired",
                source=source,
                **{code: int(mask.sum()) for code, mask, _, _ in checks if mask.any()},
            )
        if len(kept) == 0:
            raise DataError(f"{source}: no valid snapshot")
        order = kept[np.argsort(stamps[kept], kind="stable")]
        times = stamps[order].astype(np.int64)
        return [
            AuxiliarySeries(name, times, column[order], self.delay_ns, symbol)
            for name, column in values.items()
        ]


def build_order_book(params: OrderBookParams | None, ctx: BuildContext) -> OrderBookInput | None:
    """Return the declared book (None for none); the file must exist and hold level 0.

    Raises:
        ParamError: No such file, it cannot be read, or it has no complete level.
    """
    if params is None:
        return None
    path = ctx.resolve_path(params.path)
    if not path.is_file():
        raise ParamError("order_book.path", f"file not found: {path}")
    try:
        columns = _columns(path)
    except DataError as exc:
        raise ParamError("order_book.path", str(exc)) from None
    depth = recorded_depth(c for c in columns if _LEVEL.match(c))
    if "timestamp" not in columns or depth == 0:
        found = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "") or "none"
        raise ParamError(
            "order_book.path",
            f"{path} is not a book file: it needs timestamp and bid_price_0, bid_size_0, "
            f"ask_price_0, ask_size_0 (found {found}); write it with tradeloom data record-book",
        )
    return OrderBookInput(path, parse_delay(params.available_after) * 1_000_000_000, depth)


def _parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _columns(path: Path) -> list[str]:
    try:
        if _parquet(path):
            import pyarrow.parquet as pq

            return [str(n) for n in pq.read_schema(path).names]
        return [str(c) for c in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns]
    except Exception as exc:  # any reader failure is the file's
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read {path}: {reason}") from exc


def _read(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_parquet(path) if _parquet(path) else pd.read_csv(path, encoding="utf-8-sig")
    except Exception as exc:  # any reader failure is the file's
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"data.order_book: {path}: cannot read it: {reason}") from exc
    return raw.reset_index(drop=True)


def _line(
    source: str, bad: np.ndarray, stamps: np.ndarray, rows: np.ndarray, what: str, remedy: str
) -> str:
    positions = np.flatnonzero(bad)
    count = len(positions)
    shown = ", ".join(str(int(r)) for r in rows[positions[:_SHOWN]])
    more = ", ..." if count > _SHOWN else ""
    has = "snapshot has" if count == 1 else "snapshots have"
    noun = "row" if count == 1 else "rows"
    them = "it" if count == 1 else "them"
    fix = f"sort the rows by time or {_REPAIR}" if remedy == "sort" else f"drop {them} or {_REPAIR}"
    first = format_timestamp(int(stamps[positions[0]]))
    return f"{source}: {count} {has} {what} (first at {first}, {noun} {shown}{more}); {fix}"
