"""The Parquet cache and incremental downloads into it, against the emulator."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from tests.plugins.data.ccxt_emulated import KLINES, START, SYMBOL, Sleeps, emulated_binance, ms
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.data import ohlcv_cache
from tradeloom.plugins.data.ccxt_client import create_client
from tradeloom.plugins.data.ccxt_download import download
from tradeloom.plugins.data.ccxt_fetch import BarFeed
from tradeloom.plugins.data.ccxt_retry import ExchangeUnavailable
from tradeloom.plugins.data.files import ParquetParams, build_parquet
from tradeloom.plugins.data.ohlcv_cache import CacheKey, OhlcvCache, default_cache_dir
from tradeloom.runtime.retrying import RetryPolicy
from tradeloom.testing import ExchangeEmulator, ServerError

KEY = CacheKey("binance", SYMBOL, "1h")


def feed(page_limit: int | None = None, attempts: int = 5) -> BarFeed:
    return BarFeed(
        create_client("binance"),
        SYMBOL,
        "1h",
        retry=RetryPolicy(max_attempts=attempts),
        sleep=Sleeps(),
        page_limit=page_limit,
    )


def corrupted(path: Path, reason: str) -> str:
    return (
        f"data: cache file {path} is corrupted ({reason}); delete it and run "
        "tradeloom data fetch again"
    )


# --- the file ------------------------------------------------------------------------------


def test_a_written_file_reads_back_and_is_plain_parquet(tmp_path: Path, bars: pd.DataFrame) -> None:
    cache = OhlcvCache(tmp_path)
    path = cache.write(KEY, bars.iloc[:100], ms(bars.index[0]), ms(bars.index[100]))

    assert path == tmp_path / "ohlcv" / "binance" / "BTC-USDT" / "1h.parquet"
    cached = cache.read(KEY)
    assert cached is not None
    pd.testing.assert_frame_equal(cached.frame, bars.iloc[:100], check_freq=False)
    assert (cached.start_ms, cached.end_ms, cached.path) == (
        ms(bars.index[0]),
        ms(bars.index[100]),
        path,
    )
    # The parquet data source reads the cache file as it is.
    source = build_parquet(
        ParquetParams(path=str(path), timeframe="1h"), BuildContext("s", tmp_path, seed=0)
    )
    pd.testing.assert_frame_equal(source.load().frame, bars.iloc[:100], check_freq=False)
    assert [p.name for p in path.parent.iterdir()] == ["1h.parquet"]  # no temporary left


def test_symbols_become_safe_file_names(tmp_path: Path) -> None:
    cache = OhlcvCache(tmp_path)
    path = cache.path(CacheKey("binanceusdm", "BTC/USDT:USDT", "4h"))
    assert path == tmp_path / "ohlcv" / "binanceusdm" / "BTC-USDT_USDT" / "4h.parquet"
    assert cache.path(CacheKey("x", "A B/C", "1d")).parent.name == "A%20B-C"


def test_nothing_cached_reads_as_none(tmp_path: Path) -> None:
    assert OhlcvCache(tmp_path).read(KEY) is None


def test_a_failed_write_keeps_the_old_file(
    tmp_path: Path, bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = OhlcvCache(tmp_path)
    path = cache.write(KEY, bars.iloc[:10], ms(bars.index[0]), ms(bars.index[10]))
    before = path.read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    # through the cache module's own (lazily imported) name for pyarrow.parquet
    monkeypatch.setattr(ohlcv_cache.pq, "write_table", disk_full)
    with pytest.raises(OSError, match="No space left"):
        cache.write(KEY, bars.iloc[:20], ms(bars.index[0]), ms(bars.index[20]))

    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["1h.parquet"]


def test_a_damaged_file_is_an_error_naming_it(tmp_path: Path) -> None:
    cache = OhlcvCache(tmp_path)
    path = cache.path(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 not really")

    with pytest.raises(DataError) as info:
        cache.read(KEY)

    assert re.fullmatch(
        rf"data: cache file {re.escape(str(path))} is corrupted \(cannot read it as Parquet: "
        r"[^\n]+\); delete it and run tradeloom data fetch again",
        str(info.value),
    ), str(info.value)


def test_a_parquet_file_tradeloom_did_not_write_is_refused(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    cache = OhlcvCache(tmp_path)
    path = cache.path(KEY)
    path.parent.mkdir(parents=True)
    bars.to_parquet(path)

    with pytest.raises(DataError) as info:
        cache.read(KEY)

    assert str(info.value) == corrupted(
        path, "no tradeloom metadata; not a file tradeloom data fetch wrote"
    )


def test_bars_outside_the_recorded_window_are_corruption(
    tmp_path: Path, bars: pd.DataFrame
) -> None:
    cache = OhlcvCache(tmp_path)
    path = cache.write(KEY, bars.iloc[:10], ms(bars.index[0]), ms(bars.index[5]))

    with pytest.raises(DataError) as info:
        cache.read(KEY)

    assert str(info.value) == corrupted(
        path, "bars from 2024-01-01T00:00Z to 2024-01-01T09:00Z outside the window it records"
    )


def test_a_file_of_another_market_is_refused(tmp_path: Path, bars: pd.DataFrame) -> None:
    cache = OhlcvCache(tmp_path)
    other = CacheKey("binance", "BTC-USDT", "1h")  # same file name, another symbol
    path = cache.write(other, bars.iloc[:10], ms(bars.index[0]), ms(bars.index[10]))

    with pytest.raises(DataError) as info:
        cache.read(KEY)

    assert str(info.value) == (
        f"data: cache file {path} holds binance BTC-USDT 1h bars, not binance BTC/USDT 1h; "
        "move it away or choose another cache_dir"
    )


def test_the_cache_folder_comes_from_the_environment() -> None:
    home = Path("~").expanduser()
    assert default_cache_dir({"TRADELOOM_CACHE": "/data/c", "XDG_CACHE_HOME": "/x"}) == Path(
        "/data/c"
    )
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/tradeloom")
    assert default_cache_dir({}) == home / ".cache" / "tradeloom"


# --- downloads ----------------------------------------------------------------------------


def test_a_second_download_asks_only_for_the_bars_after_the_cached_ones(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    cache = OhlcvCache(tmp_path)
    first = download(feed(page_limit=100), cache, ms(bars.index[0]))
    assert (first.fetched, first.requests) == (START, 3)

    emulator.advance(30)
    asked_before = len(emulator.requests(KLINES))
    second = download(feed(page_limit=100), cache, ms(bars.index[0]))

    again = emulator.requests(KLINES)[asked_before:]
    assert [int(r.params["startTime"]) for r in again] == [ms(bars.index[START])]
    assert (second.fetched, second.requests) == (30, 1)
    assert (second.first, second.last) == (bars.index[START], bars.index[START + 29])
    cached = cache.read(KEY)
    assert cached is not None
    pd.testing.assert_frame_equal(cached.frame, bars.iloc[: START + 30], check_freq=False)
    assert cached.end_ms == ms(bars.index[START + 30])  # through the last bar served


def test_a_covered_past_window_needs_no_request(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    cache = OhlcvCache(tmp_path)
    download(feed(), cache, ms(bars.index[0]), ms(bars.index[200]))
    asked = len(emulator.requests())

    result = download(feed(), cache, ms(bars.index[50]), ms(bars.index[150]))

    assert (result.fetched, result.requests) == (0, 0)
    assert len(emulator.requests()) == asked  # not even the clock or the markets


def test_an_earlier_start_downloads_only_the_bars_before_the_window(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    cache = OhlcvCache(tmp_path)
    download(feed(), cache, ms(bars.index[100]), ms(bars.index[200]))

    result = download(feed(), cache, ms(bars.index[0]), ms(bars.index[200]))

    assert result.fetched == 100
    assert [int(r.params["startTime"]) for r in emulator.requests(KLINES)] == [
        ms(bars.index[100]),
        ms(bars.index[0]),
    ]
    cached = cache.read(KEY)
    assert cached is not None
    pd.testing.assert_frame_equal(cached.frame, bars.iloc[:200], check_freq=False)
    assert (cached.start_ms, cached.end_ms) == (ms(bars.index[0]), ms(bars.index[200]))


def test_what_was_read_before_an_outage_is_kept_and_the_next_download_resumes(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    cache = OhlcvCache(tmp_path)
    emulator.faults.on_call(KLINES, 3, ServerError(503))

    with pytest.raises(ExchangeUnavailable):
        download(feed(page_limit=100, attempts=1), cache, ms(bars.index[0]), checkpoint_bars=50)

    cached = cache.read(KEY)
    assert cached is not None
    pd.testing.assert_frame_equal(cached.frame, bars.iloc[:200], check_freq=False)
    assert cached.end_ms == ms(bars.index[200])

    result = download(feed(page_limit=100), cache, ms(bars.index[0]))

    assert int(emulator.requests(KLINES)[-1].params["startTime"]) == ms(bars.index[200])
    assert result.fetched == START - 200
    cached = cache.read(KEY)
    assert cached is not None
    pd.testing.assert_frame_equal(cached.frame, bars.iloc[:START], check_freq=False)


def test_a_damaged_file_is_not_downloaded_over(
    tmp_path: Path, emulator: ExchangeEmulator, bars: pd.DataFrame
) -> None:
    cache = OhlcvCache(tmp_path)
    path = cache.path(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")

    with pytest.raises(DataError, match=r"^data: cache file .* is corrupted"):
        download(feed(), cache, ms(bars.index[0]))

    assert path.read_bytes() == b"garbage"
    assert emulator.requests() == []


def test_a_closed_bar_not_yet_served_is_asked_for_again(tmp_path: Path, bars: pd.DataFrame) -> None:
    cache = OhlcvCache(tmp_path)
    with emulated_binance(bars, START, include_open_kline=False) as emulator:
        # by this clock bar START has closed, but the exchange has not published it yet
        late = ms(bars.index[START + 1]) + 5_000
        first = download(feed(), cache, ms(bars.index[0]), now_ms=late)
        assert first.last == bars.index[START - 1]
        emulator.advance(5)
        second = download(feed(), cache, ms(bars.index[0]))
    assert second.first == bars.index[START]  # not skipped as if it were a gap
    cached = cache.read(KEY)
    assert cached is not None
    pd.testing.assert_frame_equal(cached.frame, bars.iloc[: START + 5], check_freq=False)
