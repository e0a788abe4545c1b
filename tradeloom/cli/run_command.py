"""``tradeloom run``: a strategy or a portfolio file as a backtest, a paper run or a live run,
and the notes it prints first; the file loaded and built once for every command."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tradeloom.arguments import given_path, positive_int
from tradeloom.cli.options import add_set
from tradeloom.errors import ConfigError, UserError

if TYPE_CHECKING:
    from tradeloom.engine.capabilities import Mode
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.plugins.manager import Plugins
    from tradeloom.schemas.config import StrategyConfig
    from tradeloom.schemas.portfolio_file import PortfolioConfig
    from tradeloom.schemas.yaml_loader import YamlDocument

__all__ = ["add_parser", "portfolio_pipelines"]

_DRIVERS: dict[str, Literal["auto", "batch", "per_bar"]] = {
    "auto": "auto",
    "batch": "batch",
    "per-bar": "per_bar",
}


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``run`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser("run", help="validate a strategy file and run it")
    parser.add_argument("file", type=given_path)
    parser.add_argument("--mode", choices=["backtest", "paper", "live"], default="backtest")
    parser.add_argument(
        "--out",
        type=_folder,
        help="run directory (default: runs/<name>-<time> for a backtest; runs/<name>-<mode> "
        "for paper and live, so that the same command restarts the run)",
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "simulated"],
        default="wall",
        help="paper: simulated plays the strategy's own bars (synthetic, file) through the "
        "built-in exchange emulator, with no exchange and no keys (default: wall, the "
        "exchange's bars as they close)",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        metavar="Nx",
        help="--clock simulated: play bars at N times real time, or max (default 3600x: an "
        "hourly bar a second)",
    )
    parser.add_argument(
        "--venue-latency",
        metavar="PROFILE",
        help="--clock simulated: the emulator holds each market order for this realism "
        "profile's latency (a built-in name or a .yaml file), whatever the strategy "
        "declares: a rehearsal of a venue slower than the backtest assumes, which "
        "tradeloom parity names latency (default: the strategy's execution.realism)",
    )
    parser.add_argument(
        "--max-bars",
        type=positive_int,
        metavar="N",
        help="paper and live: stop once N live bars are traded (default: run until stopped); "
        "a tick that catches up on several closed bars trades them all, and the last line "
        "says how many",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,  # else it would reset 'tradeloom --quiet run'
        help="no progress bars; paper and live: no line per bar on stdout",
    )
    parser.add_argument(
        "--driver",
        choices=["auto", "batch", "per-bar"],
        default="auto",
        help="auto or batch: every bar in one call of the compiled core (it stops only "
        "where a plugin's component or a monitor needs Python); per-bar: one bar at a "
        "time with the features stepped, as live trading runs (same journal)",
    )
    add_set(parser)
    parser.add_argument(
        "--variant",
        metavar="SWEEP_DIR:ROW",
        help="run a sweep's variant: the overrides of row ROW of SWEEP_DIR/results.parquet "
        "(its number, or its key), before any --set",
    )
    parser.set_defaults(command=_run)


def _folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, was empty (use . for this folder)")
    return Path(text)


def _speed(text: str) -> float:
    """``--speed``: ``60x`` (60 times real time) or ``max`` (no waiting)."""
    if text.strip().lower() == "max":
        return math.inf
    try:
        value = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a speed such as 60x (60 times real time) or max, was '{text}'"
        )
    return value


def _load(
    args: argparse.Namespace,
    mode: Mode = "backtest",
    *,
    served: bool = False,
) -> tuple[Pipeline, Plugins]:
    from tradeloom.engine.wiring import build_pipeline
    from tradeloom.schemas import load_strategy

    config, plugins = load_strategy(args.file, args.overrides, document=_document(args))
    return build_pipeline(config, mode=mode, served=served), plugins


def _document(args: argparse.Namespace) -> YamlDocument:
    """Return the command's file as loaded, read and parsed once (the portfolio check
    and the strategy's validation both read it)."""
    document: YamlDocument | None = getattr(args, "document", None)
    if document is None:
        from tradeloom.schemas.yaml_loader import load_yaml

        document = args.document = load_yaml(args.file)
        from tradeloom.schemas.file_kind import is_sweep_document

        if is_sweep_document(document.data):
            raise UserError(
                f"{args.file}: a sweep file, not a strategy file; run it with "
                f"tradeloom sweep {args.file}"
            )
    return document


def _check_clock(args: argparse.Namespace) -> None:
    if args.clock == "simulated" and args.mode != "paper":
        raise UserError(f"--clock simulated runs --mode paper only, not --mode {args.mode}")


def _run(args: argparse.Namespace) -> int:
    _check_clock(args)
    if args.speed is not None and args.clock != "simulated":
        raise UserError("--speed applies to --clock simulated only")
    if args.venue_latency is not None and args.clock != "simulated":
        raise UserError("--venue-latency applies to --clock simulated only")
    variant = None
    if args.variant is not None:
        from tradeloom.sweep.cli import variant_overrides

        variant = variant_overrides(args.variant, args.file)
        args.overrides = [*variant.overrides, *args.overrides]
    lasting = args.mode != "backtest"
    if args.max_bars is not None and not lasting:
        raise UserError("--max-bars applies to --mode paper and live only")
    from tradeloom.kernels import first_run
    from tradeloom.kernels.compiles import compiled

    warming = getattr(args, "warming", False)
    if not warming:  # warm compiles, whatever the mode
        # a paper or live tick steps the kernels the per-bar driver steps: its warm compiles
        # every signature a tick calls (a paper run after it compiled none)
        driver = "per-bar" if lasting else args.driver
        warm = [str(args.file.resolve()), "--driver", driver]
        first_run.begin([*warm, *(f"--set={word}" for word in args.overrides)], lasting=lasting)
    before = compiled()
    try:
        if lasting:
            return _run_portfolio(args) if _is_portfolio(args) else _run_live(args)
        return _run_portfolio(args) if _is_portfolio(args) else _run_backtest(args, variant)
    finally:
        first_run.end()
        if not warming and not lasting:  # a paper or live run's stderr is its own, as before
            _say_compiled(before)


def _say_compiled(before: Any) -> None:
    """Say on stderr what compiling kernels cost the run since ``before``, if anything."""
    from tradeloom.kernels.compiles import compiled

    done = compiled()
    kernels, wall = done.kernels - before.kernels, done.seconds - before.seconds
    if kernels:
        cpu = done.cpu_seconds - before.cpu_seconds
        print(f"compiled {_count(kernels, 'kernel')} in {wall:.1f} s ({cpu:.1f} s CPU), "
              "cached for the next runs", file=sys.stderr)  # fmt: skip


def _run_backtest(args: argparse.Namespace, variant: Any) -> int:
    from tradeloom.backtest.pipeline import Driver
    from tradeloom.backtest.run import run_strategy
    from tradeloom.reporting.summary import format_summary
    from tradeloom.runtime.collection_pace import settle

    pipeline, plugins = _load(args)
    driver: Driver = _DRIVERS[args.driver]
    settle()  # the start-up's objects live as long as the process: the run walks none
    outcome = run_strategy(
        pipeline,
        plugins,
        out=args.out,
        driver=driver,
        variant=None if variant is None else variant.record(),
    )
    print(format_summary(outcome.metrics))
    untrained = outcome.metrics.get("model_never_trained")
    if untrained:
        # the run's folder is whole, for its diagnosis; but it backtested no model: a run
        # failure (exit 1), so that a script never takes its flat equity for a result
        print(f"run failed: {untrained}", file=sys.stderr)
        return 1
    return 0


def _run_portfolio(args: argparse.Namespace) -> int:
    if args.mode != "backtest":
        return _run_live_portfolio(args)
    from tradeloom.backtest.pipeline import Driver
    from tradeloom.backtest.portfolio_run import run_portfolio
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.reporting.summary import format_summary
    from tradeloom.runtime.collection_pace import settle
    from tradeloom.schemas.portfolio_file import load_portfolio

    portfolio = load_portfolio(args.file, args.overrides)
    pipelines = list(portfolio_pipelines(portfolio, "backtest"))
    modules = dict.fromkeys(m for config in portfolio.strategies for m in config.plugins)
    plugins = load_plugins(tuple(modules))  # every strategy's, for the observers
    driver: Driver = _DRIVERS[args.driver]
    settle()  # as `_run`'s
    outcome = run_portfolio(portfolio, pipelines, plugins, out=args.out, driver=driver)
    print(format_summary(outcome.metrics))
    return 0


def _run_live_portfolio(args: argparse.Namespace) -> int:
    from tradeloom.cli.launch import run_live
    from tradeloom.engine.portfolio_checks import portfolio_problems
    from tradeloom.live.tick.portfolio_session import LivePortfolio, account_pipeline
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.schemas.portfolio_file import load_portfolio

    simulated = args.clock == "simulated"
    portfolio = load_portfolio(args.file, args.overrides)
    # simulated: each data source is swapped for the emulator's after it loaded the bars
    pipelines = portfolio_pipelines(portfolio, args.mode, served=simulated)
    _refuse_pairs(pipelines, args.mode)
    problems = portfolio_problems(portfolio, pipelines)  # as validate, and a backtest, do
    if problems:
        raise ConfigError(problems)
    modules = dict.fromkeys(m for config in portfolio.strategies for m in config.plugins)
    plugins = load_plugins(tuple(modules))  # every strategy's, for the observers
    account = account_pipeline(portfolio, pipelines)
    print(
        run_live(
            account,
            plugins,
            mode=args.mode,
            out=args.out,
            overrides=args.overrides,
            max_bars=args.max_bars,
            quiet=args.quiet,
            speed=None if not simulated else (args.speed if args.speed is not None else 3600.0),
            venue_latency=args.venue_latency,
            portfolio=LivePortfolio(portfolio, pipelines),
            notes=_notes(pipelines),
        )
    )
    return 0


def _run_live(args: argparse.Namespace) -> int:
    from tradeloom.cli.launch import run_live

    simulated = args.clock == "simulated"
    _restart_document(args, simulated=simulated)
    # simulated: the data source is swapped for the emulator's after it loaded the bars
    pipeline, plugins = _load(args, args.mode, served=simulated)
    _refuse_pairs([pipeline], args.mode)
    speed = None if not simulated else (args.speed if args.speed is not None else 3600.0)
    print(
        run_live(
            pipeline,
            plugins,
            mode=args.mode,
            out=args.out,
            overrides=args.overrides,
            max_bars=args.max_bars,
            quiet=args.quiet,
            speed=speed,
            venue_latency=args.venue_latency,
            notes=_notes([pipeline], live=args.mode == "live"),
        )
    )
    return 0


def portfolio_pipelines(
    portfolio: PortfolioConfig, mode: Mode, *, served: bool = False
) -> tuple[Pipeline, ...]:
    """Build every strategy of ``portfolio`` for ``mode``, as validate and run both do.

    Raises:
        ConfigError: Every strategy's problems, each at its own file's line.
    """
    from tradeloom.engine.wiring import build_pipeline

    pipelines, problems = [], []
    for config in portfolio.strategies:  # every strategy's problems, not the first's only
        try:
            pipelines.append(build_pipeline(config, mode=mode, served=served, portfolio=True))
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return tuple(pipelines)


def _restart_document(args: argparse.Namespace, *, simulated: bool) -> None:
    """Build a restart's model from the copy its run directory keeps of the model the
    journal swapped in (`tradeloom.live.lifecycle.model_swap.restart_document`)."""
    from tradeloom.cli.launch import live_run_dir
    from tradeloom.live.lifecycle.model_swap import restart_document
    from tradeloom.schemas.overrides import apply_overrides

    document = _document(args)
    # the run's name as its validation reads it: `--set name=...` names another folder
    data, _, _ = apply_overrides(document.data, args.overrides, document.source_map)
    name = data.get("name")
    if args.out is None and not isinstance(name, str):
        return  # no name: the validation says so
    run_dir = live_run_dir(str(name), args.mode, args.out, simulated=simulated)
    args.document = restart_document(document, run_dir)


def _refuse_pairs(pipelines: Sequence[Pipeline], mode: Mode) -> None:
    """Refuse an informative pair in paper or live runs (the simulated clock and a
    portfolio file build their pipelines as backtests)."""
    from tradeloom.engine.wiring import pair_problems

    problems = [problem for p in pipelines for problem in pair_problems(p.config, mode, p.data)]
    if problems:
        raise ConfigError(problems)


def _print_notes(pipelines: Sequence[Pipeline]) -> None:
    """Print, on stderr, what a paper or live run of these strategies should know
    (`_notes`)."""
    for note in _notes(pipelines):
        print(note, file=sys.stderr)


def _notes(pipelines: Sequence[Pipeline], *, live: bool = False) -> list[str]:
    """Return, one line each, what a paper or live run of these strategies should know (a
    model whose probabilities may differ from the backtest's in the last bits, a sizing
    that needs a calibrated model beside one that is not, a signal, the strategy's or a
    challenger's, that may go short on a long-only venue); validate prints them, a run
    once it has started (a run refused says its refusal alone). ``live``: a live run of
    one strategy, whose start says the sides against the exchange's markets, which
    decide (`tradeloom.live.tick.start.said_sides`), not against the file's venue."""
    from tradeloom.engine.capabilities import calibration_warning, parity_notes
    from tradeloom.engine.sides import sides_warnings
    from tradeloom.engine.text_guard import text_notes

    lines: list[str] = []
    for pipeline in pipelines:
        config = pipeline.config
        warnings = (
            calibration_warning(config, pipeline.sizer, pipeline.model),
            *([] if live else sides_warnings(config, pipeline.venue)),
        )
        notes = [*parity_notes(config, pipeline.model), *(w for w in warnings if w)]
        built = list(zip(config.features, pipeline.features, strict=True))
        notes.extend(text_notes(config, pipeline.data, built))
        lines.extend(str(note) for note in notes)
    return lines


def _print_fee_note(config: StrategyConfig, venue: object) -> None:
    """Print, on stderr, what a live run on ``venue`` does with ``execution.fee_bps``."""
    from tradeloom.engine.capabilities import fee_note

    note = fee_note(config, venue)
    if note is not None:
        print(note, file=sys.stderr)


def _is_portfolio(args: argparse.Namespace) -> bool:
    from tradeloom.schemas.file_kind import is_portfolio_document

    return is_portfolio_document(_document(args).data)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
