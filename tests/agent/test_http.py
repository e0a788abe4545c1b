"""The server over streamable HTTP on 127.0.0.1, driven by the MCP SDK's own client.

One server per module, started as the operator would (``tradeloom mcp serve WORKSPACE
--http``) without the operator's token: the live tools are absent, the research tools
answer, refusals are one-line tool errors, and the audit log names the transport.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.mcp_client import ROOT, Session, environment, serve_command, workspace
from tests.builders import strategy_text
from tradeloom.agent.audit import read_audit, verify_audit

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mcp_http")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def agent(folder: Path) -> Iterator[Session]:
    port = _free_port()
    command = serve_command(folder, "--http", "--port", str(port))
    server = subprocess.Popen(
        command, cwd=ROOT, env=environment(), stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()  # said once the process is about to listen
        assert line.strip() == f"tradeloom mcp: serving http://127.0.0.1:{port}/mcp", line
        for _ in range(400):  # uvicorn binds right after that line
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            server.wait(timeout=0.05) if server.poll() is not None else None
        with Session(f"http://127.0.0.1:{port}/mcp") as session:
            yield session
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_live_tools_are_absent_without_the_operators_token(agent: Session) -> None:
    tools = set(agent.tools())

    assert {"validate", "backtest", "sweep", "check_lookahead", "start_paper"} <= tools
    assert not {t for t in tools if t.startswith("request_") or "kill" in t}
    assert "pending_requests" not in tools
    assert agent.refused("request_flatten", {"run": "runs", "reason": "x"}).startswith(
        "no tool 'request_flatten'; the tools are "
    )


def test_the_research_tools_answer_over_http(agent: Session, folder: Path) -> None:
    # the tools that run a backtest are called over stdio (test_research_loop.py); here
    # the cheap ones, each answering over this transport
    assert agent.ok("validate", {"path": "strategies/demo.yaml"})["name"] == "demo"
    written = agent.ok("write_strategy", {"path": "strategies/copy.yaml", "text": strategy_text()})
    assert written["version"] == 1 and (folder / "strategies" / "copy.yaml").is_file()
    assert agent.ok("gate") == {"min_trades": 20, "max_pbo": 0.5, "min_dsr": 0.5}
    assert agent.ok("runs") == {"runs": [], "sweeps": []}
    kinds = {c["kind"] for p in agent.ok("plugins")["plugins"] for c in p["components"]}
    assert {"rsi", "sklearn", "threshold"} <= kinds


def test_an_escape_is_a_one_line_tool_error_and_every_call_is_audited(
    agent: Session, folder: Path
) -> None:
    text = agent.refused("validate", {"path": "../../../etc/passwd"})

    assert text == "path: '../../../etc/passwd' climbs out with '..'; stay in the workspace"
    log = folder / ".tradeloom-mcp" / "audit.jsonl"
    entries = read_audit(log)
    assert len(entries) == agent.calls == verify_audit(log)
    assert entries[-1]["result"] == text and entries[-1]["who"].endswith("(http)")
