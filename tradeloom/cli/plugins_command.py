"""``tradeloom plugins``: every plugin, its source and its components, and the clashes."""

from __future__ import annotations

import argparse
from typing import Any

from tradeloom.reporting.json_output import add_json_option, print_json

__all__ = ["add_parser", "list_plugins"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``plugins`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser("plugins", help="list plugins, their sources and components")
    parser.add_argument(
        "-m", "--module", action="append", default=[], help="also load this plugin module"
    )
    add_json_option(parser, "plugins")
    parser.set_defaults(command=list_plugins)


def list_plugins(args: argparse.Namespace) -> int:
    """Print every plugin and its components; return the exit code."""
    from tradeloom.plugins.manager import load_plugins

    registry = load_plugins(args.module).registry
    clashing = {
        (entry.component.layer, entry.component.kind): [e.plugin.name for e in clash]
        for clash in registry.clashes()
        for entry in clash
    }
    if args.json:
        print_json("plugins", _listing(registry))
        return 0
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


def _listing(registry: Any) -> dict[str, Any]:
    plugins = [
        {
            "name": plugin.name,
            "source": plugin.source,
            "components": [
                {"layer": c.layer, "kind": c.kind, "summary": c.summary}
                for c in sorted(plugin.components, key=lambda c: (c.layer, c.kind))
            ],
        }
        for plugin in registry.plugins
    ]
    clashes = [
        {
            "layer": clash[0].component.layer,
            "kind": clash[0].component.kind,
            "plugins": [e.plugin.name for e in clash],
        }
        for clash in registry.clashes()
    ]
    return {"plugins": plugins, "clashes": clashes}
