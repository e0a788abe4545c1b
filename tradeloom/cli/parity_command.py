"""``tradeloom parity RUN_DIR``: replay a paper or live run's bars as a backtest and explain
every difference (`tradeloom.diagnostics.parity`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.reporting.json_output import add_json_option, print_json

__all__ = ["add_parser", "check_parity"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``parity`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "parity",
        help="replay a paper or live run's bars as a backtest and explain every difference",
        description="""Replay the bars a paper or live run saw through the backtest, under the
        strategy it started with and its models' probabilities, compare bar by bar
        (probability, signal, order, fill, position, cash, equity) and attribute each
        difference and the equity gap to a cause. The journal is verified first (as tradeloom
        journal verify) and the run's files read by the safe reader. Exit 0: every difference
        explained and within its tolerance; 1: not; 2: bad input (a journal that cannot be
        trusted among it).""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parser.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="relative=1e-9 (numbers equal within; below 1), absolute=1e-6 (money equal "
        "within), late=1 (a bar played this many bars after its close is late), or a "
        "cause's largest |P&L| (slippage=25), each a finite number >= 0; repeat for several",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where parity.json, parity.html and the replay's run folder (reference/) go "
        "(default: RUN_DIR/parity); what an earlier parity wrote there is replaced",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="FILE",
        help="a history of the run's bars fetched later (CSV or Parquet: timestamp, symbol, "
        "open, high, low, close, volume): each bar that differs from the one the run saw is "
        "the cause data_revised, with the P&L of replaying on the history's bars",
    )
    parser.add_argument(
        "--single-file",
        action="store_true",
        help="embed plotly.js in parity.html (4.7 MB more), a page to send on its own; by "
        "default it loads the plotly-<version>.min.js the runs' reports share",
    )
    add_json_option(parser, "parity")
    parser.set_defaults(command=check_parity)


def check_parity(args: argparse.Namespace) -> int:
    """Replay the run, write and print its parity; return the exit code (1: unexplained)."""
    from tradeloom.diagnostics.parity import format_parity, parity, parse_tolerances, write_parity
    from tradeloom.diagnostics.parity_result import parity_document

    tolerances = parse_tolerances(args.tolerance)
    out = args.run_dir / "parity" if args.out is None else args.out
    result = parity(args.run_dir, out=out, tolerances=tolerances, data=args.data)
    paths = write_parity(result, out, args.run_dir, single_file=args.single_file)
    if args.json:
        document = parity_document(result)
        written = [str(path) for path in paths]
        body = {"run_dir": str(args.run_dir), "passed": result.passed, "written": written}
        print_json("parity", {**body, **document})
        return 0 if result.passed else 1
    print(format_parity(result, args.run_dir))
    print(f"written: {paths[0]}, {paths[1]}")
    return 0 if result.passed else 1
