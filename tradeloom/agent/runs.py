"""The tools over runs: list them, their status, their parity, their tables in pages; and
starting paper, which waits for validate, check-lookahead and the declared gate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tradeloom.agent import arguments as a
from tradeloom.agent.research import Research
from tradeloom.errors import UserError

__all__ = ["Runs"]


class Runs:
    """The run tools of a workspace, and the door to paper."""

    def __init__(self, research: Research) -> None:
        self.research = research
        self.workspace = research.workspace
        self._children: list[subprocess.Popen[bytes]] = []

    def runs(self, args: a.Nothing) -> dict[str, Any]:
        """List the workspace's run and sweep folders."""
        found: dict[str, list[str]] = {}
        for under in ("runs", "sweeps"):
            folder = self.workspace.root / under
            names = (
                sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
            )
            found[under] = [f"{under}/{name}" for name in names]
        return found

    def status(self, args: a.RunArg) -> dict[str, Any]:
        """Return what a run is doing, as ``tradeloom status --json`` prints it."""
        from tradeloom.engine.status_rows import read_status

        run = self.workspace.run_dir(args.run)
        status: dict[str, Any] = json.loads(
            json.dumps(read_status(Path(self.workspace.relative(run))).to_json(), default=str)
        )
        return status

    def parity(self, args: a.RunArg) -> dict[str, Any]:
        """Replay a paper or live run as a backtest and explain every difference."""
        import tradeloom.api
        from tradeloom.diagnostics.parity import format_parity

        run = Path(self.workspace.relative(self.workspace.run_dir(args.run)))
        with self.workspace.slot():
            result = tradeloom.api.open_run(run).parity()
        return {"run": run.as_posix(), "passed": bool(result.passed),
                "summary": format_parity(result, run)}  # fmt: skip

    def tables(self, args: a.Tables) -> dict[str, Any]:
        """Return a page of one of a run's tables."""
        import tradeloom.api

        run = Path(self.workspace.relative(self.workspace.run_dir(args.run)))
        limit = min(args.limit, self.workspace.limits.max_rows)
        frame = getattr(tradeloom.api.open_run(run), args.table)
        page = frame.iloc[args.offset : args.offset + limit].reset_index()
        rows = json.loads(page.to_json(orient="records", date_format="iso"))
        return {"run": run.as_posix(), "table": args.table, "total": len(frame),
                "offset": args.offset, "rows": rows}  # fmt: skip

    def start_paper(self, args: a.Backtest) -> dict[str, Any]:
        """Start a paper run on the simulated clock once validate, check-lookahead and the
        gate pass for this very version of the strategy."""
        research = self.research
        strategy, name, digest = research.load(args.path)  # validate: its refusal is the answer
        evidence = research.evidence.read(digest)
        if "lookahead" not in evidence:
            research.check_lookahead(a.CheckLookahead(path=args.path))  # refuses on a finding
            evidence = research.evidence.read(digest)
        if not evidence["lookahead"]["passed"]:
            raise UserError(f"{name}: paper refused: {evidence['lookahead']['summary']}")
        refusal = research.gate.refusal(evidence.get("sweep"))
        if refusal is not None:
            raise UserError(f"{name}: paper refused by the gate: {refusal}")
        live = [c for c in self._children if c.poll() is None]
        if len(live) >= self.workspace.limits.max_runs:
            raise UserError(f"busy: {len(live)} paper runs in progress (the limit)")
        out = research.new_folder("runs", f"{strategy.name}-paper")
        words = [sys.executable, "-m", "tradeloom.cli.main", "-q", "run", name, "--mode", "paper"]
        words += ["--clock", "simulated", "--speed", "max", "--out", self.workspace.relative(out)]
        words += ["--max-bars", str(self.workspace.limits.paper_bars)]
        log = self.workspace.private / "logs" / f"{out.name}.log"
        log.parent.mkdir(exist_ok=True)
        with open(log, "ab") as handle:
            child = subprocess.Popen(
                words, cwd=self.workspace.root, stdin=subprocess.DEVNULL, stdout=handle,
                stderr=handle, start_new_session=True,
            )  # fmt: skip
        self._children = [*live, child]
        return {"strategy": name, "run": self.workspace.relative(out), "pid": child.pid,
                "max_bars": self.workspace.limits.paper_bars}  # fmt: skip
