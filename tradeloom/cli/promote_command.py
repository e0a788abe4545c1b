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

from tradeloom.errors import UserError

__all__ = ["promote", "rollback"]


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
