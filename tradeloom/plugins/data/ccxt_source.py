"""The ``ccxt`` data source: an exchange's bars, read through the local Parquet cache.

``load`` makes the cache cover ``start`` to ``end`` (or to the last closed bar),
downloading only the bars it does not hold (`download`), then returns the cached bars
of that range, validated like every other source's. With ``offline: true`` it never
talks to the exchange and fails, naming the command that would fill the cache, when
the cache does not cover the range.

Building the source makes the ccxt client but sends nothing, so ``tradeloom validate``
works without a network. The source is a `LiveFeed` (a paper or live run reads the
bars closed since its last one, by REST or by ccxt.pro's websocket) and a `LiveVenue`:
``execution: {kind: simulated}`` in ``--mode live`` trades on this exchange with
these keys. With ``order_book``, a paper or live run also reads the market's book here
(`live_book`: the recording as the history's book; `order_book` over REST and
`book_stream` over ccxt.pro, at each bar). Credentials are not needed for public
bars; when an exchange wants them, they come only from ``${ENV}`` references
(``api_key``, ``secret``, ``password``), never from ``config``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tradeloom.domain import Bars, Universe
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.data.auxiliary import AsOfRows, Auxiliary, AuxiliarySeries, join_asof
from tradeloom.plugins.data.ccxt_account import ExchangeAccountParams, check_account
from tradeloom.plugins.data.joined import AuxiliaryKey, OrderBookKey, build_joined
from tradeloom.plugins.data.ohlcv_cache import CachedBars, CacheKey, OhlcvCache, default_cache_dir
from tradeloom.plugins.data.order_book import OrderBookInput
from tradeloom.plugins.data.retry_policy import RetryParams
from tradeloom.plugins.data.timestamps import parse_utc_timestamp, utc_nanoseconds
from tradeloom.plugins.data.universe import MarketSymbol, Symbols, one_market_only, universe_of
from tradeloom.plugins.data.validation import ValidationPolicy, validate_bars
from tradeloom.runtime import progress
from tradeloom.runtime.lazy import pandas as pd
from tradeloom.suggestions import did_you_mean
from tradeloom.time.calendars import CRYPTO, TradingCalendar
from tradeloom.time.timeframes import format_timestamp, parse_timeframe

if TYPE_CHECKING:
    import ccxt
    import numpy as np
    import numpy.typing as npt

    from tradeloom.plugins.data.book_snapshots import BookSnapshot
    from tradeloom.plugins.data.book_stream import BookStream
    from tradeloom.plugins.data.ccxt_fetch import BarFeed
    from tradeloom.plugins.data.ccxt_stream import ClosedBarStream
    from tradeloom.plugins.data.live_book import LiveBook
    from tradeloom.text.documents import DocumentFeed

__all__ = ["CcxtParams", "CcxtSource", "ClosedBarFrames", "build_ccxt", "fetch_command_hint"]


class CcxtParams(ExchangeAccountParams):
    """Keys of the ``ccxt`` data source (and of its connection: `ExchangeAccountParams`)."""

    symbol: MarketSymbol | None = Field(
        default=None,
        description="Unified market symbol such as BTC/USDT (or symbols: a universe).",
    )
    symbols: Symbols = None
    timeframe: str = Field(description="Bar length such as 1m, 1h, 1d, as the exchange names it.")
    start: str = Field(description="UTC open time of the first bar (inclusive).")
    end: str | None = Field(
        default=None,
        description="UTC bound on open times (exclusive); omitted: up to the last closed bar.",
    )
    cache_dir: str | None = Field(
        default=None,
        description="Cache folder; relative to the strategy file. Default $TRADELOOM_CACHE, "
        "else ~/.cache/tradeloom.",
    )
    offline: bool = Field(
        default=False, description="Read the cache only; an error if it lacks part of the range."
    )
    validation: ValidationPolicy = Field(
        default="reject",
        description="reject: bad bars (and gaps) are an error; repair: drop them and report.",
    )
    page_limit: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        strict=True,
        description="Bars per request; default the exchange's maximum as ccxt knows it.",
    )
    retry: RetryParams = Field(
        default_factory=RetryParams, description="Retries of network errors."
    )
    auxiliary: AuxiliaryKey = Field(
        default_factory=list,
        description="Series that are not bars (files, or funding_rate: the exchange's "
        "funding rates, cached like bars), joined to the bars as-of with their publication "
        "delay; see the data reference.",
    )
    order_book: OrderBookKey = None

    @model_validator(mode="after")
    def _one_symbol_key(self) -> CcxtParams:
        if (self.symbol is None) == (self.symbols is None):
            raise ValueError(
                "set symbol (one market) or symbols (a universe)"
                + (", not both" if self.symbol is not None else "")
            )
        return self

    @property
    def market(self) -> str:
        """The one market's symbol (the first of ``symbols``)."""
        return self.symbol if self.symbol is not None else (self.symbols or [""])[0]

    @field_validator("timeframe")
    @classmethod
    def _check_timeframe(cls, value: str) -> str:
        parse_timeframe(value)
        return value

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        utc_nanoseconds(value)
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        end = utc_nanoseconds(value)
        start = info.data.get("start")
        if start is not None and end <= utc_nanoseconds(start):
            raise ValueError(f"must be after start ({start}), was '{value}'")
        return value


@dataclass
class CcxtSource:
    """Bars of one market from the cache, topped up from the exchange unless offline.

    Args:
        params: The component's keys.
        cache: The cache (its root resolved against the strategy file).
        client: The ccxt client (no request made until `load`).
        now_ms: The time that decides which bars are closed; None: the exchange's.
        calendar: When the market trades: its closures are not gaps (crypto: always;
            ``--clock simulated`` serving a file's bars gives the file's calendar).
        without_volume: Markets whose volumes read as NaN (``--clock simulated``
            serving a file that has no volume, as zeros).
        served_as: The exchange's symbol of a market named otherwise in the run
            (``--clock simulated`` serves a file's plain ``IBM`` as ``IBM/USD``): its
            requests ask for that one, its bars keep the run's name.

    Attributes:
        feed: How bars are read; its ``sleep`` and ``draw`` may be replaced in tests.
    """

    params: CcxtParams
    cache: OhlcvCache
    client: ccxt.Exchange
    now_ms: int | None = None
    auxiliary: Auxiliary = field(default_factory=Auxiliary)
    calendar: TradingCalendar = CRYPTO
    without_volume: frozenset[str] = frozenset()
    served_as: Mapping[str, str] = field(default_factory=dict)
    feed: BarFeed = field(init=False)
    _feeds: dict[str, CcxtSource] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        from tradeloom.plugins.data.ccxt_fetch import BarFeed

        self.feed = BarFeed(
            self.client,
            self._exchange_symbol,
            self.params.timeframe,
            retry=self.params.retry.policy(),
            page_limit=self.params.page_limit,
            volume=self.params.market not in self.without_volume,
        )

    @property
    def _exchange_symbol(self) -> str:
        return self.served_as.get(self.params.market, self.params.market)

    def serving(
        self,
        *,
        calendar: TradingCalendar,
        without_volume: frozenset[str],
        served_as: Mapping[str, str],
    ) -> CcxtSource:
        """Return this source reading the bars ``--clock simulated`` serves as the file's
        (`tradeloom.plugins.protocols_simulated.ServedFeed`)."""
        return replace(
            self, calendar=calendar, without_volume=without_volume, served_as=dict(served_as)
        )

    @property
    def exchange(self) -> str:
        """The ccxt exchange id."""
        return self.params.exchange

    def trading_client(self) -> ccxt.Exchange:
        """Return the client, for a live run that trades here (``execution: simulated``).

        Raises:
            ParamError: The source has no ``api_key`` and ``secret``.
        """
        if self.params.api_key is None or self.params.secret is None:
            raise ParamError(
                "",
                f"--mode live with execution kind simulated trades on {self.exchange} with "
                "the data source's keys: set api_key: ${ENV_VAR} and secret: ${ENV_VAR} "
                "here, or trade with execution: {kind: ccxt, ...}",
            )
        return self.client

    def closed_bars(self, last_seen: pd.Timestamp, now: pd.Timestamp) -> pd.DataFrame:
        """Return the bars opened after ``last_seen`` and closed by ``now`` (REST).

        Raises:
            RetriesExhausted: The exchange did not answer.
        """
        from tradeloom.plugins.data.ccxt_fetch import poll_closed_bars

        return poll_closed_bars(self.feed, last_seen, now=now)

    def closed_rows(
        self, last_seen_ns: int, now_ns: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Return `closed_bars` as arrays: open times (ns, UTC) and OHLCV rows.

        The live ticker's form of the same bars: a tick builds no frame.

        Raises:
            RetriesExhausted: The exchange did not answer.
        """
        from tradeloom.plugins.data.ccxt_fetch import poll_closed_rows

        return poll_closed_rows(self.feed, last_seen_ns, now_ns)

    def closed_bars_of(
        self, symbol: str, last_seen: pd.Timestamp, now: pd.Timestamp
    ) -> pd.DataFrame:
        """Return ``symbol``'s bars opened after ``last_seen`` and closed by ``now`` (REST):
        one market of the universe, as `closed_bars` reads the one market.

        Raises:
            RetriesExhausted: The exchange did not answer.
        """
        return self._of(symbol).closed_bars(last_seen, now)

    def bar_stream(
        self, *, grace_seconds: float, clock: Callable[[], float]
    ) -> ClosedBarFrames | None:
        """Return the exchange's websocket stream of closed bars, or None (no ccxt.pro one)."""
        from tradeloom.plugins.data.ccxt_stream import ClosedBarStream, pro_client_factory

        factory = pro_client_factory(self.params.exchange, self.params.settings())
        if factory is None:
            return None
        stream = ClosedBarStream(
            factory,
            self.params.market,
            self.params.timeframe,
            grace_seconds=grace_seconds,
            clock=clock,
        )
        return ClosedBarFrames(stream, self.feed.label)

    def bar_stream_of(
        self, symbol: str, *, grace_seconds: float, clock: Callable[[], float]
    ) -> ClosedBarFrames | None:
        """Return ``symbol``'s websocket stream of closed bars (one market of the universe,
        as `bar_stream` is the one market's), or None (no ccxt.pro one)."""
        own = self._of(symbol)
        return own.bar_stream(grace_seconds=grace_seconds, clock=clock)

    def live_book(self, cut_ns: int) -> LiveBook | None:
        """Return the market's book for a paper or live run, or None (no ``order_book``).

        It starts from the recorded book's snapshots published by ``cut_ns`` (the
        decision time of the run's last history bar); the run adds those it reads.

        Raises:
            DataError: The book file cannot be read or fails validation.
        """
        from tradeloom.plugins.data.live_book import LiveBook

        book = self.auxiliary.book
        if not isinstance(book, OrderBookInput):
            return None
        symbol = self.params.market
        history = book.load((symbol,), self.params.validation)
        seconds = parse_timeframe(self.params.timeframe)
        return LiveBook(symbol, book.depth, book.delay_ns, seconds, history, cut_ns)

    def order_book(self, depth: int) -> BookSnapshot:
        """Return the market's book now, ``depth`` levels a side (REST, with retries).

        Raises:
            ExchangeUnavailable: The exchange did not answer.
            ccxt.ExchangeError: The exchange refused the request.
            DataError: The answer is not an order book.
        """
        from tradeloom.plugins.data.book_snapshots import fetch_book

        return fetch_book(
            self.client,
            self._exchange_symbol,
            depth,
            policy=self.params.retry.policy(),
            sleep=self.feed.sleep,
        )

    def book_stream(
        self, depth: int, *, stale_after: float, clock: Callable[[], float]
    ) -> BookStream | None:
        """Return the exchange's websocket stream of the market's book (not started), or
        None (no ccxt.pro ``watch_order_book`` for it)."""
        from tradeloom.plugins.data.book_stream import BookStream
        from tradeloom.plugins.data.ccxt_stream import pro_client_factory

        factory = pro_client_factory(
            self.params.exchange, self.params.settings(), needs="watchOrderBook"
        )
        if factory is None:
            return None
        return BookStream(
            factory,
            self._exchange_symbol,
            depth,
            stale_after=stale_after,
            policy=self.params.retry.policy(),
            clock=clock,
        )

    @property
    def key(self) -> CacheKey:
        """The market's cache key."""
        return CacheKey(self.params.exchange, self.params.market, self.params.timeframe)

    def load(self) -> Bars:
        """Return the validated bars of the range, downloading what the cache lacks.

        Raises:
            DataError: Offline and the cache lacks part of the range; a bad cache
                file; no such market or timeframe; a bad response; no bars in range;
                bars failing validation; the source lists ``symbols`` (use
                `load_universe`).
            ExchangeUnavailable: The exchange did not answer.
        """
        if self.params.symbols is not None:
            raise one_market_only(self.params.symbols)
        bars = self._bars()
        if not self.auxiliary:
            return bars
        return join_asof(bars, self.auxiliary_series(), self.auxiliary.documents())

    def load_universe(self) -> Universe:
        """Return every symbol's validated bars on one clock, each fetched and cached.

        Raises:
            DataError: As `load`, naming the symbol's market.
            ExchangeUnavailable: The exchange did not answer.
        """
        if self.params.symbols is None:
            return universe_of([self.load()])
        bars = [self._for(symbol)._bars() for symbol in self.params.symbols]
        series = self.auxiliary_series() if self.auxiliary else ()
        documents = self.auxiliary.documents()
        return universe_of([join_asof(b, series, documents) for b in bars])

    def informative_refusal(self, symbol: str) -> str | None:
        """Return None: any market of the exchange is fetched as the traded one is (a
        market it does not list fails when the bars are loaded, naming it)."""
        return None

    def load_informative(self, symbol: str) -> Bars:
        """Return ``symbol``'s validated bars of the range, fetched and cached like the
        traded market's (offline: from the cache).

        Raises:
            DataError: As `load`, naming the symbol's market.
            ExchangeUnavailable: The exchange did not answer.
        """
        return self._for(symbol)._bars()

    def symbol_count(self) -> int:
        """Return how many symbols it loads, known before loading (validation's checks)."""
        return len(self.params.symbols or [self.params.market])

    def extra_columns(self) -> set[str]:
        """Return the columns beside OHLCV its bars will have: the auxiliary series."""
        return self.auxiliary.names()

    def auxiliary_series(self) -> tuple[AuxiliarySeries, ...]:
        """Return the declared auxiliary series as read (funding rates through the cache)."""
        from tradeloom.plugins.data.funding import LOOKBACK_MS, FundingCache, FundingRates

        symbols = self.params.symbols or [self.params.market]
        start = _ms(self.params.start) - LOOKBACK_MS
        # the last bar opens before end and its decision, at its close, may see a rate
        # published up to one bar later
        bar_ms = parse_timeframe(self.params.timeframe) * 1000
        end = None if self.params.end is None else _ms(self.params.end) + bar_ms
        rates = FundingRates(
            self.client,
            FundingCache(self.cache.root),
            start,
            end,
            self.params.offline,
            self.params.retry.policy(),
            self.feed.sleep,
        )
        return self.auxiliary.load(symbols, rates.series)

    def live_documents(self) -> dict[str, DocumentFeed]:
        """Return its text sources (``auxiliary`` kind ``text``) for a paper or live run,
        each read again when its file has grown (`tradeloom.plugins.protocols.LiveDocuments`)."""
        return self.auxiliary.document_files()

    def live_auxiliary(self, symbol: str) -> AsOfRows | None:
        """Return ``symbol``'s auxiliary series for a paper or live run (None: none declared):
        each bar's row as the backtest joins it (`AsOfRows`), the series read again as the
        bars close (the funding rates through the cache)."""
        if not self.auxiliary.items:
            return None
        return AsOfRows(self.auxiliary_series, symbol, parse_timeframe(self.params.timeframe))

    def _of(self, symbol: str) -> CcxtSource:
        """Return the source of one market of the universe (made once): itself, for the
        universe of one."""
        if len(self.params.symbols or ()) <= 1 and symbol == self.params.market:
            return self
        own = self._feeds.get(symbol)
        if own is None:
            own = self._feeds[symbol] = self._for(symbol)
        return own

    def _for(self, symbol: str) -> CcxtSource:
        params = self.params.model_copy(update={"symbol": symbol, "symbols": None})
        return CcxtSource(
            params,
            self.cache,
            self.client,
            self.now_ms,
            calendar=self.calendar,
            without_volume=self.without_volume,
            served_as=self.served_as,
        )

    def _bars(self) -> Bars:
        from tradeloom.plugins.data.ccxt_download import download

        start = _ms(self.params.start)
        end = None if self.params.end is None else _ms(self.params.end)
        cached: CachedBars | None
        if self.params.offline:
            cached = self._offline(start, end)
        else:
            with progress.task(f"downloading {self.key} bars") as shown:
                cached = download(
                    self.feed,
                    self.cache,
                    start,
                    end,
                    now_ms=self.now_ms,
                    on_page=lambda page: shown.advance(len(page)),
                ).cached
        label = str(self.key)
        frame = None if cached is None else _window(cached.frame, start, end)
        if frame is None or len(frame) == 0:
            until = f" before {_stamp(end)}" if end is not None else ""
            raise DataError(
                f"data: {label}: the exchange has no bars from {_stamp(start)}{until}; "
                "check data.start and data.end"
            )
        return validate_bars(
            frame,
            source=label,
            symbol=self.params.market,
            timeframe=self.params.timeframe,
            timeframe_seconds=parse_timeframe(self.params.timeframe),
            policy=self.params.validation,
            row_label="bar",
            calendar=self.calendar,
        )

    def _offline(self, start: int, end: int | None) -> CachedBars:
        cached = self.cache.read(self.key)
        path = self.cache.path(self.key)
        root = None if self.params.cache_dir is None else self.cache.root
        hint = fetch_command_hint(self.params, root)
        if cached is None:
            raise DataError(
                f"data: {self.key}: offline and nothing is cached at {path}; run {hint} "
                "or set data.offline: false"
            )
        if end is None:
            covered = cached.start_ms <= start < cached.end_ms
            wanted = f"from {_stamp(start)}"
        else:
            covered = cached.covers(start, end)
            wanted = f"{_stamp(start)} to {_stamp(end)}"
        if not covered:
            has = f"{_stamp(cached.start_ms)} to {_stamp(cached.end_ms)}"
            raise DataError(
                f"data: {self.key}: offline and the cache covers {has}, not {wanted} "
                f"({path}); run {hint} or set data.offline: false"
            )
        return cached


@dataclass
class ClosedBarFrames:
    """A `ClosedBarStream` as a `tradeloom.plugins.protocols.BarStream`: checked frames.

    Args:
        stream: The websocket stream.
        label: The market's label in messages (``binance BTC/USDT 1h``).
    """

    stream: ClosedBarStream
    label: str

    def start(self) -> None:
        """Start watching (`ClosedBarStream.start`)."""
        self.stream.start()

    def stop(self) -> None:
        """Stop watching (`ClosedBarStream.stop`)."""
        self.stream.stop()

    def closed_since(self, last_seen: pd.Timestamp) -> pd.DataFrame | None:
        """Return the checked bars closed after ``last_seen``, or None: poll REST."""
        from tradeloom.plugins.data.ccxt_fetch import bars_frame, check_page

        after_ms = int(last_seen.value // 1_000_000)
        rows = self.stream.closed_since(after_ms)
        if rows is None:
            return None
        return bars_frame([check_page(rows, label=self.label, since_ms=after_ms + 1)])


def build_ccxt(params: CcxtParams, ctx: BuildContext) -> CcxtSource:
    """Return the ``ccxt`` source; checks the settings and timeframe, sends nothing."""
    from tradeloom.plugins.data.ccxt_client import create_client

    check_account(params)
    auxiliary = build_joined(
        params.auxiliary, params.order_book, ctx, params.validation, exchange=True
    )
    client = create_client(params.exchange, params.settings())
    if not client.has.get("fetchOHLCV"):
        raise ParamError("exchange", f"ccxt cannot read OHLCV bars from {params.exchange}")
    timeframes = dict(client.timeframes or {})
    if timeframes and params.timeframe not in timeframes:
        raise ParamError(
            "timeframe",
            f"{params.exchange} serves no {params.timeframe} bars"
            f"{did_you_mean(params.timeframe, list(timeframes))}; its timeframes: "
            f"{', '.join(timeframes)}",
        )
    root = default_cache_dir() if params.cache_dir is None else ctx.resolve_path(params.cache_dir)
    return CcxtSource(params=params, cache=OhlcvCache(root), client=client, auxiliary=auxiliary)


def fetch_command_hint(params: CcxtParams, cache_root: Path | None = None) -> str:
    """Return the ``tradeloom data fetch`` command that fills the cache for ``params``.

    Args:
        params: The source's keys.
        cache_root: The cache folder to name (None: the default one).
    """
    parts = [
        "tradeloom data fetch",
        f"--exchange {params.exchange}",
        f"--symbol {shlex.quote(params.market)}",
        f"--timeframe {params.timeframe}",
        f"--start {shlex.quote(params.start)}",
    ]
    if params.end is not None:
        parts.append(f"--end {shlex.quote(params.end)}")
    if cache_root is not None:
        parts.append(f"--cache-dir {shlex.quote(str(cache_root))}")
    return " ".join(parts)


def _window(frame: pd.DataFrame, start: int, end: int | None) -> pd.DataFrame:
    times = frame.index.asi8 // 1_000_000
    keep = times >= start
    if end is not None:
        keep &= times < end
    return frame[keep]


def _ms(text: str) -> int:
    return int(parse_utc_timestamp(text).value // 1_000_000)


def _stamp(ms: int) -> str:
    return format_timestamp(int(ms) * 1_000_000)
