"""Order-book features: ``spread_bps``, ``book_imbalance`` and ``book_depth``.

They read the recorded book that ``data.order_book`` joins to the bars
(`tradeloom.plugins.data.order_book`): row t holds the latest snapshot published by
bar t's close, so each is causal by construction and `check_lookahead` proves it
as for every auxiliary series. A bar before the first snapshot gets NaN. A paper
or live run steps them over its recorded history, then over the snapshots it reads
from the exchange, joined by the same rule (`tradeloom.plugins.data.live_book`).

- ``spread_bps``: ``(best ask - best bid) / mid * 10_000``, mid the average of the two.
- ``book_imbalance``: ``(bid size - ask size) / (bid size + ask size)`` over the first
  ``levels`` levels of each side, in [-1, 1]; positive when buyers queue more.
- ``book_depth``: the base quantity resting within ``within_bps`` of the mid, on the
  bid side, the ask side or both; only the recorded levels count, so record deep
  enough (``record-book --depth``) for the distance asked.

A level a shallow snapshot lacks (NaN) counts as empty. Each feature is one
vectorised formula over the level columns; its per-bar driver applies the same
formula to the bar's row, so both drivers give the same numbers bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from tradeloom.domain import Bar, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.order_book import book_column, recorded_depth
from tradeloom.plugins.features._base import (
    OneColumn,
    SingleColumnParams,
    new_columns,
)
from tradeloom.plugins.protocols_steps import FeatureStep, StepContext
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd

__all__ = [
    "BookDepthParams",
    "BookFeature",
    "BookImbalanceParams",
    "SpreadBpsParams",
    "book_depth",
    "book_imbalance",
    "build_book_depth",
    "build_book_imbalance",
    "build_spread_bps",
    "spread_bps",
]

Side = Literal["bid", "ask", "both"]
Kind = Literal["spread_bps", "book_imbalance", "book_depth"]

_MAX_LEVELS = 5000


class SpreadBpsParams(SingleColumnParams):
    """Keys of ``spread_bps``; the column is ``spread_bps``."""


class BookImbalanceParams(SingleColumnParams):
    """Keys of ``book_imbalance``; the column is ``book_imbalance_{levels}``."""

    levels: int = Field(
        default=1,
        ge=1,
        le=_MAX_LEVELS,
        strict=True,
        description="Levels of each side summed, from the best (1: top of book); at most "
        "the levels recorded.",
    )


class BookDepthParams(SingleColumnParams):
    """Keys of ``book_depth``; the column is ``book_depth_{side}_{within_bps}``."""

    within_bps: float = Field(
        gt=0,
        le=10_000,
        description="Distance from the mid, in basis points, within which resting size counts "
        "(e.g. 10 = 0.1%).",
    )
    side: Side = Field(
        default="both",
        description="bid: the bids at or above mid - within; ask: the asks at or below mid + "
        "within; both: their sum.",
    )


def spread_bps(bid: np.ndarray, ask: np.ndarray) -> np.ndarray:
    """Return the spread in basis points of the mid, per row (NaN without a book)."""
    return np.asarray((ask - bid) / ((ask + bid) / 2.0) * 10_000.0)


def book_imbalance(bid_size: np.ndarray, ask_size: np.ndarray) -> np.ndarray:
    """Return ``(bids - asks) / (bids + asks)`` of sizes summed over the given levels.

    Args:
        bid_size: Sizes, one column per level (rows: snapshots); NaN: no level.
        ask_size: The same for the asks.

    Returns:
        Per row a value in [-1, 1]; NaN where the best levels are NaN (no snapshot).
    """
    bids, asks = _level_sum(bid_size), _level_sum(ask_size)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (bids - asks) / (bids + asks)
    out[np.isnan(bid_size[:, 0]) | np.isnan(ask_size[:, 0])] = np.nan
    return np.asarray(out)


def book_depth(
    bid_price: np.ndarray,
    bid_size: np.ndarray,
    ask_price: np.ndarray,
    ask_size: np.ndarray,
    within_bps: float,
    side: Side,
) -> np.ndarray:
    """Return the size resting within ``within_bps`` of the mid, per row.

    Args:
        bid_price: Bid prices, one column per level (rows: snapshots).
        bid_size: Bid sizes.
        ask_price: Ask prices.
        ask_size: Ask sizes.
        within_bps: Distance from the mid in basis points.
        side: ``bid``, ``ask`` or ``both``.

    Returns:
        Base quantity per row; NaN where there is no snapshot.
    """
    mid = (bid_price[:, 0] + ask_price[:, 0]) / 2.0
    reach = mid * (within_bps / 10_000.0)
    with np.errstate(invalid="ignore"):
        bids = _level_sum(np.where(bid_price >= (mid - reach)[:, None], bid_size, 0.0))
        asks = _level_sum(np.where(ask_price <= (mid + reach)[:, None], ask_size, 0.0))
    out = {"bid": bids, "ask": asks, "both": bids + asks}[side]
    out[np.isnan(mid)] = np.nan
    return np.asarray(out)


def _level_sum(sizes: np.ndarray) -> np.ndarray:
    # Level by level, so a row alone (the per-bar driver) sums in the same order.
    total = np.zeros(sizes.shape[0])
    for level in range(sizes.shape[1]):
        column = sizes[:, level]
        total = total + np.where(np.isnan(column), 0.0, column)
    return total


class _BookStep:
    """Per-bar driver of `BookFeature`: the bar's book row by its time, then the formula.

    The row comes from the bars' joined book (a backtest's or a replay's), or from a
    paper or live run's book as the bar closes (`StepContext.live_rows`).
    """

    __slots__ = ("_feature", "_live", "_rows", "_times")

    def __init__(self, feature: BookFeature, context: StepContext) -> None:
        extra, live = context.extra, context.live_rows
        self._feature = feature
        self._rows: dict[str, np.ndarray] = {}
        self._live = None
        self._times = None
        if extra is not None:
            # the level columns as arrays once: a bar's row sliced from them holds the
            # values a one-row frame did (a frame per bar cost ~0.7 ms of pandas per bar)
            self._rows = feature.tables(extra, feature.check_depth(extra.columns))
            self._times = extra.index.as_unit("ns").asi8
        elif live is not None:
            feature.check_depth(live.columns)
            self._live = live
        else:
            raise DataError(
                f"features: {feature.kind}: the bars stepped have no order book; declare "
                "data.order_book"
            )

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's value."""
        if self._live is not None:
            return (float(self._feature.of_rows(self._live.row_at(bar.timestamp))[0]),)
        assert self._times is not None
        at = int(np.searchsorted(self._times, bar.timestamp.value))
        if at >= len(self._times) or self._times[at] != bar.timestamp.value:
            raise DataError(
                f"features: {self._feature.kind}: no book for the bar at {bar.timestamp}"
            )
        row = {field: table[at : at + 1] for field, table in self._rows.items()}
        return (float(self._feature.of_tables(row)[0]),)


@dataclass(frozen=True)
class BookFeature(OneColumn):
    """One order-book feature over the recorded book's columns of the bars."""

    kind: Kind
    column: str
    levels: int = 1
    within_bps: float = 0.0
    side: Side = "both"

    def check_depth(self, columns: Iterable[object]) -> int:
        """Return the levels recorded in ``columns``, refusing too few.

        Raises:
            DataError: No book columns, or fewer levels than ``levels``.
        """
        depth = recorded_depth(columns)
        if depth == 0:
            raise DataError(
                f"features: {self.kind}: the bars have no order book ({book_column('bid_price', 0)}"
                ", ...); declare data.order_book"
            )
        if self.levels > depth:
            raise DataError(
                f"features: {self.kind}: levels {self.levels} > the {depth} levels recorded in "
                f"data.order_book; lower levels or record with --depth {self.levels}"
            )
        return depth

    def of_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the feature of every row of ``frame`` (bars with the book's columns)."""
        return self.of_tables(self.tables(frame, self.check_depth(frame.columns)))

    def tables(self, frame: pd.DataFrame, depth: int) -> dict[str, np.ndarray]:
        """Return the level columns the formula reads, per field (rows: ``frame``'s)."""
        if self.kind == "spread_bps":
            counts = {"bid_price": 1, "ask_price": 1}
        elif self.kind == "book_imbalance":
            counts = {"bid_size": self.levels, "ask_size": self.levels}
        else:
            counts = dict.fromkeys(("bid_price", "bid_size", "ask_price", "ask_size"), depth)
        return {
            field: np.ascontiguousarray(
                frame[[book_column(field, level) for level in range(count)]].to_numpy(
                    dtype=np.float64
                )
            )
            for field, count in counts.items()
        }

    def of_tables(self, tables: Mapping[str, np.ndarray]) -> np.ndarray:
        """Return the feature of every row of ``tables`` (`tables`' arrays)."""
        if self.kind == "spread_bps":
            return spread_bps(tables["bid_price"][:, 0], tables["ask_price"][:, 0])
        if self.kind == "book_imbalance":
            return book_imbalance(tables["bid_size"], tables["ask_size"])
        return book_depth(
            tables["bid_price"],
            tables["bid_size"],
            tables["ask_price"],
            tables["ask_size"],
            self.within_bps,
            self.side,
        )

    def values(self, bars: Bars, features: pd.DataFrame) -> np.ndarray:
        """Return the column; row t reads the book published by bar t's close.

        Raises:
            DataError: The bars have no book, or too few levels.
        """
        return self.of_rows(bars.frame)

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver.

        Raises:
            DataError: The context has no book.
        """
        return _BookStep(self, context)


def build_spread_bps(params: SpreadBpsParams, ctx: BuildContext) -> BookFeature:
    """Return the feature; its column must not be defined already."""
    return new_columns(BookFeature("spread_bps", params.column("spread_bps")), ctx)


def build_book_imbalance(params: BookImbalanceParams, ctx: BuildContext) -> BookFeature:
    """Return the feature; its column must not be defined already."""
    column = params.column(f"book_imbalance_{params.levels}")
    return new_columns(BookFeature("book_imbalance", column, levels=params.levels), ctx)


def build_book_depth(params: BookDepthParams, ctx: BuildContext) -> BookFeature:
    """Return the feature; its column must not be defined already."""
    distance = f"{params.within_bps:g}".replace(".", "p")
    column = params.column(f"book_depth_{params.side}_{distance}")
    feature = BookFeature(
        "book_depth", column, within_bps=float(params.within_bps), side=params.side
    )
    return new_columns(feature, ctx)
