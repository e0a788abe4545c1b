"""``tradeloom kill RUN_DIR`` and ``tradeloom resume RUN_DIR``: latch and lift a paper or
live run's kill switch, through its mailbox (`tradeloom.engine.control`)."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.cli.options import add_reason

__all__ = ["add_parsers", "kill", "resume"]


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``kill`` and ``resume`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "kill",
        help="kill switch: a paper or live run cancels every open order and halts",
        description="""Latch the kill switch of a paper or live run: the running process
        cancels every open order and halts, and stays halted across restarts until 'tradeloom
        resume'. With no process running, the kill is latched when it next starts. With
        --flatten, it also closes every position with market orders at its next bar (reason
        EXIT_FLATTEN), through its risk engine and venue as any exit, and at each bar after
        it a position whose exit ended without closing it (refused, cut short, never
        arrived) with no order working, until 'tradeloom resume'. A running process gets
        the request even when the journal cannot be read here, and a kill by SIGUSR1 when
        RUN_DIR/control cannot be written (exit 1 with --flatten: it halts, and does not
        flatten). A run the kill switch holds halted already answers 'already halted at ...'
        and exits 0 (the request is journaled all the same).""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parser.add_argument(
        "--flatten",
        action="store_true",
        help="also close every position with market orders, again at each bar whose exit ended "
        "without closing it, until 'tradeloom resume' (asked once: a restart does not ask again)",
    )
    add_reason(parser)
    parser.set_defaults(command=kill)

    parser = commands.add_parser(
        "resume",
        help="lift the kill switch of a paper or live run",
        description="""Let a halted paper or live run trade again. Refused while RUN_DIR/KILL
        exists: delete that file first. An active run answers 'already active' and exits 0.""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    add_reason(parser)
    parser.set_defaults(command=resume)


def kill(args: argparse.Namespace) -> int:
    """Ask the run to latch its kill switch (and flatten); return the exit code."""
    from tradeloom.engine.control import request

    delivery = request(args.run_dir, "flatten" if args.flatten else "kill", args.reason)
    print(delivery.describe())
    # a kill that went by SIGUSR1 halts, and does not flatten: asked, not done
    return 1 if delivery.unwritten is not None and args.flatten else 0


def resume(args: argparse.Namespace) -> int:
    """Ask the run to lift its kill switch; return the exit code."""
    from tradeloom.engine.control import request

    print(request(args.run_dir, "resume", args.reason).describe())
    return 0
