"""``tradeloom data record-book``: record an exchange's order book to Parquet.

Snapshots are read through ccxt's ``fetch_order_book`` at a steady cadence
(`tradeloom.plugins.data.book_recorder`) and written as the book table that
``data.order_book`` reads (`tradeloom.plugins.data.book_snapshots`). The file is
written when recording ends, also after Ctrl-C. Snapshots the data layer would
reject (crossed, empty, out of order) are kept in the file as received and
reported as warnings, as ``data fetch`` reports bad bars.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tradeloom.errors import UserError
from tradeloom.runtime import progress

if TYPE_CHECKING:
    import ccxt
    import pandas as pd

__all__ = ["add_record_book_parser", "record_book"]

_MAX_DEPTH = 5000


def add_record_book_parser(data: argparse._SubParsersAction[Any]) -> None:
    """Add ``record-book`` to the ``data`` command's subcommands."""
    parser = data.add_parser(
        "record-book",
        help="record an exchange's order book snapshots to a Parquet file",
        description="Read the order book through ccxt every --every, for --for (or "
        "--count snapshots, or until Ctrl-C), and write the snapshots to --out for "
        "data.order_book. Exit codes: 0 done, 1 the exchange did not answer, 2 invalid "
        "input.",
    )
    parser.add_argument("--exchange", required=True, help="ccxt exchange id (binance)")
    parser.add_argument("--symbol", required=True, help="unified symbol (BTC/USDT)")
    parser.add_argument(
        "--depth", default="20", help=f"levels a side to keep (1 .. {_MAX_DEPTH}; default 20)"
    )
    parser.add_argument(
        "--every", default="1s", help="time between snapshots, such as 1s or 5m (default 1s)"
    )
    parser.add_argument("--for", dest="duration", help="how long to record, such as 10m")
    parser.add_argument("--count", help="stop after this many snapshots")
    parser.add_argument("--out", required=True, help="the Parquet file to write (.parquet)")
    parser.set_defaults(command=record_book)


def record_book(args: argparse.Namespace) -> int:
    """Run ``tradeloom data record-book`` and return the exit code.

    Raises:
        UserError: A bad argument, or the exchange has no such market.
        ExchangeUnavailable: The exchange did not answer (exit 1).
    """
    from tradeloom.plugins.data.ccxt_client import check_exchange_id, create_client

    depth = _whole("--depth", args.depth, 1, _MAX_DEPTH)
    every = _delay("--every", args.every, allow_zero=True)
    duration = None if args.duration is None else _delay("--for", args.duration)
    count = None if args.count is None else _whole("--count", args.count, 1, 10**9)
    out = _out(args.out)
    try:
        check_exchange_id(args.exchange)
    except ValueError as exc:
        raise UserError(f"--exchange: {exc}") from None
    client = create_client(args.exchange, {})
    return run_record(
        client,
        args.symbol,
        depth,
        out,
        every=every,
        duration=duration,
        count=count,
        report=sys.stdout,
        warn=sys.stderr,
    )


def run_record(
    client: ccxt.Exchange,
    symbol: str,
    depth: int,
    out: Path,
    *,
    every: float,
    duration: float | None,
    count: int | None,
    report: TextIO,
    warn: TextIO,
) -> int:
    """Record ``symbol``'s book from ``client`` into ``out`` and report it.

    Raises:
        UserError: The exchange has no such market or no order book.
        ExchangeUnavailable: The exchange did not answer.
    """
    from tradeloom.plugins.data.book_recorder import record_books
    from tradeloom.plugins.data.book_snapshots import fetch_book, snapshots_frame
    from tradeloom.plugins.data.ccxt_retry import (
        ExchangeUnavailable,
        describe,
        is_network_error,
    )
    from tradeloom.runtime.retrying import RetryPolicy, call_with_retries
    from tradeloom.time.timeframes import format_timestamp

    call_with_retries(
        client.load_markets,
        what=f"{client.id} markets",
        policy=RetryPolicy(),
        is_retryable=is_network_error,
        describe=describe,
        exhausted=ExchangeUnavailable,
    )
    if symbol not in client.markets:
        raise UserError(f"--symbol: {client.id} has no market {symbol}")
    if not client.has.get("fetchOrderBook"):
        raise UserError(f"--exchange: ccxt cannot read order books from {client.id}")
    with progress.task(f"recording the {symbol} book") as shown:
        recording = record_books(
            lambda: fetch_book(client, symbol, depth),
            every=every,
            duration=duration,
            count=count,
            on_snapshot=lambda _: shown.advance(1),
        )
    snapshots = recording.snapshots
    if not snapshots:
        print(f"{symbol}: interrupted before the first snapshot; nothing written", file=report)
        return 130
    _write(snapshots_frame(snapshots, depth), out)
    first, last = snapshots[0].time_ms, snapshots[-1].time_ms
    noun = "snapshot" if len(snapshots) == 1 else "snapshots"
    stopped = " (interrupted)" if recording.interrupted else ""
    print(
        f"{symbol}: recorded {len(snapshots)} {noun} of {depth} levels a side from "
        f"{format_timestamp(first * 1_000_000)} to {format_timestamp(last * 1_000_000)} "
        f"into {out}{stopped}",
        file=report,
    )
    for line in _problems(out, symbol):
        print(f"warning: {line}", file=warn)
    return 130 if recording.interrupted else 0


def _problems(out: Path, symbol: str) -> list[str]:
    from tradeloom.plugins.component import BuildContext
    from tradeloom.plugins.data.order_book import OrderBookParams, build_order_book
    from tradeloom.plugins.data.validation import DataValidationError

    book = build_order_book(
        OrderBookParams(path=str(out), available_after="0s"),
        BuildContext("data record-book", out.parent, seed=0),
    )
    try:
        if book is not None:
            book.load((symbol,), "reject")
    except DataValidationError as problems:
        return problems.lines()
    return []


def _write(frame: pd.DataFrame, out: Path) -> None:
    # Write beside the target and rename: an interrupted write leaves no half file.
    with tempfile.NamedTemporaryFile(dir=out.parent, suffix=".parquet", delete=False) as handle:
        partial = Path(handle.name)
    try:
        frame.to_parquet(partial, index=False)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


def _whole(option: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise UserError(f"{option}: must be a whole number from {low:,} to {high:,}, was '{text}'")
    return value


def _delay(option: str, text: str, *, allow_zero: bool = False) -> float:
    from tradeloom.plugins.data.auxiliary import parse_delay

    try:
        seconds = parse_delay(text)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None
    if seconds == 0 and not allow_zero:
        raise UserError(f"{option}: must be longer than 0s, was '{text}'")
    return float(seconds)


def _out(text: str) -> Path:
    path = Path(text).expanduser().resolve()
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise UserError(f"--out: must be a Parquet file ending in .parquet, was '{text}'")
    if not path.parent.is_dir():
        raise UserError(f"--out: no such folder: {path.parent}")
    return path
