"""``tradeloom mcp``'s refusals before any server starts, through the CLI's `main` in
process: the missing extra, a host that is not the loopback, an unset token; and
``tradeloom mcp audit`` over a log the agent's writer wrote, then over a tampered one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tradeloom.cli.main import main


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_without_the_mcp_extra_the_command_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)

    assert _cli(capsys, "mcp", "serve", tmp_path) == (
        2,
        "tradeloom mcp needs mcp: pip install 'tradeloom[mcp]'\n",
    )


def test_http_binds_the_loopback_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(capsys, "mcp", "serve", tmp_path, "--http", "--host", "0.0.0.0") == (
        2,
        "--host: '0.0.0.0' is not a loopback address (127.0.0.1, localhost, ::1)\n",
    )


def test_the_operators_token_must_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    monkeypatch.delenv("TRADELOOM_MCP_TOKEN", raising=False)
    message = "--operator-token-env: ${} is not set (the operator's token)\n"

    assert _cli(capsys, "mcp", "serve", tmp_path, "--operator-token-env", "NOT_SET_HERE") == (
        2,
        message.format("NOT_SET_HERE"),
    )
    assert _cli(capsys, "mcp", "approve", tmp_path, "1-flatten", "--by", "alice") == (
        2,
        message.format("TRADELOOM_MCP_TOKEN"),
    )
    assert _cli(capsys, "mcp", "serve", tmp_path / "none") == (
        2,
        f"{tmp_path / 'none'}: no such folder (the workspace must exist)\n",
    )


def test_audit_prints_the_tail_or_the_broken_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradeloom.agent.audit import AuditLog, Call
    from tradeloom.journal.agent_audit import audit_path

    log = audit_path(tmp_path)
    log.parent.mkdir()
    for n in range(3):
        AuditLog(log).record(Call("agent (stdio)", "validate", {"n": n}, n != 1, f"r{n}", 0.5))
    assert main(["mcp", "audit", str(tmp_path), "--last", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [(line.split()[0], line.split("Z ", 1)[1]) for line in lines[:2]] == [
        ("2", "agent (stdio): validate refused (0.500 s) r1"),
        ("3", "agent (stdio): validate ok (0.500 s) r2"),
    ]
    assert lines[2] == f"{log}: 3 calls, hash chain intact"
    log.write_text(log.read_text().replace('"r0"', '"r9"'))
    assert _cli(capsys, "mcp", "audit", tmp_path) == (
        2,
        f"{log}:1: the audit log's hash chain is broken here\n",
    )
