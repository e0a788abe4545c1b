"""``tradeloom validate``: check a strategy or a portfolio file, for a backtest or for
paper and live, without loading data."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from tradeloom.arguments import given_path
from tradeloom.cli.options import add_set
from tradeloom.cli.run_command import (
    _check_clock,
    _count,
    _is_portfolio,
    _load,
    _print_fee_note,
    _print_notes,
    _refuse_pairs,
    portfolio_pipelines,
)
from tradeloom.errors import ConfigError

if TYPE_CHECKING:
    from tradeloom.schemas.allocation import Rebalance
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["add_parser", "validate"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``validate`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "validate",
        help="check a strategy file; exit 0 or 2",
        description="""Validate the file and build every component without loading data. With
        --mode paper or live, also check that each component can trade live (a live data feed,
        a model that predicts one bar, for live an exchange account with keys); with --mode
        paper --clock simulated, as run --clock simulated takes it (its bars, from any source,
        served by the emulator). Exit 0 valid, 2 invalid.""",
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
    parser.set_defaults(command=validate)


def validate(args: argparse.Namespace) -> int:
    """Validate the file for its mode; return the exit code."""
    _check_clock(args)
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
    print(
        f"{args.file}: valid strategy '{config.name}'{mode} (data {config.data.kind}, "
        f"{len(pipeline.feature_columns)} feature columns, model {config.model.kind}, "
        f"signal {config.signal.kind}, sizing {config.sizing.kind}, "
        f"{_count(len(config.risk_rules), 'risk rule')}, execution {config.execution.kind}, "
        f"{_count(len(config.monitoring), 'monitor')}{_allocation_note(config)})"
    )
    return 0


def _allocation_note(config: StrategyConfig) -> str:
    if config.allocation is None:
        return ""
    return f", allocation {config.allocation.kind}"


def _rebalance_words(rule: Rebalance) -> str:
    """``every 24 bars``, ``weekly`` or ``monthly``: a portfolio allocation's schedule."""
    return f"every {rule.every} bars" if rule.every is not None else str(rule.calendar)


def _validate_portfolio(args: argparse.Namespace) -> int:
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
    print(
        f"{args.file}: valid portfolio '{top.name}'{mode}: "
        f"{len(portfolio.strategies)} strateg{'y' if len(portfolio.strategies) == 1 else 'ies'}"
        f" on one account of "
        f"{top.initial_cash:,.2f} ({how}: {shares})"
    )
    return 0


def _validated_for(args: argparse.Namespace) -> str:
    if args.mode == "backtest":
        return ""
    clock = " --clock simulated" if args.clock == "simulated" else ""
    return f" for --mode {args.mode}{clock}"
