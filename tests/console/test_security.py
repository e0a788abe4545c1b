"""The console is secure by default: tokens, scopes, CSRF, bounds, no secret, no path out."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

from tests import forkserver
from tests.console.console_runs import CANARY, ROOT, TOKENS
from tradeloom.console.app import MAX_BODY, create_app
from tradeloom.console.serve import DEFAULT_HOST
from tradeloom.console.tokens import Sessions, load_tokens
from tradeloom.errors import UserError
from tradeloom.runtime.redaction import register_secret

pytestmark = pytest.mark.xdist_group("console_runs")  # the run folders, made once

READ = {"Authorization": f"Bearer {TOKENS.read}"}
WRITE = {"Authorization": f"Bearer {TOKENS.write}"}
PAPER = "0/one-paper-simulated"


def raw_get(app: Any, path: str) -> tuple[int, str]:
    """GET ``path`` exactly as written (an HTTP client would resolve its dot segments)."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "method": "GET", "path": unquote(path), "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"authorization", READ["Authorization"].encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "scheme": "http",
        "http_version": "1.1", "root_path": "",
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body.decode()


@pytest.fixture
def client(runs_root: Path, sessions: Sessions) -> TestClient:
    return TestClient(create_app([runs_root], TOKENS, sessions))


def test_every_request_needs_a_token(client: TestClient) -> None:
    for path in ("/", "/api/v1/runs", f"/api/v1/runs/{PAPER}", "/api/v1/openapi.json",
                 f"/run/{PAPER}", f"/report/{PAPER}/report.html"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert "Bearer" in answer.text
    assert client.get("/api/v1/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post(f"/api/v1/actions/kill/{PAPER}").status_code == 401


def test_the_read_token_reads_and_cannot_act(client: TestClient, runs_root: Path) -> None:
    assert client.get("/api/v1/runs", headers=READ).status_code == 200
    refused = client.post(f"/api/v1/actions/kill/{PAPER}", headers=READ, json={})
    assert (refused.status_code, refused.json()) == (
        403,
        {"error": "the read token cannot act: use the write token"},
    )
    assert not (runs_root / "one-paper-simulated" / "control").exists()


def test_a_session_acts_only_with_its_csrf_token(
    client: TestClient, sessions: Sessions, runs_root: Path
) -> None:
    code = sessions.login_code("write")
    login = client.get(f"/login?code={code}", follow_redirects=False)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get(f"/login?code={code}", follow_redirects=False).status_code == 401  # once

    for headers in ({}, {"X-CSRF-Token": "guess"}):
        refused = client.post(f"/api/v1/actions/kill/{PAPER}", headers=headers, json={})
        assert refused.status_code == 403
        assert refused.json()["error"] == "the CSRF token is missing or wrong (X-CSRF-Token)"
    control = runs_root / "one-paper-simulated" / "control"
    assert not control.exists()

    csrf = client.get("/api/v1/session").json()["csrf"]
    done = client.post(
        f"/api/v1/actions/flatten/{PAPER}", headers={"X-CSRF-Token": csrf}, json={"reason": "t"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["message"].startswith(f"no process is running in {PAPER}: the flatten")
    requests = sorted(control.glob("*-flatten.json"))
    assert len(requests) == 1
    assert json.loads(requests[0].read_text())["reason"] == "t"
    for request in requests:  # the fixture's run is shared
        request.unlink()


def test_a_read_session_cannot_act(client: TestClient, sessions: Sessions) -> None:
    client.get(f"/login?code={sessions.login_code('read')}", follow_redirects=False)
    csrf = client.get("/api/v1/session").json()["csrf"]
    answer = client.post(f"/api/v1/actions/kill/{PAPER}", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "run_id",
    ["0/..", "0/../..", "0/one-bt/..", "0/%2e%2e/etc", "0//etc/passwd", "0/./one-bt",
     "9/one-bt", "x/one-bt", "0/.hidden", "0/escape", "0/one-bt/control"],
)  # fmt: skip
def test_run_ids_outside_the_served_roots_are_refused(
    client: TestClient, runs_root: Path, run_id: str
) -> None:
    link = runs_root / "escape"
    if not link.exists():
        outside = runs_root.parent / "outside"
        (outside).mkdir(exist_ok=True)
        (outside / "journal.sqlite").write_text("")
        link.symlink_to(outside)
    for path in (f"/api/v1/runs/{run_id}", f"/report/{run_id}/report.html"):
        status, text = raw_get(client.app, path)  # as sent: no client normalizes it
        assert status == 404, (path, text)
    listed = [r["id"] for r in client.get("/api/v1/runs", headers=READ).json()["runs"]]
    assert "0/escape" not in listed


def test_a_large_body_and_a_long_query_are_refused(client: TestClient) -> None:
    big = client.post(f"/api/v1/actions/kill/{PAPER}", headers=WRITE, content=b"x" * (10 << 20))
    assert (big.status_code, big.json()) == (413, {"error": f"the body is over {MAX_BODY} bytes"})
    long = client.get("/api/v1/runs?x=" + "a" * 5000, headers=READ)
    assert long.status_code == 414


def test_no_secret_in_any_page_or_answer(client: TestClient, runs_root: Path) -> None:
    register_secret(CANARY)  # as --journal-url registers its password
    answers = []
    runs = client.get("/api/v1/runs", headers=READ)
    ids = [r["id"] for r in runs.json()["runs"]]
    assert "0/canary-bt" in ids
    answers.append(runs.text)
    for run_id in ids:
        for path in (f"/api/v1/runs/{run_id}", f"/run/{run_id}"):
            answers.append(client.get(path, headers=READ).text)
    # the copied folder's journal names another strategy file: refused, in one line
    canary = client.get("/api/v1/runs/0/canary-bt", headers=READ)
    assert canary.status_code == 409
    assert canary.json()["error"].startswith("0/canary-bt/journal.sqlite: its first record")
    compare = client.get("/api/v1/compare?run=0/one-bt&run=0/many-bt", headers=READ)
    assert compare.status_code == 200
    answers.append(compare.text)
    for path in ("/", "/compare", "/api/v1/docs", "/api/v1/openapi.json", "/api/v1/session"):
        answers.append(client.get(path, headers=READ).text)
    assert all(CANARY not in text for text in answers)
    assert all(TOKENS.read not in text and TOKENS.write not in text for text in answers)


def test_tokens_are_made_once_and_kept_0600(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    first = load_tokens(env)
    path = tmp_path / "tradeloom" / "console-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_tokens(env) == first and first.read != first.write
    path.chmod(0o644)
    with pytest.raises(UserError, match=r"may be read by others \(mode 0o644\); run: chmod 600"):
        load_tokens(env)


def test_the_console_binds_127_0_0_1_by_default_and_names_a_missing_extra(tmp_path: Path) -> None:
    from tradeloom.cli.main import _parser

    args = _parser().parse_args(["console"])
    assert (args.host, DEFAULT_HOST) == ("127.0.0.1", "127.0.0.1")
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "uvicorn.py").write_text("raise ImportError('no uvicorn here')\n")
    env = dict(os.environ, PYTHONPATH=f"{blocker}{os.pathsep}{ROOT}")
    done = forkserver.run(
        [sys.executable, "-m", "tradeloom.cli.main", "console", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("tradeloom console needs the console extra: pip install 'tradeloom[console]'")
    )
