"""The ``tradeloom`` command.

Exit codes: 0 success, 1 run failure (a bug or an environment problem; the log
has the traceback), 2 invalid input (one line per problem, no traceback).
``check-lookahead`` exits 1 when it finds look-ahead.
"""

from __future__ import annotations

import os
import sys

from tradeloom.live.lifecycle.early_stop import catch_stop_signals_early, trades_live

if (
    (
        os.path.basename(sys.argv[0]) == "tradeloom"
        or sys.argv[0].endswith(os.path.join("tradeloom", "cli", "main.py"))  # python -m
    )
    and trades_live(sys.argv[1:])
):
    # the `tradeloom` command's own process: before this module's imports below, so that
    # a signal in the first fraction of a second of start-up stops the run journaled
    catch_stop_signals_early()

import argparse
import contextlib
import functools
import json
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tradeloom.arguments import given_path, non_negative_int, positive_int
from tradeloom.cli.run_command import (
    _check_clock,
    _count,
    _is_portfolio,
    _load,
    _print_fee_note,
    _print_notes,
    _refuse_pairs,
    _run,
    portfolio_pipelines,
)
from tradeloom.cli.usage_errors import OneLineParser
from tradeloom.errors import ConfigError, ServiceUnreachable, UserError
from tradeloom.version import __version__

if TYPE_CHECKING:
    from tradeloom.engine.wiring import Pipeline
    from tradeloom.schemas.allocation import Rebalance
    from tradeloom.schemas.config import StrategyConfig

__all__ = ["console", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if trades_live(words):
        # first thing, before the parser's imports and the validation: a signal during
        # start-up stops the run cleanly, journaled, instead of killing it (exit 143)
        catch_stop_signals_early()
    parser = _parser()
    args = parser.parse_args(words)
    with _start_up_pace(args):
        return _configured(args)


def _start_up_pace(args: argparse.Namespace) -> AbstractContextManager[object]:
    """Collect garbage hardly at all while a backtest command starts up, then at the run's
    pace (`tradeloom.runtime.collection_pace.start_up`; `_run` settles it before the run).

    Its start-up makes objects that live as long as the process (modules, classes, the
    plugins' models, numba's typing tables): at CPython's default pace, the collector
    walked them about 400 times before the first bar, 0.19 s of the 1.6 s of CPU of a
    10,000-bar ``tradeloom run`` (gc callbacks, 2026-11-26); at the run's pace from the
    start, 0.15 s of a 1,000-bar run's 1.4 s (one old collection of them, 0.085 s, at
    the first kernel's load); not walked before the run and frozen then, 0.025 s.
    A paper or live run keeps the default pace: it runs for days. The commands that read
    and answer (`_answers`: validate, status, journal verify, kill, resume) keep the
    start-up pace to their end, never settled: their imports are most of what they make,
    and walking them cost a ``validate`` 30-80 ms of CPU (0.38-0.40 s of CPU at this
    pace against 0.41-0.46 s, four runs each at load ~14, 2026-11-27) and a ``status``
    as much (0.44-0.48 s against 0.53-0.55 s).
    """
    if (args.command is _run and args.mode == "backtest") or args.command in _answers():
        from tradeloom.runtime.collection_pace import start_up

        return start_up()
    return contextlib.nullcontext()


def _answers() -> frozenset[object]:
    return frozenset({_validate, _status, _journal_verify, _kill, _resume})


def _configured(args: argparse.Namespace) -> int:
    from tradeloom.runtime.threads import apply_native_threads, native_threads

    try:
        apply_native_threads(native_threads(args.threads))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    from tradeloom.engine.logs import configure_logging, open_log_file

    try:
        log_file = None if args.log_file is None else open_log_file(args.log_file)
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(args.log_level, stream=log_file, stdlib=True)
    from tradeloom.runtime import progress

    progress.enable(quiet=args.quiet)
    try:
        return _command(args)
    finally:
        _log_compiles()
        if log_file is not None:
            configure_logging(args.log_level, stdlib=True)  # an embedding program logs on
            log_file.close()


def _log_compiles() -> None:
    """Log what compiling kernels cost the command, if it compiled any (info level)."""
    if "tradeloom.kernels.compiles" not in sys.modules:  # numba was never needed
        return
    from tradeloom.kernels.compiles import compiled

    done = compiled()
    if done.kernels:
        import structlog

        structlog.get_logger("tradeloom.kernels").info(
            "kernels_compiled",
            kernels=done.kernels,
            seconds=round(done.seconds, 2),
            cpu_seconds=round(done.cpu_seconds, 2),
        )


def console() -> NoReturn:
    """The ``tradeloom`` command's process: run `main`, then end it (`leave`).

    Its exit skips Python's teardown of every module, which cost more than half a second
    of each command; its dataclasses take their methods' code from the file an earlier
    command wrote (`tradeloom.runtime.dataclass_code`); `main` is what an embedding
    program calls.
    """
    from tradeloom.cli.leave import leave
    from tradeloom.runtime import dataclass_code

    dataclass_code.install()  # the dataclasses' methods compiled by an earlier command
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version, a usage error
        if exc.code is not None and not isinstance(exc.code, int):
            raise
        code = exc.code or 0
    dataclass_code.save()
    leave(code)


def _command(args: argparse.Namespace) -> int:
    try:
        return int(args.command(args))
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    except ServiceUnreachable as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout's reader stopped reading (`tradeloom status RUN | head`): not an error
        from tradeloom.engine.stdout import silence_stdout

        silence_stdout()
        return 0
    except Exception as exc:
        from tradeloom.engine.run_dir import environment_fault
        from tradeloom.runtime.redaction import redact_text

        fault = environment_fault(exc)
        if fault is not None:
            # The machine's problem, not a bug: one line; the traceback only in a log file.
            saved = _save_traceback(exc)
            where = f" (traceback in {saved})" if saved is not None else ""
            print(redact_text(f"run failed: {fault}{where}"), file=sys.stderr)
            return 1
        import structlog

        structlog.get_logger("tradeloom.cli").exception(
            "run_failed", error=f"{type(exc).__name__}: {exc}"
        )
        print(redact_text(f"run failed: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1


def _save_traceback(exc: BaseException) -> Path | None:
    import tempfile
    import traceback

    from tradeloom.runtime.redaction import redact_text

    text = "".join(traceback.format_exception(exc))
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="tradeloom-", suffix=".log", delete=False, encoding="utf-8"
        ) as file:
            file.write(redact_text(text))
        return Path(file.name)
    except OSError:  # the temporary folder is full or read-only too
        return None


@functools.cache  # built once per process: an embedding program or a notebook calls main often
def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tradeloom", description="Run AI trading strategies written as YAML."
    )
    parser.add_argument("--version", action="version", version=f"tradeloom {__version__}")
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="append the logs to PATH as JSON lines (secrets redacted) instead of stderr",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars (they show only on a terminal, never under CI or in a pipe), "
        "no line per bar of a paper or live run",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="threads of the native libraries (OpenMP, BLAS) per process, for training, "
        "prediction and the processes a command starts (default: $TRADELOOM_THREADS, else "
        "1: tradeloom's parallelism is its workers and fold threads)",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="validate a strategy file and run it")
    run.add_argument("file", type=given_path)
    run.add_argument("--mode", choices=["backtest", "paper", "live"], default="backtest")
    run.add_argument(
        "--out",
        type=_folder,
        help="run directory (default: runs/<name>-<time> for a backtest; runs/<name>-<mode> "
        "for paper and live, so that the same command restarts the run)",
    )
    run.add_argument(
        "--clock",
        choices=["wall", "simulated"],
        default="wall",
        help="paper: simulated plays the strategy's own bars (synthetic, file) through the "
        "built-in exchange emulator, with no exchange and no keys (default: wall, the "
        "exchange's bars as they close)",
    )
    run.add_argument(
        "--speed",
        type=_speed,
        metavar="Nx",
        help="--clock simulated: play bars at N times real time, or max (default 3600x: an "
        "hourly bar a second)",
    )
    run.add_argument(
        "--max-bars",
        type=positive_int,
        metavar="N",
        help="paper and live: stop once N live bars are traded (default: run until stopped); "
        "a tick that catches up on several closed bars trades them all, and the last line "
        "says how many",
    )
    run.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,  # else it would reset 'tradeloom --quiet run'
        help="no progress bars; paper and live: no line per bar on stdout",
    )
    run.add_argument(
        "--driver",
        choices=["auto", "batch", "per-bar"],
        default="auto",
        help="auto or batch: every bar in one call of the compiled core (it stops only "
        "where a plugin's component or a monitor needs Python); per-bar: one bar at a "
        "time with the features stepped, as live trading runs (same journal)",
    )
    _add_set(run)
    run.add_argument(
        "--variant",
        metavar="SWEEP_DIR:ROW",
        help="run a sweep's variant: the overrides of row ROW of SWEEP_DIR/results.parquet "
        "(its number, or its key), before any --set",
    )
    run.set_defaults(command=_run)

    validate = sub.add_parser(
        "validate",
        help="check a strategy file; exit 0 or 2",
        description="Validate the file and build every component without loading data. "
        "With --mode paper or live, also check that each component can trade live (a "
        "live data feed, a model that predicts one bar, for live an exchange account "
        "with keys); with --mode paper --clock simulated, as run --clock simulated takes "
        "it (its bars, from any source, served by the emulator). Exit 0 valid, 2 invalid.",
    )
    validate.add_argument("file", type=given_path)
    validate.add_argument(
        "--mode",
        choices=["backtest", "paper", "live"],
        default="backtest",
        help="what to check the file for (default backtest)",
    )
    validate.add_argument(
        "--clock",
        choices=["wall", "simulated"],
        default="wall",
        help="with --mode paper: check the file as run --clock simulated takes it (any "
        "data source: the emulator serves its bars)",
    )
    _add_set(validate)
    validate.set_defaults(command=_validate)

    plugins = sub.add_parser("plugins", help="list plugins, their sources and components")
    plugins.add_argument(
        "-m", "--module", action="append", default=[], help="also load this plugin module"
    )
    plugins.set_defaults(command=_plugins)

    init = sub.add_parser(
        "init",
        help="write a starter project into a new folder",
        description="Write into DIR (new or empty) a strategy that runs offline, its JSON "
        "Schema for editors, a README and a plugin package to grow. Exit 0, or 2 when DIR "
        "holds anything.",
    )
    init.add_argument("folder", type=Path, metavar="DIR")
    init.set_defaults(command=_init)

    lookahead = sub.add_parser(
        "check-lookahead",
        help="check a strategy for look-ahead; exit 0 none found, 1 found, 2 invalid input",
        description="Run the strategy over its bars, then again with the bars after each cut "
        "point dropped and replaced; nothing at or before a cut point may move. Prints one "
        "line per check and the first component and bar that looked ahead. Exit codes: "
        "0 no look-ahead found, 1 look-ahead found (or a run failure), 2 invalid input.",
    )
    lookahead.add_argument("file", type=given_path)
    _add_set(lookahead)
    lookahead.add_argument(
        "--points",
        type=positive_int,
        default=3,
        metavar="N",
        help="cut points, spread over the bars after the first prediction (default 3)",
    )
    lookahead.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="S",
        help="seed of the markets that replace the bars after each cut (default 0)",
    )
    lookahead.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where the findings and the internal runs' logs go "
        "(default: runs/<name>-lookahead-<time>)",
    )
    lookahead.set_defaults(command=_check_lookahead)

    report = sub.add_parser(
        "report",
        help="write a run's report.html (charts and tables, opens offline)",
        description="Write RUN_DIR/report.html from the run's files: price with every trade, "
        "equity against buy and hold, drawdown, exposure, the model's probability, "
        "monitoring, events, monthly returns, trade returns, rejections and the statistics.",
    )
    report.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    report.add_argument("--open", action="store_true", help="open it in the web browser")
    report.add_argument(
        "--single-file",
        action="store_true",
        help="embed plotly.js in report.html (4.7 MB more), a page to send on its own; by "
        "default the page loads plotly-<version>.min.js, written once into the folder of "
        "runs that holds RUN_DIR (runs/); a RUN_DIR elsewhere gets it embedded",
    )
    report.set_defaults(command=_report)

    compare = sub.add_parser(
        "compare",
        help="compare runs: the settings that differ, the figures side by side, and an HTML "
        "page with their equity curves",
    )
    compare.add_argument("run_dirs", type=given_path, nargs="+", metavar="RUN_DIR")
    compare.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="the HTML page to write (default: compare.html beside the first RUN_DIR, in "
        "the folder that holds it: runs/compare.html); its path is printed",
    )
    compare.add_argument(
        "--single-file",
        action="store_true",
        help="embed plotly.js in the page (4.7 MB more), a page to send on its own; by "
        "default it loads the plotly-<version>.min.js the runs' reports share",
    )
    compare.set_defaults(command=_compare)

    parity = sub.add_parser(
        "parity",
        help="replay a paper or live run's bars as a backtest and explain every difference",
        description="Replay the bars a paper or live run saw through the backtest, under the "
        "strategy it started with and its models' probabilities, compare bar by bar "
        "(probability, signal, order, fill, position, cash, equity) and attribute each "
        "difference and the equity gap to a cause. The journal is verified first (as "
        "tradeloom journal verify) and the run's files read by the safe reader. Exit 0: "
        "every difference explained and within its tolerance; 1: not; 2: bad input (a "
        "journal that cannot be trusted among it).",
    )
    parity.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    parity.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="relative=1e-9 (numbers equal within; below 1), absolute=1e-6 (money equal "
        "within), late=1 (a bar played this many bars after its close is late), or a "
        "cause's largest |P&L| (slippage=25), each a finite number >= 0; repeat for several",
    )
    parity.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where parity.json, parity.html and the replay's run folder (reference/) go "
        "(default: RUN_DIR/parity); what an earlier parity wrote there is replaced",
    )
    parity.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="FILE",
        help="a history of the run's bars fetched later (CSV or Parquet: timestamp, symbol, "
        "open, high, low, close, volume): each bar that differs from the one the run saw is "
        "the cause data_revised, with the P&L of replaying on the history's bars",
    )
    parity.add_argument(
        "--single-file",
        action="store_true",
        help="embed plotly.js in parity.html (4.7 MB more), a page to send on its own; by "
        "default it loads the plotly-<version>.min.js the runs' reports share",
    )
    parity.set_defaults(command=_parity)

    schema = sub.add_parser("schema", help="print the JSON Schema of strategy files")
    schema.add_argument(
        "-m", "--module", action="append", default=[], help="also load this plugin module"
    )
    schema.add_argument(
        "--draft",
        choices=["7", "2020-12"],
        default="7",
        help="the JSON Schema version (default: 7, which yaml-language-server implements)",
    )
    schema.set_defaults(command=_schema)

    kill = sub.add_parser(
        "kill",
        help="kill switch: a paper or live run cancels every open order and halts",
        description="Latch the kill switch of a paper or live run: the running process "
        "cancels every open order and halts, and stays halted across restarts until "
        "'tradeloom resume'. With no process running, the kill is latched when it next starts. "
        "With --flatten, it also closes every position with market orders at its next bar "
        "(reason EXIT_FLATTEN), through its risk engine and venue as any exit. A running "
        "process gets the request even when the journal cannot be read here, and a kill by "
        "SIGUSR1 when RUN_DIR/control cannot be written (exit 1 with --flatten: it halts, "
        "and does not flatten). A run the kill switch holds halted already answers "
        "'already halted at ...' and exits 0 (the request is journaled all the same).",
    )
    kill.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    kill.add_argument(
        "--flatten",
        action="store_true",
        help="also close every position with market orders (once; a restart does not repeat it)",
    )
    kill.add_argument(
        "--reason",
        type=_reason,
        default="requested from the command line",
        metavar="TEXT",
        help="why, for the journal: one line of at most 500 characters, without control characters",
    )
    kill.set_defaults(command=_kill)

    resume = sub.add_parser(
        "resume",
        help="lift the kill switch of a paper or live run",
        description="Let a halted paper or live run trade again. Refused while RUN_DIR/KILL "
        "exists: delete that file first. An active run answers 'already active' and exits 0.",
    )
    resume.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    resume.add_argument(
        "--reason",
        type=_reason,
        default="requested from the command line",
        metavar="TEXT",
        help="why, for the journal: one line of at most 500 characters, without control characters",
    )
    resume.set_defaults(command=_resume)

    swap = sub.add_parser(
        "swap",
        help="swap a paper or live run's model for a saved one, at its next bar",
        description="Put a fold another run saved (its models/index.json) in place of a "
        "running paper or live run's model, between two bars, positions kept. The request "
        "is checked first against the journal, by the rules the running process applies "
        "(no canary or watch in progress; a saved model, the strategy's features and label, "
        "calibrated if the sizing needs it; not the model in force already; the running "
        "process also predicts the last bar with it): a refusal is one line and exit 2, "
        "nothing is asked, and the run trades on with its model. The swap is "
        "journaled (model_swapped, with both models' hashes) and its file kept in "
        "RUN_DIR/swapped/, so a restart runs the model in force without the other run.",
    )
    swap.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    swap.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="RUN",
        help="the run whose saved fold to take: its directory, or its id (a run beside RUN_DIR)",
    )
    swap.add_argument(
        "--fold", type=int, default=None, metavar="N", help="the fold to take (default: its latest)"
    )
    swap.add_argument(
        "--strategy",
        default=None,
        metavar="NAME",
        help="a portfolio file's run: the strategy (its name:) whose model to swap; the "
        "others keep theirs",
    )
    swap.add_argument(
        "--reason",
        type=_reason,
        default="requested from the command line",
        metavar="TEXT",
        help="why, for the journal: one line of at most 500 characters, without control characters",
    )
    swap.set_defaults(command=_swap)

    promote = sub.add_parser(
        "promote",
        help="promote a paper or live run's challenger (through its canary), at its next bar",
        description="Put a challenger's model in place of a running paper or live run's "
        "model at its next bar, by the path a passed gate takes: through its canary when "
        "its promote_when declares one (a fraction of the champion's size, with rollback "
        "rules), at once otherwise; a challenger whose canary is in progress becomes the "
        "full champion. Checked first against the journal, by the rules the running "
        "process applies (no other stage in progress, the challenger in shadow, its model "
        "against the model in force): a refusal is one line and exit 2. Journaled as "
        "model_swapped, canary_started or canary_passed, by cli.",
    )
    promote.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    promote.add_argument(
        "--challenger",
        required=True,
        metavar="NAME",
        help="the challenger (challengers[].name; a portfolio file's strategy's: STRATEGY/NAME)",
    )
    promote.add_argument(
        "--reason",
        type=_reason,
        default="requested from the command line",
        metavar="TEXT",
        help="why, for the journal: one line of at most 500 characters, without control characters",
    )
    promote.set_defaults(command=_promote)

    rollback = sub.add_parser(
        "rollback",
        help="roll a paper or live run's canary, or its watched promotion, back: the "
        "champion's model, at its next bar",
        description="End the canary in progress, or the watch after a full promotion: the "
        "previous champion's model (its file kept when the canary or the promotion "
        "started) decides again at its full size from the next bar, by the swap's path. "
        "Exit 2 with one line when neither is in progress. Journaled as model_swapped and "
        "canary_rolled_back or promotion_rolled_back, by cli.",
    )
    rollback.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    rollback.add_argument(
        "--reason",
        type=_reason,
        default="requested from the command line",
        metavar="TEXT",
        help="why, for the journal: one line of at most 500 characters, without control characters",
    )
    rollback.set_defaults(command=_rollback)

    console_parser = sub.add_parser(
        "console",
        help="the operator's web console and HTTP API over the runs in RUNS_DIR (its own "
        "process; needs the console extra)",
        description="Serve every run below RUNS_DIR (default: runs) in a browser and as JSON "
        "under /api/v1: the runs, a run page that follows its run as it trades, compare, and "
        "kill, resume and kill-and-flatten through the run's mailbox. Listens on 127.0.0.1 "
        "unless --host says otherwise; every request needs a token (kept 0600 in "
        "$XDG_CONFIG_HOME/tradeloom/console-token, or TRADELOOM_CONSOLE_TOKEN and "
        "TRADELOOM_CONSOLE_WRITE_TOKEN); the login links printed at start open a browser "
        "session once. Exit 2 without the extra: pip install 'tradeloom[console]'.",
    )
    console_parser.add_argument(
        "runs_dirs", type=Path, nargs="*", metavar="RUNS_DIR", help="default: runs"
    )
    console_parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    console_parser.add_argument(
        "--port", type=int, default=8470, metavar="N", help="default: 8470; 0: any free port"
    )
    console_parser.add_argument(
        "--journal-url",
        metavar="URL",
        help="a PostgreSQL journal's URL (its password is kept out of every page and log)",
    )
    console_parser.set_defaults(command=_console)

    warm = sub.add_parser(
        "warm",
        help="compile the kernels strategies need into the kernel cache (for images, CI)",
        description="Backtest each FILE (default: the README's strategy) into a temporary "
        "folder, so that the kernels it uses are compiled and cached and a first run "
        "loads them; print what each compiled. Exit 0, 1 when the cache cannot be "
        "written (or, with --portable, this machine's CPU cannot run the target's code), "
        "2 invalid input.",
    )
    warm.add_argument("files", type=given_path, nargs="*", metavar="FILE")
    warm.add_argument(
        "--driver",
        choices=["auto", "batch", "per-bar"],
        default="auto",
        help="per-bar: the kernels paper and live runs step a bar at a time (default auto)",
    )
    warm.add_argument(
        "--portable",
        action="store_true",
        help="compile for a CPU level most machines of this architecture have (x86-64-v3 "
        "on x86-64: AVX2, FMA, BMI2) rather than for this machine's CPU, so that other "
        "machines load them too: for an image or a wheel (TRADELOOM_WHEEL_KERNELS)",
    )
    _add_set(warm)
    warm.set_defaults(command=_warm)

    status = sub.add_parser(
        "status",
        help="what a run is doing: trading state, position, orders, equity, last bar, errors",
        description="Show a run's trading state (ACTIVE, REDUCING or HALTED, and why), its "
        "positions, open orders, equity and today's P&L, the last bar and how long ago it "
        "closed, data staleness, health and the last errors, from its journal. Works while a "
        "paper or live run trades (it reads the journal without locking it), after it "
        "stopped or was killed, and on a backtest's directory. Exit 0, or 2 with one line "
        "when RUN_DIR is not a run or its journal cannot be read.",
    )
    status.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(command=_status)

    journal = sub.add_parser("journal", help="inspect a run's journal")
    journal_actions = journal.add_subparsers(required=True, metavar="ACTION")
    verify = journal_actions.add_parser(
        "verify",
        help="check a run's journal: readable, this format, every row in its hash chain",
        description="Check RUN_DIR's journal (journal.sqlite, or the PostgreSQL run its "
        "journal.json names; or a journal file): that it is a "
        "tradeloom journal of this format and that every row chains to the one before it. "
        "Exit 0 with the row count and the last hash, or 2 with one line naming the first "
        "bad sequence number (a row deleted, inserted or edited) or what else is wrong.",
    )
    verify.add_argument("run_dir", type=given_path, metavar="RUN_DIR")
    verify.set_defaults(command=_journal_verify)

    from tradeloom.sweep.cli import add_sweep_parser

    add_sweep_parser(sub)

    from tradeloom.cli.data_fetch import add_fetch_parser
    from tradeloom.cli.data_record_book import add_record_book_parser

    data = sub.add_parser("data", help="market data: download exchange bars, record order books")
    actions = data.add_subparsers(required=True, metavar="ACTION")
    add_fetch_parser(actions)
    add_record_book_parser(actions)
    return parser


def _journal_verify(args: argparse.Namespace) -> int:
    from tradeloom.journal import journal_path, verify

    path = args.run_dir
    if path.is_dir() and not path.name.endswith(".sqlite"):
        path = journal_path(path)
    verified = verify(path)
    print(f"{path}: {verified.rows} rows, hash chain intact (head {verified.head})")
    return 0


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a key of the file (repeatable), validated like the file; "
        "KEY.PATH+=VALUE appends VALUE to the list at KEY.PATH",
    )


def _folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, was empty (use . for this folder)")
    return Path(text)


def _reason(text: str) -> str:
    """``--reason``: one line of plain text (`tradeloom.engine.reasons.reason_problem`)."""
    from tradeloom.engine.reasons import reason_problem

    problem = reason_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


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


def _validate(args: argparse.Namespace) -> int:
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


def _check_lookahead(args: argparse.Namespace) -> int:
    from tradeloom.engine.run_dir import open_run_dir

    pipeline, _ = _load(args)  # validated and built like run: invalid input exits 2
    out, lock = open_run_dir(f"{pipeline.config.name}-lookahead", args.out)
    try:
        return _lookahead_in(args, pipeline, out.resolve())
    finally:
        lock.release_pid()


def _lookahead_in(args: argparse.Namespace, pipeline: Pipeline, out: Path) -> int:
    from tradeloom.diagnostics.lookahead import check_lookahead
    from tradeloom.engine.logs import configure_logging

    log_path = out / "lookahead.log"
    # the internal runs' logs (one backtest per variant) go to the file, the findings here
    with log_path.open("w", encoding="utf-8") as log:
        configure_logging(args.log_level, stream=log, stdlib=True)
        try:
            report = check_lookahead(
                pipeline.config,
                points=args.points,
                seed=args.seed,
                progress=lambda line: print(line, flush=True),
            )
        finally:
            configure_logging(args.log_level, stdlib=True)
    (out / "findings.txt").write_text("\n".join([*report.lines, report.summary]) + "\n")
    print(report.summary)
    logged = sum(1 for _ in log_path.open(encoding="utf-8"))
    if logged:
        print(f"the internal runs logged {_count(logged, 'line')}: {log_path}")
    return 0 if report.finding is None else 1


def _report(args: argparse.Namespace) -> int:
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


def _compare(args: argparse.Namespace) -> int:
    from tradeloom.files.writing import check_out_text
    from tradeloom.reporting.compare import compare_runs, default_compare_out

    if len(args.run_dirs) < 2:
        raise UserError("compare: give two run directories or more")
    out = default_compare_out(args.run_dirs) if args.out is None else check_out_text(args.out)
    table, path = compare_runs(args.run_dirs, out, single_file=args.single_file)
    print(table)
    print(f"equity curves: {path}")
    return 0


def _parity(args: argparse.Namespace) -> int:
    from tradeloom.diagnostics.parity import format_parity, parity, parse_tolerances, write_parity

    tolerances = parse_tolerances(args.tolerance)
    out = args.run_dir / "parity" if args.out is None else args.out
    result = parity(args.run_dir, out=out, tolerances=tolerances, data=args.data)
    paths = write_parity(result, out, args.run_dir, single_file=args.single_file)
    print(format_parity(result, args.run_dir))
    print(f"written: {paths[0]}, {paths[1]}")
    return 0 if result.passed else 1


def _warm(args: argparse.Namespace) -> int:
    from tradeloom.cli.init import SEED, shipped
    from tradeloom.cli.warm import warm_kernels, warm_portable

    if args.portable:
        words = ["--log-level", args.log_level, *(["-q"] if args.quiet else [])]
        words += [] if args.log_file is None else ["--log-file", str(args.log_file)]
        words += [] if args.threads is None else ["--threads", str(args.threads)]
        words += ["warm", *map(str, args.files), "--driver", args.driver]
        return warm_portable([*words, *(f"--set={word}" for word in args.overrides)])

    def backtest(file: Path, out: Path) -> None:
        _run(
            argparse.Namespace(
                file=file, mode="backtest", out=out, clock="wall", speed=None, max_bars=None,
                driver=args.driver, overrides=list(args.overrides), variant=None,
                warming=True,
            )
        )  # fmt: skip

    return warm_kernels(args.files or [shipped(SEED)], backtest)


def _init(args: argparse.Namespace) -> int:
    from tradeloom.cli.init import first_command, init_project

    written = init_project(args.folder)
    print(f"wrote {len(written)} files into {args.folder}")
    print(f"next: {first_command(args.folder)}")
    return 0


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
    from tradeloom.schemas.json_schema import strategy_json_schema, to_draft7

    registry = load_plugins(args.module).registry
    schema = strategy_json_schema(registry)
    print(json.dumps(to_draft7(schema) if args.draft == "7" else schema, indent=2))
    return 0


def _status(args: argparse.Namespace) -> int:
    from tradeloom.engine.status import format_status
    from tradeloom.engine.status_rows import read_status

    status = read_status(args.run_dir)
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        print(format_status(status))
    return 0


def _console(args: argparse.Namespace) -> int:
    from tradeloom.console.serve import serve

    serve(
        list(args.runs_dirs) or [Path("runs")],
        host=args.host,
        port=args.port,
        journal_url=args.journal_url,
    )
    return 0


def _kill(args: argparse.Namespace) -> int:
    from tradeloom.engine.control import request

    delivery = request(args.run_dir, "flatten" if args.flatten else "kill", args.reason)
    print(delivery.describe())
    # a kill that went by SIGUSR1 halts, and does not flatten: asked, not done
    return 1 if delivery.unwritten is not None and args.flatten else 0


def _resume(args: argparse.Namespace) -> int:
    from tradeloom.engine.control import request

    print(request(args.run_dir, "resume", args.reason).describe())
    return 0


def _swap(args: argparse.Namespace) -> int:
    from tradeloom.cli.swap_command import swap

    return swap(args)


def _promote(args: argparse.Namespace) -> int:
    from tradeloom.cli.promote_command import promote

    return promote(args)


def _rollback(args: argparse.Namespace) -> int:
    from tradeloom.cli.promote_command import rollback

    return rollback(args)


if __name__ == "__main__":
    console()
