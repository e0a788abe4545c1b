"""The console as an operator sees it: a paper run on the simulated clock plays its bars
while the runs page and the run page show it; kill-and-flatten pressed on the run page
halts the run and closes its position, as its journal shows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests import forkserver
from tests.console.console_runs import ONE, ROOT, TOKENS, backtest
from tests.console.console_runs import tradeloom as forkserver_ok
from tests.console.served import served
from tests.reporting.browser import Tab, chromium, drive
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.journal import read_rows


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return forkserver.popen(
        [sys.executable, "-m", "tradeloom.cli.main", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_an_operator_watches_a_paper_run_and_flattens_it(tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    shots = Path(os.environ.get("TRADELOOM_CONSOLE_SHOTS", tmp_path / "shots"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "config"))
    (tmp_path / "s.yaml").write_text(ONE)
    run = tmp_path / "runs" / "one-paper-simulated"
    run.parent.mkdir()
    paper = start(
        ["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "2400x",
         "--max-bars", "150", "-q"], tmp_path, env,
    )  # fmt: skip
    console = start(["console", "runs", "--port", "0"], tmp_path, env)
    try:
        assert console.stdout is not None
        lines = [console.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("tradeloom console on http://127.0.0.1:"), lines
        login = re.search(r"(http://\S+/login\?code=\S+)", lines[2])
        assert login is not None and lines[2].startswith("operator login"), lines
        base = login.group(1).split("/login")[0]

        async def steps(tab: Tab) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            await tab.navigate(login.group(1))  # the cookie, then the runs page
            await tab.wait_for("document.querySelector('a.run-link') !== null", 120)
            seen["runs"] = await tab.evaluate("document.getElementById('runs').innerText")
            await tab.screenshot(shots / "1-runs.png")
            await tab.navigate(f"{base}/run/0/one-paper-simulated")
            await tab.wait_for("document.getElementById('equity-value') !== null", 60)
            first = await tab.evaluate(
                "[document.getElementById('equity-value').innerText, "
                "document.getElementById('positions').innerText, "
                "document.getElementById('tiles').innerText]"
            )
            # bars play: the equity or the position moves, the page follows by itself
            await tab.wait_for(
                f"document.getElementById('equity-value').innerText !== {first[0]!r} && "
                "document.querySelector('.position-qty') !== null",
                90,
            )
            seen["first"] = first
            seen["later"] = await tab.evaluate(
                "[document.getElementById('equity-value').innerText, "
                "document.getElementById('positions').innerText]"
            )
            await tab.screenshot(shots / "2-run-trading.png")
            await tab.evaluate("document.getElementById('reason').value = 'browser test'")
            await tab.evaluate("document.getElementById('act-flatten').click()")
            await tab.wait_for("document.getElementById('act-yes') !== null")
            await tab.evaluate("document.getElementById('act-yes').click()")
            seen["result"] = await tab.wait_for("document.getElementById('act-result').innerText")
            await tab.wait_for(
                "document.getElementById('tiles').innerText.includes('HALTED') && "
                "[...document.querySelectorAll('.position-qty')].every("
                "e => Number(e.innerText.replace(/,/g, '')) === 0)",
                90,
            )
            seen["after"] = await tab.wait_for(
                "document.getElementById('recent-orders').innerText.includes('EXIT_FLATTEN') "
                "&& document.body.innerText"
            )
            await tab.screenshot(shots / "3-run-flattened.png")
            return seen

        seen, visit = drive(steps, timeout=300)
    finally:
        stop(paper)
        stop(console)
    assert visit.errors == [], (visit.errors, visit.requests)
    assert all(url.startswith(("http://127.0.0.1:", "data:")) for url in visit.requests)
    assert "0/one-paper-simulated" in seen["runs"] and "paper" in seen["runs"]
    assert seen["later"][0] != seen["first"][0]
    assert seen["result"].startswith("kill and flatten requested; the running process (pid ")
    assert "HALTED KILL_SWITCH" in seen["after"]
    journal = run / "journal.sqlite"
    requests = [r.values for r in read_rows(journal, ["control_request"])]
    assert [(r["action"], r["reason"], r["by"]) for r in requests] == [
        ("flatten", "browser test", "console")
    ]
    states = [r.values for r in read_rows(journal, ["trading_state"])]
    assert [(s["state"], s["code"]) for s in states] == [("HALTED", "KILL_SWITCH")]
    flattening = [r for r in read_rows(journal, ["order"]) if r.values["reason"] == "EXIT_FLATTEN"]
    assert len(flattening) == 1


@pytest.mark.slow
def test_the_page_of_a_run_whose_id_needs_escaping(tmp_path: Path) -> None:
    """``x#y`` beside ``x``: every URL its page builds is escaped, so the page shows
    ``x#y`` (a paper run) and not ``x`` (a backtest), and its kill goes to ``x#y``."""
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    shots = Path(os.environ.get("TRADELOOM_CONSOLE_SHOTS", tmp_path / "shots"))
    (tmp_path / "s.yaml").write_text(ONE)
    runs = tmp_path / "runs"
    backtest(tmp_path / "s.yaml", runs / "x")
    forkserver_ok(
        "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--max-bars", "3", "-q", "--out", "runs/x#y", cwd=tmp_path,
    )  # fmt: skip
    sessions = Sessions()
    login = f"/login?code={sessions.login_code('write')}"
    nasty = ["0/x#y", "0/a?b=%41&c", "0/it's (1) *!", "0/caf\u00e9 \u6f22/\U0001f600 ~"]
    with served(create_app([runs], TOKENS, sessions), {}) as console:
        base = f"http://127.0.0.1:{console.port}"

        async def steps(tab: Tab) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            await tab.navigate(base + login)
            await tab.wait_for("document.querySelectorAll('a.run-link').length === 2", 60)
            seen["links"] = await tab.evaluate(
                "[...document.querySelectorAll('a.run-link')].map(a => [a.innerText, "
                "new URL(a.href).pathname])"
            )
            seen["escaped"] = await tab.evaluate(f"{json.dumps(nasty)}.map(runPath)")
            await tab.evaluate(
                "[...document.querySelectorAll('a.run-link')]"
                ".find(a => a.innerText === '0/x#y').click()"
            )
            await tab.wait_for("document.getElementById('equity-value') !== null", 60)
            await tab.wait_for("document.getElementById('act-kill') !== null", 30)
            seen["where"] = await tab.evaluate("[location.pathname, location.hash]")
            seen["tiles"] = await tab.evaluate("document.getElementById('tiles').innerText")
            seen["report"] = await tab.wait_for(
                "document.getElementById('report-link') && "
                "new URL(document.getElementById('report-link').href).pathname", 30
            )  # fmt: skip
            seen["report_status"] = await tab.evaluate(
                "fetch(document.getElementById('report-link').href).then(r => r.status)"
            )
            await tab.evaluate("document.getElementById('reason').value = 'escaped'")
            await tab.evaluate("document.getElementById('act-kill').click()")
            await tab.wait_for("document.getElementById('act-yes') !== null")
            await tab.evaluate("document.getElementById('act-yes').click()")
            seen["result"] = await tab.wait_for("document.getElementById('act-result').innerText")
            await tab.screenshot(shots / "4-escaped-run-page.png")
            return seen

        seen, visit = drive(steps, timeout=240)
    assert visit.errors == [], (visit.errors, visit.requests)
    assert sorted(seen["links"]) == [["0/x", "/run/0/x"], ["0/x#y", "/run/0/x%23y"]]
    assert [unquote(path) for path in seen["escaped"]] == nasty
    assert all("#" not in p and "?" not in p for p in seen["escaped"])
    assert seen["where"] == ["/run/0/x%23y", ""]
    assert "paper" in seen["tiles"] and "backtest" not in seen["tiles"]
    assert (seen["report"], seen["report_status"]) == ("/report/0/x%23y/report.html", 200)
    asked = [u for u in visit.requests if "/api/v1/" in u and "/x" in u]
    assert sorted(set(asked)) == [
        f"{base}/api/v1/actions/kill/0/x%23y",
        f"{base}/api/v1/events/0/x%23y",
        f"{base}/api/v1/runs/0/x%23y",
    ]
    assert (
        seen["result"] == "no process is running in 0/x#y: the kill is latched when it next starts"
    )
    (request,) = (runs / "x#y" / "control").glob("*-kill.json")
    assert json.loads(request.read_text())["by"] == "console"
    assert not (runs / "x" / "control").exists()
