"""The audit log: every agent call, journaled before its answer leaves the server.

One JSON line per call in ``WORKSPACE/.tradeloom-mcp/audit.jsonl``: when, who (the
client's name and the transport), the tool, the SHA-256 of its arguments, whether it
succeeded, its one-line result and how long it took. Each line carries the hash of the
line before it (``prev``) and its own (``hash``), so a line removed or changed breaks the
chain (`verify_audit`: it and the reader live in `tradeloom.journal.agent_audit`, so
that the console reads the same log the same way); each is flushed and fsync'd before
the call answers. Appends take an exclusive lock, so the server and ``tradeloom mcp
approve`` may write the same log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tradeloom.journal.agent_audit import GENESIS, line_hash, read_audit, verify_audit

__all__ = ["AuditLog", "Call", "arguments_hash", "read_audit", "verify_audit"]


@dataclass(frozen=True)
class Call:
    """One journaled call: who asked what, and how it ended."""

    who: str
    tool: str
    arguments: dict[str, Any]
    ok: bool
    result: str
    seconds: float


def arguments_hash(arguments: dict[str, Any]) -> str:
    """Return the SHA-256 of a call's arguments as canonical JSON."""
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditLog:
    """The append-only, hash-chained log of a workspace's agent calls."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, call: Call) -> dict[str, Any]:
        """Append ``call`` (flushed and fsync'd); return the line written."""
        with self._lock, open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            last = _last_line(handle)
            head = json.loads(last) if last else None
            entry: dict[str, Any] = {
                "seq": 1 if head is None else int(head["seq"]) + 1,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "who": call.who,
                "tool": call.tool,
                "arguments_sha256": arguments_hash(call.arguments),
                "ok": call.ok,
                "result": call.result,
                "seconds": round(call.seconds, 6),
                "prev": GENESIS if head is None else head["hash"],
            }
            entry["hash"] = line_hash(entry)
            handle.write((json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        return entry


def _last_line(handle: BinaryIO) -> bytes:
    """Return the file's last line (empty: no line), read backwards from its end."""
    end = handle.seek(0, os.SEEK_END)
    found = b""
    position = end
    while position > 0:
        step = min(4096, position)
        position -= step
        handle.seek(position)
        found = handle.read(step) + found
        if found.rstrip(b"\n").count(b"\n"):
            break
    return found.rstrip(b"\n").rpartition(b"\n")[2].strip()
