"""``tradeloom status RUN_DIR``: what a run is doing, from its journal."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.reporting.json_output import add_json_option, print_json

__all__ = ["add_parser", "show_status"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``status`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "status",
        help="what a run is doing: trading state, position, orders, equity, last bar, errors",
        description="""Show a run's trading state (ACTIVE, REDUCING or HALTED, and why), its
        positions, open orders, equity and today's P&L, the last bar and how long ago it
        closed, data staleness, health and the last errors, from its journal. Works while a
        paper or live run trades (it reads the journal without locking it), after it stopped or
        was killed, and on a backtest's directory. Exit 0, or 2 with one line when RUN_DIR is
        not a run or its journal cannot be read.""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    add_json_option(parser, "status")
    parser.set_defaults(command=show_status)


def show_status(args: argparse.Namespace) -> int:
    """Print the run's status; return the exit code."""
    from tradeloom.engine.status_rows import read_status
    from tradeloom.engine.status_text import format_status
    from tradeloom.journal.outbox import publisher_lag

    status = read_status(args.run_dir)
    publishers = publisher_lag(args.run_dir)
    if args.json:
        events = [{"name": n, "acknowledged": a, "behind": b} for n, a, b in publishers]
        print_json("status", {**status.to_json(), "events": events})
    else:
        print(format_status(status))
        for name, acked, behind in publishers:
            print(f"events {name}: published through row {acked}, {behind} committed rows behind")
    return 0
