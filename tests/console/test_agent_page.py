"""The agent page and its API: an agent workspace's audit log, written by the agent's own
writer, newest call first a page at a time with its hash chain checked (a tampered log is
one line, no table), and the live requests the agent filed, read-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from tests.console.console_runs import TOKENS
from tests.console.served import served
from tests.reporting.browser import Tab, chromium, drive
from tradeloom.agent.approvals import Approvals
from tradeloom.agent.audit import AuditLog, Call, arguments_hash
from tradeloom.agent.workspace import Workspace
from tradeloom.console.agent_log import PER_PAGE, RESULT_LIMIT
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.journal.agent_audit import audit_path

READ = {"Authorization": f"Bearer {TOKENS.read}"}
CALLS = PER_PAGE + 7
"""Two pages: the newest 50, then 7."""
OPERATOR = "operator-token-for-the-test"


def arguments(n: int) -> dict[str, Any]:
    return {"path": f"strategies/s{n}.yaml", "bars": n}


def make_workspace(folder: Path) -> Path:
    """A workspace whose audit log holds `CALLS` calls (every third refused, the last one
    with a long result) and two pending live requests, written by the agent's code."""
    folder.mkdir(exist_ok=True)
    workspace = Workspace(folder)
    log = AuditLog(audit_path(workspace.root))
    for n in range(1, CALLS + 1):
        ok = n % 3 != 0
        result = "ok" if ok else f"s{n}.yaml:3:5: bars: must be 1 or more"
        if n == CALLS:
            result = "x" * (RESULT_LIMIT + 20)
        log.record(Call("claude (stdio)", "backtest", arguments(n), ok, result, n / 1000))
    approvals = Approvals(workspace, OPERATOR)
    approvals.file("flatten", {"run": "runs/one-paper"}, "drawdown past the limit", "claude")
    approvals.file("start_live", {"strategy": "s2.yaml"}, "the gate passed", "claude")
    return workspace.root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("agent-workspace"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("no-runs")


@pytest.fixture(scope="module")
def client(runs: Path, workspace: Path) -> TestClient:
    return TestClient(create_app([runs], TOKENS, Sessions(), agent_workspace=workspace))


def check(client: TestClient, name: str, value: Any) -> None:
    components = client.get("/api/v1/openapi.json", headers=READ).json()["components"]
    schema = {"$ref": f"#/components/schemas/{name}", "components": components}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    assert errors == [], errors[:3]


def test_the_audit_log_newest_first_a_page_at_a_time(client: TestClient, workspace: Path) -> None:
    first = client.get("/api/v1/agent/audit", headers=READ)
    assert first.status_code == 200, first.text
    page = first.json()
    check(client, "AgentAudit", page)
    assert (page["chain"], page["total"], page["page"], page["pages"]) == ("intact", CALLS, 1, 2)
    assert page["log"] == str(workspace / ".tradeloom-mcp" / "audit.jsonl")
    assert [c["seq"] for c in page["calls"]] == list(range(CALLS, CALLS - PER_PAGE, -1))
    newest = page["calls"][0]
    assert newest["result"] == "x" * RESULT_LIMIT + "..."
    call = page["calls"][3]  # seq 54: refused (a multiple of 3)
    assert call == {
        "seq": 54, "at": call["at"], "who": "claude (stdio)", "tool": "backtest",
        "arguments_sha256": arguments_hash(arguments(54)), "ok": False, "seconds": 0.054,
        "result": "s54.yaml:3:5: bars: must be 1 or more",
    }  # fmt: skip
    assert page["calls"][1]["ok"] is True
    last = client.get("/api/v1/agent/audit?page=2", headers=READ).json()
    assert [c["seq"] for c in last["calls"]] == list(range(CALLS - PER_PAGE, 0, -1))
    for asked, said in [
        ("3", "page 3: the audit log has 2 page(s) of 50 calls"),
        ("0", "page: a whole number of 1 or more, was '0'"),
        ("x", "page: a whole number of 1 or more, was 'x'"),
    ]:
        answer = client.get(f"/api/v1/agent/audit?page={asked}", headers=READ)
        assert (answer.status_code, answer.json()) == (400, {"error": said})


def test_a_tampered_log_is_one_line_and_no_call(tmp_path: Path, runs: Path) -> None:
    root = make_workspace(tmp_path / "ws")
    log = audit_path(root)
    lines = log.read_text().splitlines()
    entry = json.loads(lines[8])
    entry["ok"] = True  # a refusal made to look like a success
    lines[8] = json.dumps(entry, sort_keys=True)
    log.write_text("\n".join(lines) + "\n")
    client = TestClient(create_app([runs], TOKENS, Sessions(), agent_workspace=root))
    answer = client.get("/api/v1/agent/audit", headers=READ)
    assert answer.status_code == 409
    assert answer.json() == {"error": f"{log}:9: the audit log's hash chain is broken here"}
    log.write_text("\n".join(lines[:4]) + "\n{not json\n")
    answer = client.get("/api/v1/agent/audit", headers=READ)
    assert answer.json() == {"error": f"{log}:5: not an audit line (a JSON object)"}


def test_the_live_requests_with_their_state(client: TestClient, workspace: Path) -> None:
    answer = client.get("/api/v1/agent/requests", headers=READ)
    assert answer.status_code == 200, answer.text
    shown = answer.json()
    check(client, "AgentRequests", shown)
    assert shown["pending"] == 2
    assert shown["approve"] == f"tradeloom mcp approve {workspace} REQUEST_ID --by NAME"
    filed = Approvals(Workspace(workspace), OPERATOR).pending()[::-1]  # newest first
    assert [r["id"] for r in shown["requests"]] == [r["id"] for r in filed]
    live = shown["requests"][0]
    assert {k: live[k] for k in ("action", "target", "reason", "asked_by", "status")} == {
        "action": "start_live", "target": {"strategy": "s2.yaml"},
        "reason": "the gate passed", "asked_by": "claude", "status": "pending",
    }  # fmt: skip
    assert (live["approved_by"], live["done"]) == (None, None)
    assert "seal" not in live


def test_guarded_as_every_route_and_absent_without_a_workspace(
    client: TestClient, runs: Path
) -> None:
    for path in ("/api/v1/agent/audit", "/api/v1/agent/requests"):
        assert client.get(path).status_code == 401
    bare = TestClient(create_app([runs], TOKENS, Sessions()))
    for path in ("/api/v1/agent/audit", "/api/v1/agent/requests"):
        answer = bare.get(path, headers=READ)
        said = "this console serves no agent workspace: start it with --agent-workspace DIR"
        assert (answer.status_code, answer.json()) == (404, {"error": said})
    page = client.get("/agent", headers=READ)
    assert page.status_code == 200 and "data-page='agent'" in page.text
    assert "tradeloom mcp approve WORKSPACE ID --by NAME" in page.text


@pytest.mark.slow
def test_the_agent_page_in_a_browser(workspace: Path, runs: Path, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    tampered = make_workspace(tmp_path / "tampered")
    log = audit_path(tampered)
    log.write_text(log.read_text().replace('"ok": false', '"ok": true', 1))
    sessions = [Sessions(), Sessions()]
    good_app = create_app([runs], TOKENS, sessions[0], agent_workspace=workspace)
    bad_app = create_app([runs], TOKENS, sessions[1], agent_workspace=tampered)
    loaded = "!document.getElementById('requests').innerText.startsWith('loading')"
    second = "document.getElementById('audit-page').innerText === 'page 2 of 2'"
    with served(good_app, {}) as good, served(bad_app, {}) as bad:

        async def steps(tab: Tab) -> dict[str, Any]:
            seen: dict[str, Any] = {}
            for name, console, store in (("good", good, sessions[0]), ("bad", bad, sessions[1])):
                base = f"http://127.0.0.1:{console.port}"
                await tab.navigate(f"{base}/login?code={store.login_code('read')}")
                await tab.navigate(f"{base}/agent")
                await tab.wait_for("document.getElementById('chain').innerText !== ''", 60)
                await tab.wait_for(loaded, 60)
                if name == "good":
                    await tab.evaluate("document.getElementById('older').click()")
                    await tab.wait_for(second, 60)
                seen[name] = await tab.evaluate(
                    "({chain: document.getElementById('chain').innerText, "
                    "rows: [...document.querySelectorAll('#audit tr')].map("
                    "r => [...r.children].map(c => c.innerText)), "
                    "requests: [...document.querySelectorAll('#requests tr')].map("
                    "r => [...r.children].map(c => c.innerText)), "
                    "older: document.getElementById('older').disabled})"
                )
                await tab.screenshot(tmp_path / f"{name}-agent-page.png")
            return seen

        seen, visit = drive(steps, timeout=120)
    assert [e for e in visit.errors if "409" not in e] == []
    good = seen["good"]
    assert good["chain"] == f"hash chain intact: {CALLS} calls in {audit_path(workspace)}"
    assert good["rows"][0][:4] == ["#", "time", "who", "tool"]
    assert [r[0] for r in good["rows"][1:]] == [str(n) for n in range(CALLS - PER_PAGE, 0, -1)]
    assert good["rows"][-1][5] == "ok" and good["rows"][-3][5] == "error"  # seq 1, seq 3
    assert good["older"] is True
    assert [r[1] for r in good["requests"][1:]] == ["start_live", "flatten"]
    assert {r[6] for r in good["requests"][1:]} == {"pending"}
    bad = seen["bad"]
    assert bad["chain"] == f"{audit_path(tampered)}:3: the audit log's hash chain is broken here"
    assert bad["rows"] == []
    assert len(bad["requests"]) == 3


def test_an_agent_workspace_that_is_no_folder_is_one_line(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradeloom.cli.main import main

    missing = tmp_path / "nowhere"
    assert main(["console", str(runs), "--agent-workspace", str(missing), "--port", "0"]) == 2
    assert capsys.readouterr().err == f"--agent-workspace: {missing}: not a folder\n"
