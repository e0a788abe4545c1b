"""The server's resources (the workspace's strategy files and runs) and its prompts."""

from __future__ import annotations

from itertools import islice
from typing import Any

from tradeloom.agent.workspace import PRIVATE, Workspace
from tradeloom.errors import UserError

__all__ = ["prompt_list", "prompt_text", "resource_list", "resource_text"]

FILE = "tradeloom://file/"
"""A strategy file's address: ``tradeloom://file/strategies/mine.yaml``."""
RUN = "tradeloom://run/"
"""A run's metrics: ``tradeloom://run/runs/mine-20260101T000000Z``."""
_MOST = 200


def resource_list(workspace: Workspace) -> list[Any]:
    """Return the workspace's strategy files and runs as MCP resources (200 of each, at most)."""
    import mcp_types as types

    files = (
        p
        for p in sorted(workspace.root.rglob("*.y*ml"))
        if not {PRIVATE, "runs", "sweeps"} & set(p.relative_to(workspace.root).parts)
        and p.is_file()
    )
    found = []
    for path in islice(files, _MOST):
        name = workspace.relative(path)
        found.append(types.Resource(uri=f"{FILE}{name}", name=name, mime_type="application/yaml"))
    runs = workspace.root / "runs"
    if runs.is_dir():
        for run in islice(
            sorted(p for p in runs.iterdir() if (p / "metrics.json").is_file()), _MOST
        ):
            name = workspace.relative(run)
            found.append(
                types.Resource(uri=f"{RUN}{name}", name=name, mime_type="application/json")
            )
    return found


def resource_text(workspace: Workspace, uri: str) -> tuple[str, str]:
    """Return a resource's text and type.

    Raises:
        UserError: An address that is not one of the workspace's (the jail's refusal).
    """
    if uri.startswith(FILE):
        path = workspace.strategy_file(uri.removeprefix(FILE), "uri")
        return path.read_text(encoding="utf-8"), "application/yaml"
    if uri.startswith(RUN):
        path = workspace.run_dir(uri.removeprefix(RUN), "uri") / "metrics.json"
        if not path.is_file():
            raise UserError(f"uri: {uri!r} has no metrics.json")
        return path.read_text(encoding="utf-8"), "application/json"
    raise UserError(f"uri: {uri!r} is not a resource of this server ({FILE}..., {RUN}...)")


def prompt_list() -> list[Any]:
    """Return the prompts the server offers."""
    import mcp_types as types

    return [
        types.Prompt(
            name="improve_strategy",
            description="Improve a strategy without look-ahead, and earn its way to paper.",
            arguments=[
                types.PromptArgument(name="path", description="the strategy file", required=True)
            ],
        )
    ]


def prompt_text(name: str, arguments: dict[str, str]) -> Any:
    """Return the prompt ``name`` filled with ``arguments``."""
    import mcp_types as types

    if name != "improve_strategy":
        raise UserError(f"no prompt {name!r}; the prompts are improve_strategy")
    path = arguments.get("path") or "strategies/mine.yaml"
    text = (
        f"Improve the strategy {path}. Read it (resource {FILE}{path}) and the schema tool. "
        "Write each change with write_strategy; a feature may use bars up to the decision "
        "bar only, so run check_lookahead after each change and fix what it finds. Measure "
        "with backtest, then sweep one or two settings and read the leaderboard's DSR and the "
        "PBO: a best row that only a large grid finds is overfitting. When the gate tool's "
        "figures pass, start_paper; never ask for live actions without a reason a human "
        "can check."
    )
    return types.GetPromptResult(
        description="improve a strategy without look-ahead",
        messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
        ],
    )
