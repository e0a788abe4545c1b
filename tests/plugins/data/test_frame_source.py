"""The ``frame`` data source: a DataFrame's bars are the bars of the same frame written as
a CSV file and read by the ``csv`` source, refused or repaired alike; a strategy file
cannot name a frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import strategy, write_strategy
from tradeloom.errors import ConfigError, DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data.files import CsvParams, build_csv
from tradeloom.plugins.data.frame import FrameParams, FrameSource, build_frame
from tradeloom.plugins.data.validation import DataValidationError
from tradeloom.schemas import load_strategy

START = pd.Timestamp("2024-01-01", tz="UTC")


def _source(frame: pd.DataFrame, **keys: Any) -> FrameSource:
    params = FrameParams(**keys)
    params._frame = frame
    return build_frame(params, BuildContext("s", Path("."), seed=0))


def _bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    times = pd.date_range(START, periods=n, freq="h")
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
         "volume": rng.uniform(1, 5, n), "p_up": rng.uniform(0, 1, n)},
        index=times,
    )  # fmt: skip


def _loaded(load: Any, source: str) -> tuple[str, Any]:
    try:
        return "bars", load()
    except DataValidationError as exc:
        return "refused", exc.issues
    except DataError as exc:  # before validation: the bars' timeframe
        return "error", str(exc).replace(source, "SOURCE")


@st.composite
def damaged(draw: st.DrawFn) -> tuple[pd.DataFrame, str]:
    """Hourly bars with some of what validation refuses or repairs, their times as an
    index (UTC, naive or another zone) or a column; and a policy."""
    n = draw(st.integers(2, 20))
    frame = _bars(n, draw(st.integers(0, 1000)))
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.integers(0, len(frame) - 1))
        damage = draw(st.sampled_from(["high<low", "nan", "zero volume", "repeat", "swap", "gap"]))
        if damage == "high<low":
            frame.iloc[row, 1] = frame.iloc[row, 2] * 0.5
        elif damage == "nan":
            frame.iloc[row, 3] = np.nan
        elif damage == "zero volume":
            frame.iloc[row, 4] = 0.0
        elif damage == "repeat" and row:
            index = frame.index.to_numpy().copy()
            index[row] = index[row - 1]
            frame.index = pd.DatetimeIndex(index)
        elif damage == "swap" and row:
            order = np.arange(len(frame))
            order[[row - 1, row]] = order[[row, row - 1]]
            frame = frame.iloc[order]
        elif damage == "gap" and 0 < row < len(frame) - 1:
            frame = frame.drop(frame.index[row])
    zone = draw(st.sampled_from(["UTC", None, "Europe/Paris"]))
    frame.index = frame.index.tz_convert(zone) if zone else frame.index.tz_localize(None)
    if draw(st.booleans()):
        frame = frame.rename_axis("timestamp").reset_index()
    return frame, draw(st.sampled_from(["reject", "repair"]))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=damaged())
def test_a_frames_bars_are_the_bars_of_its_csv_file(tmp_path: Path, case: Any) -> None:
    frame, policy = case
    csv = tmp_path / "bars.csv"
    frame.to_csv(csv, index=isinstance(frame.index, pd.DatetimeIndex))  # as a user writes it
    ctx = BuildContext("s", tmp_path, seed=0)
    keys = {"symbol": "BTC/USDT", "validation": policy, "timeframe": "1h"}

    mine = _loaded(_source(frame, **keys).load, "the DataFrame")
    theirs = _loaded(build_csv(CsvParams(path=str(csv), **keys), ctx).load, str(csv))

    assert mine[0] == theirs[0]
    if mine[0] == "error":
        assert mine[1] == theirs[1]
    elif mine[0] == "bars":
        pd.testing.assert_frame_equal(mine[1].frame, theirs[1].frame)
        repaired = [(i.code, i.count, i.first) for i in mine[1].repaired]
        assert repaired == [(i.code, i.count, i.first) for i in theirs[1].repaired]
    else:  # the same problems, a frame's rows by position (from 0), a file's by line
        assert [(i.code, i.count, i.first) for i in mine[1]] == [
            (i.code, i.count, i.first) for i in theirs[1]
        ]
        for ours, its in zip(mine[1], theirs[1], strict=True):
            if ours.code != "gap":
                assert [r + 2 for r in ours.rows] == list(its.rows)


def test_a_frames_problem_names_the_frame_and_the_position() -> None:
    frame = _bars(6, 1)
    frame.iloc[3, 1] = frame.iloc[3, 2] * 0.5  # high < low
    with pytest.raises(DataError) as raised:
        _source(frame, symbol="BTC/USDT").load()
    assert str(raised.value) == (
        "data: the DataFrame: 1 row has high < low (at 2024-01-01T03:00Z, position 3); "
        "drop it or set data.validation: repair"
    )
    twice = frame.rename(columns={"volume": "close"})
    with pytest.raises(DataError, match=r"^data: the DataFrame: the columns close appear twice"):
        _source(twice, symbol="BTC/USDT").load()


def test_a_long_frame_is_a_universe_of_its_symbols_rows() -> None:
    one, other = _bars(5, 1), _bars(5, 2)
    long = pd.concat([one.assign(symbol="BTC/USDT"), other.assign(symbol=" ETH/USDT")])
    source = _source(long, symbol_column="symbol", symbols=["BTC/USDT", "ETH/USDT"])

    universe = source.load_universe()

    assert universe.symbols == ("BTC/USDT", "ETH/USDT")
    np.testing.assert_array_equal(universe.bars[1].frame["close"], other["close"])
    assert source.informative_refusal("SOL/USDT") == (
        "the DataFrame has no rows for symbol SOL/USDT in column 'symbol'"
    )


def test_a_strategy_file_cannot_name_a_frame(tmp_path: Path) -> None:
    file = write_strategy(tmp_path, strategy(data={"kind": "frame", "symbol": "BTC/USDT"}))
    config, _ = load_strategy(file, [])
    from tradeloom.engine.wiring import build_pipeline

    with pytest.raises(ConfigError) as raised:
        build_pipeline(config)
    assert raised.value.lines() == [
        f"{file}:4:3 data: kind frame holds bars handed from Python (Strategy.with_data); "
        "a strategy file reads its bars from a file: kind csv or parquet with path"
    ]
