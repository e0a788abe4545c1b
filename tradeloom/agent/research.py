"""The research tools: plugins, schema, validate, write, backtest, sweep, check-lookahead.

Each is the project's own command through its Python API (`tradeloom.api`), on a file
of the workspace (`Workspace.strategy_file`), its paths and plugins checked before
anything reads it. A refusal is a `UserError` whose lines are the command's. The server
runs in the workspace (its current folder), so every path a message names is the
agent's own.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloom.agent import arguments as a
from tradeloom.agent.gate import Evidence, Gate
from tradeloom.agent.workspace import Workspace, content_hash
from tradeloom.errors import UserError

if TYPE_CHECKING:
    from tradeloom.api import Strategy
    from tradeloom.schemas.yaml_loader import YamlDocument

__all__ = ["HEADLINE", "Research"]

HEADLINE = (
    "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "volatility", "trades",
    "win_rate", "profit_factor", "exposure", "fees", "final_equity", "buy_and_hold_return",
    "bars", "halt",
)  # fmt: skip
"""The figures a backtest answers with (the rest are in the run's metrics.json)."""


class Research:
    """The research tools over one workspace."""

    def __init__(self, workspace: Workspace, gate: Gate) -> None:
        self.workspace = workspace
        self.gate = gate
        self.evidence = Evidence(workspace.private / "evidence")

    # --- reading the project -------------------------------------------------------------

    def plugins(self, args: a.Nothing) -> dict[str, Any]:
        """List every plugin and its components, as ``tradeloom plugins`` does."""
        from tradeloom.plugins.manager import load_plugins

        registry = load_plugins(sorted(self.workspace.plugins)).registry
        return {
            "plugins": [
                {
                    "name": plugin.name,
                    "source": str(plugin.source),
                    "components": [
                        {"layer": c.layer, "kind": c.kind, "summary": c.summary}
                        for c in sorted(plugin.components, key=lambda c: (c.layer, c.kind))
                    ],
                }
                for plugin in registry.plugins
            ]
        }

    def schema(self, args: a.Nothing) -> dict[str, Any]:
        """Return the JSON Schema of strategy files, as ``tradeloom schema`` prints it."""
        from tradeloom.plugins.manager import load_plugins
        from tradeloom.schemas.json_schema import strategy_json_schema

        schema: dict[str, Any] = strategy_json_schema(
            load_plugins(sorted(self.workspace.plugins)).registry
        )
        return schema

    # --- strategies ----------------------------------------------------------------------

    def validate(self, args: a.Validate) -> dict[str, Any]:
        """Validate a strategy file or text with ``tradeloom validate``'s messages."""
        if (args.path is None) == (args.text is None):
            raise UserError("validate: give the path of a strategy file or its text, one of them")
        if args.path is not None:
            file = self.workspace.strategy_file(args.path)
            return self._validated(file.read_text(encoding="utf-8"), self._name(file))
        assert args.text is not None
        return self._validated(args.text, "text.yaml")

    def write_strategy(self, args: a.WriteStrategy) -> dict[str, Any]:
        """Write a strategy file after it validates; keep each version."""
        path = self.workspace.resolve(args.path, "path")
        if path.suffix not in (".yaml", ".yml"):
            raise UserError(f"path: {args.path!r} is not a strategy file (.yaml or .yml)")
        if self._name(path).split("/")[0] in ("runs", "sweeps"):
            raise UserError(f"path: {args.path!r} is a run's file; a run's files are its record")
        size = len(args.text.encode("utf-8"))
        if size > self.workspace.limits.max_file_bytes:
            raise UserError(
                f"text: {size} bytes, over the limit of {self.workspace.limits.max_file_bytes}"
            )
        valid = self._validated(args.text, self._name(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(args.text, encoding="utf-8")
        temporary.replace(path)
        version = self.workspace.keep_version(path, args.text)
        return {**valid, "path": self._name(path), "version": version,
                "sha256": content_hash(args.text)}  # fmt: skip

    def _validated(self, text: str, name: str) -> dict[str, Any]:
        from tradeloom.engine.wiring import build_pipeline
        from tradeloom.schemas import load_strategy

        document = self._checked(text, name)
        config, _ = load_strategy(Path(name), document=document)
        pipeline = build_pipeline(config)
        return {
            "valid": True,
            "name": config.name,
            "summary": f"{name}: valid strategy '{config.name}' (data {config.data.kind}, "
            f"{len(pipeline.feature_columns)} feature columns, model {config.model.kind}, "
            f"signal {config.signal.kind})",
        }

    def _checked(self, text: str, name: str) -> YamlDocument:
        """Parse a strategy's text; refuse its paths out of the workspace, its plugins not
        allowed and its bars over the bound, before anything reads or imports them."""
        from tradeloom.schemas.yaml_loader import parse_yaml

        document = parse_yaml(text, name)
        if not isinstance(document.data, dict):
            raise UserError(f"{name}: expected a strategy (a mapping of sections)")
        self.workspace.check_document(document.data, self.workspace.root / name)
        return document

    def load(self, text_path: str) -> tuple[Strategy, str, str]:
        """Return the strategy of a workspace file, its name and its text's hash."""
        import tradeloom.api

        file = self.workspace.strategy_file(text_path)
        text = file.read_text(encoding="utf-8")
        self._checked(text, self._name(file))  # its paths and plugins, before it is loaded
        return tradeloom.api.load(self._name(file)), self._name(file), content_hash(text)

    def _name(self, path: Path) -> str:
        return self.workspace.relative(path)

    # --- running -------------------------------------------------------------------------

    def backtest(self, args: a.Backtest) -> dict[str, Any]:
        """Backtest in memory, save the run folder; return the headline figures."""
        strategy, name, _ = self.load(args.path)
        with self.workspace.slot():
            run = strategy.backtest(quiet=True)
        out = self.new_folder("runs", strategy.name)
        saved = run.save(out)
        metrics = saved.metrics
        trades = saved.trades
        summary: dict[str, Any] = {"count": len(trades)}
        if len(trades):
            returns = trades["return"]
            summary |= {
                "wins": int((returns > 0).sum()),
                "losses": int((returns <= 0).sum()),
                "avg_return": float(returns.mean()),
                "best": float(returns.max()),
                "worst": float(returns.min()),
            }
        report = out / "report.html"
        return {
            "strategy": name,
            "stats": {k: _plain(metrics.get(k)) for k in HEADLINE},
            "trades": summary,
            "run": self._name(out),
            "report": self._name(report) if report.is_file() else None,
        }

    def sweep(self, args: a.Sweep) -> dict[str, Any]:
        """Sweep a strategy; return the leaderboard with DSR and PBO; keep the figures."""
        variants = math.prod(len(v) for v in args.grid.values())
        if variants > self.workspace.limits.max_variants:
            raise UserError(
                f"grid: {variants} variants, over the limit of {self.workspace.limits.max_variants}"
            )
        strategy, name, digest = self.load(args.path)
        out = self.new_folder("sweeps", strategy.name)
        with self.workspace.slot():
            rows = strategy.sweep(
                dict(args.grid), objective=args.objective, direction=args.direction,  # type: ignore[arg-type]
                out=out, quiet=True,
            )  # fmt: skip
        params = [c for c in rows.columns if c.startswith("param.")]
        shown = ["rank", *params, "objective_value", "sharpe", "trades", "max_drawdown", "dsr"]
        board = [
            {c: _plain(row.get(c)) for c in shown} for row in rows.head(args.top).to_dict("records")
        ]
        best = board[0] if board else {}
        figures = {
            "trades": best.get("trades"),
            "dsr": best.get("dsr"),
            "pbo": _plain(rows.attrs["pbo"]),
        }
        self.evidence.add(digest, "sweep", figures)
        return {
            "strategy": name,
            "variants": len(rows),
            "leaderboard": board,
            "pbo": figures["pbo"],
            "summary": list(rows.attrs["summary"]),
            "sweep": self._name(out),
            "gate": self.gate.refusal(figures) or "passes",
        }

    def check_lookahead(self, args: a.CheckLookahead) -> dict[str, Any]:
        """Check for look-ahead; a finding is a refusal; keep the verdict."""
        strategy, name, digest = self.load(args.path)
        with self.workspace.slot():
            report = strategy.check_lookahead(points=args.points, seed=args.seed, quiet=True)
        passed = report.finding is None
        self.evidence.add(digest, "lookahead", {"passed": passed, "summary": report.summary})
        if not passed:
            raise UserError(f"{name}: {report.summary}")
        return {"strategy": name, "passed": True, "summary": report.summary,
                "lines": list(report.lines)}  # fmt: skip

    def new_folder(self, under: str, name: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = self.workspace.root / under
        base.mkdir(exist_ok=True)
        for n in itertools.count():
            folder = base / (f"{name}-{stamp}" if n == 0 else f"{name}-{stamp}-{n}")
            if not folder.exists():
                return folder
        raise AssertionError("unreachable")  # pragma: no cover


def _plain(value: Any) -> Any:
    """Return ``value`` as JSON holds it (NaN: None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
