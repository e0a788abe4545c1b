"""``tradeloom mcp``: the agent's door (an MCP server) and the human's side of it.

``tradeloom mcp serve WORKSPACE`` serves the research tools over stdio (``--http``:
streamable HTTP on 127.0.0.1); ``tradeloom mcp approve WORKSPACE REQUEST --by NAME``
carries out a live request an agent filed, once its seal checks with the operator's
token; ``requests`` lists the pending ones; ``audit`` checks the audit log's chain and
prints its last lines.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from tradeloom.arguments import positive_int
from tradeloom.errors import UserError

__all__ = ["TOKEN_ENV", "add_mcp_parser"]

TOKEN_ENV = "TRADELOOM_MCP_TOKEN"
"""Where ``approve`` and ``requests`` read the operator's token by default."""


def add_mcp_parser(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``mcp`` and its actions to the command's subcommands."""
    mcp = sub.add_parser("mcp", help="the agent's door: an MCP server, and its approvals")
    actions = mcp.add_subparsers(required=True, metavar="ACTION")

    serve = actions.add_parser(
        "serve",
        help="serve the research tools of WORKSPACE to an MCP client (stdio, or --http)",
        description="Serve tradeloom's commands as MCP tools inside WORKSPACE: every path "
        "stays inside it, every call is journaled in its audit log, paper waits for "
        "check-lookahead and the gate, and live actions (with --operator-token-env only) "
        "wait for a named human's `tradeloom mcp approve`.",
    )
    serve.add_argument("workspace", type=Path, metavar="WORKSPACE")
    serve.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="--http: a loopback address")
    serve.add_argument("--port", type=positive_int, default=8765, help="--http: the port")
    serve.add_argument(
        "--operator-token-env",
        metavar="VAR",
        help="offer the live tools (each only files a request), sealed with the token in "
        "$VAR; the agent must not hold it",
    )
    serve.add_argument(
        "--allow-plugin", action="append", default=[], metavar="MODULE",
        help="a module a strategy's plugins: may name (repeatable; default none)",
    )  # fmt: skip
    serve.add_argument("--min-trades", type=int, default=20, help="the gate: best row's trades")
    serve.add_argument("--max-pbo", type=float, default=0.5, help="the gate: the sweep's PBO")
    serve.add_argument("--min-dsr", type=float, default=0.5, help="the gate: best row's DSR")
    serve.add_argument("--max-bars", type=positive_int, default=100_000, help="data.bars bound")
    serve.add_argument("--max-variants", type=positive_int, default=100, help="a sweep's bound")
    serve.add_argument("--max-runs", type=positive_int, default=2, help="runs at once")
    serve.add_argument("--paper-bars", type=positive_int, default=200, help="a paper run's bars")
    serve.set_defaults(command=_serve)

    approve = actions.add_parser("approve", help="carry out a live request an agent filed")
    approve.add_argument("workspace", type=Path, metavar="WORKSPACE")
    approve.add_argument("request", metavar="REQUEST", help="the request's id")
    approve.add_argument("--by", required=True, metavar="NAME", help="who approves")
    approve.add_argument("--operator-token-env", default=TOKEN_ENV, metavar="VAR")
    approve.set_defaults(command=_approve)

    requests = actions.add_parser("requests", help="list the live requests waiting")
    requests.add_argument("workspace", type=Path, metavar="WORKSPACE")
    requests.add_argument("--operator-token-env", default=TOKEN_ENV, metavar="VAR")
    requests.set_defaults(command=_requests)

    audit = actions.add_parser("audit", help="check the audit log's chain, print its tail")
    audit.add_argument("workspace", type=Path, metavar="WORKSPACE")
    audit.add_argument("--last", type=positive_int, default=20, metavar="N")
    audit.set_defaults(command=_audit)


def _token(variable: str) -> str:
    token = os.environ.get(variable, "")
    if not token:
        raise UserError(f"--operator-token-env: ${variable} is not set (the operator's token)")
    return token


def _serve(args: argparse.Namespace) -> int:
    from tradeloom.agent.gate import Gate
    from tradeloom.agent.serve import serve
    from tradeloom.agent.server import Door
    from tradeloom.agent.workspace import Limits, Workspace

    limits = Limits(
        max_bars=args.max_bars, max_variants=args.max_variants, max_runs=args.max_runs,
        paper_bars=args.paper_bars,
    )  # fmt: skip
    workspace = Workspace(args.workspace, limits, frozenset(args.allow_plugin))
    gate = Gate(min_trades=args.min_trades, max_pbo=args.max_pbo, min_dsr=args.min_dsr)
    token = None if args.operator_token_env is None else _token(args.operator_token_env)
    serve(Door(workspace, gate, token), http=args.http, host=args.host, port=args.port)
    return 0


def _approvals(args: argparse.Namespace) -> Any:
    from tradeloom.agent.approvals import Approvals
    from tradeloom.agent.workspace import Workspace

    return Approvals(Workspace(args.workspace), _token(args.operator_token_env))


def _approve(args: argparse.Namespace) -> int:
    from tradeloom.agent.audit import AuditLog, Call
    from tradeloom.journal.agent_audit import audit_path

    approvals = _approvals(args)
    started = time.perf_counter()
    audit = AuditLog(audit_path(approvals.workspace.root))
    arguments = {"request": args.request}
    try:
        approved = approvals.approve(args.request, args.by)
    except UserError as exc:
        seconds = time.perf_counter() - started
        audit.record(Call(f"human {args.by}", "approve", arguments, False, str(exc), seconds))
        raise
    seconds = time.perf_counter() - started
    audit.record(Call(f"human {args.by}", "approve", arguments, True, approved.done, seconds))
    print(f"{args.request}: approved by {args.by}: {approved.done}")
    return 0


def _requests(args: argparse.Namespace) -> int:
    for request in _approvals(args).pending():
        target = json.dumps(request["target"], sort_keys=True)
        print(f"{request['id']}  {request['action']}  {target}  asked by {request['asked_by']}: "
              f"{request['reason']}")  # fmt: skip
    return 0


def _audit(args: argparse.Namespace) -> int:
    from tradeloom.journal.agent_audit import audit_path, verified_audit

    path = audit_path(args.workspace)
    entries = verified_audit(path)
    count = len(entries)
    for entry in entries[-args.last :]:
        state = "ok" if entry["ok"] else "refused"
        print(f"{entry['seq']:>6} {entry['at']} {entry['who']}: {entry['tool']} {state} "
              f"({entry['seconds']:.3f} s) {entry['result']}")  # fmt: skip
    print(f"{path}: {count} calls, hash chain intact")
    return 0
