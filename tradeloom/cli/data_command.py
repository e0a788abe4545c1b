"""``tradeloom data``: market data, its actions ``fetch`` (`tradeloom.cli.data_fetch`),
``list`` (`tradeloom.cli.data_list`), ``import`` (`tradeloom.cli.data_import`) and
``record-book`` (`tradeloom.cli.data_record_book`)."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.cli.data_fetch import add_fetch_parser
from tradeloom.cli.data_import import add_import_parser
from tradeloom.cli.data_list import add_list_parser
from tradeloom.cli.data_record_book import add_record_book_parser

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``data`` and its actions to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "data",
        help="market data: download exchange bars, list and import the catalog, record order books",
    )
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    add_fetch_parser(actions)
    add_list_parser(actions)
    add_import_parser(actions)
    add_record_book_parser(actions)
