"""Serve a workspace's door over stdio or streamable HTTP (bound to the loopback only)."""

from __future__ import annotations

import os
import sys

from tradeloom.agent.server import Door, build_server
from tradeloom.errors import UserError

__all__ = ["LOOPBACK", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""The hosts the HTTP transport may bind: an agent's door is not a network service."""


def serve(door: Door, *, http: bool = False, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve ``door`` until the client hangs up (stdio) or the process is stopped (HTTP).

    The process works in the workspace (its current folder), so every path a message
    names is the agent's own.

    Raises:
        UserError: ``host`` is not a loopback address.
    """
    from tradeloom.runtime.extras import require

    require("mcp", "tradeloom mcp")
    import anyio

    if http and host not in LOOPBACK:
        raise UserError(f"--host: {host!r} is not a loopback address ({', '.join(LOOPBACK)})")
    os.chdir(door.workspace.root)
    server = build_server(door, "http" if http else "stdio")
    if not http:
        from mcp.server.stdio import stdio_server

        async def over_stdio() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(over_stdio)
        return
    import uvicorn

    app = server.streamable_http_app(host=host)
    print(f"tradeloom mcp: serving http://{host}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()
