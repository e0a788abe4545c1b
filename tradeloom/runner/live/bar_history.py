"""Every bar a live run knows, and its feature rows, grown one closed bar at a time."""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradeloom.domain import OHLCV, Bar, Bars

__all__ = ["BarHistory", "history_sha256"]


class BarHistory:
    """The history a run started from, then each closed bar, with its feature row.

    Appends are amortized O(1) (arrays double when full); `bars` and `features`
    build frames of everything so far, for training.

    Args:
        bars: The history (its last bar closed before the run goes live).
        features: Its feature rows, indexed like ``bars.frame``.
    """

    def __init__(self, bars: Bars, features: pd.DataFrame) -> None:
        self.symbol = bars.symbol
        self.timeframe = bars.timeframe
        self.timeframe_seconds = bars.timeframe_seconds
        self.columns = tuple(str(c) for c in features.columns)
        n = len(bars)
        capacity = max(2 * n, 1024)
        self._times = np.empty(capacity, "datetime64[ns]")
        self._times[:n] = bars.frame.index.tz_convert("UTC").tz_localize(None).to_numpy()
        self._values = np.empty((capacity, len(OHLCV)))
        self._values[:n] = bars.frame[list(OHLCV)].to_numpy(np.float64)
        self._features = np.empty((capacity, len(self.columns)))
        self._features[:n] = features.to_numpy(np.float64)
        self._n = n

    def __len__(self) -> int:
        return self._n

    @property
    def last_time(self) -> pd.Timestamp:
        """Open time of the newest bar."""
        return pd.Timestamp(self._times[self._n - 1]).tz_localize("UTC")

    def bar(self, index: int) -> Bar:
        """Return bar ``index`` as the engine sees it."""
        o, h, lo, c, v = (float(x) for x in self._values[index])
        return Bar(index, pd.Timestamp(self._times[index]).tz_localize("UTC"), o, h, lo, c, v)

    def values(self, end: int) -> npt.NDArray[np.float64]:
        """Return the OHLCV rows of the first ``end`` bars (a view)."""
        return self._values[:end]

    def times_ns(self, end: int) -> npt.NDArray[np.int64]:
        """Return the open times of the first ``end`` bars, UTC nanoseconds."""
        return self._times[:end].view(np.int64)

    def feature_row(self, index: int) -> npt.NDArray[np.float64]:
        """Return bar ``index``'s feature row (a view)."""
        return self._features[index]

    def append(self, time: pd.Timestamp, values: npt.ArrayLike, features: npt.ArrayLike) -> Bar:
        """Add the next closed bar and its feature row; return it as a `Bar`."""
        if self._n == len(self._times):
            grow = len(self._times)
            self._times = np.concatenate([self._times, np.empty(grow, self._times.dtype)])
            self._values = np.concatenate([self._values, np.empty_like(self._values)])
            self._features = np.concatenate([self._features, np.empty_like(self._features)])
        i = self._n
        self._times[i] = time.tz_convert("UTC").tz_localize(None).to_datetime64()
        self._values[i] = values
        self._features[i] = features
        self._n += 1
        return self.bar(i)

    def bars(self, end: int | None = None) -> Bars:
        """Return the first ``end`` bars (all by default) as validated-shape `Bars`."""
        n = self._n if end is None else end
        index = pd.DatetimeIndex(self._times[:n], name="timestamp").tz_localize("UTC")
        frame = pd.DataFrame(self._values[:n].copy(), index=index, columns=list(OHLCV))
        return Bars(frame, self.symbol, self.timeframe, self.timeframe_seconds)

    def features(self, end: int | None = None) -> pd.DataFrame:
        """Return the first ``end`` feature rows, indexed like `bars`."""
        n = self._n if end is None else end
        index = pd.DatetimeIndex(self._times[:n], name="timestamp").tz_localize("UTC")
        return pd.DataFrame(self._features[:n].copy(), index=index, columns=list(self.columns))


def history_sha256(bars: Bars) -> str:
    """Return a SHA-256 over the bars' open times and OHLCV (a restart checks it)."""
    digest = hashlib.sha256()
    digest.update(bars.frame.index.asi8.tobytes())
    digest.update(np.ascontiguousarray(bars.frame[list(OHLCV)].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()
