"""``--mode paper --clock simulated``: a paper run with no exchange, on a simulated clock.

The strategy's own bars (the synthetic market, a file, a cached download) are served
by the built-in exchange emulator (`tradeloom.testing.ExchangeEmulator`) on
127.0.0.1, and the real live runner trades them on paper through a real ccxt
client, as it would trade Binance: the same `LiveRunner`, journal, restart, kill
switch and metrics. Only the clock differs: `SimulatedMarket.run` closes one bar
every ``timeframe / speed`` seconds of wall time instead of waiting for the
exchange's bar closes.

The first half of the bars is the history the run starts with (warm-up and the
model's first training); the second half is played bar by bar. A restart continues
from the bar after the last one journaled, so a killed run picks up where it stopped.
The strategy file keeps its own ``data:`` section (the journal records it as written);
only the built data source is swapped for a ``ccxt`` one pointed at the emulator, which
keeps ``data.order_book``: the recorded book is the history's, and each live bar's
book is read from the emulator's order-book endpoint.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import structlog

from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols import LiveFeed
from tradeloom.runner.wiring import Pipeline

if TYPE_CHECKING:
    from tradeloom.runner.live.runner import LiveRunner
    from tradeloom.testing import ExchangeEmulator

__all__ = ["SimulatedMarket", "simulated_run_dir"]

_log = structlog.get_logger("tradeloom.live")

_EXCHANGE = "binance"
"""The exchange the emulator speaks (its klines, markets and errors)."""


def simulated_run_dir(name: str) -> Path:
    """Return ``runs/<name>-paper-simulated``: the same command restarts the same run."""
    return Path("runs") / f"{name}-paper-simulated"


class SimulatedMarket:
    """The emulator serving a strategy's own bars, and the clock that plays them.

    Use it as a context manager around the run: it starts the emulator, routes the
    ``binance`` ccxt clients to it, and stops both on leaving.

    Args:
        pipeline: The built strategy (any data source of one market).
        run_dir: The run directory; a journal there means a restart, which resumes
            after the last bar it journaled.
        speed: Bars are played at this many times real time (inf: no waiting).
    """

    def __init__(self, pipeline: Pipeline, run_dir: Path, *, speed: float) -> None:
        config = pipeline.config
        if len(getattr(config.data.params, "symbols", None) or ()) > 1:
            raise UserError(
                f"{config.locate('data.symbols')} data.symbols: --clock simulated plays one "
                "market; run a universe on paper against an exchange, or backtest it"
            )
        self.pipeline = pipeline
        self.run_dir = run_dir
        self.speed = speed
        self.bars = pipeline.data.load()
        symbol = self.bars.symbol
        if symbol.count("/") != 1 or not all(symbol.split("/")):
            raise UserError(
                f"{config.locate('data.symbol')} data.symbol: --clock simulated serves the "
                f"bars as a BASE/QUOTE market such as BTC/USDT, was '{symbol}'"
            )
        if len(self.bars) < 2:
            raise UserError(f"data: --clock simulated needs at least 2 bars, has {len(self.bars)}")
        self.delay = float(config.live.close_delay_seconds)
        self.start_bar = self._resume_bar()
        self.emulator: ExchangeEmulator | None = None
        self._stack = ExitStack()

    @property
    def length(self) -> int:
        """How many bars the market has."""
        return len(self.bars)

    def _resume_bar(self) -> int:
        """Return the first bar to play: half the data, or after the journal's last bar."""
        first = max(1, len(self.bars) // 2)
        from tradeloom.journal import journal_path, read_rows

        journal = journal_path(self.run_dir)  # journal.sqlite, or journal.json (PostgreSQL)
        if not journal.exists():
            return first

        last = first
        for row in read_rows(journal, ["warm_up", "live_bar"]):
            if row.kind == "warm_up":
                last = max(last, int(row.values["bars"]))
            elif row.bar is not None:
                last = max(last, int(row.bar) + 1)
        return min(last, len(self.bars))

    def __enter__(self) -> SimulatedMarket:
        from tradeloom.plugins.data.ccxt_client import use_client_factory
        from tradeloom.plugins.data.ccxt_stream import use_pro_client_factory
        from tradeloom.testing import ExchangeEmulator

        frame = self.bars.frame[["open", "high", "low", "close", "volume"]]
        quote = self.bars.symbol.split("/")[1]
        cash = getattr(self.pipeline.venue, "initial_cash", 0.0)
        stack = self._stack
        emulator = stack.enter_context(
            ExchangeEmulator(
                {self.bars.symbol: frame},
                {quote: Decimal(str(cash or 0))},
                start=self.start_bar,
                timeframe=self.bars.timeframe,
                include_open_kline=False,
            )
        )
        self.emulator = emulator
        stack.enter_context(
            use_client_factory(
                _EXCHANGE, lambda s: emulator.client(**{**s, "enableRateLimit": False})
            )
        )
        stack.enter_context(use_pro_client_factory(_EXCHANGE, None))  # REST polling only
        self._cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="tradeloom-sim-"))
        _log.info(
            "simulated_market",
            url=emulator.url,
            symbol=self.bars.symbol,
            bars=len(self.bars),
            start_bar=self.start_bar,
            speed=self.speed,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def live_pipeline(self) -> Pipeline:
        """Return the pipeline with its data source swapped for one reading the emulator."""
        from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt

        params = CcxtParams(
            exchange=_EXCHANGE,
            symbol=self.bars.symbol,
            timeframe=self.bars.timeframe,
            start=self.bars.frame.index[0].isoformat(),
            cache_dir=self._cache,
            # the recorded book is the history's; the emulator's book is read live
            order_book=getattr(self.pipeline.config.data.params, "order_book", None),
        )
        config = self.pipeline.config
        context = BuildContext(
            strategy_name=config.name, strategy_dir=config.source.parent, seed=config.seed
        )
        source = build_ccxt(params, context)
        assert isinstance(source, LiveFeed)
        return replace(self.pipeline, data=source)

    def now(self) -> pd.Timestamp:
        """Return the simulated time: the open of the bar in progress, plus the close delay.

        The live runner takes a bar ``live.close_delay_seconds`` after its close; the
        simulated clock stands at that moment of the bar just closed.
        """
        assert self.emulator is not None
        market = pd.Timestamp(self.emulator.exchange.now_ms(), unit="ms", tz="UTC")
        return market + pd.Timedelta(seconds=self.delay)

    def run(self, runner: LiveRunner, stop: threading.Event, *, max_bars: int | None) -> str:
        """Close one bar every ``timeframe / speed`` seconds and tick ``runner`` after each.

        A control request (``tradeloom kill``, ``resume``) is acted on at once, between
        bars; SIGINT and SIGTERM (``stop``) end the run after the tick in progress.

        Returns:
            Why it stopped.
        """
        emulator = self.emulator
        assert emulator is not None
        wait = self.bars.timeframe_seconds / self.speed
        runner.tick()  # bars closed while the run was down, requests made meanwhile
        while not stop.is_set():
            if max_bars is not None and runner.bars_processed >= max_bars:
                return f"processed {runner.bars_processed} bars (--max-bars)"
            if emulator.exchange.position >= self.length:
                return f"the simulated market ended after bar {self.length - 1}"
            if self._sleep(wait, stop, runner):
                return "stopped by a signal"
            emulator.advance()
            runner.tick()
        return "stopped by a signal"

    def _sleep(self, seconds: float, stop: threading.Event, runner: LiveRunner) -> bool:
        """Wait ``seconds`` of wall time, ticking on control requests; True if stopped."""
        if seconds <= 0 or math.isinf(self.speed):
            if runner.inbox.wake.is_set():
                runner.tick()
            return stop.is_set()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if stop.wait(min(left, 0.05)):
                return True
            if runner.inbox.wake.is_set():
                runner.tick()  # the kill switch acts now, not at the next bar
        return stop.is_set()
