"""Reading an agent's workspace: its audit log (the hash chain checked) and its live requests.

``tradeloom mcp serve WORKSPACE`` keeps its own folder, ``WORKSPACE/.tradeloom-mcp``
(`PRIVATE`): ``audit.jsonl``, one hash-chained JSON line per agent call (written by
`tradeloom.agent.audit.AuditLog`), and ``requests/<id>.json``, the live requests an agent
filed for a named human to approve (written by `tradeloom.agent.approvals.Approvals`).
Here are the readers both the agent's door and the console use (the console cannot
import the agent): one chain check, one request reader. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tradeloom.errors import UserError

__all__ = [
    "GENESIS",
    "PRIVATE",
    "audit_path",
    "line_hash",
    "read_audit",
    "read_request",
    "read_requests",
    "requests_folder",
    "verified_audit",
    "verify_audit",
]

PRIVATE = ".tradeloom-mcp"
"""The agent's door's own folder inside its workspace (no agent reads or writes it)."""
GENESIS = "0" * 64
"""The ``prev`` of the audit log's first line."""


def audit_path(workspace: Path) -> Path:
    """Return the audit log of ``workspace``."""
    return workspace / PRIVATE / "audit.jsonl"


def requests_folder(workspace: Path) -> Path:
    """Return the folder of the live requests of ``workspace``."""
    return workspace / PRIVATE / "requests"


def line_hash(entry: dict[str, Any]) -> str:
    """Return an audit line's own hash: SHA-256 of its canonical JSON, ``hash`` left out."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Return the log's lines, oldest first (none: no call yet).

    Raises:
        UserError: A line that is not a JSON object, by its number.
    """
    if not path.is_file():
        return []
    entries: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                raise UserError(f"{path}:{number}: not an audit line (a JSON object)")
            entries.append(entry)
    return entries


def verified_audit(path: Path) -> list[dict[str, Any]]:
    """Return the log's lines, oldest first, once their chain is checked (one read).

    Raises:
        UserError: A line that is not JSON, or the first line whose hash or link is
            wrong, by its number.
    """
    previous = GENESIS
    entries = read_audit(path)
    for number, entry in enumerate(entries, start=1):
        if entry.get("prev") != previous or entry.get("hash") != line_hash(entry):
            raise UserError(f"{path}:{number}: the audit log's hash chain is broken here")
        previous = entry["hash"]
    return entries


def verify_audit(path: Path) -> int:
    """Check the log's chain; return how many lines it holds (as `verified_audit`)."""
    return len(verified_audit(path))


def read_request(path: Path) -> dict[str, Any]:
    """Return one live request as filed (its seal is not checked: that needs the token).

    Raises:
        UserError: The file cannot be read or is not a JSON object.
    """
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a request ({exc})") from None
    if not isinstance(found, dict):
        raise UserError(f"{path}: not a request (a JSON object)")
    return found


def read_requests(folder: Path) -> list[dict[str, Any]]:
    """Return every request in ``folder`` (pending or decided), oldest first."""
    if not folder.is_dir():
        return []
    return [read_request(path) for path in sorted(folder.glob("*.json"))]
