"""``tradeloom validate``: check a strategy, a portfolio or a sweep file, for a backtest or
for paper and live, without loading data."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradeloom.arguments import given_path
from tradeloom.cli.options import add_set
from tradeloom.cli.run_command import (
    _check_clock,
    _count,
    _is_portfolio,
    _load,
    _notes,
    _print_fee_note,
    _print_notes,
    _refuse_pairs,
    portfolio_pipelines,
)
from tradeloom.errors import ConfigError, Problem, UserError
from tradeloom.reporting.json_output import add_json_option, print_json

if TYPE_CHECKING:
    from tradeloom.schemas.allocation import Rebalance
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["add_parser", "validate"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``validate`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "validate",
        help="check a strategy, portfolio or sweep file; exit 0 or 2",
        description="""Validate the file (a strategy file, a portfolio file or a sweep file,
        told apart by their keys) and build every component without loading data. With
        --mode paper or live, also check that each component can trade live (a live data feed,
        a model that predicts one bar, for live an exchange account with keys); with --mode
        paper --clock simulated, as run --clock simulated takes it (its bars, from any source,
        served by the emulator). A sweep file is checked with its strategy file and every
        value of every axis, for a backtest. Exit 0 valid, 2 invalid.""",
    )
    parser.add_argument("file", type=given_path)
    parser.add_argument(
        "--mode",
        choices=["backtest", "paper", "live"],
        default="backtest",
        help="what to check the file for (default backtest)",
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "simulated"],
        default="wall",
        help="with --mode paper: check the file as run --clock simulated takes it (any "
        "data source: the emulator serves its bars)",
    )
    add_set(parser)
    add_json_option(parser, "validate")
    parser.set_defaults(command=validate)


@dataclass(frozen=True)
class _Valid:
    kind: str
    name: str
    line: str
    notes: list[str] = field(default_factory=list)


def validate(args: argparse.Namespace) -> int:
    """Validate the file for its mode; return the exit code."""
    if not getattr(args, "json", False):
        print(_validated(args).line)
        return 0
    body: dict[str, Any] = {"file": str(args.file), "mode": args.mode}
    try:
        valid = _validated(args)
    except UserError as exc:
        problems = (
            exc.problems
            if isinstance(exc, ConfigError)
            else [Problem(str(args.file), "", line) for line in exc.lines()]
        )
        for line in exc.lines():
            print(line, file=sys.stderr)
        listed = [{"location": p.location, "path": p.path, "message": p.message} for p in problems]
        print_json("validate", {**body, "valid": False, "problems": listed})
        return 2
    print_json(
        "validate",
        {
            **body,
            "valid": True,
            "kind": valid.kind,
            "name": valid.name,
            "summary": valid.line,
            "notes": valid.notes,
            "problems": [],
        },
    )
    return 0


def _validated(args: argparse.Namespace) -> _Valid:
    _check_clock(args)
    if _is_sweep(args):
        return _validate_sweep(args)
    if _is_portfolio(args):
        return _validate_portfolio(args)
    simulated = args.clock == "simulated"
    pipeline, _ = _load(args, args.mode, served=simulated)
    if simulated:
        _refuse_pairs([pipeline], args.mode)  # as run does
    config = pipeline.config
    _print_notes([pipeline])
    if args.mode == "live":
        _print_fee_note(config, pipeline.venue)
    mode = _validated_for(args)
    line = (
        f"{args.file}: valid strategy '{config.name}'{mode} (data {config.data.kind}, "
        f"{len(pipeline.feature_columns)} feature columns, model {config.model.kind}, "
        f"signal {config.signal.kind}, sizing {config.sizing.kind}, "
        f"{_count(len(config.risk_rules), 'risk rule')}, execution {config.execution.kind}, "
        f"{_count(len(config.monitoring), 'monitor')}{_allocation_note(config)})"
    )
    return _Valid("strategy", config.name, line, _notes([pipeline]))


def _is_sweep(args: argparse.Namespace) -> bool:
    from tradeloom.schemas.file_kind import is_sweep_document
    from tradeloom.schemas.yaml_loader import load_yaml

    document = load_yaml(args.file)
    if is_sweep_document(document.data):
        return True
    args.document = document  # read and parsed once: the strategy's validation takes it
    return False


def _validate_sweep(args: argparse.Namespace) -> _Valid:
    """A sweep file, its strategy file (with ``--set``) and each value of each axis, as
    ``tradeloom sweep`` checks them before it runs anything."""
    from tradeloom.sweep.sweep_file import load_sweep_file
    from tradeloom.sweep.variants import StrategySource, check_variants

    if args.mode != "backtest" or args.clock != "wall":
        raise UserError(
            f"{args.file}: a sweep file runs backtests; validate it without --mode or --clock"
        )
    sweep, space, strategy = load_sweep_file(args.file)
    source = StrategySource(strategy, args.overrides)
    check_variants(source, space.axes, [])
    name = str(source.document.data.get("name", strategy.stem))
    if sweep.search == "optuna":
        how = f"optuna, {_count(sweep.trials or 0, 'trial')}"
    elif sweep.random is not None:
        how = f"{min(sweep.random, space.size):,} drawn of {space.size:,} variants"
    else:
        how = f"grid of {space.size:,} variants"
    line = (
        f"{args.file}: valid sweep of strategy '{name}' ({strategy}): "
        f"{len(space.axes)} ax{'is' if len(space.axes) == 1 else 'es'} ({how})"
    )
    return _Valid("sweep", name, line)


def _allocation_note(config: StrategyConfig) -> str:
    if config.allocation is None:
        return ""
    return f", allocation {config.allocation.kind}"


def _rebalance_words(rule: Rebalance) -> str:
    """``every 24 bars``, ``weekly`` or ``monthly``: a portfolio allocation's schedule."""
    return f"every {rule.every} bars" if rule.every is not None else str(rule.calendar)


def _validate_portfolio(args: argparse.Namespace) -> _Valid:
    from tradeloom.engine.account import account_problems, account_venue
    from tradeloom.engine.capabilities import one_account_problems
    from tradeloom.engine.portfolio_checks import portfolio_problems
    from tradeloom.schemas.portfolio_file import load_portfolio

    portfolio = load_portfolio(args.file, args.overrides)
    simulated = args.clock == "simulated"
    pipelines = portfolio_pipelines(portfolio, args.mode, served=simulated)  # as run builds them
    problems = account_problems(pipelines) + portfolio_problems(portfolio, pipelines)
    account = None
    if args.mode == "live":
        account = account_venue(portfolio, pipelines[0])
        problems += one_account_problems([(p.config, p.data) for p in pipelines], account)
    if problems:
        raise ConfigError(problems)
    if simulated:  # as run does
        _refuse_pairs(pipelines, args.mode)
    _print_notes(pipelines)
    if account is not None:  # the account trades with the first strategy's execution section
        _print_fee_note(pipelines[0].config, account)
    top = portfolio.file
    shares = ", ".join(
        f"{config.name} {weight:.4g}"
        for config, weight in zip(portfolio.strategies, portfolio.weights, strict=True)
    )
    allocation = top.allocation
    how = "fixed"
    if allocation.kind != "fixed":
        rule = allocation.rebalance
        when = "" if rule is None else f", rebalanced {_rebalance_words(rule)}"
        how = (
            f"{allocation.kind.replace('_', ' ')} over {allocation.window} bars{when}, "
            "equal until then"
        )
    mode = _validated_for(args)
    line = (
        f"{args.file}: valid portfolio '{top.name}'{mode}: "
        f"{len(portfolio.strategies)} strateg{'y' if len(portfolio.strategies) == 1 else 'ies'}"
        f" on one account of "
        f"{top.initial_cash:,.2f} ({how}: {shares})"
    )
    return _Valid("portfolio", top.name, line, _notes(pipelines))


def _validated_for(args: argparse.Namespace) -> str:
    if args.mode == "backtest":
        return ""
    clock = " --clock simulated" if args.clock == "simulated" else ""
    return f" for --mode {args.mode}{clock}"
