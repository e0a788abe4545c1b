"""``tradeloom init DIR``: a starter project (`tradeloom.cli.init`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "init"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``init`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "init",
        help="write a starter project into a new folder",
        description="""Write into DIR (new or empty) a strategy that runs offline, its JSON
        Schema for editors, a README and a plugin package to grow. Exit 0, or 2 when DIR holds
        anything.""",
    )
    parser.add_argument("folder", type=Path, metavar="DIR")
    parser.set_defaults(command=init)


def init(args: argparse.Namespace) -> int:
    """Write the starter project; return the exit code."""
    from tradeloom.cli.init import first_command, init_project

    written = init_project(args.folder)
    print(f"wrote {len(written)} files into {args.folder}")
    print(f"next: {first_command(args.folder)}")
    return 0
