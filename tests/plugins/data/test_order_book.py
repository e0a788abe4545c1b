"""Recorded order books: snapshots from ccxt, the recorder, data.order_book and its checks."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest
import structlog

from tests.plugins.data.ccxt_emulated import START, SYMBOL, emulated_binance, make_bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.book_recorder import record_books
from tradeloom.plugins.data.book_snapshots import (
    BookSnapshot,
    fetch_book,
    snapshot_from_ccxt,
    snapshots_frame,
    watch_book,
)
from tradeloom.plugins.data.files import CsvParams, build_csv
from tradeloom.plugins.data.order_book import OrderBookParams, build_order_book
from tradeloom.plugins.data.validation import DataValidationError
from tradeloom.testing import BookProfile, MarketRules, book_levels

HOUR = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def ctx(folder: Path) -> BuildContext:
    return BuildContext("s.yaml", folder, seed=0)


# --- snapshots ---------------------------------------------------------------------------


def test_fetch_book_reads_the_emulators_book_through_ccxt() -> None:
    profile = BookProfile(levels=3, size=Decimal("0.25"), tilt=Decimal("0.2"))
    bars = make_bars()
    with emulated_binance(bars, START, book=profile) as emulator:
        client = emulator.client()
        snapshot = fetch_book(client, SYMBOL, 2, clock=lambda: 1_700_000_000_123)
    price = Decimal(repr(float(bars["open"].iloc[START])))
    expected = book_levels(price, MarketRules(), profile, 0, limit=2)
    assert snapshot == BookSnapshot(
        SYMBOL,
        1_700_000_000_123,  # Binance spot's depth has no time: the time of receipt
        tuple((float(p), float(q)) for p, q in expected.bids),
        tuple((float(p), float(q)) for p, q in expected.asks),
    )
    assert snapshot.bids[0][1] == 0.3 and snapshot.asks[0][1] == 0.2


def test_an_answer_with_a_time_is_stamped_with_it_and_a_bad_level_is_refused() -> None:
    book = {"timestamp": 1_000, "bids": [[10.0, 1.0]], "asks": [[11.0, 2.0], [12.0, 1.0]]}
    assert snapshot_from_ccxt(book, SYMBOL, 1, received_ms=5_000) == BookSnapshot(
        SYMBOL, 1_000, ((10.0, 1.0),), ((11.0, 2.0),)
    )
    with pytest.raises(
        DataError, match=r"^order book of BTC/USDT: a level of asks is not \[price, size\]: "
    ):
        snapshot_from_ccxt({"bids": [], "asks": [["x", 1]]}, SYMBOL, 5, received_ms=0)
    with pytest.raises(DataError, match=r"^order book of BTC/USDT: bids is not a list of levels"):
        snapshot_from_ccxt({"bids": None, "asks": []}, SYMBOL, 5, received_ms=0)


class _ProClient:
    """A ccxt.pro stand-in: the emulator serves REST only, so the stream is faked."""

    id = "fakepro"

    def __init__(self, streams: bool) -> None:
        self.has = {"watchOrderBook": streams}
        self.calls: list[tuple[str, int]] = []

    async def watch_order_book(self, symbol: str, limit: int) -> dict[str, Any]:
        self.calls.append((symbol, limit))
        return {"timestamp": 7_000, "bids": [[9.5, 1], [9.0, 2]], "asks": [[10.5, 3]]}

    def milliseconds(self) -> int:
        return 9_999


def test_watch_book_awaits_the_next_update_of_a_stream() -> None:
    client = _ProClient(streams=True)
    snapshot = asyncio.run(watch_book(client, SYMBOL, 5))
    assert snapshot == BookSnapshot(SYMBOL, 7_000, ((9.5, 1.0), (9.0, 2.0)), ((10.5, 3.0),))
    assert client.calls == [(SYMBOL, 5)]
    with pytest.raises(ccxt.NotSupported, match=r"^fakepro has no order-book stream"):
        asyncio.run(watch_book(_ProClient(streams=False), SYMBOL, 5))


def test_the_table_has_a_column_per_level_field_and_nan_for_a_shallow_side() -> None:
    stamp = int((T0 + HOUR).value // 1_000_000)
    shallow = BookSnapshot(SYMBOL, stamp, ((10.0, 1.0),), ((11.0, 2.0), (12.0, 4.0)))
    frame = snapshots_frame([shallow], 2)
    assert list(frame.columns) == [
        "timestamp",
        "symbol",
        "bid_price_0",
        "bid_size_0",
        "ask_price_0",
        "ask_size_0",
        "bid_price_1",
        "bid_size_1",
        "ask_price_1",
        "ask_size_1",
    ]
    row = frame.iloc[0]
    assert (row["timestamp"], row["symbol"]) == (T0 + HOUR, SYMBOL)
    assert (row["ask_price_1"], row["ask_size_1"]) == (12.0, 4.0)
    assert math.isnan(row["bid_price_1"]) and math.isnan(row["bid_size_1"])


# --- the recorder --------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _reader(clock: _Clock, cost: float = 0.25) -> Any:
    def read() -> BookSnapshot:
        clock.now += cost  # the request takes a while
        return BookSnapshot(SYMBOL, int(clock.now * 1000), ((1.0, 1.0),), ((2.0, 1.0),))

    return read


def test_the_recorder_keeps_a_fixed_cadence_for_its_duration() -> None:
    clock = _Clock()
    recording = record_books(_reader(clock), every=2, duration=7, clock=clock, sleep=clock.sleep)
    # snapshots due at 0, 2, 4 and 6 s; each wait makes up for the read's 0.25 s
    assert [s.time_ms for s in recording.snapshots] == [100_250, 102_250, 104_250, 106_250]
    assert clock.waits == [1.75, 1.75, 1.75]
    assert not recording.interrupted


def test_the_recorder_stops_at_a_count_and_keeps_what_it_took_when_interrupted() -> None:
    clock = _Clock()
    counted = record_books(_reader(clock), every=0, count=3, clock=clock, sleep=clock.sleep)
    assert len(counted.snapshots) == 3

    taken = 0

    def interrupted() -> BookSnapshot:
        nonlocal taken
        taken += 1
        if taken == 3:
            raise KeyboardInterrupt
        return BookSnapshot(SYMBOL, taken, ((1.0, 1.0),), ((2.0, 1.0),))

    recording = record_books(interrupted, every=1, clock=clock, sleep=clock.sleep)
    assert ([s.time_ms for s in recording.snapshots], recording.interrupted) == ([1, 2], True)
    with pytest.raises(ValueError, match=r"^every must be >= 0, duration > 0 and count >= 1"):
        record_books(interrupted, every=1, count=0)


# --- data.order_book -----------------------------------------------------------------------


def _bars_csv(folder: Path, n: int = 6) -> None:
    index = pd.date_range(T0, periods=n, freq="1h", name="timestamp")
    close = 100 + np.arange(n, dtype=float)
    frame = pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": 10.0},
        index=index,
    )
    frame.to_csv(folder / "bars.csv")


def _book(times: list[pd.Timestamp], bids: list[float], asks: list[float]) -> pd.DataFrame:
    snapshots = [
        BookSnapshot(SYMBOL, int(t.value // 1_000_000), ((b, 1.0),), ((a, 3.0),) if a else ())
        for t, b, a in zip(times, bids, asks, strict=True)
    ]
    return snapshots_frame(snapshots, 1)


def _source(folder: Path, delay: str = "0s", validation: str = "reject") -> Any:
    params = CsvParams.model_validate(
        {
            "path": "bars.csv",
            "symbol": SYMBOL,
            "validation": validation,
            "order_book": {"path": "book.parquet", "available_after": delay},
        }
    )
    return build_csv(params, ctx(folder))


def test_a_snapshot_is_seen_from_the_first_bar_whose_close_is_past_its_publication(
    tmp_path: Path,
) -> None:
    _bars_csv(tmp_path)
    # stamped at the close of bar 0 (01:00), then just after the close of bar 2 (03:00)
    times = [T0 + HOUR, T0 + 3 * HOUR + pd.Timedelta(seconds=1)]
    _book(times, [99.0, 101.0], [100.0, 102.0]).to_parquet(tmp_path / "book.parquet")

    bars = _source(tmp_path).load()

    seen = bars.frame["book_bid_price_0"].tolist()
    assert seen[:3] == [99.0, 99.0, 99.0] and seen[3:] == [101.0, 101.0, 101.0]
    assert bars.frame["book_ask_size_0"].tolist() == [3.0] * 6
    late = _source(tmp_path, delay="2h").load().frame["book_bid_price_0"]
    assert math.isnan(late.iloc[1]) and late.iloc[2] == 99.0  # 01:00 + 2h = bar 2's close
    assert _source(tmp_path).extra_columns() == {
        "book_bid_price_0",
        "book_bid_size_0",
        "book_ask_price_0",
        "book_ask_size_0",
    }


def test_crossed_and_empty_snapshots_are_rejected_with_a_count(tmp_path: Path) -> None:
    _bars_csv(tmp_path)
    times = [T0 + i * HOUR for i in range(5)]
    book = _book(times, [99.0, 100.0, 101.0, 101.0, 98.0], [100.0, 100.0, 0.0, 100.5, 99.0])
    book.to_parquet(tmp_path / "book.parquet")
    where = f"data.order_book: {tmp_path / 'book.parquet'} (BTC/USDT)"

    with pytest.raises(DataValidationError) as caught:
        _source(tmp_path).load()

    assert caught.value.lines() == [
        f"{where}: 1 snapshot has an empty side (no best bid or no best ask) (first at "
        "2024-01-01T02:00Z, row 3); drop it or set data.validation: repair",
        f"{where}: 2 snapshots have a crossed book (best bid >= best ask) (first at "
        "2024-01-01T01:00Z, rows 2, 4); drop them or set data.validation: repair",
    ]


def test_negative_sizes_and_levels_out_of_order_are_rejected_with_a_count(
    tmp_path: Path,
) -> None:
    _bars_csv(tmp_path)
    good = ((99.0, 1.0), (98.0, 2.0)), ((100.0, 1.0), (101.0, 2.0))
    levels = [
        good,
        (((99.0, 1.0), (98.0, -2.0)), good[1]),  # a negative size deeper down
        ((good[0][0], (99.0, 2.0)), good[1]),  # the second bid level is not below the first
        (good[0], (good[1][0], (99.5, 2.0))),  # the second ask level is below the first
        (((99.0, 1.0),), ((100.0, 1.0),)),  # shallow: the missing levels fail nothing
    ]
    snapshots = [
        BookSnapshot(SYMBOL, int((T0 + i * HOUR).value // 1_000_000), bids, asks)
        for i, (bids, asks) in enumerate(levels)
    ]
    snapshots_frame(snapshots, 2).to_parquet(tmp_path / "book.parquet")
    where = f"data.order_book: {tmp_path / 'book.parquet'} (BTC/USDT)"

    with pytest.raises(DataValidationError) as caught:
        _source(tmp_path).load()
    repaired = _source(tmp_path, validation="repair").load()

    assert caught.value.lines() == [
        f"{where}: 1 snapshot has a level with a negative size (first at 2024-01-01T01:00Z, "
        "row 2); drop it or set data.validation: repair",
        f"{where}: 2 snapshots have levels out of order (bids not falling, asks not rising) "
        "(first at 2024-01-01T02:00Z, rows 3, 4); drop them or set data.validation: repair",
    ]
    deeper = repaired.frame["book_bid_size_1"].tolist()
    assert deeper[:3] == [2.0, 2.0, 2.0]  # the first snapshot stays in force until 04:00
    assert all(math.isnan(x) for x in deeper[3:])  # the shallow one, kept, from 04:00


def test_repair_drops_bad_snapshots_and_logs_their_counts(tmp_path: Path) -> None:
    _bars_csv(tmp_path)
    times = [T0 + HOUR, T0 + 2 * HOUR, T0 + 2 * HOUR, T0 + HOUR]
    _book(times, [99.0, 101.0, 97.0, 99.5], [100.0, 100.0, 98.0, 100.0]).to_parquet(
        tmp_path / "book.parquet"
    )

    with structlog.testing.capture_logs() as logs:
        bars = _source(tmp_path, validation="repair").load()

    # the crossed 02:00 snapshot goes; the second 02:00 one stays; the late 01:00 repeat goes
    assert bars.frame["book_bid_price_0"].tolist() == [99.0, 97.0, 97.0, 97.0, 97.0, 97.0]
    [warning] = [e for e in logs if e["event"] == "order_book_repaired"]
    assert (warning["crossed"], warning["duplicate_timestamp"]) == (1, 1)


def test_a_file_that_is_not_a_book_is_refused_when_the_strategy_is_built(
    tmp_path: Path,
) -> None:
    pd.DataFrame({"timestamp": [T0], "bid": [1.0]}).to_parquet(tmp_path / "book.parquet")
    params = OrderBookParams(path="book.parquet", available_after="0s")
    with pytest.raises(ParamError) as caught:
        build_order_book(params, ctx(tmp_path))
    assert (caught.value.key, caught.value.message) == (
        "order_book.path",
        f"{tmp_path / 'book.parquet'} is not a book file: it needs timestamp and bid_price_0, "
        "bid_size_0, ask_price_0, ask_size_0 (found timestamp, bid); write it with tradeloom "
        "data record-book",
    )
    with pytest.raises(ParamError, match=r"^order_book.path: file not found: "):
        build_order_book(OrderBookParams(path="nope.parquet", available_after="0s"), ctx(tmp_path))


def test_a_symbol_missing_from_the_book_file_is_named(tmp_path: Path) -> None:
    _bars_csv(tmp_path)
    book = _book([T0 + HOUR], [99.0], [100.0])
    book["symbol"] = "ETH/USDT"
    book.to_parquet(tmp_path / "book.parquet")
    with pytest.raises(
        DataError,
        match=r"^data.order_book: .*book.parquet: no snapshot of BTC/USDT \(the file's symbols: "
        r"ETH/USDT\); record its book or remove the symbol$",
    ):
        _source(tmp_path).load()


_LIVE_BOOK = """\
name: s
data:
  kind: ccxt
  exchange: binance
  {symbols}
  timeframe: 1h
  start: "2024-01-01"
  order_book: {{path: book.parquet, available_after: 0s}}
features:
  - {{kind: spread_bps}}
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label: {{horizon: 1}}
  walk_forward: {{train_window: 50, retrain_every: 10}}
signal: {{kind: threshold, threshold: 0.1}}
risk:
  sizing: {{kind: fixed_fraction, fraction: 0.1}}
execution: {{kind: simulated}}
"""


@pytest.mark.usefixtures("cli_logging")
def test_paper_runs_read_a_book_of_one_market_and_refuse_one_over_a_universe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradeloom.cli.main import main

    _book([T0 + HOUR], [99.0], [100.0]).to_parquet(tmp_path / "book.parquet")
    one = tmp_path / "one.yaml"
    one.write_text(_LIVE_BOOK.format(symbols="symbol: BTC/USDT"), encoding="utf-8")
    universe = tmp_path / "universe.yaml"
    universe.write_text(
        _LIVE_BOOK.format(symbols="symbols: [BTC/USDT, ETH/USDT]"), encoding="utf-8"
    )

    assert main(["validate", str(one), "--mode", "paper"]) == 0
    capsys.readouterr()
    assert main(["validate", str(universe), "--mode", "paper"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{universe}:8:15 data.order_book: --mode paper reads the order book of one market; "
        "remove data.order_book and the book features from a universe, or run a backtest"
    ]
