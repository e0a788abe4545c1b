"""The console as an operator sees it: a paper run on the simulated clock plays its bars
while the runs page and the run page show it; kill-and-flatten pressed on the run page
halts the run and closes its position, as its journal shows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import forkserver
from tests.console.console_runs import ONE, ROOT
from tests.reporting.browser import Tab, chromium, drive
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
        ("flatten", "browser test", "cli")
    ]
    states = [r.values for r in read_rows(journal, ["trading_state"])]
    assert [(s["state"], s["code"]) for s in states] == [("HALTED", "KILL_SWITCH")]
    flattening = [r for r in read_rows(journal, ["order"]) if r.values["reason"] == "EXIT_FLATTEN"]
    assert len(flattening) == 1
