"""``data.symbols``: every built-in source's universe, its one clock and its messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tests.plugins.data.ccxt_emulated import START, make_bars
from tradeloom.domain import Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.ccxt_client import use_client_factory
from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt
from tradeloom.plugins.data.files import CsvParams, ParquetParams, build_csv, build_parquet
from tradeloom.plugins.data.synthetic import (
    SyntheticParams,
    SyntheticSource,
    build_synthetic,
    simulate,
    simulate_universe,
)
from tradeloom.plugins.data.universe import universe_of
from tradeloom.plugins.protocols import DataSource
from tradeloom.testing import ExchangeEmulator

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def ctx(folder: Path, seed: int = 7) -> BuildContext:
    return BuildContext("s", folder, seed=seed)


def messages(model: type[Any], **keys: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(keys)
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def bars_of(frame: pd.DataFrame, symbol: str) -> Bars:
    return Bars(frame, symbol, "1h", 3600)


# --- synthetic ----------------------------------------------------------------------------


def test_one_symbol_gives_a_universe_of_one_equal_to_load() -> None:
    source = SyntheticSource(SyntheticParams(bars=300), seed=7)
    universe = source.load_universe()
    assert universe.symbols == ("BTC/USDT",)
    pd.testing.assert_frame_equal(universe.bars[0].frame, source.load().frame, check_exact=True)
    assert universe.index.equals(source.load().frame.index)
    assert isinstance(source, DataSource)


def test_synthetic_symbols_are_seeded_and_distinct() -> None:
    params = SyntheticParams(bars=500, symbols=SYMBOLS)
    first = build_synthetic(params, ctx(Path("."))).load_universe()
    again = build_synthetic(params, ctx(Path("."))).load_universe()
    other = build_synthetic(params, ctx(Path("."), seed=8)).load_universe()
    assert first.symbols == tuple(SYMBOLS)
    for a, b, c in zip(first.bars, again.bars, other.bars, strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)
        assert not np.array_equal(a.frame["close"], c.frame["close"])
    closes = [b.frame["close"].to_numpy() for b in first.bars]
    assert not np.array_equal(closes[0], closes[1])
    assert first.present().all()
    assert first.absences() == ()


def test_appending_a_symbol_changes_no_earlier_one() -> None:
    two = simulate_universe(SyntheticParams(bars=400, symbols=SYMBOLS[:2], correlation=0.7), 3)
    three = simulate_universe(SyntheticParams(bars=400, symbols=SYMBOLS, correlation=0.7), 3)
    for a, b in zip(two, three[:2], strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)


def test_without_correlation_the_first_market_is_the_single_market() -> None:
    single = simulate(SyntheticParams(bars=400), 3).frame
    first = simulate_universe(SyntheticParams(bars=400, symbols=SYMBOLS, correlation=0.0), 3)[0]
    pd.testing.assert_frame_equal(first.frame, single, check_exact=True)


@pytest.mark.parametrize("correlation", [0.2, 0.5, 0.8])
def test_the_markets_log_returns_are_correlated_as_configured(correlation: float) -> None:
    params = SyntheticParams(bars=60_000, symbols=SYMBOLS, correlation=correlation)
    markets = simulate_universe(params, 11)
    returns = np.array([np.diff(np.log(m.frame["close"].to_numpy())) for m in markets])
    pairs = np.corrcoef(returns)[np.triu_indices(len(SYMBOLS), 1)]
    assert np.abs(pairs - correlation).max() < 0.05, pairs


def test_synthetic_symbol_keys_are_checked() -> None:
    assert messages(SyntheticParams, symbol="A/B", symbols=["A/B", "C/D"]) == [
        ((), "Value error, set symbol (one market) or symbols (a universe), not both")
    ]
    assert messages(SyntheticParams, symbols=["A/B", "C/D", "A/B"]) == [
        (
            ("symbols",),
            "Value error, 'A/B' is listed twice (items 0 and 2); list each symbol once",
        )
    ]
    assert messages(SyntheticParams, correlation=0.3) == [
        (
            (),
            "Value error, correlation applies to symbols (a universe); remove it or list symbols",
        )
    ]
    assert messages(SyntheticParams, symbols=["A/B"], correlation=1.0)[0][0] == ("correlation",)
    assert messages(SyntheticParams, symbols=[]) == [
        (("symbols",), "Value error, must list at least one symbol")
    ]


def test_load_on_a_universe_is_refused_rather_than_trading_one_symbol() -> None:
    source = SyntheticSource(SyntheticParams(bars=300, symbols=SYMBOLS), seed=7)
    with pytest.raises(DataError) as info:
        source.load()
    assert info.value.lines() == [
        "data.symbols: 3 symbols (BTC/USDT, ETH/USDT, SOL/USDT) need a run that trades a "
        "universe; this one trades one market: set data.symbol instead"
    ]


# --- one clock ------------------------------------------------------------------------------


def test_the_clock_is_the_union_and_absences_are_runs_of_missing_bars() -> None:
    frame = simulate(SyntheticParams(bars=100), 1).frame.iloc[:10]
    late = frame.iloc[3:]  # listed at bar 3
    halted = frame.drop(frame.index[[5, 6]])  # halted for two bars
    universe = universe_of([bars_of(frame.iloc[:8], "A"), bars_of(late, "B"), bars_of(halted, "C")])
    assert universe.index.equals(frame.index)
    present = universe.present()
    assert present[:, 0].tolist() == [True] * 8 + [False] * 2
    assert present[:, 1].tolist() == [False] * 3 + [True] * 7
    assert present[:, 2].tolist() == [True] * 5 + [False] * 2 + [True] * 3
    found = [(a.symbol, a.first, a.last, a.bars) for a in universe.absences()]
    i = frame.index
    assert found == [("A", i[8], i[9], 2), ("B", i[0], i[2], 3), ("C", i[5], i[6], 2)]


def test_timeframes_must_match() -> None:
    frame = simulate(SyntheticParams(bars=100), 1).frame
    hourly = bars_of(frame, "A")
    daily = Bars(frame, "B", "1d", 86400)
    with pytest.raises(DataError) as info:
        universe_of([hourly, daily])
    assert str(info.value) == (
        "data: B has 1d bars and A 1h bars; every symbol of a universe needs the same timeframe"
    )


# --- csv and parquet --------------------------------------------------------------------------


def market(seed: int, bars: int = 60) -> pd.DataFrame:
    frame = simulate(SyntheticParams(bars=100), seed).frame.iloc[:bars]
    return frame.set_axis(pd.DatetimeIndex(frame.index, freq=None))


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_path_template_reads_one_file_per_symbol(tmp_path: Path, suffix: str) -> None:
    frames = {s: market(k).iloc[k:] for k, s in enumerate(SYMBOLS)}  # listed one bar apart
    (tmp_path / "bars").mkdir()
    for symbol, frame in frames.items():
        path = tmp_path / "bars" / f"{symbol.replace('/', '-')}.{suffix}"
        frame.to_csv(path) if suffix == "csv" else frame.to_parquet(path)
    keys = {"path": f"bars/{{symbol}}.{suffix}", "symbols": SYMBOLS}
    source = (
        build_csv(CsvParams(**keys), ctx(tmp_path))  # type: ignore[arg-type]
        if suffix == "csv"
        else build_parquet(ParquetParams(**keys), ctx(tmp_path))  # type: ignore[arg-type]
    )
    universe = source.load_universe()
    assert universe.symbols == tuple(SYMBOLS)
    for bars, (symbol, frame) in zip(universe.bars, frames.items(), strict=True):
        assert bars.symbol == symbol
        pd.testing.assert_frame_equal(bars.frame, frame, check_exact=True, check_freq=False)
    assert universe.index.equals(frames["BTC/USDT"].index)
    assert universe.present()[0].tolist() == [True, False, False]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_long_file_with_a_symbol_column_round_trips(tmp_path: Path, suffix: str) -> None:
    frames = {s: market(k) for k, s in enumerate(SYMBOLS)}
    long = pd.concat([f.assign(Symbol=s) for s, f in frames.items()]).sort_index(kind="stable")
    path = tmp_path / f"long.{suffix}"
    long.to_csv(path) if suffix == "csv" else long.to_parquet(path)
    keys = {"path": path.name, "symbols": SYMBOLS[::-1], "symbol_column": "symbol"}
    source = (
        build_csv(CsvParams(**keys), ctx(tmp_path))  # type: ignore[arg-type]
        if suffix == "csv"
        else build_parquet(ParquetParams(**keys), ctx(tmp_path))  # type: ignore[arg-type]
    )
    universe = source.load_universe()
    assert universe.symbols == tuple(SYMBOLS[::-1])
    for bars in universe.bars:
        pd.testing.assert_frame_equal(
            bars.frame, frames[bars.symbol], check_exact=True, check_freq=False
        )
    one = (
        build_csv(
            CsvParams(path="long.csv", symbol="ETH/USDT", symbol_column="symbol"), ctx(tmp_path)
        )
        if suffix == "csv"
        else None
    )
    if one is not None:
        pd.testing.assert_frame_equal(one.load().frame, frames["ETH/USDT"], check_freq=False)


def test_a_symbol_without_a_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "BTC-USDT.csv").write_text(market(1).to_csv())
    with pytest.raises(ParamError) as info:
        build_csv(CsvParams(path="{symbol}.csv", symbols=SYMBOLS[:2]), ctx(tmp_path))
    assert (info.value.key, info.value.message) == (
        "path",
        f"no file for symbol ETH/USDT: {tmp_path / 'ETH-USDT.csv'}",
    )


def test_a_symbol_missing_from_a_long_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    market(1).assign(symbol="BTC/USDT").to_csv(tmp_path / "long.csv")
    with pytest.raises(ParamError) as info:
        build_csv(
            CsvParams(path="long.csv", symbols=SYMBOLS[:2], symbol_column="symbol"), ctx(tmp_path)
        )
    assert (info.value.key, info.value.message) == (
        "symbols.1",
        f"{tmp_path / 'long.csv'} has no rows for symbol ETH/USDT in column 'symbol'; add "
        "them or remove the symbol",
    )


def test_each_symbols_bars_are_validated_naming_the_symbol(tmp_path: Path) -> None:
    frames = {s: market(k) for k, s in enumerate(SYMBOLS[:2])}
    frames["ETH/USDT"].iloc[4, frames["ETH/USDT"].columns.get_loc("high")] = 1.0
    long = pd.concat([f.assign(symbol=s) for s, f in frames.items()])
    long.to_csv(tmp_path / "long.csv")
    source = build_csv(
        CsvParams(path="long.csv", symbols=SYMBOLS[:2], symbol_column="symbol"), ctx(tmp_path)
    )
    with pytest.raises(DataError) as info:
        source.load_universe()
    assert info.value.lines() == [
        f"data: {tmp_path / 'long.csv'} (ETH/USDT): 1 row has high < low (at "
        f"{frames['ETH/USDT'].index[4]:%Y-%m-%dT%H:%MZ}, line 66); drop it or set "
        "data.validation: repair"
    ]


def test_file_symbol_keys_are_checked() -> None:
    assert messages(CsvParams, path="{symbol}.csv") == [
        ((), "Value error, path holds {symbol}, which needs symbols: [...] to fill it")
    ]
    assert messages(CsvParams, path="all.csv", symbols=["A"]) == [
        (
            (),
            "Value error, symbols needs a path holding {symbol} (one file per symbol) or "
            "symbol_column (one long file)",
        )
    ]
    assert messages(CsvParams, path="{symbol}.csv", symbols=["A"], symbol_column="s") == [
        (
            (),
            "Value error, path holds {symbol} (one file per symbol) and symbol_column is set "
            "(one long file); keep one",
        )
    ]
    assert messages(CsvParams, path="all.csv", symbol_column="s") == [
        ((), "Value error, symbol_column needs symbol or symbols: which rows to read")
    ]


# --- ccxt -------------------------------------------------------------------------------------


def test_ccxt_fetches_and_caches_each_symbol(tmp_path: Path) -> None:
    markets = {s: make_bars(seed=k) for k, s in enumerate(SYMBOLS)}
    keys = {"exchange": "binance", "symbols": SYMBOLS, "timeframe": "1h", "start": "2024-01-02"}
    keys |= {"end": "2024-01-08", "cache_dir": "cache"}
    with (
        ExchangeEmulator(markets, {"USDT": 1000}, start=START) as emulator,
        use_client_factory("binance", lambda settings: emulator.client(**settings)),
    ):
        universe = build_ccxt(CcxtParams(**keys), ctx(tmp_path)).load_universe()
        requests = len(emulator.requests("GET /api/v3/klines"))
    window = slice("2024-01-02", "2024-01-07 23:00")
    for bars, symbol in zip(universe.bars, SYMBOLS, strict=True):
        pd.testing.assert_frame_equal(
            bars.frame, markets[symbol].loc[window], check_exact=True, check_freq=False
        )
        assert (tmp_path / "cache" / "ohlcv" / "binance" / symbol.replace("/", "-")).is_dir()
    assert requests >= len(SYMBOLS)
    offline = build_ccxt(CcxtParams(**keys, offline=True), ctx(tmp_path)).load_universe()
    for a, b in zip(universe.bars, offline.bars, strict=True):
        pd.testing.assert_frame_equal(a.frame, b.frame, check_exact=True)


def test_ccxt_symbol_keys_are_checked() -> None:
    given = {"exchange": "binance", "timeframe": "1h", "start": "2024-01-01"}
    assert messages(CcxtParams, **given) == [
        ((), "Value error, set symbol (one market) or symbols (a universe)")
    ]
    assert messages(CcxtParams, **given, symbol="A/B", symbols=["A/B"]) == [
        ((), "Value error, set symbol (one market) or symbols (a universe), not both")
    ]


# --- informative pairs: a market loaded beside the traded ones --------------------------------


def test_ccxt_fetches_and_caches_an_informative_pair_like_the_traded_market(
    tmp_path: Path,
) -> None:
    markets = {s: make_bars(seed=k) for k, s in enumerate(SYMBOLS[:2])}
    keys = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2024-01-02"}
    keys |= {"end": "2024-01-08", "cache_dir": "cache"}
    with (
        ExchangeEmulator(markets, {"USDT": 1000}, start=START) as emulator,
        use_client_factory("binance", lambda settings: emulator.client(**settings)),
    ):
        source = build_ccxt(CcxtParams(**keys), ctx(tmp_path))
        assert source.informative_refusal("ETH/USDT") is None
        eth = source.load_informative("ETH/USDT")
    window = slice("2024-01-02", "2024-01-07 23:00")
    assert (eth.symbol, eth.timeframe) == ("ETH/USDT", "1h")
    pd.testing.assert_frame_equal(
        eth.frame, markets["ETH/USDT"].loc[window], check_exact=True, check_freq=False
    )
    assert (tmp_path / "cache" / "ohlcv" / "binance" / "ETH-USDT").is_dir()
    offline = build_ccxt(CcxtParams(**keys, offline=True), ctx(tmp_path))
    pd.testing.assert_frame_equal(offline.load_informative("ETH/USDT").frame, eth.frame)
    with pytest.raises(DataError, match=r"^data: binance SOL/USDT 1h: offline and nothing"):
        offline.load_informative("SOL/USDT")


def test_a_long_file_gives_a_pair_its_rows_and_refuses_a_symbol_it_lacks(
    tmp_path: Path,
) -> None:
    frames = {s: market(k) for k, s in enumerate(SYMBOLS[:2])}
    long = pd.concat([f.assign(symbol=s) for s, f in frames.items()]).sort_index(kind="stable")
    long.to_csv(tmp_path / "long.csv")
    params = CsvParams(path="long.csv", symbols=["BTC/USDT"], symbol_column="symbol")
    source = build_csv(params, ctx(tmp_path))
    assert source.informative_refusal("ETH/USDT") is None
    pd.testing.assert_frame_equal(
        source.load_informative("ETH/USDT").frame, frames["ETH/USDT"], check_freq=False
    )
    assert source.informative_refusal("SOL/USDT") == (
        f"{tmp_path / 'long.csv'} has no rows for symbol SOL/USDT in column 'symbol'; add "
        "them or remove symbol:"
    )


def test_a_template_s_pair_without_a_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "BTC-USDT.csv").write_text(market(1).to_csv())
    source = build_csv(CsvParams(path="{symbol}.csv", symbols=["BTC/USDT"]), ctx(tmp_path))
    assert source.informative_refusal("ETH/USDT") == (
        f"no file for symbol ETH/USDT: {tmp_path / 'ETH-USDT.csv'}"
    )


@pytest.mark.parametrize(
    ("symbol", "problem"),
    [
        ("BTC\nUSDT", "holds a line break or a control character"),
        ("BTC\tUSDT", "holds a line break or a control character"),
        (" BTC/USDT", "has spaces around it"),
        ("../etc", "is shaped like a path"),
        ("/etc/passwd", "is shaped like a path"),
        ("BTC//USDT", "is shaped like a path"),
        ("C:\\x", "is shaped like a path"),
        ("~root", "is shaped like a path"),
    ],
)
def test_a_symbol_is_one_line_and_no_path_in_every_source(symbol: str, problem: str) -> None:
    remedy = f"Value error, {problem}; write a market symbol such as BTC/USDT"
    for model, keys in ((SyntheticParams, {}), (CsvParams, {"path": "a.csv"}),
                        (CcxtParams, {"exchange": "binance", "timeframe": "1h",
                                      "start": "2024-01-01"})):  # fmt: skip
        assert messages(model, symbol=symbol, **keys) == [(("symbol",), remedy)]
    listed = f"Value error, item 1, {symbol!r}, {problem}; write a market symbol such as BTC/USDT"
    assert messages(SyntheticParams, symbols=["BTC/USDT", symbol]) == [(("symbols",), listed)]


@pytest.mark.parametrize("symbol", ["BTC/USDT", "BTC/USDT:USDT", "ETH-PERP", "AAPL", "BRK.B"])
def test_market_symbols_pass(symbol: str) -> None:
    assert SyntheticParams(symbol=symbol).symbol == symbol
