"""The console's ASGI application: pages, the JSON API under ``/api/v1``, and its guards.

Every request passes `Guard` first: bounded query strings (414) and bodies (413), a
token or a session (401), the write scope and, with a session cookie, the CSRF token
for an action (403), and one structlog JSON line in the access log (no query string:
a login code never reaches the log). Then Starlette's routes: the pages (`pages`), the
API, whose OpenAPI document is generated from the endpoints' docstrings
(``/api/v1/openapi.json``), and the run's own ``report.html`` with plotly.js served
from the installed plotly package (never a CDN).

Nothing here writes a run folder but the actions, which go through the kill switch's
mailbox (`tradeloom.engine.control`), as ``tradeloom kill`` does.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from tradeloom.console import pages
from tradeloom.console.agent_log import NoSuchPage, audit_page, page_number, requests_view
from tradeloom.console.runs import SECRET_KEY, RunIndex, UnknownRun, mask_secrets
from tradeloom.console.schemas import COMPONENTS
from tradeloom.console.tokens import Scope, Sessions, Tokens
from tradeloom.engine.reasons import reason_problem
from tradeloom.errors import UserError
from tradeloom.journal import JournalError
from tradeloom.reporting.outputs import json_safe
from tradeloom.reporting.settings_diff import differing_settings, with_defaults
from tradeloom.runtime.redaction import redact

if TYPE_CHECKING:
    from tradeloom.engine.control import Origin

__all__ = ["MAX_BODY", "MAX_QUERY", "create_app"]

MAX_BODY = 16 * 1024
"""The largest request body taken (an action's reason is a line)."""
MAX_QUERY = 2048
"""The longest query string taken."""
MAX_STREAMS = 32
"""Run pages following their run at once (server-sent events)."""
POLL_SECONDS = 0.01
"""How often a followed run's journal is looked at (a stat, no read, while unchanged)."""
KEEPALIVE_SECONDS = 15.0
COOKIE = "tradeloom_console"
_ACTIONS = ("kill", "resume", "flatten", "swap", "promote", "rollback")
_PLOTLY = re.compile(r"^plotly-[0-9][0-9a-z.\-]*\.min\.js$")

_access = structlog.get_logger("tradeloom.console.access")

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def create_app(
    roots: list[Path],
    tokens: Tokens,
    sessions: Sessions | None = None,
    *,
    warm: bool = False,
    agent_workspace: Path | None = None,
) -> Any:
    """Return the console for the runs below ``roots``, guarded by ``tokens``.

    Args:
        roots: The served folders (``RUNS_DIR...``).
        tokens: The read and write tokens.
        sessions: The login codes and browser sessions (a new store by default).
        warm: Read every run once now, in a thread, so that the first runs page is
            answered from memory too.
        agent_workspace: The workspace of ``tradeloom mcp serve`` whose audit log and
            live requests the agent page shows (None: no agent page's data).
    """
    index = RunIndex(roots)
    if warm:
        threading.Thread(
            target=lambda: [index.summary(ref) for ref in index.scan()],
            name="tradeloom-console-warm",
            daemon=True,
        ).start()
    state = _State(index, tokens, sessions or Sessions())
    state.agent = agent_workspace
    routes = [
        Route("/", state.runs_page, include_in_schema=False),
        Route("/login", state.login, include_in_schema=False),
        Route("/compare", state.compare_page, include_in_schema=False),
        Route("/agent", state.agent_page, include_in_schema=False),
        Route("/run/{run_id:path}", state.run_page, include_in_schema=False),
        Route("/report/{rest:path}", state.report, include_in_schema=False),
        Route("/static/{name}", state.static, include_in_schema=False),
        Route("/api/v1/docs", state.docs_page, include_in_schema=False),
        Route("/api/v1/openapi.json", state.openapi, include_in_schema=False),
        Route("/api/v1/session", state.session),
        Route("/api/v1/runs", state.runs),
        Route("/api/v1/compare", state.compare),
        Route("/api/v1/agent/audit", state.agent_audit),
        Route("/api/v1/agent/requests", state.agent_requests),
        Route("/api/v1/events/{run_id:path}", state.events),
        Route("/api/v1/actions/{action}/{run_id:path}", state.act, methods=["POST"]),
        Route("/api/v1/runs/{run_id:path}", state.run),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={_NotFound: _not_found, _TooLarge: _too_large},
    )
    state.schemas = SchemaGenerator(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "tradeloom console API",
                "version": "1",
                "description": "Every run below the console's folders: what the runs page, "
                "the run page and compare show, the kill switch's actions, and an agent "
                "workspace's audit log and live requests (the agent page). Send "
                "'Authorization: Bearer TOKEN' (the read token reads; the write token also "
                "acts).",
            },
            "components": {
                "schemas": COMPONENTS,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "security": [{"bearer": []}],
        }
    )
    state.routes = list(routes)
    return Guard(app, state)


class _State:
    def __init__(self, index: RunIndex, tokens: Tokens, sessions: Sessions) -> None:
        self.index = index
        self.tokens = tokens
        self.sessions = sessions
        self.streams = 0
        self.schemas: SchemaGenerator | None = None
        self.routes: list[BaseRoute] = []
        self.agent: Path | None = None

    # --- pages ----------------------------------------------------------------------

    async def runs_page(self, request: Request) -> Response:
        return _html(pages.runs_page, request)

    async def run_page(self, request: Request) -> Response:
        ref = await self._ref(request.path_params["run_id"])
        return _html(pages.run_page, request, run_id=ref.id, name=ref.path.name)

    async def compare_page(self, request: Request) -> Response:
        return _html(pages.compare_page, request)

    async def agent_page(self, request: Request) -> Response:
        return _html(pages.agent_page, request)

    async def docs_page(self, request: Request) -> Response:
        return _html(pages.docs_page, request)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in pages.STATIC:
            return _error(404, "not found")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(pages.static_file(name), media_type=kind)

    async def login(self, request: Request) -> Response:
        code = request.query_params.get("code", "")
        opened = self.sessions.redeem(code) if code else None
        if opened is None:
            return HTMLResponse(
                pages.message_page(
                    "This login link was used already or is "
                    "not known. Start the console again for a "
                    "new one."
                ),
                status_code=401,
            )
        sid, _ = opened
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")
        return response

    async def report(self, request: Request) -> Response:
        rest = request.path_params["rest"]
        name = rest.rsplit("/", 1)[-1]
        if _PLOTLY.match(name):
            return FileResponse(_plotly_js(), media_type="text/javascript")
        if name != "report.html":
            return _error(404, "not found")
        ref = await self._ref(rest[: -len("/report.html")])
        path = ref.path / "report.html"
        if not path.is_file() or path.is_symlink():
            return _error(404, f"{ref.id} has no report.html")
        response = FileResponse(path, media_type="text/html")
        # the report's own inline scripts; it may load nothing from elsewhere
        response.headers["Content-Security-Policy"] = (
            "default-src 'self' 'unsafe-inline' data: blob:; connect-src 'none'"
        )
        return response

    # --- the API ----------------------------------------------------------------------

    async def session(self, request: Request) -> Response:
        """
        summary: The caller's scope, and the CSRF token its actions carry (a session's).
        responses:
          200:
            description: The caller.
            content:
              application/json:
                schema: {$ref: '#/components/schemas/Session'}
        """
        session = request.scope.get("tradeloom.session")
        return JSONResponse(
            {"scope": request.scope["tradeloom.scope"], "csrf": session.csrf if session else None}
        )

    async def runs(self, request: Request) -> Response:
        """
        summary: Every run below the console's folders, as the runs page shows them.
        responses:
          200:
            description: The runs, by id.
            content:
              application/json:
                schema: {$ref: '#/components/schemas/RunList'}
        """
        return _json({"runs": await run_in_threadpool(self._summaries)})

    def _summaries(self) -> list[dict[str, Any]]:
        return [self.index.summary(ref) for ref in self.index.scan()]

    async def run(self, request: Request) -> Response:
        """
        summary: One run, as its page shows it.
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string},
             description: "<root>/<folder> as /api/v1/runs lists it"}
        responses:
          200:
            description: The run.
            content:
              application/json:
                schema: {$ref: '#/components/schemas/RunDetail'}
          404:
            description: Not a run below the console's folders.
          409:
            description: The run's journal cannot be read (one line saying why).
        """
        ref = await self._ref(request.path_params["run_id"])
        try:
            return _json(await run_in_threadpool(self.index.detail, ref))
        except (UserError, JournalError) as exc:
            return _error(409, self.index.shown(str(exc), ref))

    async def events(self, request: Request) -> Response:
        """
        summary: Follow a run; a server-sent event 'run' (a RunDetail) at each change.
        parameters:
          - {name: run_id, in: path, required: true, schema: {type: string}}
        responses:
          200:
            description: text/event-stream of RunDetail objects.
        """
        ref = await self._ref(request.path_params["run_id"])
        if self.streams >= MAX_STREAMS:
            return _error(503, f"{MAX_STREAMS} pages follow runs already; close one")
        return StreamingResponse(
            self._follow(request, ref),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _follow(self, request: Request, ref: Any) -> AsyncIterator[str]:
        self.streams += 1
        try:
            seen: Any = None
            quiet = time.monotonic()
            while not await request.is_disconnected():
                signature = self.index.signature(ref)
                if signature != seen:
                    seen = signature
                    try:
                        data = await run_in_threadpool(self.index.detail, ref)
                    except Exception as exc:  # a journal mid-write: next time
                        data = {"id": ref.id, "error": self.index.failure(exc, ref)}
                    yield f"event: run\ndata: {json.dumps(data, allow_nan=False)}\n\n"
                    quiet = time.monotonic()
                elif time.monotonic() - quiet > KEEPALIVE_SECONDS:
                    yield ": keepalive\n\n"
                    quiet = time.monotonic()
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self.streams -= 1

    async def compare(self, request: Request) -> Response:
        """
        summary: Runs side by side, the settings that differ and their equity curves.
        parameters:
          - {name: run, in: query, required: true, schema: {type: array, items: {type: string}},
             style: form, explode: true, description: "two run ids or more (at most 12)"}
        responses:
          200:
            description: The comparison.
            content:
              application/json:
                schema: {$ref: '#/components/schemas/Compare'}
          400:
            description: Fewer than two runs, or more than 12.
        """
        ids = request.query_params.getlist("run")
        if not 2 <= len(ids) <= 12:
            return _error(400, "compare: give two runs or more (at most 12): ?run=ID&run=ID")
        refs = [await self._ref(i) for i in ids]
        try:
            return _json(await run_in_threadpool(self._compare, refs))
        except (UserError, JournalError) as exc:
            return _error(409, self.index.shown(str(exc), *refs))

    def _compare(self, refs: list[Any]) -> dict[str, Any]:
        documents, flats, curves = [], [], []
        for ref in refs:
            document, path = self.index.settings(ref)
            documents.append(document or {})
            flats.append(with_defaults(path, document) if document else {})
            curve = self.index.read(ref).curve
            equity = curve["equity"].astype(float)
            start = float(equity.iloc[0]) if len(equity) else 1.0
            detail = self.index.detail(ref)["curve"]
            scale = 100.0 / start if start else 1.0
            curves.append(
                {
                    "id": ref.id,
                    "time": detail["time"],
                    "equity": [v * scale for v in detail["equity"]],
                }
            )
        settings = [
            {"key": key, "values": ["***"] * len(values) if SECRET_KEY.search(key) else values}
            for key, values in differing_settings(documents, flats)
        ]
        shown: dict[str, Any] = mask_secrets(
            json_safe({"runs": [r.id for r in refs], "settings": settings, "curves": curves})
        )
        return shown

    async def act(self, request: Request) -> Response:
        """
        summary: Kill, resume, kill-and-flatten, swap the model of, promote a challenger of,
          or roll back the canary of a paper or live run (the write scope).
        description: The request goes through the run's mailbox, as 'tradeloom kill
          [--flatten]' and 'tradeloom resume' send it, and the run journals who asked
          ('console' with a session cookie, 'api' with a token). With a session cookie,
          send the session's CSRF token in X-CSRF-Token. A kill of a run the kill switch
          holds halted, or a resume of an active run, is 200 with 'already' true and a
          message saying 'already halted at ...' (journaled all the same; the state asked
          for holds, so a retry is no error). A swap ('tradeloom swap') names in its body
          the run whose saved fold to take ('model', a run id of this console; 'fold',
          default its latest; 'strategy', in a portfolio file's run, the strategy whose
          model to swap); it is checked first (400 with the reason when refused), then
          the running process swaps it in at its next bar boundary. A promote
          ('tradeloom promote') names its challenger in the body ('challenger'); a
          rollback ('tradeloom rollback') ends the canary in progress; each is checked
          against the journal first (400 with the reason when refused).
        parameters:
          - {name: action, in: path, required: true,
             schema: {type: string, enum: [kill, resume, flatten, swap, promote, rollback]}}
          - {name: run_id, in: path, required: true, schema: {type: string}}
        requestBody:
          content:
            application/json:
              schema: {$ref: '#/components/schemas/ActionRequest'}
        responses:
          200:
            description: The request was written (and the running process woken).
            content:
              application/json:
                schema: {$ref: '#/components/schemas/ActionResult'}
          400:
            description: Not a paper or live run, resume while RUN_DIR/KILL exists, a
              refused swap, promote or rollback, or a body that is not a JSON object with
              'reason' alone (a swap's, 'model' and 'fold' too; a promote's, 'challenger'
              too; not JSON, nested too deep, another type, another key).
          403:
            description: The read scope, or no CSRF token with a session cookie.
        """
        from tradeloom.engine.control import request as send

        action = request.path_params["action"]
        if action not in _ACTIONS:
            return _error(
                404, f"no action {action!r}: kill, resume, flatten, swap, promote or rollback"
            )
        ref = await self._ref(request.path_params["run_id"])
        by: Origin = "console" if request.scope.get("tradeloom.session") is not None else "api"
        body = await request.body()
        if action == "swap":
            return await self._swap(ref, body, by)
        if action in ("promote", "rollback"):
            return await self._promote(ref, action, body, by)
        reason = _reason(body, by)
        if isinstance(reason, Response):
            return reason
        try:
            delivery = await run_in_threadpool(partial(send, ref.path, action, reason, by=by))
        except UserError as exc:
            return _error(400, self.index.shown(str(exc), ref))
        return self._delivered(ref, action, reason, by, delivery, delivery.already is not None)

    def _delivered(
        self, ref: Any, action: str, reason: str, by: Origin, delivery: Any, already: bool = False
    ) -> Response:
        """Log an action delivered to run ``ref`` and answer it (every action's answer)."""
        _access.warning("console_action", action=action, run=ref.id, reason=reason, by=by)
        return _json(
            {
                "action": action,
                "run": ref.id,
                "message": self.index.shown(delivery.describe(), ref),
                "running": delivery.pid is not None,
                "already": already,
            }
        )

    async def _swap(self, ref: Any, body: bytes, by: Origin) -> Response:
        from tradeloom.engine.control import request_swap
        from tradeloom.live.lifecycle.model_swap import precheck

        asked = _swap_body(body, by)
        if isinstance(asked, Response):
            return asked
        model_id, fold, reason, strategy = asked
        try:
            model = self.index.resolve(model_id).path
        except UnknownRun:
            return _error(400, f"model: no run {model_id[:80]!r} here")
        try:
            problems = await run_in_threadpool(partial(precheck, ref.path, model, fold, strategy))
            if problems:
                raise UserError(f"model swap refused: {'; '.join(problems)}")
            delivery = await run_in_threadpool(
                partial(request_swap, ref.path, model, fold, reason, by=by, strategy=strategy)
            )
        except UserError as exc:
            return _error(400, self.index.shown(str(exc), ref))
        return self._delivered(ref, "swap", reason, by, delivery)

    async def _promote(self, ref: Any, action: str, body: bytes, by: Origin) -> Response:
        from tradeloom.engine.control import request_promote, request_rollback
        from tradeloom.live.lifecycle.promotion_stage import promotion_problems

        asked = _promote_body(body, by) if action == "promote" else _reason(body, by)
        if isinstance(asked, Response):
            return asked
        challenger, reason = asked if isinstance(asked, tuple) else (None, asked)
        what = "promotion" if challenger is not None else "rollback"
        try:
            problems = await run_in_threadpool(partial(promotion_problems, ref.path, challenger))
            if problems:
                raise UserError(f"{what} refused: {'; '.join(problems)}")
            send = (
                partial(request_rollback, ref.path, reason, by=by)
                if challenger is None
                else partial(request_promote, ref.path, challenger, reason, by=by)
            )
            delivery = await run_in_threadpool(send)
        except UserError as exc:
            return _error(400, self.index.shown(str(exc), ref))
        return self._delivered(ref, action, reason, by, delivery)

    async def agent_audit(self, request: Request) -> Response:
        """
        summary: The agent workspace's audit log, newest call first, a page at a time, its
          hash chain checked on every answer.
        parameters:
          - {name: page, in: query, required: false, schema: {type: integer, minimum: 1},
             description: "1 (the newest calls) by default"}
        responses:
          200:
            description: One page of calls; the chain is intact.
            content:
              application/json:
                schema: {$ref: '#/components/schemas/AgentAudit'}
          400:
            description: A page that is not a number, or past the last page.
          404:
            description: The console serves no agent workspace (--agent-workspace).
          409:
            description: The log's hash chain is broken (one line naming the first bad
              line); no call is shown.
        """
        if self.agent is None:
            return _no_agent()
        try:
            page = page_number(request.query_params.get("page"))
            return _json(await run_in_threadpool(audit_page, self.agent, page))
        except NoSuchPage as exc:
            return _error(400, str(exc))
        except UserError as exc:
            return _error(409, str(exc))

    async def agent_requests(self, request: Request) -> Response:
        """
        summary: The live requests the agent filed, newest first, each with its state
          (read-only; a named human approves with 'tradeloom mcp approve').
        responses:
          200:
            description: The requests.
            content:
              application/json:
                schema: {$ref: '#/components/schemas/AgentRequests'}
          404:
            description: The console serves no agent workspace (--agent-workspace).
          409:
            description: A request file cannot be read (one line naming it).
        """
        if self.agent is None:
            return _no_agent()
        try:
            return _json(await run_in_threadpool(requests_view, self.agent))
        except UserError as exc:
            return _error(409, str(exc))

    async def openapi(self, request: Request) -> Response:
        assert self.schemas is not None
        return _json(self.schemas.get_schema(self.routes))

    async def _ref(self, run_id: str) -> Any:
        try:
            return self.index.resolve(run_id)
        except UnknownRun:
            raise _NotFound(run_id) from None


_BODY = 'send {"reason": "one line"}, or no body'


def _reason(body: bytes, by: str) -> str | Response:
    """Return an action's reason from its request body, or the 400 answer that says why
    the body is refused (not JSON, of any depth; not an object; a key but reason)."""
    try:
        data = json.loads(body or b"{}")
    except RecursionError:
        return _error(400, f"the body is JSON nested too deep: {_BODY}")
    except ValueError as exc:  # not UTF-8 either (UnicodeDecodeError)
        return _error(400, f"the body is not JSON ({exc}): {_BODY}")
    if not isinstance(data, dict):
        return _error(400, f"the body is a JSON {_json_type(data)}, not an object: {_BODY}")
    unknown = sorted(str(key) for key in data if key != "reason")
    if unknown:
        shown = ", ".join(repr(key[:40]) for key in unknown[:3])
        return _error(400, f"the body's keys are reason alone, not {shown}: {_BODY}")
    reason = data.get("reason")
    if reason is None:
        return "requested from the console" if by == "console" else "requested through the API"
    if not isinstance(reason, str):
        return _error(400, f"reason: a string, was a JSON {_json_type(reason)}")
    problem = reason_problem(reason)
    if problem is not None:
        return _error(400, f"reason: {problem}")
    return reason


def _swap_body(body: bytes, by: str) -> tuple[str, int | None, str, str | None] | Response:
    """Return a swap's model (a run id), fold, reason and strategy (a portfolio file's
    run: whose model) from its body, or the 400 answer saying why the body is refused."""
    usage = (
        'send {"model": "RUN_ID", "fold": N, "reason": "one line", "strategy": "NAME"} '
        "(fold, reason optional; strategy: a portfolio file's run only)"
    )
    try:
        data = json.loads(body or b"{}")
    except RecursionError:
        return _error(400, f"the body is JSON nested too deep: {usage}")
    except ValueError as exc:
        return _error(400, f"the body is not JSON ({exc}): {usage}")
    if not isinstance(data, dict):
        return _error(400, f"the body is a JSON {_json_type(data)}, not an object: {usage}")
    keys = ("model", "fold", "reason", "strategy")
    unknown = sorted(str(key) for key in data if key not in keys)
    if unknown:
        shown = ", ".join(repr(key[:40]) for key in unknown[:3])
        return _error(
            400, f"the body's keys are model, fold, reason and strategy, not {shown}: {usage}"
        )
    model, fold, strategy = data.get("model"), data.get("fold"), data.get("strategy")
    if strategy is not None and (not isinstance(strategy, str) or not strategy):
        return _error(400, f"strategy: a strategy's name, was a JSON {_json_type(strategy)}")
    if not isinstance(model, str) or not model:
        return _error(400, f"model: a run id, was a JSON {_json_type(model)}: {usage}")
    if fold is not None and (isinstance(fold, bool) or not isinstance(fold, int) or fold < 0):
        return _error(400, f"fold: a fold number (0 or more), was {json.dumps(fold)[:40]}")
    rest = {"reason": data["reason"]} if "reason" in data else {}
    reason = _reason(json.dumps(rest).encode(), by)
    if isinstance(reason, Response):
        return reason
    return model, fold, reason, strategy


def _promote_body(body: bytes, by: str) -> tuple[str, str] | Response:
    """Return a promotion's challenger and reason from its body, or the 400 answer saying
    why the body is refused."""
    usage = 'send {"challenger": "NAME", "reason": "one line"} (reason optional)'
    try:
        data = json.loads(body or b"{}")
    except RecursionError:
        return _error(400, f"the body is JSON nested too deep: {usage}")
    except ValueError as exc:
        return _error(400, f"the body is not JSON ({exc}): {usage}")
    if not isinstance(data, dict):
        return _error(400, f"the body is a JSON {_json_type(data)}, not an object: {usage}")
    unknown = sorted(str(key) for key in data if key not in ("challenger", "reason"))
    if unknown:
        shown = ", ".join(repr(key[:40]) for key in unknown[:3])
        return _error(400, f"the body's keys are challenger and reason, not {shown}: {usage}")
    challenger = data.get("challenger")
    if not isinstance(challenger, str) or not challenger:
        return _error(400, f"challenger: a name, was a JSON {_json_type(challenger)}: {usage}")
    rest = {"reason": data["reason"]} if "reason" in data else {}
    reason = _reason(json.dumps(rest).encode(), by)
    if isinstance(reason, Response):
        return reason
    return challenger, reason


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"


class _NotFound(Exception):
    pass


class _TooLarge(Exception):
    pass


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, f"no run {str(exc)[:200]!r} here")


async def _too_large(request: Request, exc: Exception) -> Response:
    return _error(413, f"the body is over {MAX_BODY} bytes")


def _no_agent() -> Response:
    return _error(
        404, "this console serves no agent workspace: start it with --agent-workspace DIR"
    )


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(mask_secrets(json_safe(data)), status_code=status)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": redact(message)}, status_code=status)


def _html(render: Callable[..., str], request: Request, **values: str) -> Response:
    response = HTMLResponse(render(**values))
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    )
    return response


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class Guard:
    """The console's door: bounds, credentials, scopes, CSRF, the access log, headers."""

    def __init__(self, app: Any, state: _State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_seen = {"status": 0}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
                headers = list(message.get("headers", []))
                for key, value in _HEADERS:
                    if not any(k.lower() == key for k, _ in headers):
                        headers.append((key, value))
                message["headers"] = headers
            await send(message)

        try:
            response = await self._check(scope, receive)
            if response is not None:
                await response(scope, receive, sending)
            else:
                await self.app(scope, self._bounded(receive), sending)
        finally:
            _access.info(
                "console_request",
                method=scope["method"],
                path=scope["path"][:300],
                status=status_seen["status"],
                ms=round((time.perf_counter() - started) * 1000, 1),
                client=(scope.get("client") or ("", 0))[0],
                scope=scope.get("tradeloom.scope"),
            )

    async def _check(self, scope: Any, receive: Any) -> Response | None:
        if len(scope.get("query_string", b"")) > MAX_QUERY:
            return _error(414, f"the query string is over {MAX_QUERY} bytes")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return _error(413, f"the body is over {MAX_BODY} bytes")
        if scope["path"] == "/login":
            return None
        granted: Scope | None = None
        session = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            granted = self.state.tokens.scope_of(auth[7:].strip())
        elif "cookie" in headers:
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:  # a malformed cookie header is no credential
                cookie = SimpleCookie()
            morsel = cookie.get(COOKIE)
            session = self.state.sessions.get(morsel.value) if morsel else None
            granted = session.scope if session else None
        if granted is None:
            if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
                return HTMLResponse(
                    pages.message_page(
                        "Log in with the URL 'tradeloom console' printed when it started, or "
                        "send 'Authorization: Bearer TOKEN'."
                    ),
                    status_code=401,
                )
            return _error(401, "a token is needed: Authorization: Bearer TOKEN, or log in")
        scope["tradeloom.scope"] = granted
        scope["tradeloom.session"] = session
        if scope["method"] not in ("GET", "HEAD"):
            if granted != "write":
                return _error(403, "the read token cannot act: use the write token")
            if session is not None:
                sent = headers.get("x-csrf-token", "")
                if not secrets.compare_digest(sent.encode(), session.csrf.encode()):
                    return _error(403, "the CSRF token is missing or wrong (X-CSRF-Token)")
                if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                    return _error(403, "a cross-site request cannot act")
        return None

    def _bounded(self, receive: Any) -> Any:
        taken = {"n": 0}

        async def bounded() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                taken["n"] += len(message.get("body", b""))
                if taken["n"] > MAX_BODY:
                    raise _TooLarge
            return message

        return bounded


_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"SAMEORIGIN"),
)
