"""Every console page at a phone's width (390 x 844, Chromium's mobile emulation): the
page itself never scrolls sideways (``scrollWidth <= innerWidth``); a wide table scrolls
inside its own box."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.console.console_runs import TOKENS
from tests.console.served import served
from tests.console.test_agent_page import make_workspace
from tests.reporting.browser import Tab, chromium, drive
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions

WIDTH, HEIGHT = 390, 844

PAGES = {
    "runs": ("/", "document.querySelector('a.run-link') !== null"),
    "run (backtest)": ("/run/0/one-bt", "document.querySelector('#fills table') !== null"),
    "run (universe)": ("/run/0/many-bt", "document.querySelector('#health table') !== null"),
    "run (paper, acting)": (
        "/run/0/one-paper-simulated",
        "document.getElementById('act-kill') !== null",
    ),
    "compare": (
        "/compare?run=0/one-bt&run=0/many-bt",
        "!document.getElementById('out').innerText.startsWith('pick runs')",
    ),
    "agent": ("/agent", "document.querySelector('#audit table') !== null"),
    "API": ("/api/v1/docs", "document.querySelector('#paths table') !== null"),
    "a refused login": ("/login?code=not-a-code", "document.querySelector('h1') !== null"),
}
"""Each page, its address and what shows it has drawn."""

WIDE = (
    "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth, "
    "Math.max(0, ...[...document.querySelectorAll('table')].map(t => t.scrollWidth))]"
)


@pytest.mark.slow
def test_no_page_scrolls_sideways_on_a_phone(runs_root: Path, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    shots = Path(os.environ.get("TRADELOOM_CONSOLE_SHOTS", tmp_path / "shots"))
    workspace = make_workspace(tmp_path / "workspace")
    sessions = Sessions()
    login = f"/login?code={sessions.login_code('write')}"
    app = create_app([runs_root], TOKENS, sessions, agent_workspace=workspace)
    with served(app, {}) as console:
        base = f"http://127.0.0.1:{console.port}"

        async def steps(tab: Tab) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            await tab.emulate(WIDTH, HEIGHT)
            await tab.navigate(base + login)
            for name, (path, drawn) in PAGES.items():
                if name == "a refused login":  # its 401 and favicon's 404 are its errors
                    seen["errors"] = list(tab.visit.errors)
                await tab.navigate(base + path)
                await tab.wait_for(drawn, 60)
                seen[name] = await tab.evaluate(WIDE)
                seen[name + " text"] = await tab.evaluate("document.body.innerText")
                await tab.screenshot_as_shown(shots / f"phone-{name.split()[0]}.png")
            return seen

        seen, visit = drive(steps, timeout=240)
    assert seen.pop("errors") == [], visit.errors
    text = {name: seen.pop(name + " text") for name in PAGES}
    assert sorted(seen) == sorted(PAGES)
    assert "Settings that differ" in text["compare"], text["compare"]
    for name, (page, body, inner, _) in seen.items():
        assert inner == WIDTH, (name, inner)
        assert page <= inner and body <= inner, f"{name}: {page} px wide at {inner} px"
    # the runs table is wider than the phone: it scrolls in its box, not the page
    assert seen["runs"][3] > WIDTH
