"""The console's pages: small HTML shells whose script draws what ``/api/v1`` answers.

No page holds data of its own: the one script, ``static/console.js``, fetches the API
for the page named in ``<body data-page>`` (the run page follows its run's server-sent
events), so a page and the API cannot disagree. Charts are inline SVG; every value is
put in the page as text (escaped), never as markup; no inline script (the pages' CSP
allows scripts from the console alone).
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

__all__ = [
    "STATIC",
    "agent_page",
    "compare_page",
    "docs_page",
    "message_page",
    "run_page",
    "runs_page",
    "static_file",
]

_VIEWPORT = "<meta name='viewport' content='width=device-width, initial-scale=1'>"
"""A phone shows the page at its own width (390 px), not a desktop's shrunk."""

STATIC = ("console.js", "console.css")
"""The files under ``/static/``."""


def static_file(name: str) -> Path:
    """Return the path of one of `STATIC`."""
    return Path(str(files("tradeloom.console") / "static" / name))


def _page(title: str, page: str, body: str, run: str = "") -> str:
    run_attr = f" data-run='{html.escape(run)}'" if run else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"{_VIEWPORT}"
        f"<title>{html.escape(title)}</title>"
        "<link rel='icon' href='data:,'><link rel='stylesheet' href='/static/console.css'></head>"
        f"<body data-page='{page}'{run_attr}>"
        "<header><b>tradeloom console</b><a href='/'>runs</a><a href='/compare'>compare</a>"
        "<a href='/agent'>agent</a><a href='/api/v1/docs'>API</a></header>"
        f"<main>{body}</main><script src='/static/console.js'></script></body></html>"
    )


def message_page(text: str) -> str:
    """Return a page that says one thing (no script, no stylesheet)."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"{_VIEWPORT}<title>tradeloom console"
        f"</title></head><body><h1>tradeloom console</h1><p>{html.escape(text)}</p>"
        "</body></html>"
    )


def runs_page() -> str:
    """Return the runs page: every run, filterable, refreshed every few seconds."""
    body = (
        "<h1>Runs</h1><p><input id='filter' type='text' placeholder='filter: name, mode, "
        "state...'> <button id='compare'>compare selected</button> "
        "<span id='count' class='note'></span></p><div id='runs'>loading...</div>"
    )
    return _page("tradeloom console: runs", "runs", body)


def run_page(*, run_id: str, name: str) -> str:
    """Return a run's page, which follows the run as it trades (server-sent events)."""
    body = (
        f"<h1>{html.escape(name)} <small class='note'>{html.escape(run_id)}</small></h1>"
        "<div id='live' class='note'>connecting...</div><p id='notice' class='err'></p>"
        "<div class='tiles' id='tiles'></div>"
        "<div id='actions'></div>"
        "<div class='grid'><section><h2>Equity</h2><div id='equity'></div></section>"
        "<section><h2>Drawdown</h2><div id='drawdown'></div></section></div>"
        "<div class='grid'><section><h2>Positions</h2><div id='positions'></div></section>"
        "<section><h2>Working orders</h2><div id='orders'></div></section></div>"
        "<section id='books-box' hidden><h2>Champion and challengers</h2>"
        "<p class='note'>Each book over its own bars; AUC and ECE (expected calibration "
        "error) of the model's journaled probabilities whose label is known (a universe: "
        "every symbol's, pooled).</p>"
        "<p id='in-force'></p><p id='canary'></p><p id='watch'></p>"
        "<div id='books'></div><p><span id='rollback-box'></span> "
        "<span id='promote-confirm'></span> <span id='promote-result' class='note'></span>"
        "</p></section>"
        "<section id='allocation-box' hidden><h2>Allocation: target against held weights</h2>"
        "<p id='allocation-last' class='note'></p><div id='allocation'></div></section>"
        "<div class='grid'><section><h2>Recent orders</h2><div id='recent-orders'></div>"
        "</section><section><h2>Recent fills</h2><div id='fills'></div></section></div>"
        "<section><h2>Refusals by code and purpose</h2><p id='exits-refused' class='err'>"
        "</p><div id='refusals'></div></section>"
        "<section><h2>Recent rejections</h2><div id='rejections'></div></section>"
        "<section><h2>Health and model monitoring by monitor and symbol</h2>"
        "<div id='health'></div><h2>Recent health changes</h2><div id='health-changes'></div>"
        "</section>"
        "<section><h2>Alerts</h2><div id='alerts'></div></section>"
        "<section id='report'></section>"
    )
    return _page(f"tradeloom console: {name}", "run", body, run=run_id)


def compare_page() -> str:
    """Return the compare page: the settings that differ and the equity curves together."""
    body = "<h1>Compare</h1><div id='out'>pick runs on the runs page, then compare</div>"
    return _page("tradeloom console: compare", "compare", body)


def agent_page() -> str:
    """Return the agent page: the workspace's audit log (chain checked) and live requests."""
    body = (
        "<h1>Agent</h1><p id='agent-workspace' class='note'></p>"
        "<section><h2>Live requests</h2><p class='note'>Read-only: a named human approves "
        "a request with <code>tradeloom mcp approve WORKSPACE ID --by NAME</code>, which "
        "holds the operator's token and checks the request's seal; the console holds "
        "neither.</p><div id='requests'>loading...</div></section>"
        "<section><h2>Audit log</h2><p id='chain'></p>"
        "<p><button id='newer'>newer</button> <span id='audit-page' class='note'></span> "
        "<button id='older'>older</button></p><div id='audit'>loading...</div></section>"
    )
    return _page("tradeloom console: agent", "agent", body)


def docs_page() -> str:
    """Return the API's page, drawn from its OpenAPI document."""
    body = (
        "<h1>API v1</h1><p>The OpenAPI document: <a href='/api/v1/openapi.json'>"
        "/api/v1/openapi.json</a>. Send <code>Authorization: Bearer TOKEN</code>.</p>"
        "<div id='paths'>loading...</div>"
    )
    return _page("tradeloom console: API", "docs", body)
