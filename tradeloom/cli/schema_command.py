"""``tradeloom schema``: the JSON Schema of strategy files, for editors."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "print_schema"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``schema`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser("schema", help="print the JSON Schema of strategy files")
    parser.add_argument(
        "-m", "--module", action="append", default=[], help="also load this plugin module"
    )
    parser.add_argument(
        "--draft",
        choices=["7", "2020-12"],
        default="7",
        help="the JSON Schema version (default: 7, which yaml-language-server implements)",
    )
    parser.set_defaults(command=print_schema)


def print_schema(args: argparse.Namespace) -> int:
    """Print the strategy files' JSON Schema; return the exit code."""
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.schemas.json_schema import strategy_json_schema, to_draft7

    registry = load_plugins(args.module).registry
    schema = strategy_json_schema(registry)
    print(json.dumps(to_draft7(schema) if args.draft == "7" else schema, indent=2))
    return 0
