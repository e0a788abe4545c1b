"""The console's actions and what it tells a page: a body of any shape gets an answer
that says what is wrong (400, never a 500), the run journals who asked (``console`` or
``api``), a kill of a halted run answers "already halted", and errors name runs by
their ids, never by the server's paths."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.console.console_runs import TOKENS
from tradeloom.console.app import create_app
from tradeloom.console.runs import RunIndex, RunRef
from tradeloom.console.tokens import Sessions
from tradeloom.journal import RunIdentity, RunStarted, TradingStateChanged, open_journal

READ = {"Authorization": f"Bearer {TOKENS.read}"}
WRITE = {"Authorization": f"Bearer {TOKENS.write}"}
SEND = 'send {"reason": "one line"}, or no body'
ONE_LINE = "reason: one line without control characters, has"


def paper_run(path: Path, *, halted: bool = False) -> Path:
    """A paper run's folder: its journal's start, and the kill switch's halt if asked."""
    path.mkdir(parents=True)
    journal = open_journal(path / "journal.sqlite", RunIdentity("s", path.name, "paper"))
    journal.append(
        RunStarted(mode="paper", strategy="s", source="s.yaml", tradeloom="0", wall_time=pd.NaT)
    )
    if halted:
        at = pd.Timestamp("2024-03-01T12:00:00Z")
        journal.append(
            TradingStateChanged(
                previous="ACTIVE", state="HALTED", code="KILL_SWITCH", message="k (by api)", at=at
            )
        )
    journal.close()
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    paper_run(root / "active")
    paper_run(root / "halted", halted=True)
    (root / "broken").mkdir()
    (root / "broken" / "journal.sqlite").write_text("not a journal", encoding="utf-8")
    return root


@pytest.fixture
def client(root: Path, sessions: Sessions) -> TestClient:
    return TestClient(create_app([root], TOKENS, sessions))


def requests_of(run: Path) -> list[dict[str, Any]]:
    control = run / "control"
    files = sorted(control.glob("*.json")) if control.is_dir() else []
    return [json.loads(f.read_text()) for f in files]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", f"the body is not JSON (Expecting value: line 1 column 1 (char 0)): {SEND}"),
        (b"\xff", "the body is not JSON ('utf-8' codec can't decode byte 0xff in position 0: "
         f"invalid start byte): {SEND}"),
        (b"[" * 8000, f"the body is JSON nested too deep: {SEND}"),
        (b"[" * 5000 + b"]" * 5000, f"the body is JSON nested too deep: {SEND}"),
        (b'{"reason": "x", "more": ' + b"{}" * 1 + b"}", "the body's keys are reason alone, "
         f"not 'more': {SEND}"),
        (b'{"reason": "x", "a": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2001,
         f"the body is JSON nested too deep: {SEND}"),
        (b"[]", f"the body is a JSON array, not an object: {SEND}"),
        (b'"kill"', f"the body is a JSON string, not an object: {SEND}"),
        (b"null", f"the body is a JSON null, not an object: {SEND}"),
        (b"true", f"the body is a JSON boolean, not an object: {SEND}"),
        (b"1e999", f"the body is a JSON number, not an object: {SEND}"),
        (b'{"reasn": "typo"}', f"the body's keys are reason alone, not 'reasn': {SEND}"),
        (b'{"reason": 5}', "reason: a string, was a JSON number"),
        (b'{"reason": ["a"]}', "reason: a string, was a JSON array"),
        (b'{"reason": "' + b"x" * 501 + b'"}', "reason: one line of at most 500 characters, "
         "was 501"),
        (b'{"reason": "two\\nlines"}', f"{ONE_LINE} U+000A (line feed) at character 4"),
        (b'{"reason": "two\\rlines"}', f"{ONE_LINE} U+000D (carriage return) at character 4"),
        (b'{"reason": "tab\\there"}', f"{ONE_LINE} U+0009 (tab) at character 4"),
        (b'{"reason": "ok\\u001b[2J"}', f"{ONE_LINE} U+001B (escape) at character 3"),
        (b'{"reason": "nul\\u0000"}', f"{ONE_LINE} U+0000 (NUL) at character 4"),
        (b'{"reason": "del\\u007f"}', f"{ONE_LINE} U+007F (delete) at character 4"),
        (b'{"reason": "c1\\u0085"}', f"{ONE_LINE} U+0085 (a control character) at character 3"),
        (b'{"reason": "ls\\u2028"}', f"{ONE_LINE} U+2028 (line separator) at character 3"),
        (b'{"reason": "ps\\u2029"}', f"{ONE_LINE} U+2029 (paragraph separator) at character 3"),
        (b'{"reason": "abc\\u202eexe.txt"}', f"{ONE_LINE} U+202E (a format character) at "
         "character 4"),
        (b'{"reason": "zw\\u200b"}', f"{ONE_LINE} U+200B (a format character) at character 3"),
        (b'{"reason": "\\ud800"}', f"{ONE_LINE} U+D800 (a lone surrogate) at character 1"),
    ],
)  # fmt: skip
def test_a_body_of_any_shape_is_answered_400(
    client: TestClient, root: Path, body: bytes, error: str
) -> None:
    answer = client.post("/api/v1/actions/kill/0/active", headers=WRITE, content=body)
    assert (answer.status_code, answer.json()) == (400, {"error": error})
    assert not (root / "active" / "control").exists()


SWAP = (
    'send {"model": "RUN_ID", "fold": N, "reason": "one line", "strategy": "NAME"} '
    "(fold, reason optional; strategy: a portfolio file's run only)"
)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", f"model: a run id, was a JSON null: {SWAP}"),
        (b'{"model": 3}', f"model: a run id, was a JSON number: {SWAP}"),
        (b'{"model": "0/halted", "folds": 1}',
         f"the body's keys are model, fold, reason and strategy, not 'folds': {SWAP}"),
        (b'{"model": "0/halted", "strategy": 7}', "strategy: a strategy's name, was a JSON number"),
        (b'{"model": "0/halted", "fold": -1}', "fold: a fold number (0 or more), was -1"),
        (b'{"model": "0/halted", "fold": true}', "fold: a fold number (0 or more), was true"),
        (b'{"model": "0/halted", "reason": "a\\nb"}',
         f"{ONE_LINE} U+000A (line feed) at character 2"),
        (b'{"model": "0/nowhere"}', "model: no run '0/nowhere' here"),
        (b'{"model": "0/halted"}', "0/active: its journal does not record the strategy it "
         "trades (not started yet, or by an older tradeloom); a swap is checked against it"),
    ],
)  # fmt: skip
def test_a_swap_is_checked_before_it_is_asked(
    client: TestClient, root: Path, body: bytes, error: str
) -> None:
    answer = client.post("/api/v1/actions/swap/0/active", headers=WRITE, content=body)
    assert (answer.status_code, answer.json()) == (400, {"error": error})
    assert not (root / "active" / "control").exists()


PROMOTE = 'send {"challenger": "NAME", "reason": "one line"} (reason optional)'


@pytest.mark.parametrize(
    ("action", "body", "error"),
    [
        ("promote", b"", f"challenger: a name, was a JSON null: {PROMOTE}"),
        ("promote", b'{"challenger": 3}', f"challenger: a name, was a JSON number: {PROMOTE}"),
        ("promote", b'{"challenger": "x", "model": "y"}',
         f"the body's keys are challenger and reason, not 'model': {PROMOTE}"),
        ("promote", b'{"challenger": "x"}', "0/active: its journal does not record the "
         "strategy it trades (not started yet, or by an older tradeloom); a swap is checked "
         "against it"),
        ("rollback", b'{"challenger": "x"}', f"the body's keys are reason alone, not "
         f"'challenger': {SEND}"),
        ("rollback", b"", "rollback refused: rollback: no canary or watch is in progress"),
    ],
)  # fmt: skip
def test_a_promotion_or_rollback_is_checked_before_it_is_asked(
    client: TestClient, root: Path, action: str, body: bytes, error: str
) -> None:
    answer = client.post(f"/api/v1/actions/{action}/0/active", headers=WRITE, content=body)
    assert (answer.status_code, answer.json()) == (400, {"error": error})
    assert not (root / "active" / "control").exists()


def test_a_reason_of_any_printable_text_is_taken_as_it_is(client: TestClient, root: Path) -> None:
    reason = "café crème — 止 ☕ " + "x" * 481  # 500 characters, none a control
    answer = client.post("/api/v1/actions/kill/0/active", headers=WRITE, json={"reason": reason})
    assert answer.status_code == 200, answer.text
    assert [r["reason"] for r in requests_of(root / "active")] == [reason]


def test_the_run_journals_who_asked(client: TestClient, root: Path, sessions: Sessions) -> None:
    api = client.post("/api/v1/actions/kill/0/active", headers=WRITE)
    assert api.status_code == 200, api.text
    client.get(f"/login?code={sessions.login_code('write')}", follow_redirects=False)
    csrf = client.get("/api/v1/session").json()["csrf"]
    page = client.post("/api/v1/actions/flatten/0/active", headers={"X-CSRF-Token": csrf}, json={})
    assert page.status_code == 200, page.text
    asked = [(r["action"], r["by"], r["reason"]) for r in requests_of(root / "active")]
    assert asked == [
        ("kill", "api", "requested through the API"),
        ("flatten", "console", "requested from the console"),
    ]


def test_a_kill_of_a_halted_run_answers_already_halted(client: TestClient, root: Path) -> None:
    answer = client.post("/api/v1/actions/kill/0/halted", headers=WRITE, json={"reason": "again"})
    assert (answer.status_code, answer.json()) == (
        200,
        {
            "action": "kill",
            "run": "0/halted",
            "message": "already halted at 2024-03-01T12:00:00Z by the kill switch (k (by api)); "
            "no process is running in 0/halted: the request is journaled when it next starts",
            "running": False,
            "already": True,
        },
    )
    assert [(r["action"], r["by"]) for r in requests_of(root / "halted")] == [("kill", "api")]
    resume = client.post("/api/v1/actions/resume/0/active", headers=WRITE).json()
    assert (resume["already"], resume["message"]) == (
        True,
        "already active (the kill switch was never engaged); no process is running in "
        "0/active: the request is journaled when it next starts",
    )


def test_errors_name_the_run_and_no_server_path(client: TestClient, root: Path) -> None:
    with client.stream("GET", "/api/v1/events/0/broken", headers=READ) as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: run"
        event = json.loads(next(lines)[len("data: ") :])
    assert event == {
        "id": "0/broken",
        "error": "0/broken/journal.sqlite: not a SQLite database (damaged, or another kind "
        "of file)",
    }
    listed = {r["id"]: r for r in client.get("/api/v1/runs", headers=READ).json()["runs"]}
    assert listed["0/broken"]["error"] == event["error"]
    detail = client.get("/api/v1/runs/0/broken", headers=READ)
    assert (detail.status_code, detail.json()["error"]) == (409, event["error"])
    refused = client.post("/api/v1/actions/kill/0/broken", headers=WRITE)
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        f"{event['error']}; no process is running in 0/broken, so nothing trades there: "
        "nothing was latched"
    )
    assert str(root) not in json.dumps([event, listed, refused.json()])


def test_shown_maps_every_served_path_to_ids(tmp_path: Path) -> None:
    outer, inner = tmp_path / "runs", tmp_path / "runs" / "deep"
    inner.mkdir(parents=True)
    index = RunIndex([outer, inner])
    ref = RunRef("0/a#b", 0, outer / "a#b")
    text = (
        f"{outer}/a#b/journal.sqlite; {outer}/other/x; {inner}/y; ({outer}); {tmp_path}/z; "
        f"{outer}2/w"
    )
    assert index.shown(text, ref) == (
        f"0/a#b/journal.sqlite; 0/other/x; 1/y; (0); {tmp_path}/z; {outer}2/w"
    )


def test_an_unexpected_error_is_named_by_its_type_and_logged_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = RunIndex([root])
    ref = index.resolve("0/active")
    boom = RuntimeError(f"{root.parent}/private/thing went wrong")
    with capture_logs() as logs:
        first = index.failure(boom, ref)
        again = index.failure(boom, ref)
    assert (
        first
        == again
        == ("0/active cannot be read just now (RuntimeError; the console's log has the details)")
    )
    assert [(e["event"], e["run"]) for e in logs] == [("console_read_failed", "0/active")]


def test_a_folder_whose_name_is_not_utf8_is_a_row_that_says_so(
    client: TestClient, root: Path
) -> None:
    # renamed by hand (tradeloom writes no such folder), with a tool that speaks latin-1
    shutil.copytree(root / "active", root / os.fsdecode(b"caf\xe9"))
    rows = client.get("/api/v1/runs", headers=READ).json()["runs"]
    assert [r["id"] for r in rows] == ["0/active", "0/broken", "0/caf\\xe9", "0/halted"]
    assert rows[2] == {
        "id": "0/caf\\xe9",
        "name": "caf\\xe9",
        "error": "the folder's name is not UTF-8, and no URL can name it: rename it to see it "
        "here (tradeloom's commands read it as it is)",
    }
