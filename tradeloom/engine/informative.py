"""An informative pair: ``symbol: ETH/USDT`` on a per-symbol feature.

The feature runs on another market's bars (the same data source kind and timeframe,
loaded beside the traded market's but never traded: `Universe.informative`), as it
would on that market's own bars (its own kernel, batch or per bar), and its values
join the traded bars as of bar close: the other market's bar is used from the traded
bar that closes at or after its close, never by an earlier one. Both have the same
timeframe, so that is the last other bar opening at or before the traded bar's open.
A bar the other market lacks (a gap, a halt) leaves the last value before it; before
its first bar the value is NaN. With ``timeframe:`` too, the feature runs on the other
market's bars resampled (`tradeloom.engine.timeframe`), then joins as above.

A universe gets the same informative values for each traded symbol, joined on that
symbol's own bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tradeloom.domain import Bar, Bars
from tradeloom.errors import DataError
from tradeloom.plugins.protocols import (
    CrossSectionalFeature,
    Feature,
    ReadsOrderBook,
    input_columns_of,
    reads_beside_ohlcv,
)
from tradeloom.plugins.protocols_steps import ComputeStep, FeatureStep, StepContext, SteppedFeature
from tradeloom.runtime.lazy import numpy as np
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.schemas.config import informative_column

__all__ = [
    "InformativePair",
    "InformativeStep",
    "informative_column",
    "informative_refusal",
    "joined_rows",
]


def informative_refusal(feature: Feature) -> str | None:
    """Return why ``feature`` cannot take ``symbol:``, or None when it can."""
    if isinstance(feature, CrossSectionalFeature):
        return "a cross-sectional feature reads the traded universe at each bar; remove symbol:"
    if reads_beside_ohlcv(feature) or isinstance(feature, ReadsOrderBook):
        return (
            "this feature reads columns beside OHLCV, which an informative pair's bars do not "
            "have; remove symbol:"
        )
    return None


def joined_rows(other: pd.DatetimeIndex, traded: pd.DatetimeIndex) -> np.ndarray:
    """Return, per traded bar, the last bar of ``other`` closed by its close (-1: none yet).

    Both are bar open times of one timeframe, so the other market's bar is closed by the
    traded bar's close when it opens at or before the traded bar's open.
    """
    other_ns, traded_ns = other.as_unit("ns").asi8, traded.as_unit("ns").asi8
    at: np.ndarray = np.searchsorted(other_ns, traded_ns, side="right")
    return at - 1


@dataclass(frozen=True)
class InformativePair:
    """A feature computed on another market's bars, joined to the traded bars as of close.

    Args:
        inner: The feature as built for that market's bars (a `HigherTimeframe` when the
            entry also names a timeframe).
        symbol: The other market, as written (``ETH/USDT``).
    """

    inner: Feature
    symbol: str

    def input_columns(self) -> tuple[str, ...]:
        """Return the columns ``inner`` reads (of the other market's bars)."""
        return input_columns_of(self.inner)

    def columns(self) -> list[str]:
        """Return the inner feature's columns, each named with the symbol."""
        return [informative_column(c, self.symbol) for c in self.inner.columns()]

    def compute(self, bars: Bars, features: pd.DataFrame) -> pd.DataFrame:
        """Refuse: the values need the other market's bars (`compute_joined`).

        Raises:
            DataError: Always; the engine calls `compute_joined`.
        """
        raise DataError(
            f"feature symbol: {self.symbol}'s bars were not loaded; an informative pair is "
            "computed by the engine with that market's bars"
        )

    def compute_joined(self, bars: Bars, other: Bars) -> pd.DataFrame:
        """Return the inner feature on ``other``, each traded bar's row as of its close."""
        out = self.inner.compute(other, pd.DataFrame(index=other.frame.index))
        width = len(self.inner.columns())
        values = out.to_numpy(np.float64).reshape(len(other), width)
        at = joined_rows(other.frame.index, bars.frame.index)
        placed = np.full((len(bars), width), np.nan)
        seen = at >= 0
        placed[seen] = values[at[seen]]
        return pd.DataFrame(placed, index=bars.frame.index, columns=self.columns())

    def stepper(self, context: StepContext) -> FeatureStep:
        """Return the per-bar driver: the inner feature stepped on each other bar closed.

        Raises:
            DataError: The driver has no bars of the symbol (``context.informative``).
        """
        feed = None if context.informative is None else context.informative.get(self.symbol)
        if feed is None:
            raise DataError(
                f"feature symbol: {self.symbol}'s bars were not loaded; this run cannot "
                "step an informative pair"
            )
        inner_context = StepContext(
            self.symbol, feed.timeframe, feed.timeframe_seconds, documents=context.documents
        )
        inner = (
            self.inner.stepper(inner_context)
            if isinstance(self.inner, SteppedFeature)
            else ComputeStep(self.inner, inner_context)
        )
        return InformativeStep(inner, feed, len(self.columns()))


_NO_FEATURES: Mapping[str, float] = {}


class InformativeStep:
    """Step an informative pair: on each traded bar, step the inner feature on every bar
    of the other market closed by then and not yet stepped; return the last values.

    Args:
        inner: The inner feature's per-bar driver, for the other market's bars.
        other: The other market's bars; only those opening at or before the traded
            bar's open are read, one at a time, in order.
        width: The number of columns.
    """

    def __init__(self, inner: FeatureStep, other: Bars, width: int) -> None:
        self._inner = inner
        self._symbol = other.symbol
        frame = other.frame
        self._times = np.ascontiguousarray(frame.index.as_unit("ns").asi8)
        self._stamps = frame.index
        self._ohlcv = [frame[c].to_numpy(np.float64) for c in _OHLCV]
        self._next = 0
        self._last: tuple[float, ...] = (float("nan"),) * width

    def step(self, bar: Bar, features: Mapping[str, float]) -> tuple[float, ...]:
        """Take the next traded bar; return the values as of the other market's last close."""
        now = bar.timestamp.value
        o, h, lo, c, v = self._ohlcv
        while self._next < len(self._times) and self._times[self._next] <= now:
            k = self._next
            other = Bar(
                k, self._stamps[k], float(o[k]), float(h[k]), float(lo[k]), float(c[k]),
                float(v[k]), self._symbol,
            )  # fmt: skip
            self._last = tuple(float(x) for x in self._inner.step(other, _NO_FEATURES))
            self._next += 1
        return self._last


_OHLCV = ("open", "high", "low", "close", "volume")
