"""``data.auxiliary``: series that are not bars, joined as-of with their publication delay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.hunting import examples
from tests.plugins.data.ccxt_emulated import START, make_bars
from tradeloom.domain import Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.auxiliary import (
    AuxiliaryParams,
    AuxiliarySeries,
    asof_values,
    join_asof,
    parse_delay,
    rejoin_published_by,
)
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt
from tradeloom.plugins.data.files import CsvParams, build_csv
from tradeloom.plugins.data.synthetic import SyntheticParams, build_synthetic, simulate
from tradeloom.testing import ExchangeEmulator

HOUR = 3_600_000_000_000


def ctx(folder: Path) -> BuildContext:
    return BuildContext("s", folder, seed=3)


def hourly_bars(n: int = 48, symbol: str = "BTC/USDT") -> Bars:
    frame = simulate(SyntheticParams(bars=100), 1).frame.iloc[:n]
    return Bars(frame, symbol, "1h", 3600)


def sentiment(path: Path, text: str) -> Path:
    path.write_text("time,score\n" + text)
    return path


def aux(**keys: Any) -> dict[str, Any]:
    return {"name": "mood", "kind": "file", "path": "mood.csv", "column": "score"} | {
        "timestamp_column": "time",
        "available_after": "15m",
        **keys,
    }


# --- keys -------------------------------------------------------------------------------------


def test_delays_are_a_whole_number_and_a_unit_zero_allowed() -> None:
    assert [parse_delay(t) for t in ("0s", "90s", "15m", "8h", "1d", "2w")] == [
        0,
        90,
        900,
        28800,
        86400,
        1209600,
    ]
    with pytest.raises(ValueError, match=r"^must be a delay such as 0s, 90s, 15m, 8h or 1d"):
        parse_delay("15 minutes")


def test_available_after_is_required_and_kinds_are_checked() -> None:
    with pytest.raises(ValidationError) as info:
        AuxiliaryParams.model_validate({"name": "mood", "kind": "file", "path": "m.csv"})
    assert [(e["loc"], e["msg"]) for e in info.value.errors()] == [
        (("available_after",), "Field required")
    ]
    with pytest.raises(ValidationError) as info:
        AuxiliaryParams.model_validate({"name": "mood", "kind": "file", "available_after": "0s"})
    assert info.value.errors()[0]["msg"] == (
        "Value error, kind file needs path: the file holding the series"
    )
    with pytest.raises(ValidationError) as info:
        AuxiliaryParams.model_validate(
            {"name": "f", "kind": "funding_rate", "available_after": "0s", "path": "x.csv"}
        )
    assert info.value.errors()[0]["msg"] == (
        "Value error, kind funding_rate reads the exchange, not a file; remove path"
    )
    with pytest.raises(ValidationError) as info:
        AuxiliaryParams.model_validate({"name": "close", "kind": "file", "available_after": "0s"})
    assert info.value.errors()[0]["msg"] == (
        "Value error, 'close' is a bars column; name the series otherwise"
    )


def test_funding_rates_need_an_exchange_and_names_are_unique(tmp_path: Path) -> None:
    funding = {"name": "funding", "kind": "funding_rate", "available_after": "0s"}
    (tmp_path / "BTC-USDT.csv").write_text("timestamp,open,high,low,close,volume\n")
    with pytest.raises(ParamError) as info:
        build_csv(CsvParams(path="BTC-USDT.csv", auxiliary=[funding]), ctx(tmp_path))  # type: ignore[list-item]
    assert (info.value.key, info.value.message) == (
        "auxiliary.0.kind",
        "funding_rate series come from an exchange: use data kind ccxt (or synthetic), or a "
        "kind file series of saved rates",
    )
    sentiment(tmp_path / "mood.csv", "2023-01-01,1\n")
    with pytest.raises(ParamError) as info:
        build_synthetic(SyntheticParams(bars=100, auxiliary=[aux(), aux()]), ctx(tmp_path))  # type: ignore[list-item]
    assert (info.value.key, info.value.message) == (
        "auxiliary.1.name",
        "'mood' names two series; name each once",
    )
    with pytest.raises(ParamError) as info:
        build_synthetic(
            SyntheticParams(bars=100, auxiliary=[aux(path="none.csv")]),  # type: ignore[list-item]
            ctx(tmp_path),
        )
    assert (info.value.key, info.value.message) == (
        "auxiliary.0.path",
        f"file not found: {tmp_path / 'none.csv'}",
    )


# --- the as-of join -------------------------------------------------------------------------


def test_a_value_is_visible_from_the_first_bar_closing_after_its_publication(
    tmp_path: Path,
) -> None:
    # bars open hourly from 2023-01-01 00:00; bar i closes at (i + 1):00
    sentiment(tmp_path / "mood.csv", "2023-01-01T00:30Z,1\n2023-01-01T02:45Z,2\n")
    params = SyntheticParams(bars=100, auxiliary=[aux()])  # type: ignore[list-item]
    mood = build_synthetic(params, ctx(tmp_path)).load().frame["mood"].to_numpy()
    # 1 published 00:45: bar 0 closes 01:00; 2 published 03:00: bar 2 closes 03:00
    assert mood[:5].tolist()[0] == 1.0
    assert mood[1] == 1.0 and mood[2] == 2.0 and mood[4] == 2.0
    zero = SyntheticParams(bars=100, auxiliary=[aux(available_after="0s")])  # type: ignore[list-item]
    again = build_synthetic(zero, ctx(tmp_path)).load().frame["mood"].to_numpy()
    assert again[:3].tolist() == [1.0, 1.0, 2.0]
    late = SyntheticParams(bars=100, auxiliary=[aux(available_after="1h")])  # type: ignore[list-item]
    later = build_synthetic(late, ctx(tmp_path)).load().frame["mood"].to_numpy()
    assert np.isnan(later[0]) and later[1] == 1.0 and later[2] == 1.0 and later[3] == 2.0


def brute_force(
    times: list[int], values: list[float], delay: int, opens: np.ndarray, step: int
) -> np.ndarray:
    out = []
    for o in opens.tolist():
        seen = [v for t, v in zip(times, values, strict=True) if t + delay <= o + step]
        out.append(seen[-1] if seen else np.nan)
    return np.array(out)


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.integers(-50, 400), min_size=1, max_size=40, unique=True),
    st.integers(0, 120),
    st.integers(1, 60),
)
def test_the_join_equals_a_brute_force_reference_and_never_shows_an_unpublished_value(
    minutes: list[int], delay_minutes: int, bars: int
) -> None:
    times = sorted(m * 60_000_000_000 for m in minutes)
    values = [float(i) for i in range(len(times))]
    delay = delay_minutes * 60_000_000_000
    opens = np.arange(bars, dtype=np.int64) * HOUR
    got = asof_values(np.array(times) + delay, np.array(values), opens + HOUR)
    np.testing.assert_array_equal(got, brute_force(times, values, delay, opens, HOUR))
    for i, value in enumerate(got.tolist()):
        if not np.isnan(value):
            assert times[int(value)] + delay <= opens[i] + HOUR  # published by the bar's close


def test_rejoining_what_was_published_by_a_cut_keeps_every_row_up_to_it() -> None:
    bars = hourly_bars()
    times = np.arange(0, 48 * HOUR, HOUR // 3, dtype=np.int64) + bars.frame.index[0].value
    series = AuxiliarySeries("mood", times, np.arange(len(times), dtype=float), HOUR // 2)
    joined = join_asof(bars, [series])
    cut = 20
    rejoined = rejoin_published_by(joined, [series], cut)
    np.testing.assert_array_equal(
        rejoined.frame["mood"].to_numpy()[: cut + 1], joined.frame["mood"].to_numpy()[: cut + 1]
    )
    assert (rejoined.frame["mood"].to_numpy()[cut + 1 :] < joined.frame["mood"].iloc[-1]).all()
    leaky = AuxiliarySeries("mood", times, series.values, 0)
    early = join_asof(bars, [leaky])  # as a source that ignores the delay would join it
    moved = rejoin_published_by(early, [series], cut)
    assert not np.array_equal(moved.frame["mood"][: cut + 1], early.frame["mood"][: cut + 1])


# --- files and the validation policy ----------------------------------------------------------


def test_unsorted_and_repeated_times_are_rejected_with_the_line_and_the_remedy(
    tmp_path: Path,
) -> None:
    path = sentiment(
        tmp_path / "mood.csv",
        "2023-01-01,1\n2023-01-03,2\n2023-01-02,3\n2023-01-02,4\n2023-01-04,\n",
    )
    params = SyntheticParams(bars=100, auxiliary=[aux()])  # type: ignore[list-item]
    with pytest.raises(DataError) as info:
        build_synthetic(params, ctx(tmp_path)).load()
    label = f"data.auxiliary.0 (mood): {path}"
    assert info.value.lines() == [
        f"{label}: 1 row has an empty value (first at 2023-01-04T00:00Z, line 6); drop it or "
        "set data.validation: repair",
        f"{label}: 1 row has the time of an earlier row (first at 2023-01-02T00:00Z, line 5); "
        "drop it or set data.validation: repair",
        f"{label}: 1 row has a time earlier than the row before (first at 2023-01-02T00:00Z, "
        "line 4); sort the rows by time or set data.validation: repair",
    ]
    repaired = SyntheticParams(
        bars=100,
        validation="repair",
        auxiliary=[aux(available_after="0s")],  # type: ignore[list-item]
    )
    series = build_synthetic(repaired, ctx(tmp_path)).auxiliary_series()[0]
    assert series.values.tolist() == [1.0, 3.0, 2.0]  # sorted; the first of 01-02 kept
    assert series.times.tolist() == sorted(series.times.tolist())


def test_a_per_symbol_file_joins_each_symbols_rows(tmp_path: Path) -> None:
    (tmp_path / "mood.csv").write_text(
        "time,pair,score\n2023-01-01,BTC/USDT,1\n2023-01-01,ETH/USDT,5\n2023-01-01T03:00Z,BTC/USDT,2\n"
    )
    bars = simulate(SyntheticParams(bars=100), 1).frame
    bars.to_csv(tmp_path / "BTC-USDT.csv")
    bars.to_csv(tmp_path / "ETH-USDT.csv")
    params = CsvParams(
        path="{symbol}.csv",
        symbols=["BTC/USDT", "ETH/USDT"],
        auxiliary=[aux(symbol_column="pair", available_after="0s")],  # type: ignore[list-item]
    )
    universe = build_csv(params, ctx(tmp_path)).load_universe()
    btc, eth = (b.frame["mood"].to_numpy() for b in universe.bars)
    assert btc[:4].tolist() == [1.0, 1.0, 2.0, 2.0]
    assert (eth == 5.0).all()
    (tmp_path / "mood.csv").write_text("time,pair,score\n2023-01-01,BTC/USDT,1\n")
    with pytest.raises(DataError) as info:
        build_csv(params, ctx(tmp_path)).load_universe()
    assert str(info.value) == (
        f"data.auxiliary.0 (mood): {tmp_path / 'mood.csv'}: no rows for symbol ETH/USDT in "
        "column 'pair'; add them or remove the symbol"
    )


def test_a_series_cannot_take_the_name_of_a_bars_column(tmp_path: Path) -> None:
    frame = simulate(SyntheticParams(bars=100), 1).frame.assign(mood=1.0)
    frame.to_csv(tmp_path / "btc.csv")
    sentiment(tmp_path / "mood.csv", "2023-01-01,1\n")
    params = CsvParams(path="btc.csv", auxiliary=[aux()])  # type: ignore[list-item]
    with pytest.raises(DataError) as info:
        build_csv(params, ctx(tmp_path)).load()
    assert str(info.value) == (
        "data: btc: the bars already have a column 'mood'; give the auxiliary series another name"
    )


def test_without_auxiliary_load_is_unchanged(tmp_path: Path) -> None:
    plain = build_synthetic(SyntheticParams(bars=200), ctx(tmp_path)).load()
    sentiment(tmp_path / "mood.csv", "2023-01-01,1\n")
    joined = build_synthetic(
        SyntheticParams(bars=200, auxiliary=[aux()]),  # type: ignore[list-item]
        ctx(tmp_path),
    ).load()
    pd.testing.assert_frame_equal(joined.frame.drop(columns="mood"), plain.frame, check_exact=True)


# --- funding rates through ccxt ---------------------------------------------------------------


def funding_rates(n: int = 60) -> pd.Series:
    index = pd.date_range("2023-12-31", periods=n, freq="8h", tz="UTC")
    return pd.Series(np.round(np.sin(np.arange(n)) * 1e-4, 8), index=index)


def test_funding_rates_are_read_through_the_cache_and_joined(tmp_path: Path) -> None:
    rates = funding_rates()
    keys = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"}
    keys |= {"start": "2024-01-02", "end": "2024-01-08", "cache_dir": "cache"}
    keys |= {"auxiliary": [{"name": "funding", "kind": "funding_rate", "available_after": "0s"}]}
    with (
        ExchangeEmulator(
            {"BTC/USDT": make_bars()},
            {"USDT": 1000},
            start=START,
            funding_rates={"BTC/USDT": rates},
        ) as emulator,
        use_client_factory("binance", lambda settings: emulator.client(**settings)),
    ):
        bars = build_ccxt(CcxtParams(**keys), ctx(tmp_path)).load()
        calls = len(emulator.requests("GET /fapi/v1/fundingRate"))
        again = build_ccxt(CcxtParams(**keys), ctx(tmp_path)).load()
        assert len(emulator.requests("GET /fapi/v1/fundingRate")) == calls  # from the cache
    closes = bars.frame.index + pd.Timedelta(hours=1)
    expected = rates.reindex(closes, method="ffill").to_numpy()
    np.testing.assert_array_equal(bars.frame["funding"].to_numpy(), expected)
    pd.testing.assert_frame_equal(bars.frame, again.frame, check_exact=True)
    assert (tmp_path / "cache" / "funding" / "binance" / "BTC-USDT.parquet").is_file()
    offline = build_ccxt(CcxtParams(**keys, offline=True), ctx(tmp_path)).load()
    pd.testing.assert_frame_equal(bars.frame, offline.frame, check_exact=True)


def test_offline_funding_rates_not_cached_name_the_file(tmp_path: Path) -> None:
    keys = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "offline": True}
    keys |= {"start": "2024-01-02", "end": "2024-01-08", "cache_dir": "cache"}
    keys |= {"auxiliary": [{"name": "funding", "kind": "funding_rate", "available_after": "0s"}]}
    with (
        ExchangeEmulator({"BTC/USDT": make_bars()}, {"USDT": 1000}, start=START) as emulator,
        use_client_factory("binance", lambda settings: emulator.client(**settings)),
    ):
        build_ccxt(CcxtParams(**{**keys, "offline": False}), ctx(tmp_path)).load()
    source = build_ccxt(CcxtParams(**{**keys, "end": "2024-01-09"}), ctx(tmp_path))
    with pytest.raises(DataError, match=r"^data: binance BTC/USDT funding rates: offline"):
        source.auxiliary_series()
