"""``tradeloom check-lookahead``: run a strategy with its future changed at cut points;
exit 1 when anything at or before a cut point moved."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.arguments import given_path, non_negative_int, positive_int
from tradeloom.cli.options import add_set
from tradeloom.cli.run_command import _count, _load
from tradeloom.reporting.json_output import add_json_option, print_json

if TYPE_CHECKING:
    from tradeloom.engine.wiring import Pipeline

__all__ = ["add_parser", "lookahead"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``check-lookahead`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "check-lookahead",
        help="check a strategy for look-ahead; exit 0 none found, 1 found, 2 invalid input",
        description="""Run the strategy over its bars, then again with the bars after each cut
        point dropped and replaced; nothing at or before a cut point may move. Prints one line
        per check and the first component and bar that looked ahead. Exit codes: 0 no
        look-ahead found, 1 look-ahead found (or a run failure), 2 invalid input.""",
    )
    parser.add_argument("file", type=given_path)
    add_set(parser)
    parser.add_argument(
        "--points",
        type=positive_int,
        default=3,
        metavar="N",
        help="cut points, spread over the bars after the first prediction (default 3)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="seed of the markets that replace the bars after each cut (default 0)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where the findings and the internal runs' logs go "
        "(default: runs/<name>-lookahead-<time>)",
    )
    add_json_option(parser, "check-lookahead")
    parser.set_defaults(command=lookahead)


def lookahead(args: argparse.Namespace) -> int:
    """Check the strategy for look-ahead; return the exit code (1: found)."""
    from tradeloom.engine.run_dir import open_run_dir

    pipeline, _ = _load(args)  # validated and built like run: invalid input exits 2
    out, lock = open_run_dir(f"{pipeline.config.name}-lookahead", args.out)
    try:
        return _lookahead_in(args, pipeline, out.resolve())
    finally:
        lock.release_pid()


def _lookahead_in(args: argparse.Namespace, pipeline: Pipeline, out: Path) -> int:
    from tradeloom.diagnostics.lookahead import check_lookahead
    from tradeloom.engine.logs import configure_logging

    as_json = bool(args.json)  # the checks' lines then go to stderr, the object alone to stdout
    log_path = out / "lookahead.log"
    # the internal runs' logs (one backtest per variant) go to the file, the findings here
    with log_path.open("w", encoding="utf-8") as log:
        configure_logging(args.log_level, stream=log, stdlib=True)
        try:
            report = check_lookahead(
                pipeline.config,
                points=args.points,
                seed=args.seed,
                progress=lambda line: print(line, flush=True, file=sys.stderr if as_json else None),
            )
        finally:
            configure_logging(args.log_level, stdlib=True)
    (out / "findings.txt").write_text("\n".join([*report.lines, report.summary]) + "\n")
    logged = sum(1 for _ in log_path.open(encoding="utf-8"))
    if as_json:
        finding = None if report.finding is None else dataclasses.asdict(report.finding)
        body = {"strategy": pipeline.config.name, "out": str(out), "found": finding is not None}
        checked = {"cuts": report.cuts, "components": report.components, "checks": report.lines}
        written_log = str(log_path) if logged else None
        said = {"finding": finding, "summary": report.summary, "log": written_log}
        print_json("check-lookahead", {**body, **checked, **said})
        return 0 if report.finding is None else 1
    print(report.summary)
    if logged:
        print(f"the internal runs logged {_count(logged, 'line')}: {log_path}")
    return 0 if report.finding is None else 1
