"""Promote and roll back from the console's run page.

The run's answer says which challengers a promote would be taken for and whether a
rollback would (`tradeloom.live.lifecycle.promotion_stage.promotion_choices`: the very check the
actions make of the journal), with the model in force and the canary's stage in words.
In a real browser, an operator presses ``promote`` on a running paper run's challenger,
confirms it, and the page shows the canary and the new model in force; ``roll the canary
back`` puts the champion's model back; a request the API refuses shows its one line; the
journal holds each step, asked by ``console``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tests import forkserver
from tests.console.console_runs import ROOT, TOKENS
from tests.console.served import served
from tests.live.live_emulated import trained_registry
from tests.live.test_canary import FRACTION, canaried, rows
from tests.live.test_challengers import play
from tests.reporting.browser import Tab, chromium, drive
from tradeloom.cli.main import main
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.live.lifecycle.promotion_stage import PromotionChoices, promotion_choices

READ = {"Authorization": f"Bearer {TOKENS.read}"}
WRITE = {"Authorization": f"Bearer {TOKENS.write}"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backtest's run directory whose folds were saved (champion and challenger)."""
    return trained_registry(tmp_path_factory.mktemp("registry"))


def by_hand(registry: Path) -> dict[str, Any]:
    """Champion and challenger ``next`` (saved models) whose gate never passes (only an
    operator promotes, through a canary of 100 bars), and ``twin``, the same model with no
    gate."""
    document = canaried(registry)
    document["challengers"][0]["promote_when"] = {
        "min_bars": 200,
        "canary": {"fraction": FRACTION, "bars": 100},
    }
    document["challengers"].append(
        {"name": "twin", "model": {**document["challengers"][0]["model"]}}
    )
    return document


def test_the_run_answer_offers_what_the_actions_would_take(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = by_hand(registry)
    code, run = play(tmp_path / "runs", document, 4)
    assert code == 0
    client = TestClient(create_app([tmp_path / "runs"], TOKENS, Sessions()))

    def offered() -> Any:
        return client.get("/api/v1/runs/0/run", headers=READ).json()["promotion"]

    own = f"the saved model of run {registry.name} (fold 0)"  # the strategy file's section
    assert promotion_choices(run) == PromotionChoices(("next", "twin"), False, own)
    assert offered() == {
        "promote": ["next", "twin"],
        "rollback": False,
        "in_force": own,
        "canary": None,
        "watch": None,
    }
    # what is not offered, the API refuses
    refused = client.post("/api/v1/actions/rollback/0/run", headers=WRITE, json={})
    assert refused.json() == {
        "error": "rollback refused: rollback: no canary or watch is in progress"
    }
    assert (
        client.post(
            "/api/v1/actions/promote/0/run", headers=WRITE, json={"challenger": "next"}
        ).status_code
        == 200
    )
    code, run = play(tmp_path / "runs", document, 2)  # the restart takes the request up
    assert code == 0
    [started] = rows(run, "canary_started")
    assert started["by"] == "api"
    [swapped] = rows(run, "model_swapped")
    canary = offered()
    assert (
        canary
        == {
            "promote": ["next"],  # its canary's own (the full champion at once); not twin
            "rollback": True,
            "in_force": f"challenger next's model, since bar {started['bar']} (by api, sha256 "
            f"{swapped['sha256'][:12]})",
            "canary": f"next at 25% of the champion's size since bar {started['bar']}: 2 of 100 "
            "bars (by api)",
            "watch": None,
        }
    )
    refused = client.post(
        "/api/v1/actions/promote/0/run", headers=WRITE, json={"challenger": "twin"}
    )
    assert refused.json() == {
        "error": "promotion refused: --challenger: the canary of next is in progress; promote "
        "or roll it back first"
    }
    assert main(["status", str(run)]) == 0
    assert f"canary     {canary['canary']}" in capsys.readouterr().out  # status's words
    assert client.post("/api/v1/actions/rollback/0/run", headers=WRITE, json={}).status_code == 200
    code, run = play(tmp_path / "runs", document, 2)
    assert code == 0
    [back] = rows(run, "canary_rolled_back")
    returned = rows(run, "model_swapped")[-1]
    after = offered()
    assert after["promote"] == ["twin"] and after["rollback"] is False  # next was promoted
    refused = client.post(
        "/api/v1/actions/promote/0/run", headers=WRITE, json={"challenger": "next"}
    )
    assert refused.json() == {
        "error": "promotion refused: --challenger: challenger next was promoted already; it is "
        "no longer in shadow"
    }
    assert returned["bar"] == back["bar"] and returned["sha256"] == started["champion_sha256"]
    assert after["in_force"] == (
        f"the champion's model, back from challenger next's canary, since bar {back['bar']} "
        f"(by api, sha256 {returned['sha256'][:12]})"
    )
    assert after["canary"].startswith("next rolled back after 2 bars: by hand (by api)")


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


IN_FORCE = "document.getElementById('in-force').innerText"
CANARY = "document.getElementById('canary').innerText"
RESULT = "document.getElementById('promote-result').innerText"


@pytest.mark.slow
def test_an_operator_promotes_a_challenger_and_rolls_it_back_from_the_page(
    registry: Path, tmp_path: Path
) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    shots = Path(os.environ.get("TRADELOOM_CONSOLE_SHOTS", tmp_path / "shots"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(tmp_path / "config"))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(by_hand(registry), sort_keys=False))
    run = tmp_path / "runs" / "promoted"
    paper = start(
        ["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "2400x",
         "--max-bars", "200", "-q", "--out", str(run)], tmp_path, env,
    )  # fmt: skip
    sessions = Sessions()
    login = f"/login?code={sessions.login_code('write')}"
    try:
        with served(create_app([tmp_path / "runs"], TOKENS, sessions), {}) as console:
            base = f"http://127.0.0.1:{console.port}"

            async def press(tab: Tab, button: str, confirm: str) -> str:
                """Press ``button``, then its confirm button; return the answer shown."""
                await tab.evaluate("document.getElementById('promote-result').innerText = ''")
                await tab.evaluate(f"{button}.click()")
                seen = await tab.wait_for(
                    "document.getElementById('promote-yes') && "
                    "document.getElementById('promote-yes').innerText"
                )
                assert seen == confirm
                await tab.evaluate("document.getElementById('promote-yes').click()")
                return str(await tab.wait_for(RESULT))

            async def steps(tab: Tab) -> dict[str, Any]:
                seen: dict[str, Any] = {}
                await tab.navigate(base + login)  # the cookie, then the runs page
                await tab.wait_for("document.querySelector('a.run-link') !== null", 120)
                await tab.navigate(f"{base}/run/0/promoted")
                promote = "document.querySelector(\"button[data-challenger='next']\")"
                await tab.wait_for(f"{promote} !== null", 120)
                seen["before"] = await tab.evaluate(
                    f"[{IN_FORCE}, {CANARY}, "
                    "[...document.querySelectorAll('button[data-action=promote]')]"
                    ".map(b => b.dataset.challenger), "
                    "document.getElementById('act-rollback') === null]"
                )
                await tab.screenshot(shots / "1-challengers.png")
                # a request the API refuses (no canary to roll back): its one line shown
                seen["refused"] = await press(
                    tab,
                    "(() => { const b = document.createElement('button'); "
                    "b.dataset.action = 'rollback'; "
                    "document.getElementById('rollback-box').appendChild(b); return b; })()",
                    "confirm rollback",
                )
                await tab.evaluate("document.getElementById('reason').value = 'browser test'")
                seen["promoted"] = await press(tab, promote, "confirm promote next")
                seen["canary"] = await tab.wait_for(
                    f'{IN_FORCE}.includes("challenger next\'s model") && '
                    f"document.getElementById('act-rollback') !== null && {CANARY} && "
                    f"[{IN_FORCE}, {CANARY}]",
                    90,
                )
                await tab.screenshot(shots / "2-canary.png")
                await tab.evaluate("document.getElementById('reason').value = 'enough'")
                seen["rolled"] = await press(
                    tab, "document.getElementById('act-rollback')", "confirm rollback"
                )
                seen["back"] = await tab.wait_for(
                    f"{CANARY}.includes('rolled back') && "
                    "document.getElementById('act-rollback') === null && "
                    f"[{IN_FORCE}, {CANARY}]",
                    90,
                )
                await tab.screenshot(shots / "3-rolled-back.png")
                return seen

            try:
                seen, visit = drive(steps, timeout=300)
            except TimeoutError as exc:
                stop(paper)
                _, err = paper.communicate()
                pytest.fail(f"{exc}; the paper run's last lines: {err[-2000:]}")
    finally:
        stop(paper)
    # the one error: the browser's note of the refused request's 400
    assert visit.errors == [
        "network: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ], visit.errors
    assert seen["before"] == [
        f"model in force: the saved model of run {registry.name} (fold 0)",
        "",
        ["next", "twin"],
        True,
    ]
    assert (
        seen["refused"] == "refused: rollback refused: rollback: no canary or watch is in progress"
    )
    for action in ("promote", "rollback"):
        assert re.match(
            rf"^{action} requested; the running process \(pid \d+\) carries it out at the "
            "next bar boundary",
            seen["promoted" if action == "promote" else "rolled"],
        )
    [started] = rows(run, "canary_started")
    [back] = rows(run, "canary_rolled_back")
    promoted, returned = rows(run, "model_swapped")
    assert (started["by"], started["reason"], started["challenger"]) == (
        "console",
        "browser test",
        "next",
    )
    assert (promoted["by"], promoted["bar"]) == ("console", started["bar"])
    assert (back["by"], back["reason"], returned["by"]) == ("console", "enough", "console")
    assert returned["sha256"] == started["champion_sha256"]  # the champion's model back
    in_force, canary = seen["canary"]
    assert in_force == (
        f"model in force: challenger next's model, since bar {started['bar']} (by console, "
        f"sha256 {promoted['sha256'][:12]})"
    )
    assert canary.startswith(
        f"canary: next at 25% of the champion's size since bar {started['bar']}"
    )
    assert seen["back"][0] == (
        "model in force: the champion's model, back from challenger next's canary, since bar "
        f"{back['bar']} (by console, sha256 {returned['sha256'][:12]})"
    )
    assert seen["back"][1].startswith("canary: next rolled back after ")


def test_a_watched_promotion_is_offered_to_roll_back_with_its_stage(
    registry: Path, tmp_path: Path
) -> None:
    """A promotion with a watch and no canary: the run answer offers the rollback while
    the watch runs and says its stage in status's words; the API's rollback puts the
    previous champion back (``promotion_rolled_back`` by api)."""
    document = by_hand(registry)
    document["challengers"][0]["promote_when"] = {
        "min_bars": 200,
        "watch": {"bars": 100, "rollback_when": {"max_drawdown": 0.5}},
    }
    code, run = play(tmp_path / "runs", document, 3)
    assert code == 0
    client = TestClient(create_app([tmp_path / "runs"], TOKENS, Sessions()))

    def offered() -> Any:
        return client.get("/api/v1/runs/0/run", headers=READ).json()["promotion"]

    asked = {"challenger": "next"}
    assert (
        client.post("/api/v1/actions/promote/0/run", headers=WRITE, json=asked).status_code == 200
    )
    code, run = play(tmp_path / "runs", document, 2)
    assert code == 0
    [started] = rows(run, "watch_started")
    watched = offered()
    assert watched["rollback"] is True and watched["promote"] == []
    assert watched["canary"] is None
    assert watched["watch"].startswith(f"next's promotion watched since bar {started['bar']}")
    assert client.post("/api/v1/actions/rollback/0/run", headers=WRITE, json={}).status_code == 200
    code, run = play(tmp_path / "runs", document, 2)
    assert code == 0
    [back] = rows(run, "promotion_rolled_back")
    assert back["by"] == "api"
    after = offered()
    assert after["rollback"] is False
    assert after["watch"].startswith("next's promotion rolled back")
