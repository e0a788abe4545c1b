"""``tradeloom swap RUN_DIR --model RUN [--fold N] [--strategy NAME]``: swap a running
run's model (a portfolio file's run: its strategy ``NAME``'s).

The model is a fold another run saved (its ``models/index.json``): ``--model`` names
that run's directory, or its id, a folder beside ``RUN_DIR``. It is checked here as far
as the journal tells (`tradeloom.live.lifecycle.model_swap.precheck`: a saved model, the
strategy's features and label, calibrated if the sizing needs it); a refusal is one line
per problem and exit 2, and nothing is asked. Then the request goes through the run's
mailbox as ``tradeloom kill`` does; the running process checks again with the last bar
and swaps the model in at its next bar boundary, or journals why not.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.cli.options import add_reason
from tradeloom.errors import UserError

__all__ = ["add_parser", "model_run", "swap"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``swap`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "swap",
        help="swap a paper or live run's model for a saved one, at its next bar",
        description="""Put a fold another run saved (its models/index.json) in place of a
        running paper or live run's model, between two bars, positions kept. The request is
        checked first against the journal, by the rules the running process applies (no canary
        or watch in progress; a saved model, the strategy's features and label, calibrated if
        the sizing needs it; not the model in force already; the running process also predicts
        the last bar with it): a refusal is one line and exit 2, nothing is asked, and the run
        trades on with its model. The swap is journaled (model_swapped, with both models'
        hashes) and its file kept in RUN_DIR/swapped/, so a restart runs the model in force
        without the other run.""",
    )
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="RUN",
        help="the run whose saved fold to take: its directory, or its id (a run beside RUN_DIR)",
    )
    parser.add_argument(
        "--fold", type=int, default=None, metavar="N", help="the fold to take (default: its latest)"
    )
    parser.add_argument(
        "--strategy",
        default=None,
        metavar="NAME",
        help="a portfolio file's run: the strategy (its name:) whose model to swap; the "
        "others keep theirs",
    )
    add_reason(parser)
    parser.set_defaults(command=swap)


def model_run(run_dir: Path, model: Path) -> Path:
    """Return the run directory ``--model`` names: a path, or the id of a run beside
    ``run_dir``.

    Raises:
        UserError: Neither is a directory.
    """
    if model.is_dir():
        return model.absolute()
    beside = run_dir.absolute().parent / model
    if len(model.parts) == 1 and beside.is_dir():
        return beside
    raise UserError(
        f"--model: no run directory {model} (nor a run of that id beside {run_dir}); "
        "give the directory of a run whose model saved its folds"
    )


def swap(args: argparse.Namespace) -> int:
    """Check the model, then ask the run to swap it in; return the exit code."""
    from tradeloom.engine.control import controllable_mode, request_swap
    from tradeloom.live.lifecycle.model_swap import precheck

    run_dir: Path = args.run_dir
    controllable_mode(run_dir)
    model = model_run(run_dir, args.model)
    strategy = args.strategy
    problems = precheck(run_dir, model, args.fold, strategy)
    if problems:
        raise UserError(f"{run_dir}: model swap refused: {'; '.join(problems)}")
    delivery = request_swap(run_dir, model, args.fold, args.reason, strategy=strategy)
    print(delivery.describe())
    return 0
