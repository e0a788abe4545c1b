"""The csv and parquet sources: round trips, timestamp formats and exact messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tradeloom.domain import Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.files import (
    CsvParams,
    ParquetParams,
    build_csv,
    build_parquet,
    timeframe_text,
)
from tradeloom.plugins.data.synthetic import SyntheticParams, simulate
from tradeloom.plugins.protocols import DataSource


def market(bars: int = 48) -> pd.DataFrame:
    frame = simulate(SyntheticParams(bars=max(bars, 100)), 5).frame.iloc[:bars]
    return frame.set_axis(pd.DatetimeIndex(frame.index, freq=None))


def load(path: Path, **keys: object) -> Bars:
    ctx = BuildContext("s", path.parent, seed=0)
    if path.suffix == ".parquet":
        return build_parquet(ParquetParams(path=path.name, **keys), ctx).load()  # type: ignore[arg-type]
    return build_csv(CsvParams(path=path.name, **keys), ctx).load()  # type: ignore[arg-type]


def data_error(path: Path, **keys: object) -> list[str]:
    with pytest.raises(DataError) as info:
        load(path, **keys)
    return info.value.lines()


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CSV_HEAD = "timestamp,open,high,low,close,volume\n"


def rows(*stamps: str) -> str:
    return "".join(f"{s},100,101,99,100.5,10\n" for s in stamps)


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    frame = market()
    frame.to_csv(tmp_path / "btc.csv")
    bars = load(tmp_path / "btc.csv")
    pd.testing.assert_frame_equal(bars.frame, frame, check_exact=True)
    assert (bars.symbol, bars.timeframe, bars.timeframe_seconds) == ("btc", "1h", 3600)
    assert bars.repaired == () and bars.gaps == ()


def test_parquet_round_trip_with_index_or_column(tmp_path: Path) -> None:
    frame = market()
    frame.to_parquet(tmp_path / "indexed.parquet")
    frame.reset_index().to_parquet(tmp_path / "column.parquet")
    for name in ("indexed.parquet", "column.parquet"):
        bars = load(tmp_path / name, symbol="BTC/USDT", timeframe="1h")
        pd.testing.assert_frame_equal(bars.frame, frame, check_exact=True)
        assert bars.symbol == "BTC/USDT"


def test_sources_implement_the_protocol(tmp_path: Path) -> None:
    market().to_csv(tmp_path / "a.csv")
    ctx = BuildContext("s", tmp_path, seed=0)
    assert isinstance(build_csv(CsvParams(path="a.csv"), ctx), DataSource)


@pytest.mark.parametrize(
    ("unit", "factor"), [("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)]
)
def test_epoch_timestamps_are_detected_by_magnitude(tmp_path: Path, unit: str, factor: int) -> None:
    frame = market(10)
    epoch = frame.reset_index()
    epoch["timestamp"] = frame.index.asi8 // 1_000_000_000 * factor
    epoch.to_csv(tmp_path / "epoch.csv", index=False)
    epoch.to_parquet(tmp_path / "epoch.parquet")
    for name in ("epoch.csv", "epoch.parquet"):
        bars = load(tmp_path / name)
        assert bars.frame.index.equals(frame.index), unit


def test_fractional_epoch_seconds(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", CSV_HEAD + rows("1709251200.5", "1709254800.5"))
    assert load(path).frame.index[0] == pd.Timestamp("2024-03-01T00:00:00.5Z")


def test_iso_timestamps_naive_are_utc_and_offsets_convert(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "iso.csv",
        CSV_HEAD + rows("2024-03-01 00:00", "2024-03-01T02:00:00+01:00", "2024-03-01T02:00Z"),
    )
    index = load(path).frame.index
    assert list(index) == list(pd.date_range("2024-03-01", periods=3, freq="h", tz="UTC"))


def test_columns_in_any_case_and_a_custom_timestamp_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "upper.csv",
        "Time,OPEN,High,low,Close,VOLUME,probability,venue\n"
        "2024-03-01T00:00Z,100,101,99,100.5,10,0.6,binance\n"
        "2024-03-01T01:00Z,100,101,99,100.5,10,0.4,binance\n",
    )
    bars = load(path, timestamp_column="time")
    assert list(bars.frame.columns) == ["open", "high", "low", "close", "volume", "probability"]
    assert bars.frame["probability"].tolist() == [0.6, 0.4]
    assert bars.frame.dtypes.eq(np.float64).all()


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", "timestamp,open,close,vol\n2024-03-01,1,1,1\n")
    # volume is optional (issue 13): a file without it is not refused for that alone
    assert data_error(path) == [
        f"data: {path}: missing columns high, low; found timestamp, open, close, vol; "
        "expected timestamp, open, high, low, close and volume if the data has it (any case)"
    ]
    assert data_error(path, timestamp_column="time")[0].startswith(
        f"data: {path}: missing columns time, high, low; "
    )


def test_two_columns_matching_one_name_are_refused(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv", "timestamp,open,high,low,close,Close,volume\n2024-03-01,1,1,1,1,1,1\n"
    )
    assert data_error(path) == [
        f"data: {path}: columns 'close' and 'Close' both match close; keep one"
    ]


def test_unparsable_timestamps_name_the_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        CSV_HEAD + rows("2024-03-01T00:00Z", "2024-03-01T01:00Z", "yesterday", "2024-13-01", ""),
    )
    assert data_error(path) == [
        f"data: {path}: column 'timestamp' has 3 unparsable timestamps (first 'yesterday' at "
        "line 4); expected ISO 8601 such as 2024-03-01T04:00:00Z, or epoch seconds or "
        "milliseconds, between 1677-09-21 and 2262-04-11"
    ]


def test_an_empty_timestamp_cell_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", CSV_HEAD + rows("2024-03-01T00:00Z", "", "2024-03-01"))
    assert data_error(path) == [
        f"data: {path}: column 'timestamp' has 1 unparsable timestamp (an empty cell at "
        "line 3); expected ISO 8601 such as 2024-03-01T04:00:00Z, or epoch seconds or "
        "milliseconds, between 1677-09-21 and 2262-04-11"
    ]


def test_non_numeric_values_name_column_and_line(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "n.csv",
        CSV_HEAD
        + "2024-03-01T00:00Z,100,101,99,100.5,10\n"
        + "2024-03-01T01:00Z,100,101,99,abc,10\n"
        + "2024-03-01T02:00Z,100,1O1,99,n/a?,10\n",
    )
    assert data_error(path) == [
        f"data: {path}: column 'high' has 1 non-numeric value ('1O1' at line 4); expected numbers",
        f"data: {path}: column 'close' has 2 non-numeric values (first 'abc' at line 3); "
        "expected numbers",
    ]


def test_empty_cells_are_missing_values_not_parse_errors(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "e.csv",
        CSV_HEAD + "2024-03-01T00:00Z,100,101,99,100.5,10\n2024-03-01T01:00Z,100,101,99,,10\n",
    )
    assert data_error(path, timeframe="1h") == [
        f"data: {path}: 1 row has missing or infinite values in close (at 2024-03-01T01:00Z, "
        "line 3); drop it or set data.validation: repair"
    ]
    bars = load(path, timeframe="1h", validation="repair")
    assert len(bars) == 1 and bars.repaired[0].rows == (3,)


def test_validation_names_lines_of_the_file_even_after_blank_lines(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "b.csv",
        CSV_HEAD
        + "2024-03-01T00:00Z,100,101,99,100.5,10\n"
        + "\n  \n"
        + "2024-03-01T01:00Z,100,99,101,100.5,10\n"
        + "2024-03-01T02:00Z,100,101,99,100.5,10\n",
    )
    assert data_error(path) == [
        f"data: {path}: 1 row has high < low (at 2024-03-01T01:00Z, line 5); "
        "drop it or set data.validation: repair"
    ]


def test_timeframe_is_inferred_from_the_most_common_step(tmp_path: Path) -> None:
    stamps = pd.date_range("2024-03-01", periods=20, freq="15min", tz="UTC").delete([5, 6, 12])
    path = write_csv(tmp_path / "q.csv", CSV_HEAD + rows(*(s.isoformat() for s in stamps)))
    bars = load(path, validation="repair")
    assert (bars.timeframe, bars.timeframe_seconds) == ("15m", 900)
    assert bars.gaps[0].count == 2


def test_a_given_timeframe_is_checked(tmp_path: Path) -> None:
    stamps = pd.date_range("2024-03-01", periods=5, freq="4h", tz="UTC")
    path = write_csv(tmp_path / "h.csv", CSV_HEAD + rows(*(s.isoformat() for s in stamps)))
    assert load(path, timeframe="4h").timeframe == "4h"
    assert load(path, timeframe="240m").timeframe == "240m"
    assert data_error(path, timeframe="1h") == [
        f"data: {path}: bars are mostly 4h apart, but data.timeframe is 1h; fix data.timeframe "
        "or resample the file"
    ]


def test_one_row_needs_a_timeframe(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", CSV_HEAD + rows("2024-03-01T00:00Z"))
    assert data_error(path) == [
        f"data: {path}: cannot infer the timeframe from 1 row; set data.timeframe"
    ]
    assert len(load(path, timeframe="1d")) == 1


def test_start_and_end_filter_before_validation(tmp_path: Path) -> None:
    frame = market(48)
    frame.iloc[2, frame.columns.get_loc("high")] = 1.0  # bad, but outside the window
    frame.to_csv(tmp_path / "w.csv")
    bars = load(tmp_path / "w.csv", start="2023-01-01T05:00:00Z", end="2023-01-02")
    assert bars.frame.index[0] == pd.Timestamp("2023-01-01T05:00Z")
    assert bars.frame.index[-1] == pd.Timestamp("2023-01-01T23:00Z")
    assert len(bars) == 19


def test_no_rows_in_the_window_is_an_error(tmp_path: Path) -> None:
    market(48).to_csv(tmp_path / "w.csv")
    assert data_error(tmp_path / "w.csv", start="2024-01-01", end="2024-02-01T12:30Z") == [
        f"data: {tmp_path / 'w.csv'}: no rows at or after 2024-01-01T00:00Z and before "
        "2024-02-01T12:30Z (the file has 2023-01-01T00:00Z to 2023-01-02T23:00Z); "
        "change data.start / data.end"
    ]


def test_a_file_without_rows_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", CSV_HEAD)
    assert data_error(path) == [f"data: {path}: no rows"]


def test_an_unreadable_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"this is not parquet")
    (message,) = data_error(path)
    assert message.startswith(f"data: {path}: cannot read it as PARQUET: ")
    assert "\n" not in message


def test_a_missing_file_is_a_param_error_with_the_absolute_path(tmp_path: Path) -> None:
    ctx = BuildContext("s", tmp_path / "strategies", seed=0)
    with pytest.raises(ParamError) as info:
        build_csv(CsvParams(path="../data/btc.csv"), ctx)
    assert info.value.key == "path"
    assert info.value.message == f"file not found: {tmp_path / 'data' / 'btc.csv'}"
    with pytest.raises(ParamError, match=r"^path: not a file: "):
        build_parquet(ParquetParams(path="."), BuildContext("s", tmp_path, seed=0))


def test_a_relative_path_resolves_against_the_strategy_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    market().to_csv(tmp_path / "data" / "eth.csv")
    source = build_csv(CsvParams(path="data/eth.csv"), BuildContext("s", tmp_path, seed=0))
    assert source.path == tmp_path / "data" / "eth.csv"
    assert source.load().symbol == "eth"


def test_a_file_deleted_after_building_is_a_data_error(tmp_path: Path) -> None:
    market().to_csv(tmp_path / "gone.csv")
    source = build_csv(CsvParams(path="gone.csv"), BuildContext("s", tmp_path, seed=0))
    (tmp_path / "gone.csv").unlink()
    with pytest.raises(DataError, match=r"^data: .*gone.csv: file not found$"):
        source.load()


@pytest.mark.parametrize(
    ("keys", "location", "text"),
    [
        ({}, ("path",), "Field required"),
        ({"path": ""}, ("path",), "at least 1 character"),
        ({"path": "a.csv", "timeframe": "hourly"}, ("timeframe",), "timeframe must be a number"),
        ({"path": "a.csv", "start": "soon"}, ("start",), "must be a UTC timestamp such as"),
        (
            {"path": "a.csv", "start": "2024-02-01", "end": "2024-01-01"},
            (),
            "end must be after start; was start 2024-02-01, end 2024-01-01",
        ),
        ({"path": "a.csv", "validation": "drop"}, ("validation",), "'reject' or 'repair'"),
        ({"path": "a.csv", "delimiter": ";"}, ("delimiter",), "Extra inputs are not permitted"),
    ],
)
def test_bad_keys_are_refused(keys: dict, location: tuple, text: str) -> None:
    for model in (CsvParams, ParquetParams):
        with pytest.raises(ValidationError) as info:
            model(**keys)
        error = info.value.errors()[0]
        assert error["loc"] == location
        assert text in error["msg"]


def test_timeframe_text_uses_the_largest_whole_unit() -> None:
    assert [timeframe_text(s) for s in (1, 90, 900, 3600, 5400, 86400, 604800, 1209600)] == [
        "1s",
        "90s",
        "15m",
        "1h",
        "90m",
        "1d",
        "1w",
        "2w",
    ]


def test_a_dropped_extra_column_is_logged(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    text = "timestamp,open,high,low,close,volume,p_up\n"
    text += "2024-01-01T00:00:00Z,100,101,99,100.5,10,0.6\n"
    text += "2024-01-01T01:00:00Z,100,101,99,100.5,10,O.7\n"
    with capture_logs() as logs:
        bars = load(write_csv(tmp_path / "b.csv", text), timeframe="1h")
    assert "p_up" not in bars.frame.columns
    [entry] = [e for e in logs if e["event"] == "column_dropped"]
    assert (entry["column"], entry["reason"], entry["log_level"]) == (
        "p_up",
        "not numeric",
        "warning",
    )
    assert entry["first"] == "('O.7' at line 3)"
