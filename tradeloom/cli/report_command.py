"""``tradeloom report RUN_DIR``: write a run's report.html."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.arguments import given_path

__all__ = ["add_parser", "report"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``report`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "report",
        help="write a run's report.html (charts and tables, opens offline)",
        description="""Write RUN_DIR/report.html from the run's files: price with every trade,
        equity against buy and hold, drawdown, exposure, the model's probability, monitoring,
        events, monthly returns, trade returns, rejections and the statistics.""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parser.add_argument("--open", action="store_true", help="open it in the web browser")
    parser.add_argument(
        "--single-file",
        action="store_true",
        help="embed plotly.js in report.html (4.7 MB more), a page to send on its own; by "
        "default the page loads plotly-<version>.min.js, written once into the folder of "
        "runs that holds RUN_DIR (runs/); a RUN_DIR elsewhere gets it embedded",
    )
    parser.set_defaults(command=report)


def report(args: argparse.Namespace) -> int:
    """Write the run's report.html; return the exit code."""
    from tradeloom.journal import journal_path, verify
    from tradeloom.reporting.report import write_report

    journal = journal_path(args.run_dir)
    if journal.is_file():  # a cut, broken or another run's journal reports nothing
        verify(journal)
    path = write_report(args.run_dir, single_file=args.single_file)
    print(path)
    if args.open:
        import webbrowser

        from tradeloom.files.addresses import file_url

        webbrowser.open(file_url(path.resolve()))
    return 0
