"""The ``ccxt`` data source: keys, the cache first, offline mode, a strategy file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from tests.plugins.data.ccxt_emulated import KLINES, START, SYMBOL, Sleeps, ms
from tradeloom.engine.wiring import build_pipeline
from tradeloom.errors import ConfigError, DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.ccxt_source import CcxtParams, CcxtSource, build_ccxt
from tradeloom.plugins.protocols import DataSource
from tradeloom.schemas import load_strategy
from tradeloom.testing import ExchangeEmulator

LABEL = "binance BTC/USDT 1h"


def source(tmp_path: Path, **keys: Any) -> CcxtSource:
    given: dict[str, Any] = {
        "exchange": "binance",
        "symbol": SYMBOL,
        "timeframe": "1h",
        "start": "2024-01-01",
        "cache_dir": "cache",
        **keys,
    }
    built = build_ccxt(CcxtParams.model_validate(given), BuildContext("s", tmp_path, seed=0))
    built.feed.sleep = Sleeps()
    return built


def param_error(tmp_path: Path, **keys: Any) -> tuple[str, str]:
    with pytest.raises(ParamError) as info:
        source(tmp_path, **keys)
    return info.value.key, info.value.message


def validation_messages(**keys: Any) -> list[tuple[tuple[Any, ...], str]]:
    given = {"exchange": "binance", "symbol": SYMBOL, "timeframe": "1h", "start": "2024-01-01"}
    with pytest.raises(ValidationError) as info:
        CcxtParams.model_validate({**given, **keys})
    return [(e["loc"], e["msg"].removeprefix("Value error, ")) for e in info.value.errors()]


# --- loading -------------------------------------------------------------------------------


def test_load_reads_the_exchange_through_the_cache(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    built = source(tmp_path)
    assert isinstance(built, DataSource)
    assert emulator.requests() == []  # building sends nothing

    loaded = built.load()

    pd.testing.assert_frame_equal(loaded.frame, bars.iloc[:START], check_freq=False)
    assert (loaded.symbol, loaded.timeframe, loaded.timeframe_seconds) == (SYMBOL, "1h", 3600)
    assert (tmp_path / "cache" / "ohlcv" / "binance" / "BTC-USDT" / "1h.parquet").is_file()


def test_a_fixed_range_is_read_from_the_cache_after_the_first_load(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    first = source(tmp_path, start="2024-01-02", end="2024-01-05").load()
    asked = len(emulator.requests())
    emulator.advance(5)

    second = source(tmp_path, start="2024-01-02", end="2024-01-05").load()

    assert len(emulator.requests()) == asked
    expected = bars.loc["2024-01-02":"2024-01-04 23:00"]
    pd.testing.assert_frame_equal(first.frame, expected, check_freq=False)
    pd.testing.assert_frame_equal(second.frame, expected, check_freq=False)


def test_an_open_range_tops_the_cache_up(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    source(tmp_path).load()
    emulator.advance(12)

    loaded = source(tmp_path).load()

    pd.testing.assert_frame_equal(loaded.frame, bars.iloc[: START + 12], check_freq=False)
    assert int(emulator.requests(KLINES)[-1].params["startTime"]) == ms(bars.index[START])


def test_offline_reads_the_cache_without_the_exchange(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    source(tmp_path).load()
    asked = len(emulator.requests())

    loaded = source(tmp_path, offline=True, start="2024-01-03").load()

    assert len(emulator.requests()) == asked
    pd.testing.assert_frame_equal(
        loaded.frame, bars.loc["2024-01-03":].iloc[: START - 48], check_freq=False
    )


def test_offline_without_a_cache_names_the_command_that_fills_it(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "ohlcv" / "binance" / "BTC-USDT" / "1h.parquet"
    with pytest.raises(DataError) as info:
        source(tmp_path, offline=True, end="2024-01-05").load()
    assert str(info.value) == (
        f"data: {LABEL}: offline and nothing is cached at {path}; run tradeloom data fetch "
        "--exchange binance --symbol BTC/USDT --timeframe 1h --start 2024-01-01 --end "
        f"2024-01-05 --cache-dir {tmp_path / 'cache'} or set data.offline: false"
    )


def test_offline_with_part_of_the_range_cached_says_what_is_there(
    tmp_path: Path, emulator: ExchangeEmulator
) -> None:
    source(tmp_path, start="2024-01-02", end="2024-01-05").load()
    path = tmp_path / "cache" / "ohlcv" / "binance" / "BTC-USDT" / "1h.parquet"

    with pytest.raises(DataError) as info:
        source(tmp_path, offline=True, start="2024-01-01", end="2024-01-04").load()

    assert str(info.value) == (
        f"data: {LABEL}: offline and the cache covers 2024-01-02T00:00Z to 2024-01-05T00:00Z, "
        f"not 2024-01-01T00:00Z to 2024-01-04T00:00Z ({path}); run tradeloom data fetch "
        "--exchange binance --symbol BTC/USDT --timeframe 1h --start 2024-01-01 --end "
        f"2024-01-04 --cache-dir {tmp_path / 'cache'} or set data.offline: false"
    )


def test_no_bars_in_the_range_is_a_data_error(tmp_path: Path, emulator: ExchangeEmulator) -> None:
    with pytest.raises(DataError) as info:
        source(tmp_path, start="2023-06-01", end="2023-07-01").load()
    assert str(info.value) == (
        f"data: {LABEL}: the exchange has no bars from 2023-06-01T00:00Z before "
        "2023-07-01T00:00Z; check data.start and data.end"
    )


def test_gaps_are_reported_as_the_data_layer_reports_them(tmp_path: Path) -> None:
    from tests.plugins.data.ccxt_emulated import emulated_binance, make_bars

    bars = make_bars(120).drop(pd.Timestamp("2024-01-02 05:00", tz="UTC"))
    with emulated_binance(bars, 110):
        with pytest.raises(DataError) as info:
            source(tmp_path).load()
        repaired = source(tmp_path, validation="repair").load()

    assert str(info.value) == (
        f"data: {LABEL}: 1 gap in the 1h bars, 1 bar missing (first at 2024-01-02T05:00Z, "
        "before bar 30); fill it or set data.validation: repair to keep it"
    )
    assert [(g.code, g.count, g.first) for g in repaired.gaps] == [("gap", 1, "2024-01-02T05:00Z")]


# --- keys -----------------------------------------------------------------------------------


def test_an_unknown_exchange_names_the_closest_id() -> None:
    assert validation_messages(exchange="binanse") == [
        (
            ("exchange",),
            "must be a ccxt exchange id such as binance, kraken or okx; was 'binanse' "
            "(did you mean 'binance'?)",
        )
    ]


def test_times_and_their_order_are_checked() -> None:
    assert validation_messages(start="soon", timeframe="1hour") == [
        (
            ("timeframe",),
            "timeframe must be a number and a unit (s, m, h, d, w) such as 1m, 4h, 1d; was '1hour'",
        ),
        (
            ("start",),
            "must be a UTC timestamp such as 2024-03-01T04:00:00Z or 2024-03-01; was 'soon'",
        ),
    ]
    assert validation_messages(end="2023-12-31") == [
        (("end",), "must be after start (2024-01-01), was '2023-12-31'")
    ]


def test_a_timeframe_the_exchange_lacks_is_refused(tmp_path: Path) -> None:
    assert param_error(tmp_path, timeframe="2m") == (
        "timeframe",
        "binance serves no 2m bars; its timeframes: 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, "
        "6h, 8h, 12h, 1d, 3d, 1w, 1M",
    )


def test_config_refuses_credentials_and_misspelt_settings(tmp_path: Path) -> None:
    assert param_error(tmp_path, config={"apiKey": "abc"}) == (
        "config.apiKey",
        "credentials never go in config; use api_key, secret or password with an "
        "${ENV_VAR} reference",
    )
    assert param_error(tmp_path, config={"timeout": 5000, "timout": 5000}) == (
        "config.timout",
        "'timout' is not a ccxt setting of binance (did you mean 'timeout'?)",
    )


def test_config_options_and_secrets_reach_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_BINANCE_KEY", "key-from-env")
    strategy = _strategy(
        tmp_path,
        "exchange: binance, symbol: BTC/USDT, timeframe: 1h, start: '2024-01-01',\n"
        "        config: {timeout: 1234}, options: {recvWindow: 7000},\n"
        "        api_key: '${TEST_BINANCE_KEY}'",
    )
    config, _ = load_strategy(strategy)
    client = build_pipeline(config).data.client  # type: ignore[attr-defined]

    assert (client.timeout, client.options["recvWindow"], client.apiKey) == (
        1234,
        7000,
        "key-from-env",
    )
    assert client.enableRateLimit is True


def test_a_key_written_into_the_file_is_refused(tmp_path: Path) -> None:
    strategy = _strategy(
        tmp_path,
        "exchange: binance, symbol: BTC/USDT, timeframe: 1h, start: '2024-01-01',\n"
        "        api_key: abc123",
    )
    with pytest.raises(ConfigError) as info:
        load_strategy(strategy)
    assert [str(p) for p in info.value.problems] == [
        f"{strategy}:3:18 data.api_key: a secret must be an environment variable reference "
        "such as ${API_KEY}, never the value itself"
    ]


def test_a_misspelt_exchange_in_a_strategy_file_is_located(tmp_path: Path) -> None:
    strategy = _strategy(
        tmp_path, "exchange: krakn, symbol: BTC/USD, timeframe: 1h, start: '2024-01-01'"
    )
    with pytest.raises(ConfigError) as info:
        load_strategy(strategy)
    (problem,) = info.value.problems
    assert re.fullmatch(
        rf"{re.escape(str(strategy))}:2:\d+ data\.exchange: must be a ccxt exchange id such as "
        r"binance, kraken or okx; was 'krakn' \(did you mean 'kraken'\?\)",
        str(problem),
    ), str(problem)


def _strategy(tmp_path: Path, data: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: ccxt_keys\n"
        f"data: {{kind: ccxt, {data}}}\n"
        "features: [{kind: log_return}]\n"
        "model:\n"
        "  kind: sklearn\n"
        "  estimator: sklearn.linear_model.LogisticRegression\n"
        "  walk_forward: {train_window: 100, retrain_every: 50}\n"
        "signal: {kind: threshold, threshold: 0.1}\n"
        "risk: {sizing: {kind: fixed_fraction, fraction: 0.1}}\n"
        "execution: {kind: simulated}\n"
    )
    return path
