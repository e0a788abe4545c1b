"""``tradeloom compare RUN_DIR...``: runs side by side, and a page of their equity curves."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.errors import UserError
from tradeloom.reporting.json_output import add_json_option, print_json

__all__ = ["add_parser", "compare"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``compare`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "compare",
        help="compare runs: the settings that differ, the figures side by side, and an HTML "
        "page with their equity curves",
    )
    parser.add_argument("run_dirs", type=given_path, nargs="+", metavar="RUN_DIR")
    parser.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="the HTML page to write (default: compare.html beside the first RUN_DIR, in "
        "the folder that holds it: runs/compare.html); its path is printed",
    )
    parser.add_argument(
        "--single-file",
        action="store_true",
        help="embed plotly.js in the page (4.7 MB more), a page to send on its own; by "
        "default it loads the plotly-<version>.min.js the runs' reports share",
    )
    add_json_option(parser, "compare")
    parser.set_defaults(command=compare)


def compare(args: argparse.Namespace) -> int:
    """Compare the runs, write their page; return the exit code."""
    from tradeloom.files.writing import check_out_text
    from tradeloom.reporting.compare import compare_runs, default_compare_out

    if len(args.run_dirs) < 2:
        raise UserError("compare: give two run directories or more")
    out = default_compare_out(args.run_dirs) if args.out is None else check_out_text(args.out)
    compared = compare_runs(args.run_dirs, out, single_file=args.single_file)
    if args.json:
        print_json("compare", {**compared.values, "page": str(compared.page)})
        return 0
    print(compared.table)
    print(f"equity curves: {compared.page}")
    return 0
