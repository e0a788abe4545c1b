"""Bars from a websocket stream (ccxt.pro) reach the live run; REST only fills its gaps."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.live.live_emulated import STRATEGY, EmulatedRun, emulated_run, rows
from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory


class FakeProBinance:
    """A ccxt.pro client whose watch_ohlcv answers with the emulator's candles."""

    has: Mapping[str, bool] = {"watchOHLCV": True}

    def __init__(self, run: EmulatedRun) -> None:
        self.run = run
        self.calls = 0

    def bars_of(self, symbol: str) -> pd.DataFrame:
        """The bars the emulator plays for ``symbol``."""
        return self.run.bars

    async def watch_ohlcv(self, symbol: str, timeframe: str, *args: Any, **kw: Any) -> list[Any]:
        await asyncio.sleep(0.002)
        self.calls += 1
        position = self.run.emulator.exchange.position
        bars = self.bars_of(symbol)
        rows = []
        for i in range(max(position - 2, 0), min(position + 1, len(bars))):
            stamp = int(bars.index[i].value // 1_000_000)
            o, h, lo, c, v = (float(x) for x in bars.iloc[i])
            if i == position:  # in progress: only its open is known
                h = lo = c = o
                v = 0.0
            rows.append([stamp, o, h, lo, c, v])
        return rows

    async def close(self) -> None:
        return None


def test_bars_come_from_the_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # the stream closes a bar when the next candle arrives (the emulator's clock jumps by
    # whole bars, so a bar is never closed by the clock within the 2 s grace)
    text = STRATEGY.replace("stream: poll", "stream: websocket").replace(
        "close_delay_seconds: 0", "close_delay_seconds: 2"
    )
    with emulated_run(tmp_path, monkeypatch, text=text) as run:
        fake = FakeProBinance(run)
        with use_pro_client_factory("binance", lambda settings: fake):
            runner = run.runner(tmp_path / "run", mode="paper")
            runner.start()
            klines_at_start = sum("/klines" in r.path for r in run.emulator.log.records())
            for _ in range(30):
                run.emulator.advance()
                deadline = pd.Timestamp.now() + pd.Timedelta(seconds=5)
                while runner.tick() == 0 and pd.Timestamp.now() < deadline:
                    pass
            runner.stop("test over")
            klines = sum("/klines" in r.path for r in run.emulator.log.records())
    assert fake.calls > 0
    bars = [(r["bar"], r["close"]) for r in rows(tmp_path / "run" / "journal.sqlite", "live_bar")]
    expected = [(i, float(run.bars["close"].iloc[i])) for i in range(100, 130)]
    assert bars == expected  # each bar once, closed, with its final close
    assert klines - klines_at_start < 5  # REST served the history, the stream the live bars


class FakeProUniverse(FakeProBinance):
    """As `FakeProBinance`, each symbol answered with its own market's candles."""

    def __init__(self, run: EmulatedRun, markets: Mapping[str, pd.DataFrame]) -> None:
        super().__init__(run)
        self.markets = markets

    def bars_of(self, symbol: str) -> pd.DataFrame:
        """The bars the emulator plays for ``symbol``."""
        return self.markets[symbol]


def test_a_universe_takes_each_symbols_bars_from_its_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.live.test_universe_paper import SYMBOLS, symbols_of, universe_run

    with universe_run(tmp_path, monkeypatch) as run:
        text = run.strategy.read_text()
        run.strategy.write_text(
            text.replace("stream: poll", "stream: websocket").replace(
                "close_delay_seconds: 0", "close_delay_seconds: 2"
            )
        )
        markets = run.markets  # type: ignore[attr-defined]
        clients: list[FakeProUniverse] = []

        def client(settings: Any) -> FakeProUniverse:
            clients.append(FakeProUniverse(run, markets))
            return clients[-1]

        with use_pro_client_factory("binance", client):
            runner = run.runner(tmp_path / "run", mode="paper")
            runner.start()
            klines_at_start = sum("/klines" in r.path for r in run.emulator.log.records())
            for _ in range(20):
                run.emulator.advance()
                deadline = pd.Timestamp.now() + pd.Timedelta(seconds=5)
                while runner.tick() == 0 and pd.Timestamp.now() < deadline:
                    pass
            runner.stop("test over")
            klines = sum("/klines" in r.path for r in run.emulator.log.records())
    journal = tmp_path / "run" / "journal.sqlite"
    bars = [
        (r["bar"], s, r["close"])
        for r, s in zip(rows(journal, "live_bar"), symbols_of(journal, "live_bar"), strict=True)
    ]
    expected = [
        (i, symbol, float(markets[symbol]["close"].iloc[i]))
        for i in range(100, 120)
        for symbol in SYMBOLS
    ]
    assert bars == expected  # each symbol's bar once a tick, closed, with its final close
    assert rows(journal, "symbol_absent") == []
    assert len(clients) == 3 and all(c.calls > 0 for c in clients)  # a stream per symbol
    assert klines - klines_at_start < 5  # REST served the history, the streams the bars
