"""``tradeloom data list``: the data catalog, every series fetched or imported.

The rows are built by `tradeloom.plugins.data.catalog.catalog_rows` as plain mappings
and drawn here as a rich table (symbol, timeframe, source, rows, first and last bar,
gaps, size on disk).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from tradeloom.reporting.json_output import add_json_option, print_json

__all__ = ["add_list_parser", "list_catalog", "print_rows"]


def add_list_parser(data: argparse._SubParsersAction[Any]) -> None:
    """Add ``list`` to the ``data`` command's subcommands."""
    parser = data.add_parser(
        "list",
        help="list the data catalog: every cached and imported series",
        description="List every series in the local cache, fetched (tradeloom data fetch) "
        "or imported (tradeloom data import): venue, symbol, timeframe, source, rows, "
        "first and last bar (UTC), gaps (bars missing at the timeframe where the series' "
        "calendar expects them) and size on disk. Exit codes: 0 done, 2 a damaged file.",
    )
    parser.add_argument(
        "--cache-dir", help="catalog folder (default $TRADELOOM_CACHE, else ~/.cache/tradeloom)"
    )
    add_json_option(parser, "data-list")
    parser.set_defaults(command=list_catalog)


def list_catalog(args: argparse.Namespace) -> int:
    """Run ``tradeloom data list`` and return the exit code.

    Raises:
        DataError: A file of the catalog cannot be read (naming it).
    """
    from tradeloom.plugins.data.catalog import catalog_rows
    from tradeloom.plugins.data.ohlcv_cache import default_cache_dir

    root = default_cache_dir() if args.cache_dir is None else Path(args.cache_dir).expanduser()
    rows = catalog_rows(root)
    if args.json:
        print_json("data-list", {"root": str(root), "series": rows})
    else:
        print_rows(rows, root, out=sys.stdout)
    return 0


def print_rows(rows: Sequence[dict[str, Any]], root: Path, *, out: TextIO) -> None:
    """Draw the catalog's rows as a table on ``out`` (a line saying so when empty)."""
    if not rows:
        print(
            f"no series in {root}; add some with tradeloom data fetch or tradeloom data import",
            file=out,
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} series in {root}")
    for name in ("venue", "symbol", "timeframe", "source"):
        table.add_column(name)
    for name in ("rows", "first", "last", "gaps", "size"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(
            row["venue"],
            row["symbol"],
            row["timeframe"],
            row["source"],
            str(row["rows"]),
            row["first"] or "-",
            row["last"] or "-",
            str(row["gaps"]),
            _size(int(row["bytes"])),
        )
    Console(file=out, width=160).print(table)


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    size = n / 1000
    for unit in ("kB", "MB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
