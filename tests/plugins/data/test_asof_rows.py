"""`AsOfRows`: a paper or live run's auxiliary series, each bar's row as the backtest
joins it (`join_asof`), read again when nothing newer than a bar's close is known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeloom.domain import OHLCV, Bars
from tradeloom.plugins.data.auxiliary import AsOfRows, AuxiliarySeries, join_asof

HALF_HOUR = 1_800_000_000_000


def _series(times: pd.DatetimeIndex, symbol: str | None) -> AuxiliarySeries:
    values = np.arange(1.0, len(times) + 1.0)
    return AuxiliarySeries("s", times.as_unit("ns").asi8, values, HALF_HOUR, symbol)


def test_each_row_is_the_backtests_as_of_join_and_a_newer_value_is_read_again() -> None:
    # a value at 00:10, 01:10, ... published 30 minutes later, before the bar's close
    times = pd.date_range("2024-01-01T00:10Z", periods=4, freq="1h")
    known = [_series(times[:3], None), _series(times, "ETH/USDT")]
    reads: list[int] = []

    def load() -> list[AuxiliarySeries]:
        reads.append(1)
        return list(known)

    rows = AsOfRows(load, "BTC/USDT", 3600)
    assert rows.columns == ("s",)  # ETH's own series is not BTC's
    index = pd.date_range("2024-01-01T00:00Z", periods=4, freq="1h", name="timestamp")
    frame = pd.DataFrame(dict.fromkeys(OHLCV, 1.0), index=index)

    first = [float(rows.row_at(t)["s"].iloc[0]) for t in index[:2]]

    assert first == [1.0, 2.0]
    assert len(reads) == 1  # both were published before the value read last (02:40)
    known[0] = _series(times, None)  # 03:10 arrives, published at 03:40
    later = [float(rows.row_at(t)["s"].iloc[0]) for t in index[2:]]
    assert later == [3.0, 4.0]  # at 03:00 the 03:40 value was not published yet
    assert len(reads) == 3  # read again at each close past the newest publication
    joined = join_asof(Bars(frame, "BTC/USDT", "1h", 3600), known).frame["s"]
    assert first + later == joined.tolist()
