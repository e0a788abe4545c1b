"""``tradeloom console``: the operator's web console over a folder of runs (its own process)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "serve_console"]


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``console`` to the ``tradeloom`` command's subcommands."""
    parser = commands.add_parser(
        "console",
        help="the operator's web console and HTTP API over the runs in RUNS_DIR (its own "
        "process; needs the console extra)",
        description="""Serve every run below RUNS_DIR (default: runs) in a browser and as JSON
        under /api/v1: the runs, a run page that follows its run as it trades, compare, and
        kill, resume and kill-and-flatten through the run's mailbox; with --agent-workspace,
        the audit log and live requests of an MCP agent's workspace. Listens on 127.0.0.1
        unless --host says otherwise; every request needs a token (kept 0600 in
        $XDG_CONFIG_HOME/tradeloom/console-token, or TRADELOOM_CONSOLE_TOKEN and
        TRADELOOM_CONSOLE_WRITE_TOKEN); the login links printed at start open a browser session
        once. Exit 2 without the extra: pip install 'tradeloom[console]'.""",
    )
    parser.add_argument("runs_dirs", type=Path, nargs="*", metavar="RUNS_DIR", help="default: runs")
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=8470, metavar="N", help="default: 8470; 0: any free port"
    )
    parser.add_argument(
        "--journal-url",
        metavar="URL",
        help="a PostgreSQL journal's URL (its password is kept out of every page and log)",
    )
    parser.add_argument(
        "--agent-workspace",
        type=Path,
        metavar="DIR",
        help="the workspace of 'tradeloom mcp serve DIR': the agent page (/agent) shows its "
        "audit log, hash chain checked, and its live requests (read-only)",
    )
    parser.set_defaults(command=serve_console)


def serve_console(args: argparse.Namespace) -> int:
    """Serve the console until stopped; return the exit code."""
    from tradeloom.console.serve import serve

    serve(
        list(args.runs_dirs) or [Path("runs")],
        host=args.host,
        port=args.port,
        journal_url=args.journal_url,
        agent_workspace=args.agent_workspace,
    )
    return 0
