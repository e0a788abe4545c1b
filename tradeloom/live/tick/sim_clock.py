"""``--mode paper --clock simulated``: a paper run with no exchange, on a simulated clock.

The strategy's own bars (the synthetic market, a file, a cached download; one market,
every market of a universe, or of a portfolio file's strategies, on one clock) are
served by the built-in exchange emulator (`tradeloom.testing.ExchangeEmulator`) on
127.0.0.1, and the real live runner trades them on paper through a real ccxt client,
as it would trade Binance: the same `LiveRunner`, journal, restart, kill switch and
metrics. Only the clock differs: `SimulatedMarket.run` closes one bar every
``timeframe / speed`` seconds of wall time instead of waiting for the exchange's bar
closes.

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
import re
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tradeloom.domain import OHLCV, Bars, Universe
from tradeloom.engine.universe import load_universe
from tradeloom.engine.wiring import Pipeline
from tradeloom.errors import UserError
from tradeloom.plugins.component import BuildContext
from tradeloom.plugins.protocols import LiveFeed
from tradeloom.plugins.protocols_simulated import SERVED_KIND, ServedFeed
from tradeloom.plugins.registry import Registry
from tradeloom.runtime.exchange_clients import use_rest_stand_in, use_websocket_stand_in
from tradeloom.runtime.lazy import logger

if TYPE_CHECKING:
    from tradeloom.core.kernels.specs import LatencyKernel
    from tradeloom.live.tick.services import Ticking
    from tradeloom.testing import ExchangeEmulator

__all__ = ["SimulatedMarket", "simulated_run_dir"]

_log = logger("tradeloom.live")

_EXCHANGE = "binance"
"""The exchange the emulator speaks (its klines, markets and errors)."""

_BINANCE_SYMBOL = re.compile(r"^([A-Z0-9]+)/([A-Z0-9]+)(?::\2)?$")
"""A market the emulator serves as it is (`tradeloom.testing.ExchangeEmulator`'s rule)."""

_PLAIN_QUOTE = "USD"
"""The quote a plain symbol is served in (``IBM`` as ``IBM/USD``)."""


def _markets(pipelines: Sequence[Pipeline], universes: Sequence[Universe]) -> dict[str, Bars]:
    """Return every market the strategies trade, by symbol, each on the common clock.

    Raises:
        UserError: A market misses bars of the clock (the emulator has one clock), or
            two strategies read different bars of one market.
    """
    markets: dict[str, Bars] = {}
    index = universes[0].index
    for pipeline, universe in zip(pipelines, universes, strict=True):
        config = pipeline.config
        key = "data.symbols" if len(universe.symbols) > 1 else "data.symbol"
        for bars in universe.bars:
            symbol = bars.symbol
            if not bars.frame.index.equals(index):
                raise UserError(
                    f"{config.locate(key)} {key}: --clock simulated serves every market on "
                    f"one clock; {symbol} has {len(bars):,} bars where the clock has "
                    f"{len(index):,} (from {index[0]:%Y-%m-%dT%H:%MZ}); backtest it instead"
                )
            seen = markets.setdefault(symbol, bars)
            if seen is not bars and not seen.frame[list(OHLCV)].equals(bars.frame[list(OHLCV)]):
                raise UserError(
                    f"{config.locate(key)} {key}: {symbol} has other bars here than in an "
                    "earlier strategy of the portfolio; the emulator serves one market once"
                )
    return markets


def _served_names(symbols: Sequence[str]) -> dict[str, str]:
    """Return the emulator's market for each symbol that is not one as it is.

    The emulator speaks Binance, whose markets are ``BASE/QUOTE`` in capitals: a plain
    symbol (``IBM``, ``brk.b``, ``EURUSD``) is served as ``IBM/USD`` (its letters and
    digits, in capitals, quoted in USD); the run's bars and journal keep its own name.
    Binance's market id is ``BASEQUOTE``, so two names that would share one get a
    number.
    """
    served: dict[str, str] = {}
    ids = {s.replace("/", "") for s in symbols if _BINANCE_SYMBOL.match(s)}
    for symbol in symbols:
        if _BINANCE_SYMBOL.match(symbol):
            continue
        base = re.sub(r"[^A-Z0-9]", "", symbol.upper()) or "MARKET"
        name, n = f"{base}/{_PLAIN_QUOTE}", 1
        while name.replace("/", "") in ids:
            n += 1
            name = f"{base}{n}/{_PLAIN_QUOTE}"
        ids.add(name.replace("/", ""))
        served[symbol] = name
    return served


def _latency(pipeline: Pipeline, reference: str | None) -> LatencyKernel | None:
    """Return the latency of the profile ``reference`` names, else the strategy's own.

    Raises:
        UserError: ``reference`` names no built-in profile and no file, or the file is
            not a valid profile (located in it).
    """
    from tradeloom.plugins.protocols_orders.realism import BUILT_IN, load_profile

    if reference is None:
        realism = getattr(pipeline.venue, "realism", None)
        return None if realism is None else realism.latency.kernel()
    try:
        profile, _ = load_profile(reference, Path.cwd())
    except KeyError:
        raise UserError(
            f"--venue-latency {reference}: no such profile; expected a built-in one "
            f"({', '.join(BUILT_IN)}) or a .yaml file"
        ) from None
    return profile.latency.kernel()


def simulated_run_dir(name: str) -> Path:
    """Return ``runs/<name>-paper-simulated``: the same command restarts the same run."""
    return Path("runs") / f"{name}-paper-simulated"


class SimulatedMarket:
    """The emulator serving a strategy's own bars, and the clock that plays them.

    Use it as a context manager around the run: it starts the emulator, routes the
    ``binance`` ccxt clients to it, and stops both on leaving.

    Args:
        pipeline: The built strategy (any data source: one market or a universe).
        run_dir: The run directory; a journal there means a restart, which resumes
            after the last bar it journaled.
        speed: Bars are played at this many times real time (inf: no waiting).
        pipelines: Every strategy of a portfolio file (``pipeline`` among them): the
            emulator serves each market any of them trades, once.
        registry: The run's components: the live feed reading the emulator is its data
            kind `SERVED_KIND`, built as the file's components are.
        venue_latency: A realism profile (a built-in name or a file) whose latency the
            emulator holds market orders for, in place of the strategy's own
            ``execution.realism`` (`tradeloom.testing.emulator.latency`).

    Raises:
        UserError: A market is not on the common clock (`_markets`), or there are fewer
            than 2 bars; ``venue_latency`` names no profile.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        run_dir: Path,
        *,
        speed: float,
        registry: Registry,
        pipelines: Sequence[Pipeline] = (),
        venue_latency: str | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.registry = registry
        self.pipelines = tuple(pipelines) or (pipeline,)
        self.latency = _latency(pipeline, venue_latency)
        """The latency the emulator holds market orders for (None: none)."""
        if venue_latency is not None and self.latency is not None:
            for each in self.pipelines:  # a simulated venue applies it in the core itself
                inject = getattr(each.venue, "inject_latency", None)
                if inject is not None:
                    inject(self.latency)
        self.run_dir = run_dir
        self.speed = speed
        universes = [load_universe(p) for p in self.pipelines]
        self.symbols = {id(p): u.symbols for p, u in zip(self.pipelines, universes, strict=True)}
        self.markets = _markets(self.pipelines, universes)
        self.volumeless = frozenset(
            symbol for symbol, bars in self.markets.items() if bars.frame["volume"].isna().all()
        )
        """Markets whose file has no volume."""
        self.served = _served_names(list(self.markets))
        """The emulator's name of each market not served under its own."""
        self.bars = next(iter(self.markets.values()))
        if len(self.bars) < 2:
            raise UserError(f"data: --clock simulated needs at least 2 bars, has {len(self.bars)}")
        self.delay = float(pipeline.config.live.close_delay_seconds)
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
        from tradeloom.testing import ExchangeEmulator

        # a market without volume (a file with no volume column: NaN on every row) is
        # served with zeros, as an exchange would; its live source reads NaN back
        frames = {
            self.served.get(symbol, symbol): bars.frame[list(OHLCV)].fillna({"volume": 0.0})
            for symbol, bars in self.markets.items()
        }
        first = self.served.get(self.bars.symbol, self.bars.symbol)
        quote = first.split("/")[1].split(":")[0]  # a swap's settle is its quote
        cash = self.pipeline.venue.initial_cash
        stack = self._stack
        emulator = stack.enter_context(
            ExchangeEmulator(
                frames,
                {quote: Decimal(str(cash or 0))},
                start=self.start_bar,
                timeframe=self.bars.timeframe,
                include_open_kline=False,
                funding_rates=self._funding_rates(),
                keep_requests=1000,  # a run of any length: the last requests only
            )
        )
        self.emulator = emulator
        emulator.exchange.delay_orders(self.latency)
        stack.enter_context(
            use_rest_stand_in(
                _EXCHANGE, lambda s: emulator.client(**{**s, "enableRateLimit": False})
            )
        )
        stack.enter_context(use_websocket_stand_in(_EXCHANGE, None))  # REST polling only
        self._cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="tradeloom-sim-"))
        _log.info(
            "simulated_market",
            url=emulator.url,
            symbols=list(self.markets),
            bars=len(self.bars),
            start_bar=self.start_bar,
            speed=self.speed,
        )
        return self

    def _funding_rates(self) -> dict[str, pd.Series]:
        """Return each perpetual's funding rates, by symbol: the emulator serves them as
        its swap market's funding history (what the backtest books)."""
        from tradeloom.engine.funding import funding_series
        from tradeloom.plugins.protocols import AuxiliaryData

        out: dict[str, pd.Series] = {}
        for pipeline in self.pipelines:
            name, data = funding_series(pipeline.venue), pipeline.data
            if name is None or not isinstance(data, AuxiliaryData):
                continue
            for item in data.auxiliary_series():
                for symbol in self.symbols[id(pipeline)]:
                    served = self.served.get(symbol, symbol)
                    if item.name == name and item.applies_to(symbol) and served not in out:
                        times = pd.DatetimeIndex(pd.to_datetime(item.times, utc=True))
                        out[served] = pd.Series(item.values, index=times, dtype=float)
        return out

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def live_pipeline(
        self, pipeline: Pipeline | None = None, symbols: tuple[str, ...] | None = None
    ) -> Pipeline:
        """Return ``pipeline`` (the run's by default) with its data source swapped for one
        reading its markets (or ``symbols``) from the emulator."""
        pipeline = self.pipeline if pipeline is None else pipeline
        config = pipeline.config
        data = config.data.params
        symbols = self.symbols[id(pipeline)] if symbols is None else symbols
        entry = self.registry.get("data", SERVED_KIND)
        if entry is None:
            found = len(self.registry.matches("data", SERVED_KIND))
            raise UserError(
                f"--clock simulated reads the emulator with the data kind {SERVED_KIND}, "
                f"which {found or 'no'} installed plugins provide; it needs one"
            )
        keys = {
            "exchange": _EXCHANGE,
            "symbol": symbols[0] if len(symbols) == 1 else None,
            "symbols": list(symbols) if len(symbols) > 1 else None,
            "timeframe": self.bars.timeframe,
            "start": self.bars.frame.index[0].isoformat(),
            "cache_dir": self._cache,
            # the recorded book is the history's; the emulator's book is read live
            "order_book": getattr(data, "order_book", None),
            # each series as the backtest joins it, row by row as the bars close
            "auxiliary": getattr(data, "auxiliary", None) or [],
            "validation": getattr(data, "validation", "reject"),
        }
        context = BuildContext(
            strategy_name=config.name, strategy_dir=config.source.parent, seed=config.seed
        )
        built = entry.component.factory(entry.component.params.model_validate(keys), context)
        assert isinstance(built, ServedFeed)  # (the contract of SERVED_KIND)
        source = built.serving(
            # the file's calendar: its closures (a forex weekend) are no gaps, as in the
            # backtest; its markets without volume have none here either
            calendar=self.markets[symbols[0]].calendar,
            without_volume=frozenset(s for s in symbols if s in self.volumeless),
            served_as={s: self.served[s] for s in symbols if s in self.served},
        )
        assert isinstance(source, LiveFeed)
        return replace(pipeline, data=source)

    def now(self) -> pd.Timestamp:
        """Return the simulated time: the open of the bar in progress, plus the close delay.

        The live runner takes a bar ``live.close_delay_seconds`` after its close; the
        simulated clock stands at that moment of the bar just closed.
        """
        assert self.emulator is not None
        market = pd.Timestamp(self.emulator.exchange.now_ms(), unit="ms", tz="UTC")
        return market + pd.Timedelta(seconds=self.delay)

    def run(self, run: Ticking, stop: threading.Event, *, max_bars: int | None) -> str:
        """Close one bar every ``timeframe / speed`` seconds and tick ``run`` after each.

        A control request (``tradeloom kill``, ``resume``) is acted on at once, between
        bars; SIGINT and SIGTERM (``stop``) end the run after the tick in progress.

        Returns:
            Why it stopped.
        """
        emulator = self.emulator
        assert emulator is not None
        wait = self.bars.timeframe_seconds / self.speed
        run.tick()  # bars closed while the run was down, requests made meanwhile
        while not stop.is_set():
            if max_bars is not None and run.processed() >= max_bars:
                return f"processed {run.processed()} bars (--max-bars)"
            if emulator.exchange.position >= self.length:
                return f"the simulated market ended after bar {self.length - 1}"
            if self._sleep(wait, stop, run):
                return "stopped by a signal"
            emulator.advance()
            run.tick()
        return "stopped by a signal"

    def _sleep(self, seconds: float, stop: threading.Event, run: Ticking) -> bool:
        """Wait ``seconds`` of wall time, ticking on control requests; True if stopped."""
        if seconds <= 0 or math.isinf(self.speed):
            if run.wake.is_set():
                run.tick()
            return stop.is_set()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if stop.wait(min(left, 0.05)):
                return True
            if run.wake.is_set():
                run.tick()  # the kill switch acts now, not at the next bar
        return stop.is_set()
