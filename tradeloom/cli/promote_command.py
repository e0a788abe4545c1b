"""``tradeloom promote RUN_DIR --challenger NAME`` and ``tradeloom rollback RUN_DIR``.

By hand, what a challenger's gate and its canary's rules do (`tradeloom.live.lifecycle.canary`):
``promote`` puts a challenger's model in the champion's place (through its canary when
its gate declares one; a canary's own candidate becomes the full champion at once),
``rollback`` ends the canary in progress, or the watch after a full promotion
(`tradeloom.live.lifecycle.promotion_watch`), with the previous champion's model back.
Each is checked here as far as the journal tells
(`tradeloom.live.lifecycle.promotion_stage.promotion_problems`):
a refusal is one line and exit 2, and nothing is asked. Then the request goes through
the run's mailbox as ``tradeloom kill`` does; the running process carries it out at its
next bar boundary, or journals why not.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.cli.options import add_reason
from tradeloom.errors import UserError

__all__ = ["add_parsers", "promote", "rollback"]


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``promote`` and ``rollback`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "promote",
        help="promote a paper or live run's challenger (through its canary), at its next bar",
        description="""Put a challenger's model in place of a running paper or live run's model
        at its next bar, by the path a passed gate takes: through its canary when its
        promote_when declares one (a fraction of the champion's size, with rollback rules), at
        once otherwise; a challenger whose canary is in progress becomes the full champion.
        Checked first against the journal, by the rules the running process applies (no other
        stage in progress, the challenger in shadow, its model against the model in force): a
        refusal is one line and exit 2. Journaled as model_swapped, canary_started or
        canary_passed, by cli.""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parser.add_argument(
        "--challenger",
        required=True,
        metavar="NAME",
        help="the challenger (challengers[].name; a portfolio file's strategy's: STRATEGY/NAME)",
    )
    add_reason(parser)
    parser.set_defaults(command=promote)

    parser = commands.add_parser(
        "rollback",
        help="roll a paper or live run's canary, or its watched promotion, back: the "
        "champion's model, at its next bar",
        description="""End the canary in progress, or the watch after a full promotion: the
        previous champion's model (its file kept when the canary or the promotion started)
        decides again at its full size from the next bar, by the swap's path. Exit 2 with one
        line when neither is in progress. Journaled as model_swapped and canary_rolled_back or
        promotion_rolled_back, by cli.""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    add_reason(parser)
    parser.set_defaults(command=rollback)


def promote(args: argparse.Namespace) -> int:
    """Check, then ask the run to promote ``--challenger``; return the exit code."""
    from tradeloom.engine.control import controllable_mode, request_promote

    run_dir: Path = args.run_dir
    controllable_mode(run_dir)
    _check(run_dir, args.challenger, "promotion")
    print(request_promote(run_dir, args.challenger, args.reason).describe())
    return 0


def rollback(args: argparse.Namespace) -> int:
    """Check, then ask the run to roll its canary or its watched promotion back; return
    the exit code."""
    from tradeloom.engine.control import controllable_mode, request_rollback

    run_dir: Path = args.run_dir
    controllable_mode(run_dir)
    _check(run_dir, None, "rollback")
    print(request_rollback(run_dir, args.reason).describe())
    return 0


def _check(run_dir: Path, challenger: str | None, what: str) -> None:
    from tradeloom.live.lifecycle.promotion_stage import promotion_problems

    problems = promotion_problems(run_dir, challenger)
    if problems:
        raise UserError(f"{run_dir}: {what} refused: {'; '.join(problems)}")
