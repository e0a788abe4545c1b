"""The ``tradeloom`` command.

Exit codes: 0 success, 1 run failure (a bug or an environment problem; the log
has the traceback), 2 invalid input (one line per problem, no traceback).
``check-lookahead`` exits 1 when it finds look-ahead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog

from tradeloom import __version__
from tradeloom.errors import ConfigError, UserError

if TYPE_CHECKING:
    from tradeloom.plugins.manager import Plugins
    from tradeloom.runner.live.capabilities import Mode
    from tradeloom.runner.wiring import Pipeline

__all__ = ["main"]

_log = structlog.get_logger("tradeloom.cli")

_DRIVERS: dict[str, Literal["auto", "batch", "per_bar"]] = {
    "auto": "auto",
    "batch": "batch",
    "per-bar": "per_bar",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    from tradeloom.runner.logs import configure_logging

    configure_logging(args.log_level)
    try:
        return int(args.command(args))
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from tradeloom.redaction import redact_text

        _log.exception("run_failed", error=f"{type(exc).__name__}: {exc}")
        print(redact_text(f"run failed: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeloom", description="Run AI trading strategies written as YAML."
    )
    parser.add_argument("--version", action="version", version=f"tradeloom {__version__}")
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="validate a strategy file and run it")
    run.add_argument("file", type=Path)
    run.add_argument("--mode", choices=["backtest", "paper", "live"], default="backtest")
    run.add_argument(
        "--out",
        type=Path,
        help="run directory (default: runs/<name>-<time> for a backtest; runs/<name>-<mode> "
        "for paper and live, so that the same command restarts the run)",
    )
    run.add_argument(
        "--max-bars",
        type=_positive_int,
        metavar="N",
        help="paper and live: stop after N live bars (default: run until stopped)",
    )
    run.add_argument(
        "--driver",
        choices=["auto", "batch", "per-bar"],
        default="auto",
        help="auto: the compiled batch loop when every sequential layer is built in; "
        "per-bar: one bar at a time, as live trading runs (same journal)",
    )
    _add_set(run)
    run.set_defaults(command=_run)

    validate = sub.add_parser(
        "validate",
        help="check a strategy file; exit 0 or 2",
        description="Validate the file and build every component without loading data. "
        "With --mode paper or live, also check that each component can trade live (a "
        "live data feed, a model that predicts one bar, for live an exchange account "
        "with keys). Exit 0 valid, 2 invalid.",
    )
    validate.add_argument("file", type=Path)
    validate.add_argument(
        "--mode",
        choices=["backtest", "paper", "live"],
        default="backtest",
        help="what to check the file for (default backtest)",
    )
    _add_set(validate)
    validate.set_defaults(command=_validate)

    plugins = sub.add_parser("plugins", help="list plugins, their sources and components")
    plugins.add_argument(
        "-m", "--module", action="append", default=[], help="also load this plugin module"
    )
    plugins.set_defaults(command=_plugins)

    lookahead = sub.add_parser(
        "check-lookahead",
        help="check a strategy for look-ahead; exit 0 none found, 1 found, 2 invalid input",
        description="Run the strategy over its bars, then again with the bars after each cut "
        "point dropped and replaced; nothing at or before a cut point may move. Prints one "
        "line per check and the first component and bar that looked ahead. Exit codes: "
        "0 no look-ahead found, 1 look-ahead found (or a run failure), 2 invalid input.",
    )
    lookahead.add_argument("file", type=Path)
    _add_set(lookahead)
    lookahead.add_argument(
        "--points",
        type=_positive_int,
        default=3,
        metavar="N",
        help="cut points, spread over the bars after the first prediction (default 3)",
    )
    lookahead.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="S",
        help="seed of the markets that replace the bars after each cut (default 0)",
    )
    lookahead.set_defaults(command=_check_lookahead)

    schema = sub.add_parser("schema", help="print the JSON Schema of strategy files")
    schema.add_argument(
        "-m", "--module", action="append", default=[], help="also load this plugin module"
    )
    schema.set_defaults(command=_schema)

    kill = sub.add_parser(
        "kill",
        help="kill switch: a paper or live run cancels every open order and halts",
        description="Latch the kill switch of a paper or live run: the running process "
        "cancels every open order and halts, and stays halted across restarts until "
        "'tradeloom resume'. With no process running, the kill is latched when it next starts.",
    )
    kill.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    kill.add_argument("--reason", default="requested from the command line", metavar="TEXT")
    kill.set_defaults(command=_kill)

    resume = sub.add_parser(
        "resume",
        help="lift the kill switch of a paper or live run",
        description="Let a halted paper or live run trade again. Refused while RUN_DIR/KILL "
        "exists: delete that file first.",
    )
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    resume.add_argument("--reason", default="requested from the command line", metavar="TEXT")
    resume.set_defaults(command=_resume)

    from tradeloom.runner.data_fetch import add_fetch_parser

    data = sub.add_parser("data", help="market data: download exchange bars into the cache")
    add_fetch_parser(data.add_subparsers(required=True, metavar="ACTION"))
    return parser


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a key of the file (repeatable), validated like the file",
    )


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, was {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, was '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, was {value}")
    return value


def _load(args: argparse.Namespace, mode: Mode = "backtest") -> tuple[Pipeline, Plugins]:
    from tradeloom.runner.wiring import build_pipeline
    from tradeloom.schemas import load_strategy

    config, plugins = load_strategy(args.file, args.overrides)
    return build_pipeline(config, mode=mode), plugins


def _run(args: argparse.Namespace) -> int:
    if args.mode != "backtest":
        return _run_live(args)
    if args.max_bars is not None:
        raise UserError("--max-bars applies to --mode paper and live only")
    from tradeloom.reporting.summary import format_summary
    from tradeloom.runner.backtest import Driver
    from tradeloom.runner.batch import core_params
    from tradeloom.runner.health import batch_refusal
    from tradeloom.runner.run import run_strategy

    pipeline, plugins = _load(args)
    driver: Driver = _DRIVERS[args.driver]
    if driver == "batch" and core_params(pipeline) is None:
        raise UserError(
            f"{args.file}: --driver batch needs a compiled kernel for every sequential layer; "
            "a plugin component here is plain Python (use --driver auto or per-bar)"
        )
    refusal = batch_refusal(pipeline.config) if driver == "batch" else None
    if refusal is not None:
        raise ConfigError([refusal])
    outcome = run_strategy(pipeline, plugins, out=args.out, driver=driver)
    print(format_summary(outcome.metrics))
    return 0


def _run_live(args: argparse.Namespace) -> int:
    from tradeloom.runner.live.launch import run_live

    pipeline, plugins = _load(args, args.mode)
    print(
        run_live(
            pipeline,
            plugins,
            mode=args.mode,
            out=args.out,
            overrides=args.overrides,
            max_bars=args.max_bars,
        )
    )
    return 0


def _validate(args: argparse.Namespace) -> int:
    pipeline, _ = _load(args, args.mode)
    config = pipeline.config
    mode = "" if args.mode == "backtest" else f" for --mode {args.mode}"
    print(
        f"{args.file}: valid strategy '{config.name}'{mode} (data {config.data.kind}, "
        f"{len(pipeline.feature_columns)} feature columns, model {config.model.kind}, "
        f"signal {config.signal.kind}, sizing {config.sizing.kind}, "
        f"{_count(len(config.risk_rules), 'risk rule')}, execution {config.execution.kind}, "
        f"{_count(len(config.monitoring), 'monitor')})"
    )
    return 0


def _check_lookahead(args: argparse.Namespace) -> int:
    from tradeloom.diagnostics.lookahead import check_lookahead

    pipeline, _ = _load(args)  # validated and built like run: invalid input exits 2
    report = check_lookahead(
        pipeline.config,
        points=args.points,
        seed=args.seed,
        progress=lambda line: print(line, flush=True),
    )
    print(report.summary)
    return 0 if report.finding is None else 1


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _plugins(args: argparse.Namespace) -> int:
    from tradeloom.plugins.manager import load_plugins

    registry = load_plugins(args.module).registry
    clashing = {
        (entry.component.layer, entry.component.kind): [e.plugin.name for e in clash]
        for clash in registry.clashes()
        for entry in clash
    }
    for plugin in registry.plugins:
        print(f"{plugin.name}  [{plugin.source}]")
        for c in sorted(plugin.components, key=lambda c: (c.layer, c.kind)):
            others = [n for n in clashing.get((c.layer, c.kind), []) if n != plugin.name]
            mark = (
                f"  (clash with {', '.join(others)}: kind {plugin.name}:{c.kind})" if others else ""
            )
            print(f"    {c.layer:<11} {c.kind:<18} {c.summary}{mark}")
    for clash in registry.clashes():
        first = clash[0].component
        print(
            f"clash: {first.layer} kind '{first.kind}' is provided by "
            f"{' and '.join(e.plugin.name for e in clash)}; a strategy using it names one: "
            + " or ".join(f"kind: {e.plugin.name}:{first.kind}" for e in clash)
        )
    return 0


def _schema(args: argparse.Namespace) -> int:
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.schemas.json_schema import strategy_json_schema

    registry = load_plugins(args.module).registry
    print(json.dumps(strategy_json_schema(registry), indent=2))
    return 0


def _kill(args: argparse.Namespace) -> int:
    from tradeloom.runner.live.control import request_kill

    print(request_kill(args.run_dir, args.reason).describe())
    return 0


def _resume(args: argparse.Namespace) -> int:
    from tradeloom.runner.live.control import request_resume

    print(request_resume(args.run_dir, args.reason).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
