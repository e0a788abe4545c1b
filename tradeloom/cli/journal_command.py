"""``tradeloom journal verify RUN_DIR``: check a run's journal, row by row in its hash chain."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.reporting.json_output import add_json_option, print_json

__all__ = ["add_parser", "verify_journal"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``journal`` and its actions to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser("journal", help="inspect a run's journal")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check a run's journal: readable, this format, every row in its hash chain",
        description="""Check RUN_DIR's journal (journal.sqlite, or the PostgreSQL run its
        journal.json names; or a journal file): that it is a tradeloom journal of this format
        and that every row chains to the one before it. Exit 0 with the row count and the last
        hash, or 2 with one line naming the first bad sequence number (a row deleted, inserted
        or edited) or what else is wrong.""",
    )
    verify.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    add_json_option(verify, "journal-verify")
    verify.set_defaults(command=verify_journal)


def verify_journal(args: argparse.Namespace) -> int:
    """Verify the run's journal; return the exit code."""
    from tradeloom.journal import journal_path, verify

    path = args.run_dir
    if path.is_dir() and not path.name.endswith(".sqlite"):
        path = journal_path(path)
    verified = verify(path)
    if args.json:
        body = {"journal": str(path), "rows": verified.rows, "head": verified.head}
        print_json("journal-verify", {**body, "intact": True})
        return 0
    print(f"{path}: {verified.rows} rows, hash chain intact (head {verified.head})")
    return 0
