"""Live actions behind a human: an agent files a request, a named person approves it.

With the operator's token (``tradeloom mcp serve --operator-token-env VAR``) the server
offers the live tools; each only files a pending request in
``WORKSPACE/.tradeloom-mcp/requests/<id>.json``, sealed with an HMAC of the token, and
acts on nothing. ``tradeloom mcp approve WORKSPACE ID --by NAME``, run by a person who
holds the token, checks the seal and only then acts through the project's own control
functions (`tradeloom.engine.control`: the run's mailbox, as ``tradeloom swap``,
``promote``, ``rollback`` and ``kill --flatten`` ask) or starts the live run
(``tradeloom run FILE --mode live``). A request is approved once. The kill switch is no
request: it stays the operator's (``tradeloom kill``, ``touch RUN_DIR/KILL``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tradeloom.agent.workspace import Workspace
from tradeloom.errors import UserError
from tradeloom.journal.agent_audit import read_request, read_requests, requests_folder

__all__ = ["ACTIONS", "Approvals", "LiveAction"]

LiveAction = Literal["start_live", "swap", "promote", "rollback", "flatten"]
ACTIONS: tuple[LiveAction, ...] = ("start_live", "swap", "promote", "rollback", "flatten")
"""What an agent may ask a human for; the kill switch is not one."""


@dataclass(frozen=True)
class Approved:
    """What an approval did: the request, and the line of what was asked of the run."""

    request: dict[str, Any]
    done: str


class Approvals:
    """The pending live requests of a workspace."""

    def __init__(self, workspace: Workspace, token: str) -> None:
        if not token:
            raise UserError("the operator's token is empty; live requests need one")
        self.workspace = workspace
        self._key = token.encode("utf-8")
        self.folder = requests_folder(workspace.root)
        self.folder.mkdir(parents=True, exist_ok=True)

    def file(
        self, action: LiveAction, target: dict[str, Any], reason: str, who: str
    ) -> dict[str, Any]:
        """File a pending request; return it (its ``id`` is what a human approves)."""
        from tradeloom.engine.reasons import reason_problem

        problem = reason_problem(reason)
        if problem is not None:
            raise UserError(f"reason: {problem}")
        number = time.time_ns()
        while (self.folder / f"{number}-{action}.json").exists():
            number += 1
        request = {
            "id": f"{number}-{action}",
            "action": action,
            "target": target,
            "reason": reason,
            "asked_by": who,
            "asked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "status": "pending",
        }
        request["seal"] = self._seal(request)
        self._write(request)
        return request

    def pending(self) -> list[dict[str, Any]]:
        """Return the requests waiting for a human, oldest first."""
        return [r for r in read_requests(self.folder) if r.get("status") == "pending"]

    def approve(self, request_id: str, by: str) -> Approved:
        """Check the request's seal, then carry it out; return what was done.

        Raises:
            UserError: No such request, a seal the token does not make (a request not
                filed by this server, or changed since), a request decided already, or
                the action's own refusal (a run directory that is not a paper or live
                run's).
        """
        if not by.strip():
            raise UserError("--by: name the person who approves")
        path = self.folder / f"{request_id}.json"
        if "/" in request_id or not path.is_file():
            raise UserError(f"{request_id}: no such request in {self.folder}")
        request = read_request(path)
        if not hmac.compare_digest(str(request.get("seal", "")), self._seal(request)):
            raise UserError(f"{request_id}: its seal does not match this token; nothing was done")
        if request.get("status") != "pending":
            raise UserError(f"{request_id}: already {request.get('status')}; nothing was done")
        done = self._act(request, by)
        request.update(status="approved", approved_by=by, done=done)
        request["seal"] = self._seal(request)
        self._write(request)
        return Approved(request, done)

    # --- acting ----------------------------------------------------------------------------

    def _act(self, request: dict[str, Any], by: str) -> str:
        from tradeloom.engine import control

        target = request["target"]
        reason = f"{request['reason']} (asked by agent {request['asked_by']}, approved by {by})"
        action: LiveAction = request["action"]
        if action == "start_live":
            return self._start_live(self.workspace.strategy_file(target["strategy"], "strategy"))
        run_dir = self.workspace.run_dir(target["run"])
        if action == "flatten":
            return control.request(run_dir, "flatten", reason).describe()
        if action == "promote":
            return control.request_promote(run_dir, str(target["challenger"]), reason).describe()
        if action == "rollback":
            return control.request_rollback(run_dir, reason).describe()
        model = self.workspace.run_dir(target["model"], "model")
        fold = target.get("fold")
        return control.request_swap(run_dir, model, fold, reason).describe()

    def _start_live(self, strategy: Path) -> str:
        runs = self.workspace.root / "runs"
        runs.mkdir(exist_ok=True)
        out = runs / f"{strategy.stem}-live"
        log = self.workspace.private / "logs" / f"{out.name}.log"
        log.parent.mkdir(exist_ok=True)
        words = [sys.executable, "-m", "tradeloom.cli.main", "-q", "run", str(strategy)]
        words += ["--mode", "live", "--out", str(out)]
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                words, cwd=self.workspace.root, stdin=subprocess.DEVNULL, stdout=handle,
                stderr=handle, start_new_session=True,
            )  # fmt: skip
        return f"live run started: {self.workspace.relative(out)} (pid {process.pid}, log {log})"

    # --- files -----------------------------------------------------------------------------

    def _seal(self, request: dict[str, Any]) -> str:
        body = {k: v for k, v in request.items() if k != "seal"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _write(self, request: dict[str, Any]) -> None:
        path = self.folder / f"{request['id']}.json"
        temporary = path.with_name(f".{path.name}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(request, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
