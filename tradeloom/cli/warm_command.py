"""``tradeloom warm [FILE...]``: compile the kernels strategies need into the kernel cache
(`tradeloom.cli.warm`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tradeloom.arguments import given_path
from tradeloom.cli.options import add_set
from tradeloom.cli.run_command import _run

__all__ = ["add_parser", "warm"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``warm`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "warm",
        help="compile the kernels strategies need into the kernel cache (for images, CI)",
        description="""Backtest each FILE (default: the README's strategy) into a temporary
        folder, so that the kernels it uses are compiled and cached and a first run loads them;
        print what each compiled. Exit 0, 1 when the cache cannot be written (or, with
        --portable, this machine's CPU cannot run the target's code), 2 invalid input.""",
    )
    parser.add_argument("files", type=given_path, nargs="*", metavar="FILE")
    parser.add_argument(
        "--driver",
        choices=["auto", "batch", "per-bar"],
        default="auto",
        help="per-bar: the kernels paper and live runs step a bar at a time (default auto)",
    )
    parser.add_argument(
        "--portable",
        action="store_true",
        help="compile for a CPU level most machines of this architecture have (x86-64-v3 "
        "on x86-64: AVX2, FMA, BMI2) rather than for this machine's CPU, so that other "
        "machines load them too: for an image or a wheel (TRADELOOM_WHEEL_KERNELS)",
    )
    add_set(parser)
    parser.set_defaults(command=warm)


def warm(args: argparse.Namespace) -> int:
    """Compile the files' kernels into the cache; return the exit code."""
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
                venue_latency=None, driver=args.driver, overrides=list(args.overrides),
                variant=None, warming=True,
            )
        )  # fmt: skip

    return warm_kernels(args.files or [shipped(SEED)], backtest)
