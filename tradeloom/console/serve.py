"""Start the console: check the extra, bind the socket, print the login links, serve."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from tradeloom.errors import UserError
from tradeloom.runtime.redaction import register_secret

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
"""Only this machine, unless ``--host`` says otherwise."""
DEFAULT_PORT = 8470
EXTRA = "pip install 'tradeloom[console]'"


def serve(
    roots: list[Path],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    journal_url: str | None = None,
    agent_workspace: Path | None = None,
    say: Callable[[str], None] | None = None,
) -> None:
    """Serve the console for the runs below ``roots`` until interrupted.

    Args:
        roots: The run folders' parents (``runs/``); each must be a directory.
        host: The address to listen on.
        port: The port (0: any free one, printed).
        journal_url: A PostgreSQL journal's URL (its password is kept out of every
            answer and log line).
        agent_workspace: The workspace of ``tradeloom mcp serve`` the agent page shows.
        say: Where the start-up lines go (the login links among them).

    Raises:
        UserError: The extra is missing, a root or the agent workspace is not a folder,
            the address cannot be bound, or the tokens cannot be read.
    """
    if say is None:
        say = _say
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError(f"tradeloom console needs the console extra: {EXTRA}") from None
    from tradeloom.console.app import create_app
    from tradeloom.console.tokens import Sessions, load_tokens
    from tradeloom.engine.logs import configure_logging

    if journal_url:
        password = urlsplit(journal_url).password
        if password:
            register_secret(password)
    for root in roots:
        if not root.is_dir():
            raise UserError(f"console: {root}: not a folder (give the folders that hold runs)")
    if agent_workspace is not None and not agent_workspace.is_dir():
        raise UserError(f"--agent-workspace: {agent_workspace}: not a folder")
    tokens = load_tokens()
    sessions = Sessions()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"console: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{bound}"
    configure_logging("info")
    say(f"tradeloom console on {base}/ serving {', '.join(str(r) for r in roots)}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}: other machines may reach it (plain HTTP)")
    read, write = sessions.login_code("read"), sessions.login_code("write")
    say(f"read-only login (once): {base}/login?code={read}")
    say(f"operator login (once; can kill and flatten): {base}/login?code={write}")
    say(f"API tokens: {tokens.source} (Authorization: Bearer TOKEN); API: {base}/api/v1/docs")
    if agent_workspace is not None:
        say(f"agent workspace: {agent_workspace} (its audit log and requests: {base}/agent)")
    app = create_app(roots, tokens, sessions, warm=True, agent_workspace=agent_workspace)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _say(line: str) -> None:
    print(line, flush=True)  # a pipe (a supervisor, a test) sees the login links at once
