"""``tradeloom schema``: the JSON Schema of strategy, portfolio and sweep files, for editors
(`tradeloom.cli.file_schemas`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "print_schema"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``schema`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "schema",
        help="print the JSON Schema of strategy files (or of portfolio or sweep files)",
        description="""Print the JSON Schema of a kind of file, every installed component
        included, for editors: point yaml-language-server at it with a first line
        '# yaml-language-server: $schema=FILE'. The docs publish the three schemas of the
        built-in components (schemas/strategy.schema.json, portfolio.schema.json,
        sweep.schema.json).""",
    )
    parser.add_argument(
        "--kind",
        choices=["strategy", "portfolio", "sweep"],
        default="strategy",
        help="which files' schema (default strategy)",
    )
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
    """Print the JSON Schema of ``--kind``'s files; return the exit code."""
    from tradeloom.cli.file_schemas import file_json_schema
    from tradeloom.plugins.manager import load_plugins
    from tradeloom.schemas.json_schema import to_draft7

    registry = load_plugins(args.module).registry
    schema = file_json_schema(args.kind, registry)
    print(json.dumps(to_draft7(schema) if args.draft == "7" else schema, indent=2))
    return 0
