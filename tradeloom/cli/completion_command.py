"""``tradeloom completion bash|zsh|fish``: the shell's completion script for the
``tradeloom`` command, generated from its own parser by shtab, so it knows every command
and option the installed version has and cannot drift from them."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["SHELLS", "add_parser", "completion_script", "print_completion"]

SHELLS = ("bash", "zsh", "fish")

_FILES = frozenset({"file", "files", "run_dir", "run_dirs", "folder", "runs_dirs"})
"""Positional arguments that name a file or a folder: completed with the shell's paths."""


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``completion`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "completion",
        help="print the shell's completion script for every command and option",
        description="""Print SHELL's completion script for tradeloom. bash: add
        'eval "$(tradeloom completion bash)"' to ~/.bashrc; zsh: write it to a file named
        _tradeloom in a folder of $fpath; fish: write it to
        ~/.config/fish/completions/tradeloom.fish.""",
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    parser.set_defaults(command=print_completion)


def print_completion(args: argparse.Namespace) -> int:
    """Print the completion script of ``args.shell`` for ``args.parser``, the whole command's
    parser; return the exit code."""
    print(completion_script(args.shell, args.parser), end="")
    return 0


def completion_script(shell: str, parser: argparse.ArgumentParser) -> str:
    """Return ``shell``'s completion script of the command ``parser`` parses."""
    import shtab

    _complete_paths(parser, shtab.FILE)
    script: str = shtab.complete(parser, shell=shell)
    return script if script.endswith("\n") else script + "\n"


def _complete_paths(parser: argparse.ArgumentParser, paths: Any) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _complete_paths(sub, paths)
        elif not action.option_strings and action.dest in _FILES:
            action.complete = paths  # type: ignore[attr-defined]
