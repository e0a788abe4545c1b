"""``tradeloom data fetch``: download an exchange's bars into the local cache.

The arguments are checked by the ``ccxt`` data source's own params model, so the
command line and a strategy's ``data:`` section accept the same values and say the
same things about bad ones (each message names the option). What was downloaded is
printed; gaps and bad bars in the cached series are reported as the data layer
reports them, as warnings, since a strategy reading these bars would meet them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tradeloom.errors import UserError
from tradeloom.runtime import progress

if TYPE_CHECKING:
    from tradeloom.plugins.data.ccxt_source import CcxtSource

__all__ = ["add_fetch_parser", "fetch"]

_OPTIONS = {
    "exchange": "--exchange",
    "symbol": "--symbol",
    "timeframe": "--timeframe",
    "start": "--start",
    "end": "--end",
    "cache_dir": "--cache-dir",
}


def add_fetch_parser(data: argparse._SubParsersAction[Any]) -> None:
    """Add ``fetch`` to the ``data`` command's subcommands."""
    fetch_parser = data.add_parser(
        "fetch",
        help="download an exchange's closed bars into the local Parquet cache",
        description="Download closed OHLCV bars through ccxt into the cache the ccxt data "
        "source reads; only the bars the cache lacks are requested. Exit codes: 0 done, "
        "1 the exchange did not answer or cannot be reached (offline), 2 invalid input.",
    )
    fetch_parser.add_argument("--exchange", required=True, help="ccxt exchange id (binance)")
    fetch_parser.add_argument(
        "--symbol",
        required=True,
        action="append",
        help="unified symbol (BTC/USDT); repeat it for several, fetched in turn",
    )
    fetch_parser.add_argument("--timeframe", required=True, help="bar length (1h)")
    fetch_parser.add_argument("--start", required=True, help="UTC time of the first bar")
    fetch_parser.add_argument(
        "--end", help="UTC bound on open times, exclusive (default: up to the last closed bar)"
    )
    fetch_parser.add_argument(
        "--cache-dir", help="cache folder (default $TRADELOOM_CACHE, else ~/.cache/tradeloom)"
    )
    fetch_parser.set_defaults(command=fetch)


def fetch(args: argparse.Namespace) -> int:
    """Run ``tradeloom data fetch`` and return the exit code.

    Raises:
        UserError: A bad argument, a bad cache file, no such market, a bad response.
        ServiceUnreachable: The exchange's host name does not resolve (exit 1).
        ExchangeUnavailable: The exchange did not answer (exit 1).
    """
    symbols: list[str] = args.symbol
    twice = sorted({s for s in symbols if symbols.count(s) > 1})
    if twice:
        raise UserError(f"--symbol: {', '.join(twice)} given more than once; give each once")
    sources = [_source(args, symbol) for symbol in symbols]  # every argument checked first
    for source in sources:
        run_fetch(source, out=sys.stdout, err=sys.stderr)
    return 0


def run_fetch(source: CcxtSource, *, out: TextIO, err: TextIO) -> int:
    """Download the source's range into its cache and report it on ``out`` and ``err``."""
    from tradeloom.plugins.data.ccxt_download import download
    from tradeloom.plugins.data.timestamps import parse_utc_timestamp
    from tradeloom.plugins.data.validation import DataValidationError, validate_bars
    from tradeloom.time.timeframes import format_timestamp, parse_timeframe

    params = source.params
    start = int(parse_utc_timestamp(params.start).value // 1_000_000)
    end = None if params.end is None else int(parse_utc_timestamp(params.end).value // 1_000_000)
    label = str(source.key)
    with progress.task(f"downloading {label} bars") as shown:
        result = download(
            source.feed, source.cache, start, end, on_page=lambda page: shown.advance(len(page))
        )
    if result.fetched and result.first is not None and result.last is not None:
        requests = "1 request" if result.requests == 1 else f"{result.requests} requests"
        print(
            f"{label}: fetched {_bars(result.fetched)} from {format_timestamp(result.first)} "
            f"to {format_timestamp(result.last)} in {requests}",
            file=out,
        )
    else:
        print(f"{label}: nothing new to fetch", file=out)
    cached = result.cached
    if cached is None or len(cached.frame) == 0:
        print(f"{label}: the exchange has no closed bars from {params.start}", file=out)
        return 0
    frame = cached.frame
    print(
        f"{label}: {_bars(len(frame))} cached from {format_timestamp(frame.index[0])} to "
        f"{format_timestamp(frame.index[-1])} in {cached.path}",
        file=out,
    )
    try:
        validate_bars(
            frame,
            source=label,
            symbol=params.market,
            timeframe=params.timeframe,
            timeframe_seconds=parse_timeframe(params.timeframe),
            policy="reject",
            row_label="bar",
        )
    except DataValidationError as problems:
        for line in problems.lines():
            print(f"warning: {line}", file=err)
    return 0


def _source(args: argparse.Namespace, symbol: str) -> CcxtSource:
    from pydantic import ValidationError

    from tradeloom.plugins.component import BuildContext, ParamError
    from tradeloom.plugins.data.ccxt_source import CcxtParams, build_ccxt
    from tradeloom.schemas.messages import show

    given = {name: getattr(args, name) for name in _OPTIONS if getattr(args, name) is not None}
    given["symbol"] = symbol
    try:
        params = CcxtParams.model_validate(given)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            option = _OPTIONS.get(name, "arguments")
            if error["type"] == "string_too_short":
                message = f"must not be empty, was {show(error['input'])}"
            lines.append(f"{option}: {message}")
        raise _ArgumentErrors(lines) from None
    try:
        return build_ccxt(params, BuildContext("data fetch", Path.cwd(), seed=0))
    except ParamError as exc:
        option = _OPTIONS.get(exc.key.split(".")[0], "arguments")
        raise _ArgumentErrors([f"{option}: {exc.message}"]) from None


class _ArgumentErrors(UserError):
    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        super().__init__("\n".join(lines))

    def lines(self) -> list[str]:
        return list(self._lines)


def _bars(n: int) -> str:
    return "1 bar" if n == 1 else f"{n} bars"
