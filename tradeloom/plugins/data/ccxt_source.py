"""The ``ccxt`` data source: an exchange's bars, read through the local Parquet cache.

``load`` makes the cache cover ``start`` to ``end`` (or to the last closed bar),
downloading only the bars it does not hold (`download`), then returns the cached bars
of that range, validated like every other source's. With ``offline: true`` it never
talks to the exchange and fails, naming the command that would fill the cache, when
the cache does not cover the range.

Building the source makes the ccxt client but sends nothing, so ``tradeloom validate``
works without a network. Credentials are not needed for public bars; when an exchange
wants them, they come only from ``${ENV}`` references (``api_key``, ``secret``,
``password``), never from ``config``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from tradeloom.domain import Bars
from tradeloom.errors import DataError
from tradeloom.plugins.component import BuildContext, ParamError, Params
from tradeloom.plugins.data.ohlcv_cache import CachedBars, CacheKey, OhlcvCache, default_cache_dir
from tradeloom.plugins.data.retry_policy import RetryParams
from tradeloom.plugins.data.timestamps import parse_utc_timestamp
from tradeloom.plugins.data.validation import ValidationPolicy, validate_bars
from tradeloom.plugins.registry import did_you_mean
from tradeloom.timeframes import format_timestamp, parse_timeframe

if TYPE_CHECKING:
    import ccxt

    from tradeloom.plugins.data.ccxt_fetch import BarFeed

__all__ = ["CcxtParams", "CcxtSource", "build_ccxt", "fetch_command_hint"]


class CcxtParams(Params):
    """Keys of the ``ccxt`` data source."""

    exchange: str = Field(description="A ccxt exchange id such as binance, kraken or okx.")
    symbol: str = Field(min_length=1, description="Unified market symbol such as BTC/USDT.")
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
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="ccxt client options (exchange.options), as ccxt takes them.",
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Other ccxt client settings (timeout, enableRateLimit, proxies...); "
        "no credentials.",
    )
    api_key: SecretStr | None = Field(default=None, description="API key, as ${ENV_VAR}.")
    secret: SecretStr | None = Field(default=None, description="API secret, as ${ENV_VAR}.")
    password: SecretStr | None = Field(
        default=None, description="API passphrase (some exchanges), as ${ENV_VAR}."
    )

    @field_validator("exchange")
    @classmethod
    def _check_exchange(cls, value: str) -> str:
        from tradeloom.plugins.data.ccxt_client import check_exchange_id

        return check_exchange_id(value)

    @field_validator("timeframe")
    @classmethod
    def _check_timeframe(cls, value: str) -> str:
        parse_timeframe(value)
        return value

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        parse_utc_timestamp(value)
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        end = parse_utc_timestamp(value)
        start = info.data.get("start")
        if start is not None and end <= parse_utc_timestamp(start):
            raise ValueError(f"must be after start ({start}), was '{value}'")
        return value

    def settings(self) -> dict[str, Any]:
        """Return the ccxt constructor settings: ``config``, ``options`` and credentials."""
        settings: dict[str, Any] = dict(self.config)
        if self.options:
            settings["options"] = dict(self.options)
        for name, value in (
            ("apiKey", self.api_key),
            ("secret", self.secret),
            ("password", self.password),
        ):
            if value is not None:
                settings[name] = value.get_secret_value()
        return settings


@dataclass
class CcxtSource:
    """Bars of one market from the cache, topped up from the exchange unless offline.

    Args:
        params: The component's keys.
        cache: The cache (its root resolved against the strategy file).
        client: The ccxt client (no request made until `load`).
        now_ms: The time that decides which bars are closed; None: the exchange's.

    Attributes:
        feed: How bars are read; its ``sleep`` and ``draw`` may be replaced in tests.
    """

    params: CcxtParams
    cache: OhlcvCache
    client: ccxt.Exchange
    now_ms: int | None = None
    feed: BarFeed = field(init=False)

    def __post_init__(self) -> None:
        from tradeloom.plugins.data.ccxt_fetch import BarFeed

        self.feed = BarFeed(
            self.client,
            self.params.symbol,
            self.params.timeframe,
            retry=self.params.retry.policy(),
            page_limit=self.params.page_limit,
        )

    @property
    def key(self) -> CacheKey:
        """The market's cache key."""
        return CacheKey(self.params.exchange, self.params.symbol, self.params.timeframe)

    def load(self) -> Bars:
        """Return the validated bars of the range, downloading what the cache lacks.

        Raises:
            DataError: Offline and the cache lacks part of the range; a bad cache
                file; no such market or timeframe; a bad response; no bars in range;
                bars failing validation.
            ExchangeUnavailable: The exchange did not answer.
        """
        from tradeloom.plugins.data.ccxt_download import download

        start = _ms(self.params.start)
        end = None if self.params.end is None else _ms(self.params.end)
        cached: CachedBars | None
        if self.params.offline:
            cached = self._offline(start, end)
        else:
            cached = download(self.feed, self.cache, start, end, now_ms=self.now_ms).cached
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
            symbol=self.params.symbol,
            timeframe=self.params.timeframe,
            timeframe_seconds=parse_timeframe(self.params.timeframe),
            policy=self.params.validation,
            row_label="bar",
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


def build_ccxt(params: CcxtParams, ctx: BuildContext) -> CcxtSource:
    """Return the ``ccxt`` source; checks the settings and timeframe, sends nothing."""
    from tradeloom.plugins.data.ccxt_client import (
        CREDENTIAL_SETTINGS,
        create_client,
        unknown_settings,
    )

    for key in params.config:
        if key in CREDENTIAL_SETTINGS:
            raise ParamError(
                f"config.{key}",
                "credentials never go in config; use api_key, secret or password with an "
                "${ENV_VAR} reference",
            )
    for key, problem in unknown_settings(params.exchange, params.config).items():
        raise ParamError(f"config.{key}", problem)
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
    return CcxtSource(params=params, cache=OhlcvCache(root), client=client)


def fetch_command_hint(params: CcxtParams, cache_root: Path | None = None) -> str:
    """Return the ``tradeloom data fetch`` command that fills the cache for ``params``.

    Args:
        params: The source's keys.
        cache_root: The cache folder to name (None: the default one).
    """
    parts = [
        "tradeloom data fetch",
        f"--exchange {params.exchange}",
        f"--symbol {shlex.quote(params.symbol)}",
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
