"""What the console shows of an agent's workspace: its audit log and its live requests.

``tradeloom console --agent-workspace DIR`` points the console at the workspace of
``tradeloom mcp serve DIR``. Its audit log is read and its hash chain checked on every
answer by the same reader as ``tradeloom mcp audit`` (`tradeloom.journal.agent_audit`):
a broken chain is one line naming the first bad line, never a part of the table. The
live requests are shown as filed, read-only: approving one needs the operator's MCP
token and a named human (``tradeloom mcp approve``), which the console holds neither of.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeloom.errors import UserError
from tradeloom.journal.agent_audit import (
    audit_path,
    read_requests,
    requests_folder,
    verified_audit,
)

__all__ = [
    "PER_PAGE",
    "RESULT_LIMIT",
    "NoSuchPage",
    "audit_page",
    "page_number",
    "requests_view",
]

PER_PAGE = 50
"""Audit lines per page."""
RESULT_LIMIT = 300
"""A call's result is cut to this many characters (the log holds it whole)."""
_CALL_KEYS = ("seq", "at", "who", "tool", "arguments_sha256", "ok", "seconds")
_REQUEST_KEYS = (
    "id", "action", "target", "reason", "asked_by", "asked_at", "status", "approved_by", "done",
)  # fmt: skip


class NoSuchPage(UserError):
    """A page the log does not have (not a number, or past its last page)."""


def page_number(text: str | None) -> int:
    """Return the page asked for by ``?page=`` (1 when not given).

    Raises:
        NoSuchPage: Not a whole number of 1 or more.
    """
    if text is None:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise NoSuchPage(f"page: a whole number of 1 or more, was {text[:40]!r}")
    return int(text)


def audit_page(workspace: Path, page: int, per_page: int = PER_PAGE) -> dict[str, Any]:
    """Return one page of the audit log of ``workspace``, newest call first.

    Raises:
        UserError: The log's chain is broken (or a line is not JSON), by its line.
        NoSuchPage: ``page`` is past the last page.
    """
    path = audit_path(workspace)
    entries = verified_audit(path)
    pages = max(1, -(-len(entries) // per_page))
    if page > pages:
        raise NoSuchPage(f"page {page}: the audit log has {pages} page(s) of {per_page} calls")
    newest = entries[::-1][(page - 1) * per_page : page * per_page]
    return {
        "workspace": str(workspace),
        "log": str(path),
        "chain": "intact",
        "total": len(entries),
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "calls": [_call(entry) for entry in newest],
    }


def _call(entry: dict[str, Any]) -> dict[str, Any]:
    shown = {key: entry.get(key) for key in _CALL_KEYS}
    result = str(entry.get("result", ""))
    shown["result"] = result if len(result) <= RESULT_LIMIT else result[:RESULT_LIMIT] + "..."
    return shown


def requests_view(workspace: Path) -> dict[str, Any]:
    """Return the live requests of ``workspace``, newest first, each with its state.

    Raises:
        UserError: A request file that cannot be read, by its path.
    """
    found = read_requests(requests_folder(workspace))[::-1]
    return {
        "workspace": str(workspace),
        "pending": sum(1 for r in found if r.get("status") == "pending"),
        "requests": [{key: r.get(key) for key in _REQUEST_KEYS} for r in found],
        "approve": f"tradeloom mcp approve {workspace} REQUEST_ID --by NAME",
    }
