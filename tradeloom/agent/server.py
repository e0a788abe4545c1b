"""The MCP server: the tools, resources and prompts of one workspace, every call audited.

Built on the official MCP Python SDK's low-level `mcp.server.Server`, so that every call
(an unknown tool and bad arguments included) passes through one handler: it checks the
arguments against the tool's model, runs the tool in a worker thread, journals the call
in the audit log, and answers. A refusal is an MCP tool error (``isError``) whose text is
the project's one-line message(s), never a success with an error inside.

The live tools exist only when the operator gives a token (`Door.approvals`); even then
they file requests a named human approves (`tradeloom.agent.approvals`). The kill switch
is never a tool.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from tradeloom.agent import arguments as a
from tradeloom.agent.approvals import Approvals, LiveAction
from tradeloom.agent.audit import AuditLog, Call
from tradeloom.agent.gate import Gate
from tradeloom.agent.research import Research
from tradeloom.agent.runs import Runs
from tradeloom.agent.workspace import Workspace
from tradeloom.errors import UserError
from tradeloom.journal.agent_audit import audit_path

__all__ = ["Door", "Tool", "build_server"]

INSTRUCTIONS = (
    "tradeloom's research tools inside one workspace folder. Write strategies with "
    "write_strategy (validated first, every version kept), check them with "
    "check_lookahead, measure them with backtest and sweep (DSR and PBO); start_paper "
    "needs check-lookahead passed and the gate's figures met for that very version. "
    "Live actions, if offered, only file requests a human approves."
)


@dataclass(frozen=True)
class Tool:
    """One tool: its name, what it does, its arguments' model and its function."""

    name: str
    description: str
    model: type[BaseModel]
    run: Callable[[Any], dict[str, Any]]
    read_only: bool = True


RESEARCH_TOOLS: tuple[tuple[str, str, type[BaseModel], bool, str], ...] = (
    ("plugins", "research", a.Nothing, True, "List plugins and their components."),
    ("schema", "research", a.Nothing, True, "The JSON Schema of strategy files."),
    ("validate", "research", a.Validate, True, "Validate a strategy file or its text."),
    ("write_strategy", "research", a.WriteStrategy, False,
     "Write or replace a strategy file: validated first, each version kept."),
    ("backtest", "research", a.Backtest, False,
     "Backtest a strategy file: headline stats, trades, the run folder and its report."),
    ("sweep", "research", a.Sweep, False,
     "Sweep a strategy's settings: the leaderboard with DSR, and the PBO."),
    ("check_lookahead", "research", a.CheckLookahead, False,
     "Check a strategy for look-ahead; a finding is an error."),
    ("parity", "runs", a.RunArg, False,
     "Replay a paper run as a backtest and explain every difference."),
    ("status", "runs", a.RunArg, True, "What a run is doing (tradeloom status)."),
    ("tables", "runs", a.Tables, True,
     "A page of a run's table: trades, orders, fills, equity, positions or features."),
    ("runs", "runs", a.Nothing, True, "List the workspace's run and sweep folders."),
    ("gate", "door", a.Nothing, True, "The declared gate a strategy must pass before paper."),
    ("start_paper", "runs", a.Backtest, False,
     "Start a paper run (simulated clock, bounded bars) once check-lookahead and the gate "
     "pass for this version of the strategy."),
)  # fmt: skip
"""The research tools: name, the object whose method it is, arguments, read-only, what."""

LIVE_TOOLS: tuple[tuple[str, LiveAction, type[BaseModel], tuple[str, ...], str], ...] = (
    ("request_live_start", "start_live", a.LiveStart, ("strategy",),
     "Ask a human to start a strategy live."),
    ("request_swap", "swap", a.LiveSwap, ("run", "model", "fold"),
     "Ask a human to swap a run's model for another run's saved model."),
    ("request_promote", "promote", a.LivePromote, ("run", "challenger"),
     "Ask a human to promote a run's challenger."),
    ("request_rollback", "rollback", a.LiveRun, ("run",),
     "Ask a human to roll a run's canary back."),
    ("request_flatten", "flatten", a.LiveRun, ("run",),
     "Ask a human to flatten a run's positions."),
)  # fmt: skip
"""The live tools (with the operator's token only): each files a request, nothing else."""


class Door:
    """The agent's door to a workspace: its tools, its audit log, its live requests."""

    def __init__(
        self, workspace: Workspace, gate: Gate | None = None, token: str | None = None
    ) -> None:
        self.workspace = workspace
        self.research = Research(workspace, gate or Gate())
        self._caller = threading.local()
        self.runs = Runs(self.research)
        self.audit = AuditLog(audit_path(workspace.root))
        self.approvals = None if token is None else Approvals(workspace, token)
        self.tools = {tool.name: tool for tool in self._tools()}

    def _tools(self) -> list[Tool]:
        owners: dict[str, Any] = {"research": self.research, "runs": self.runs, "door": self}
        tools = [
            Tool(name, description, model, getattr(owners[owner], name), read_only)
            for name, owner, model, read_only, description in RESEARCH_TOOLS
        ]
        if self.approvals is not None:
            tools += [
                Tool(name, description, model, self._asking(action, *keys), read_only=False)
                for name, action, model, keys, description in LIVE_TOOLS
            ]
            tools.append(
                Tool("pending_requests", "The live requests waiting for a human.", a.Nothing,
                     lambda _: {"pending": self._pending()})
            )  # fmt: skip
        return tools

    def gate(self, args: a.Nothing) -> dict[str, Any]:
        """Return the declared gate."""
        return self.research.gate.to_json()

    def _asking(self, action: LiveAction, *keys: str) -> Callable[[Any], dict[str, Any]]:
        def ask(args: Any) -> dict[str, Any]:
            assert self.approvals is not None
            target: dict[str, Any] = {}
            for key in keys:
                value = getattr(args, key)
                if key in ("run", "model"):
                    value = self.workspace.relative(self.workspace.run_dir(value, key))
                elif key == "strategy":
                    value = self.workspace.relative(self.workspace.strategy_file(value, key))
                target[key] = value
            request = self.approvals.file(action, target, args.reason, self._caller.who)
            return {
                "request": request["id"],
                "status": "pending",
                "approve": f"tradeloom mcp approve WORKSPACE {request['id']} --by NAME",
            }

        return ask

    def _pending(self) -> list[dict[str, Any]]:
        assert self.approvals is not None
        keys = ("id", "action", "target", "reason", "asked_at")
        return [{k: r[k] for k in keys} for r in self.approvals.pending()]

    def call(self, name: str, arguments: dict[str, Any], who: str) -> dict[str, Any]:
        """Run tool ``name``, journal the call; return its answer.

        Raises:
            UserError: The refusal (an unknown tool, bad arguments, the tool's own), after
                it is journaled.
        """
        started = time.perf_counter()
        ok, result = False, ""
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise UserError(f"no tool {name!r}; the tools are {', '.join(sorted(self.tools))}")
            try:
                parsed = tool.model.model_validate(arguments)
            except ValidationError as exc:
                raise UserError(f"{name}: {a.one_line(exc)}") from None
            self._caller.who = who
            answer = tool.run(parsed)
            ok, result = True, "ok"
            return answer
        except UserError as exc:
            result = " | ".join(exc.lines())
            raise
        except Exception as exc:  # a bug or the machine: one line, never a traceback
            from tradeloom.runtime.redaction import redact_text

            result = redact_text(f"{name} failed: {type(exc).__name__}: {exc}").replace("\n", " ")
            raise UserError(result) from exc
        finally:
            self.audit.record(Call(who, name, arguments, ok, result, time.perf_counter() - started))


def build_server(door: Door, transport: str) -> Any:
    """Return the SDK's low-level `mcp.server.Server` serving ``door``."""
    import anyio.to_thread
    import mcp_types as types
    from mcp.server import Server

    from tradeloom.agent.resources import prompt_list, prompt_text, resource_list, resource_text
    from tradeloom.version import __version__

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.model.model_json_schema(),
                    annotations=types.ToolAnnotations(read_only_hint=tool.read_only),
                )
                for tool in door.tools.values()
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        who = f"{_client_name(ctx)} ({transport})"
        arguments = dict(params.arguments or {})
        try:
            answer = await anyio.to_thread.run_sync(door.call, params.name, arguments, who)
        except UserError as exc:
            text = "\n".join(exc.lines())
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], is_error=True
            )
        text = json.dumps(answer, default=str)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=answer
        )

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=resource_list(door.workspace))

    async def read_resource(
        ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        text, mime = resource_text(door.workspace, str(params.uri))
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=str(params.uri), text=text, mime_type=mime)]
        )

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=prompt_list())

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt: types.GetPromptResult = prompt_text(params.name, dict(params.arguments or {}))
        return prompt

    return Server(
        "tradeloom",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


def _client_name(ctx: Any) -> str:
    try:
        info = ctx.session.client_params.client_info
        return f"{info.name} {info.version}".strip()
    except AttributeError:
        return "unnamed client"
