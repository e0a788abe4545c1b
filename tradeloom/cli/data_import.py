"""``tradeloom data import``: a vendor's CSV or Parquet file of bars into the data catalog.

The work is `tradeloom.plugins.data.vendor_import.import_bars`: the file is read through
a column map, checked by the data policy the file sources apply, and written to the
cache ``tradeloom data fetch`` fills, atomically.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from tradeloom.errors import UserError

__all__ = ["add_import_parser", "import_file"]


def add_import_parser(data: argparse._SubParsersAction[Any]) -> None:
    """Add ``import`` to the ``data`` command's subcommands."""
    parser = data.add_parser(
        "import",
        help="import a vendor's CSV or Parquet bars into the data catalog",
        description="Read a vendor's file of bars through a column map, check it as a "
        "strategy's csv/parquet data is checked, and write it into the local cache beside "
        "the fetched series, where tradeloom data list shows it and a strategy reads it "
        "with data: {kind: catalog}. Importing the same bars again changes nothing. Exit "
        "codes: 0 done, 2 invalid input or bad data (one line each, naming the file's "
        "line or row).",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the vendor's .csv or .parquet")
    parser.add_argument("--symbol", required=True, help="the series' symbol (BTC/USDT, AAPL)")
    parser.add_argument(
        "--map",
        dest="columns",
        metavar="ROLE=COLUMN,...",
        help="the vendor's column of each of time, open, high, low, close, volume, such as "
        "time=Date,open=Open,high=High,low=Low,close=Close,volume=Volume (a role not given "
        "is read from a column of its own name; without a header, column numbers from 1)",
    )
    parser.add_argument(
        "--no-header", action="store_true", help="the CSV file's first line is a bar"
    )
    parser.add_argument(
        "--venue",
        default="local",
        help="where the bars come from, naming the series beside its symbol and timeframe "
        "(default: local)",
    )
    parser.add_argument(
        "--timeframe", help="bar length such as 1h (default: the most common time step)"
    )
    parser.add_argument(
        "--time-format",
        help="strptime codes of the time column, such as '%%d.%%m.%%Y %%H:%%M:%%S.%%f' "
        "(default: ISO 8601, or epoch s/ms/us by magnitude)",
    )
    parser.add_argument(
        "--timezone", default="UTC", help="where naive times are, such as Europe/Zurich"
    )
    parser.add_argument(
        "--format", dest="file_format", choices=["csv", "parquet"], help="default: by suffix"
    )
    parser.add_argument(
        "--validation",
        choices=["reject", "repair"],
        default="reject",
        help="reject: bad rows refuse the file (default); repair: drop them and report",
    )
    parser.add_argument(
        "--calendar",
        default="crypto",
        help="when the market trades (crypto, forex, an exchange code such as XNYS): a "
        "closure is not a gap",
    )
    parser.add_argument(
        "--replace", action="store_true", help="overwrite a series the catalog holds"
    )
    parser.add_argument(
        "--cache-dir", help="catalog folder (default $TRADELOOM_CACHE, else ~/.cache/tradeloom)"
    )
    parser.set_defaults(command=import_file)


def import_file(args: argparse.Namespace) -> int:
    """Run ``tradeloom data import`` and return the exit code.

    Raises:
        UserError: A bad option, or the file fails the data policy (one line each).
    """
    from tradeloom.plugins.data.ohlcv_cache import OhlcvCache, default_cache_dir
    from tradeloom.plugins.data.universe import check_symbol
    from tradeloom.plugins.data.vendor_import import import_bars, parse_column_map
    from tradeloom.time.calendars import get_calendar
    from tradeloom.time.timeframes import format_timestamp, parse_timeframe

    path: Path = args.file
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if args.no_header and (args.file_format or _suffix(path)) == "parquet":
        raise UserError("--no-header: a Parquet file always names its columns")
    for option, value, check in (
        ("--symbol", args.symbol, check_symbol),
        ("--timeframe", args.timeframe, parse_timeframe),
        ("--calendar", args.calendar, get_calendar),
        ("--timezone", args.timezone, _timezone),
    ):
        try:
            if value is not None:
                check(value)
        except ValueError as exc:
            raise UserError(f"{option}: {exc}") from None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.venue):
        raise UserError(
            f"--venue: '{args.venue}' must be a plain name (letters, digits, . _ -) such as yahoo"
        )
    columns = parse_column_map(args.columns, header=not args.no_header)
    root = default_cache_dir() if args.cache_dir is None else Path(args.cache_dir).expanduser()
    done = import_bars(
        path.resolve(),
        OhlcvCache(root),
        venue=args.venue,
        symbol=args.symbol,
        columns=columns,
        header=not args.no_header,
        file_format=args.file_format,
        timeframe=args.timeframe,
        time_format=args.time_format,
        timezone=args.timezone,
        validation=args.validation,
        calendar=args.calendar,
        replace=args.replace,
    )
    frame = done.bars.frame
    span = f"from {format_timestamp(frame.index[0])} to {format_timestamp(frame.index[-1])}"
    if done.unchanged:
        print(f"{done.key}: already imported, {len(frame)} bars {span}; unchanged", flush=True)
        return 0
    verb = "replaced with" if done.replaced else "imported"
    print(f"{done.key}: {verb} {len(frame)} bars {span} into {done.path}", flush=True)
    for issue in done.bars.repaired:
        rows = "1 row" if issue.count == 1 else f"{issue.count} rows"
        print(f"warning: {issue.code}: {rows} dropped (first at {issue.first})", file=sys.stderr)
    for issue in done.bars.gaps:
        gaps = "1 gap" if issue.count == 1 else f"{issue.count} gaps"
        print(f"warning: {gaps} kept (first missing bar at {issue.first})", file=sys.stderr)
    return 0


def _suffix(path: Path) -> str:
    return "parquet" if path.suffix.lower() == ".parquet" else "csv"


def _timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{name}' (an IANA name such as Europe/Zurich)"
        ) from None
