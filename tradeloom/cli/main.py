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
import importlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn

from tradeloom.arguments import positive_int
from tradeloom.cli.usage_errors import OneLineParser
from tradeloom.errors import ServiceUnreachable, UserError, folder_left
from tradeloom.version import __version__

__all__ = ["console", "main"]

_COMMANDS: tuple[tuple[str, str], ...] = (
    ("run_command", "add_parser"),
    ("validate_command", "add_parser"),
    ("plugins_command", "add_parser"),
    ("init_command", "add_parser"),
    ("lookahead_command", "add_parser"),
    ("report_command", "add_parser"),
    ("compare_command", "add_parser"),
    ("parity_command", "add_parser"),
    ("schema_command", "add_parser"),
    ("kill_command", "add_parsers"),  # and resume
    ("swap_command", "add_parser"),
    ("promote_command", "add_parsers"),  # and rollback
    ("console_command", "add_parser"),
    ("chat_command", "add_parser"),
    ("warm_command", "add_parser"),
    ("status_command", "add_parser"),
    ("journal_command", "add_parser"),
    ("tradeloom.sweep.cli", "add_sweep_parser"),
    ("models_command", "add_models_parser"),
    ("mcp_command", "add_mcp_parser"),
    ("data_command", "add_parser"),
    ("completion_command", "add_parser"),
)
"""Each command's module and the function of it that adds its parser (arguments, help,
handler), in the order ``tradeloom --help`` lists them; a new command is its module and
one line here. A module is imported when its parser is built: a command line that names
a command of `_ALONE` imports that command's module only (the others' twenty modules and
what they import took ~10 ms of a small run's start-up)."""


def _adder(module: str, function: str) -> Callable[[argparse._SubParsersAction[Any]], None]:
    """Return the function of a command's module (``tradeloom.cli.<module>`` where the
    name is not a whole dotted path) that adds the command's parser."""
    name = module if "." in module else f"tradeloom.cli.{module}"
    adder: Callable[[argparse._SubParsersAction[Any]], None] = getattr(
        importlib.import_module(name), function
    )
    return adder


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if trades_live(words):
        # first thing, before the parser's imports and the validation: a signal during
        # start-up stops the run cleanly, journaled, instead of killing it (exit 143)
        catch_stop_signals_early()
    parser = _parser_for(words)
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
    and answer (`_ANSWERS`: validate, status, journal verify, kill, resume) keep the
    start-up pace to their end, never settled: their imports are most of what they make,
    and walking them cost a ``validate`` 30-80 ms of CPU (0.38-0.40 s of CPU at this
    pace against 0.41-0.46 s, four runs each at load ~14, 2026-11-27) and a ``status``
    as much (0.44-0.48 s against 0.53-0.55 s).
    """
    backtest = _is(args.command, "run_command", "_run") and args.mode == "backtest"
    if backtest or any(_is(args.command, *answer) for answer in _ANSWERS):
        from tradeloom.runtime.collection_pace import start_up

        return start_up()
    return contextlib.nullcontext()


_ANSWERS = (
    ("validate_command", "validate"),
    ("status_command", "show_status"),
    ("journal_command", "verify_journal"),
    ("kill_command", "kill"),
    ("kill_command", "resume"),
)
"""The commands that read and answer (their module and function), kept at the start-up pace."""


def _is(command: object, module: str, name: str) -> bool:
    """Return whether ``command`` is the function ``name`` of the command module ``module``
    (not imported: it is not)."""
    loaded = sys.modules.get(f"tradeloom.cli.{module}")
    return loaded is not None and command is getattr(loaded, name, None)


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
    command wrote (`tradeloom.runtime.dataclass_code`); pydantic does not look for plugins
    no installed distribution declares (`tradeloom.runtime.entry_point_groups`); `main` is
    what an embedding program calls.
    """
    from tradeloom.cli.leave import leave
    from tradeloom.runtime import dataclass_code, entry_point_groups

    dataclass_code.install()  # the dataclasses' methods compiled by an earlier command
    entry_point_groups.skip_pydantic_plugin_scan()  # where no distribution has a plugin
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
        # the input's mistake, named where it is (the file, the key): fixed there, not in
        # the run's folder, which the line does not name
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 2
    except ServiceUnreachable as exc:
        print(f"{exc}{_left(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"interrupted{_left(exc)}", file=sys.stderr)
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
            print(redact_text(f"run failed: {fault}{where}{_left(exc)}"), file=sys.stderr)
            return 1
        import structlog

        structlog.get_logger("tradeloom.cli").exception(
            "run_failed", error=f"{type(exc).__name__}: {exc}"
        )
        print(redact_text(f"run failed: {type(exc).__name__}: {exc}{_left(exc)}"), file=sys.stderr)
        return 1


def _left(exc: BaseException) -> str:
    """Return the end of a failed run's line naming the folder it left (else empty)."""
    import shlex

    folder = folder_left(exc)
    if folder is None:
        return ""
    return f" (the run's folder {folder} keeps its journal: tradeloom status {shlex.quote(folder)})"


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


_ALONE: dict[str, tuple[str, str]] = {
    "run": ("run_command", "add_parser"),
    "validate": ("validate_command", "add_parser"),
}
"""Commands whose parser is built alone when a command line names them: the whole
command's parser, every command's arguments and help, took ~8 ms of a run's CPU."""

_GLOBAL_VALUES = frozenset({"--log-level", "--log-file", "--threads"})
"""`_parser`'s own options that take a value (as the next word, or after ``=``)."""


def _parser_for(words: Sequence[str]) -> argparse.ArgumentParser:
    """Return the parser of ``words``: for a command of `_ALONE` named after the global
    options written in full (no help, no abbreviation), the whole command's parser with
    that command alone, which parses them as the whole one does; else the whole one."""
    at = 0
    while at < len(words) and words[at].startswith("-"):
        option = words[at].split("=", 1)[0]
        if option in ("-q", "--quiet") and option == words[at]:
            at += 1
        elif option in _GLOBAL_VALUES:
            at += 1 if "=" in words[at] else 2
        else:
            return _parser()
    if at < len(words) and words[at] in _ALONE:
        return _parser(words[at])
    return _parser()


@functools.cache  # built once per process: an embedding program or a notebook calls main often
def _parser(alone: str | None = None) -> argparse.ArgumentParser:
    """Return the command's parser (``alone``: with that command of `_ALONE` only)."""
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
    for module, function in _COMMANDS if alone is None else (_ALONE[alone],):
        _adder(module, function)(sub)
    parser.set_defaults(parser=parser)  # what `tradeloom completion` writes its script of
    return parser


if __name__ == "__main__":
    console()
