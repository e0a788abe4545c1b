"""The MCP SDK's own client, driven from synchronous tests, and a workspace to serve.

`Session` holds one `mcp.Client` (stdio: a `StdioServerParameters`; HTTP: the server's
URL) open on an anyio blocking portal, so that a module's tests share one server; it
counts the tool calls it makes, for the audit log's test. `serve_command` is the
``tradeloom mcp serve`` command line a test starts, from this checkout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio.from_thread
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.builders import REPORTED, strategy_text

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"
TOKEN = "operator-only-7f3a"
"""The operator's token of the tests' servers (in $TRADELOOM_MCP_TOKEN)."""


def workspace(folder: Path) -> Path:
    """Make a workspace holding ``strategies/demo.yaml`` (the tests' base strategy, with
    a user's outputs: the backtest tool answers its report)."""
    (folder / "strategies").mkdir(parents=True)
    (folder / "strategies" / "demo.yaml").write_text(strategy_text(REPORTED), encoding="utf-8")
    return folder


def environment() -> dict[str, str]:
    """The servers' environment: this checkout and the fixture plugins importable."""
    path = os.pathsep.join([str(ROOT), str(FIXTURES), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "TRADELOOM_MCP_TOKEN": TOKEN}


def serve_command(folder: Path, *options: str) -> list[str]:
    """Return ``tradeloom mcp serve FOLDER OPTIONS`` as this interpreter runs it."""
    return [sys.executable, "-m", "tradeloom.cli.main", "mcp", "serve", str(folder), *options]


def stdio(folder: Path, *options: str) -> StdioServerParameters:
    """Return the parameters that start the stdio server of ``folder``."""
    command = serve_command(folder, *options)
    return StdioServerParameters(command=command[0], args=command[1:], env=environment(), cwd=ROOT)


class Session:
    """One open client of one server, for synchronous tests."""

    def __init__(self, server: StdioServerParameters | str) -> None:
        self.server = server
        self.calls = 0

    def __enter__(self) -> Session:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self._client_cm = self.portal.wrap_async_context_manager(Client(self.server))
        self.client = self._client_cm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._client_cm.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def tools(self) -> list[str]:
        """Return the names of the tools the server lists."""
        return [t.name for t in self.portal.call(self.client.list_tools).tools]

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        """Call tool ``name``; return the raw `CallToolResult`."""
        self.calls += 1
        return self.portal.call(self.client.call_tool, name, arguments or {})

    def ok(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a tool that must succeed; return its answer."""
        result = self.call(name, arguments)
        text = result.content[0].text
        assert not result.is_error, f"{name} failed: {text}"
        answer: dict[str, Any] = json.loads(text)
        assert result.structured_content == answer
        return answer

    def refused(self, name: str, arguments: dict[str, Any] | None = None) -> str:
        """Call a tool that must be refused; return its one-line message."""
        result = self.call(name, arguments)
        text: str = result.content[0].text
        assert result.is_error, f"{name} was not refused: {text[:300]}"
        assert result.structured_content is None
        return text
