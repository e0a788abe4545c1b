"""Options that more than one command of the ``tradeloom`` command line takes: ``--set``
and ``--reason`` (their value types beside the others in `tradeloom.arguments`)."""

from __future__ import annotations

import argparse

__all__ = ["add_reason", "add_set"]


def add_set(parser: argparse.ArgumentParser) -> None:
    """Add ``--set KEY.PATH=VALUE`` (repeatable) to ``parser``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a key of the file (repeatable), validated like the file; "
        "KEY.PATH+=VALUE appends VALUE to the list at KEY.PATH",
    )


def add_reason(parser: argparse.ArgumentParser) -> None:
    """Add ``--reason TEXT``, the operator's reason a request journals, to ``parser``."""
    parser.add_argument(
        "--reason",
        type=_reason,
        default="requested from the command line",
        metavar="TEXT",
        help="why, for the journal: one line of at most 500 characters, without control characters",
    )


def _reason(text: str) -> str:
    """``--reason``: one line of plain text (`tradeloom.engine.reasons.reason_problem`)."""
    from tradeloom.engine.reasons import reason_problem

    problem = reason_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text
