"""The per-bar driver of the features: one bar at a time, the numbers of the batch driver.

`Feature.compute` is the batch driver: all bars at once. A built-in feature also has
``stepper(context)``, which returns a `FeatureStep`: the feature's compiled step
kernel over its own state, fed one bar at a time. The batch kernels do the same
arithmetic in the same order, so both drivers give the same numbers bit for bit.

`FeatureStepper` steps an ordered list of features (a strategy's ``features:``) and
returns each bar's row of all their columns. A feature without ``stepper`` (a
third-party one written with ``compute`` only) is driven by `ComputeStep`, which
calls ``compute`` on the history up to this bar and keeps its last row: slower,
same semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tradeloom.domain import OHLCV, Bar, Bars
from tradeloom.plugins.protocols import Feature
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.text.documents import DocumentFeed, Documents
from tradeloom.time.calendars import CRYPTO, TradingCalendar

__all__ = [
    "CloseStep",
    "ComputeStep",
    "DocumentFeed",
    "FeatureStep",
    "FeatureStepper",
    "LiveRows",
    "StepContext",
    "SteppedFeature",
]


@runtime_checkable
class FeatureStep(Protocol):
    """A feature's per-bar driver: its state, updated one bar at a time."""

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Take the next bar; return this bar's values of the feature's columns, in order.

        Args:
            bar: The next bar (bars arrive in order, each once).
            features: This bar's values of the columns of the features defined before
                this one.
        """
        ...


@runtime_checkable
class LiveRows(Protocol):
    """Extra columns of a live run's bars, each row known once its bar has closed."""

    columns: tuple[str, ...]
    """The columns, in order."""

    def row_at(self, time: pd.Timestamp) -> pd.DataFrame:
        """Return the one row of the bar opening at ``time`` (indexed by that time)."""
        ...


@dataclass(frozen=True)
class _Fixed:
    """The documents a backtest loaded, as a feed (they do not grow)."""

    held: Documents

    def documents(self) -> Documents:
        return self.held


@dataclass(frozen=True)
class StepContext:
    """What a per-bar driver knows about the bars it will be fed.

    Attributes:
        symbol: Market symbol, e.g. ``BTC/USDT``.
        timeframe: Bar length as written, e.g. ``1h``.
        timeframe_seconds: Bar length in seconds (``volatility`` annualizes from it).
        extra: The bars' columns other than OHLCV (auxiliary series joined as-of, a
            file's extra columns), indexed by bar time, for a feature that reads one
            (``series``); None when the driver has none (paper and live runs).
        live_rows: A paper or live run's extra columns, known only as each bar closes
            (its order book, `tradeloom.plugins.data.live_book.LiveBook`); None: none.
        informative: The bars of the informative pairs (``features[].symbol``) by symbol,
            for the per-bar driver of a backtest: a pair's step reads each of their bars
            only once the stepped bar has closed it. None: none loaded.
        calendar: The market's trading calendar: its sessions and local time (``vwap``,
            ``time_features``).
        documents: The text sources (``data.auxiliary`` of kind ``text``) by name, for a
            text feature (`tradeloom.plugins.features.text`): the loaded documents in a
            backtest, a feed that grows in a paper or live run. None: none.
    """

    symbol: str
    timeframe: str
    timeframe_seconds: int
    extra: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    live_rows: LiveRows | None = field(default=None, compare=False, repr=False)
    informative: Mapping[str, Bars] | None = field(default=None, compare=False, repr=False)
    calendar: TradingCalendar = field(default=CRYPTO, compare=False, repr=False)
    documents: Mapping[str, DocumentFeed] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, bars: Bars, informative: Mapping[str, Bars] | None = None) -> StepContext:
        """Return the context of ``bars``, whose continuation will be stepped (and of the
        informative pairs' bars)."""
        others = [c for c in bars.frame.columns if c not in OHLCV]
        extra = bars.frame[others] if others else None
        return cls(
            bars.symbol,
            bars.timeframe,
            bars.timeframe_seconds,
            extra,
            informative=informative,
            calendar=bars.calendar,
            documents={name: _Fixed(docs) for name, docs in bars.documents.items()} or None,
        )


@runtime_checkable
class SteppedFeature(Feature, Protocol):
    """A feature with a per-bar driver of its own (every built-in feature)."""

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return a fresh per-bar driver, before the first bar."""
        ...


class CloseStep:
    """Drive a one-column feature of the close: its step kernel, fed each bar's close.

    Args:
        kernel: The step kernel, called as ``kernel(state, close, *args)`` and
            returning this bar's value.
        state: The kernel's fresh state (updated in place by each call).
        *args: The kernel's further arguments (window, period, ...).
    """

    __slots__ = ("_args", "_kernel", "_state")

    def __init__(self, kernel: Callable[..., float], state: np.ndarray, *args: Any) -> None:
        self._kernel = kernel
        self._state = state
        self._args = args

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Return this bar's value."""
        return (self._kernel(self._state, bar.close, *self._args),)


class ComputeStep:
    """Drive a feature that has only ``compute``: recompute it over the history each bar.

    Each step costs a ``compute`` over every bar so far, its bars carrying the text
    sources' documents known now; the values are those of ``compute`` over all bars,
    because a feature's row t uses rows <= t (and documents visible by t's close) only.

    Args:
        feature: The feature.
        context: What the bars are (their `Bars` is rebuilt from it).
    """

    def __init__(self, feature: Feature, context: StepContext) -> None:
        self.feature = feature
        self.context = context
        self._columns = list(feature.columns())
        self._times: list[pd.Timestamp] = []
        self._ohlcv: list[tuple[float, float, float, float, float]] = []
        self._earlier: dict[str, list[float]] = {}

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Append the bar and the earlier features' values; return ``compute``'s last row.

        Raises:
            RuntimeError: ``compute`` returned other columns than it declared, or
                another number of rows.
        """
        self._times.append(bar.timestamp)
        self._ohlcv.append((bar.open, bar.high, bar.low, bar.close, bar.volume))
        for column, value in features.items():
            self._earlier.setdefault(column, []).append(float(value))
        index = pd.DatetimeIndex(self._times, name="timestamp")
        frame = pd.DataFrame(
            np.array(self._ohlcv, dtype=np.float64), index=index, columns=list(OHLCV)
        )
        context = self.context
        # the documents known now (a feed read as it grows): row t of compute keeps those
        # visible at bar t's close, as a backtest's does over every document
        documents = {name: feed.documents() for name, feed in (context.documents or {}).items()}
        bars = Bars(
            frame,
            context.symbol,
            context.timeframe,
            context.timeframe_seconds,
            documents=documents,
        )
        earlier = pd.DataFrame(self._earlier, index=index, dtype=np.float64)
        out = self.feature.compute(bars, earlier)
        if list(out.columns) != self._columns or len(out) != len(index):
            raise RuntimeError(
                f"feature {type(self.feature).__name__} returned columns {list(out.columns)} "
                f"over {len(out)} rows; it declared {self._columns} over the {len(index)} bars"
            )
        last = out.iloc[-1].to_numpy(dtype=np.float64)
        return tuple(float(value) for value in last)


class _Earlier(Mapping[str, float]):
    """The current row's columns of the features before one feature, without copying."""

    __slots__ = ("_columns", "_row")

    def __init__(self, columns: dict[str, int], row: np.ndarray) -> None:
        self._columns = columns
        self._row = row

    def __getitem__(self, key: str) -> float:
        return float(self._row[self._columns[key]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


class FeatureStepper:
    """Step an ordered list of features one bar at a time (the per-bar feature driver).

    Each feature sees the bar and this bar's values of the columns of the features
    before it, as `Feature.compute` sees the earlier features' frame.

    Args:
        features: The features in file order.
        context: What the bars are.

    Attributes:
        columns: Every feature's columns, in order.

    Raises:
        ValueError: Two features declare the same column.
    """

    def __init__(self, features: Sequence[Feature], context: StepContext) -> None:
        columns: dict[str, int] = {}
        self._row = np.full(sum(len(f.columns()) for f in features), np.nan)
        self._steps: list[tuple[Feature, FeatureStep, _Earlier, int, int]] = []
        for feature in features:
            earlier = _Earlier(dict(columns), self._row)
            step = (
                feature.stepper(context)
                if isinstance(feature, SteppedFeature)
                else ComputeStep(feature, context)
            )
            start = len(columns)
            for name in feature.columns():
                if name in columns:
                    raise ValueError(f"column '{name}' is declared by two features")
                columns[name] = len(columns)
            self._steps.append((feature, step, earlier, start, len(columns)))
        self.columns: tuple[str, ...] = tuple(columns)

    def step(self, bar: Bar) -> np.ndarray:
        """Take the next bar; return its row of all columns (a new float64 array).

        Raises:
            RuntimeError: A feature's step returned another number of values than it
                has columns.
        """
        row = self._row
        for feature, step, earlier, start, stop in self._steps:
            values = step.step(bar, earlier)
            if len(values) != stop - start:
                raise RuntimeError(
                    f"feature {type(feature).__name__} stepped {len(values)} values; "
                    f"it declared {stop - start} columns"
                )
            row[start:stop] = values
        return row.copy()
