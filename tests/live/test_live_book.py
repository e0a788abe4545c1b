"""A paper run with ``data.order_book`` reads the exchange's book at each bar: the book
features are the backtest's over the snapshots the run recorded, a bad or missing
snapshot leaves the one before in force, and a restart rebuilds the same features."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.live.live_emulated import (
    STRATEGY,
    EmulatedRun,
    crash,
    emulated_run,
    make_bars,
    rows,
    tick_bars,
)
from tests.live.test_live_stream import FakeProBinance
from tradeloom.cli.main import main
from tradeloom.domain import Bars
from tradeloom.engine.features import compute_features
from tradeloom.engine.wiring import build_pipeline
from tradeloom.live.tick.session import LiveSession
from tradeloom.plugins.data.auxiliary import join_asof
from tradeloom.plugins.data.book_snapshots import BookSnapshot, snapshots_frame
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
from tradeloom.plugins.data.order_book import OrderBookInput
from tradeloom.schemas import load_strategy
from tradeloom.testing import BookProfile, MarketRules, OrderBook, ServerError, book_levels

SYMBOL = "BTC/USDT"
DEPTH = 2
BOOKED = STRATEGY.replace(
    "  cache_dir: cache\n",
    "  cache_dir: cache\n  order_book: {path: book.parquet, available_after: 0s}\n",
).replace(
    "  - {kind: rsi, window: 14}\n",
    "  - {kind: rsi, window: 14}\n  - {kind: spread_bps}\n  - {kind: book_imbalance, levels: 2}\n",
)


def record_book(bars: pd.DataFrame, path: Path, seed: int = 11) -> None:
    """Write a recorded book of two levels, one snapshot at each bar's open."""
    rng = np.random.default_rng(seed)
    snapshots = []
    for opened, price in zip(bars.index, bars["open"], strict=True):
        half = float(rng.uniform(0.5, 3.0))
        sizes = rng.uniform(0.1, 4.0, 4).round(4)
        snapshots.append(
            BookSnapshot(
                SYMBOL,
                int(opened.value // 1_000_000),
                ((price - half, sizes[0]), (price - half - 1, sizes[1])),
                ((price + half, sizes[2]), (price + half + 1, sizes[3])),
            )
        )
    snapshots_frame(snapshots, DEPTH).to_parquet(path)


def backtest_features(strategy: Path, bars: pd.DataFrame, book: Path) -> pd.DataFrame:
    """The features a backtest computes over ``bars`` joined with the book file ``book``."""
    config, _ = load_strategy(strategy, ())
    frame = bars.copy()
    frame.index = frame.index.as_unit("ns")
    series = OrderBookInput(book, 0, DEPTH).load((SYMBOL,), "reject")
    joined = join_asof(Bars(frame, SYMBOL, "1h", 3600), series)
    return compute_features(build_pipeline(config), joined)


def _book(bid: str, ask: str, size: str = "1") -> OrderBook:
    return OrderBook(((Decimal(bid), Decimal(size)),), ((Decimal(ask), Decimal(1)),), 0)


def test_paper_reads_the_book_at_each_bar_and_steps_the_backtests_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bars = make_bars()
    record_book(bars, tmp_path / "book.parquet")
    with emulated_run(tmp_path, monkeypatch, bars=bars, text=BOOKED) as run:
        exchange = run.emulator.exchange
        quoted = exchange.order_book
        hostile: list[OrderBook] = []

        def served(market_id: str, limit: int | None = None) -> OrderBook:
            return hostile.pop() if hostile else quoted(market_id, limit)

        monkeypatch.setattr(exchange, "order_book", served)
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        runner.source.feed.sleep = lambda seconds: None  # type: ignore[attr-defined]
        tick_bars(run, runner, 3)  # bars 100 .. 102
        hostile.append(_book("30000", "20000"))
        tick_bars(run, runner, 1)  # bar 103: a crossed book
        run.emulator.faults.next("GET /api/v3/depth", ServerError(), times=5)
        tick_bars(run, runner, 1)  # bar 104: the exchange does not answer, 5 times
        hostile.append(_book("20000", "20001", size="-2"))
        tick_bars(run, runner, 1)  # bar 105: a negative size
        hostile.append(_book("NaN", "20001"))
        tick_bars(run, runner, 1)  # bar 106: a price that is not a number
        tick_bars(run, runner, 2)  # bars 107, 108
        session = runner.session_or_fail
        assert isinstance(session, LiveSession)
        live = session.history.features()
        crash(runner)  # kill -9: what the ticks committed is all there is

        journal = tmp_path / "paper" / "journal.sqlite"
        problems = rows(journal, "book_problem")
        assert [(r["bar"], r["code"]) for r in problems] == [
            (103, "crossed"),
            (104, "unreachable"),
            (105, "negative_size"),
            (106, "malformed"),
        ]
        assert problems[0]["message"] == (
            "order book of BTC/USDT at 2024-01-05T08:00Z: a crossed book (best bid >= best "
            "ask); rejected (1 so far), the snapshot before stays in force"
        )
        assert problems[1]["message"].startswith(
            "order book of BTC/USDT: no snapshot (ExchangeUnavailable: order book of "
            "BTC/USDT: no answer after 5 attempts; last error ExchangeNotAvailable: "
        )
        assert problems[1]["message"].endswith(
            "the snapshot before stays in force (2024-01-05T07:00Z)"
        )
        assert problems[3]["message"] == (
            "order book of BTC/USDT: no snapshot (DataError: order book of BTC/USDT: a level "
            "of bids is not finite: [nan, 1.0]); the snapshot before stays in force "
            "(2024-01-05T07:00Z)"
        )
        taken = rows(journal, "book_snapshot")
        assert [r["bar"] for r in taken] == [100, 101, 102, 107, 108]
        # read at the bar's close, on the run's clock (the emulator's: no close delay)
        read_at = [pd.Timestamp(r["read_at"]) for r in taken]
        assert read_at == [bars.index[b + 1] for b in (100, 101, 102, 107, 108)]

        # the first live snapshot is the emulator's book then: around bar 101's open
        price = Decimal(repr(float(bars["open"].iloc[101])))
        first = book_levels(price, MarketRules(), BookProfile(), 0, limit=DEPTH)
        assert taken[0]["bids"] == [[float(p), float(q)] for p, q in first.bids]
        recorded = pd.read_parquet(tmp_path / "paper" / "book.parquet")
        assert len(recorded) == 101 + 5  # recorded up to the start (bar 100 opens), then live
        assert recorded["timestamp"].iloc[-5:].tolist() == read_at

        # a backtest over the recorded snapshots computes the same features, bit for bit
        reference = backtest_features(
            run.strategy, bars.iloc[:109], tmp_path / "paper" / "book.parquet"
        )
        pd.testing.assert_frame_equal(live, reference, check_freq=False)
        spread = live["spread_bps"]
        # bars 103 to 106 keep the snapshot read at 102's close; 107 reads a fresh one
        assert spread.iloc[103:107].tolist() == [spread.iloc[102]] * 4
        fresh = [float(x) for x in taken[3]["bids"][0] + taken[3]["asks"][0]]
        mid = (fresh[0] + fresh[2]) / 2
        assert spread.iloc[107] == (fresh[2] - fresh[0]) / mid * 10_000 != spread.iloc[102]

        # the restart gives the past bars the same features, then goes on reading
        runner = run.runner(tmp_path / "paper", mode="paper")
        runner.start()
        session = runner.session_or_fail
        assert isinstance(session, LiveSession)
        pd.testing.assert_frame_equal(session.history.features(), live)
        tick_bars(run, runner, 1)
        runner.stop("test over")
        assert [r["bar"] for r in rows(journal, "book_snapshot")][-1] == 109
        assert len(pd.read_parquet(tmp_path / "paper" / "book.parquet")) == 101 + 6
        metrics = json.loads((tmp_path / "paper" / "metrics.json").read_text())
        assert metrics["order_book"] == {  # counted across the restart
            "snapshots": 107,
            "live_snapshots": 6,
            "last_snapshot": "2024-01-05T14:00Z",
            "problems": {"crossed": 1, "malformed": 1, "negative_size": 1, "unreachable": 1},
        }


SIMULATED = """\
name: book_sim
seed: 4
data:
  kind: csv
  path: bars.csv
  symbol: BTC/USDT
  timeframe: 1h
  order_book: {path: book.parquet, available_after: 0s}
features:
  - {kind: log_return, period: 1}
  - {kind: spread_bps}
  - {kind: book_imbalance, levels: 2}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 5, max_depth: 3, n_jobs: 1}
  label: {horizon: 1}
  walk_forward: {train_window: 70, retrain_every: 15}
signal: {kind: threshold, threshold: 0.02, min_interval: 1}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
execution: {kind: simulated, fee_bps: 10, initial_cash: 10000, allow_short: true}
"""


@pytest.mark.slow
def test_a_backtest_over_the_book_a_simulated_paper_run_recorded_makes_its_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bars = make_bars(120, seed=8)
    bars.to_csv(tmp_path / "bars.csv")
    record_book(bars, tmp_path / "book.parquet")
    (tmp_path / "s.yaml").write_text(SIMULATED)
    paper, backtest = tmp_path / "paper", tmp_path / "backtest"

    played = main(["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
                   "--max-bars", "45", "--out", str(paper), "-q"])  # fmt: skip
    recorded = paper / "book.parquet"
    tested = main(["run", "s.yaml", "--set", f"data.order_book.path={recorded}",
                   "--out", str(backtest), "-q"])  # fmt: skip
    original = main(["run", "s.yaml", "--out", str(tmp_path / "original"), "-q"])

    assert (played, tested, original) == (0, 0, 0)
    live = range(60, 105)  # the first half of the bars is the paper run's history
    assert [r["bar"] for r in rows(paper / "journal.sqlite", "book_snapshot")] == list(live)
    # each live snapshot is the emulator's, read 2 s (live.close_delay_seconds) after
    # its bar's close: the next bar is the first to see it, in both runs
    book = pd.read_parquet(recorded)
    assert book["timestamp"].iloc[-45:].tolist() == [
        bars.index[b + 1] + pd.Timedelta(seconds=2) for b in live
    ]

    def decisions(run: Path, kind: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k not in ("id", "order_id")}  # client ids differ
            for r in rows(run / "journal.sqlite", kind)
            if r["bar"] in live
        ]

    for kind in ("signal", "risk_decision", "order", "fill"):
        assert decisions(paper, kind) == decisions(backtest, kind), kind
    assert len(decisions(paper, "signal")) > 5 and len(decisions(paper, "order")) >= 2
    # the live book mattered: over the original recording the decisions differ
    assert decisions(paper, "signal") != decisions(tmp_path / "original", "signal")


class FakeProBook(FakeProBinance):
    """A ccxt.pro client streaming the emulator's candles and, marked by its sizes, a book."""

    has: Mapping[str, bool] = {"watchOHLCV": True, "watchOrderBook": True}

    def __init__(self, run: EmulatedRun) -> None:
        super().__init__(run)
        self.books = 0

    async def watch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        await asyncio.sleep(0.002)
        self.books += 1
        price = float(self.run.bars["open"].iloc[self.run.emulator.exchange.position])
        return {
            "bids": [[price - 1.0, 7.5], [price - 2.0, 8.5]][:limit],
            "asks": [[price + 1.0, 2.5], [price + 2.0, 3.5]][:limit],
            "timestamp": None,
        }


def test_with_a_websocket_the_book_comes_from_watch_order_book(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bars = make_bars()
    record_book(bars, tmp_path / "book.parquet")
    # as in test_live_stream: a bar closes when the next candle arrives, within a 2 s grace
    text = BOOKED.replace("stream: poll", "stream: websocket").replace(
        "close_delay_seconds: 0", "close_delay_seconds: 2"
    )
    with emulated_run(tmp_path, monkeypatch, bars=bars, text=text) as run:
        fake = FakeProBook(run)
        with use_pro_client_factory("binance", lambda settings: fake):
            runner = run.runner(tmp_path / "run", mode="paper")
            runner.start()
            feed = runner.book_feed
            assert feed is not None and feed.stream is not None
            deadline = time.monotonic() + 10
            while not feed.stream.healthy and time.monotonic() < deadline:
                time.sleep(0.01)
            for _ in range(6):
                run.emulator.advance()
                deadline = time.monotonic() + 10
                while runner.tick() == 0 and time.monotonic() < deadline:
                    pass
            session = runner.session_or_fail
            assert isinstance(session, LiveSession)
            live = session.history.features()
            runner.stop("test over")
        depth_requests = len(run.emulator.requests("GET /api/v3/depth"))

    taken = rows(tmp_path / "run" / "journal.sqlite", "book_snapshot")
    assert [r["bar"] for r in taken] == list(range(100, 106))
    assert all([b[1] for b in r["bids"]] == [7.5, 8.5] for r in taken)  # the stream's
    assert fake.books > 0 and depth_requests == 0  # no REST read of the book
    reference = backtest_features(run.strategy, bars.iloc[:106], tmp_path / "run" / "book.parquet")
    pd.testing.assert_frame_equal(live, reference, check_freq=False)
