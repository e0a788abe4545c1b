"""An agent's research loop through the stdio server, driven by the MCP SDK's own client.

One server per module (stdio, with the operator's token, a gate of 15 trades, PBO 0.9
and DSR 0.4, paper runs of 20 bars, the fixture plugin ``leaky_feature`` allowed). The
scripted agent writes a strategy with a planted look-ahead (``next_return``: the next
bar's return), is refused by check-lookahead and by start_paper, fixes it, sweeps it,
is refused by the gate with the figures, sweeps again and starts paper. The other
tests use the same server: every tool once, hostile arguments, the live tools' requests
and their approval by a named human, and the audit log of every call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.agent.mcp_client import TOKEN, Session, stdio, workspace
from tests.builders import REPORTED, strategy, strategy_text
from tradeloom.agent.audit import read_audit, verify_audit
from tradeloom.cli.main import main
from tradeloom.errors import UserError

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mcp_stdio")]

LEAKY = strategy_text(
    plugins=["leaky_feature"],
    features=[*strategy()["features"], {"kind": "next_return"}],
)
FIXED = strategy_text(outputs={"features": True})  # its paper run's parity reads them
GATE = ("--min-trades", "15", "--max-pbo", "0.9", "--min-dsr", "0.4")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def agent(folder: Path) -> Iterator[Session]:
    options = (*GATE, "--paper-bars", "20", "--allow-plugin", "leaky_feature")
    with Session(stdio(folder, *options, "--operator-token-env", "TRADELOOM_MCP_TOKEN")) as s:
        yield s


@pytest.fixture(scope="module")
def loop(agent: Session) -> dict[str, Any]:
    """The scripted research loop, run once: each step's answer or refusal."""
    path = {"path": "strategies/mine.yaml"}
    steps: dict[str, Any] = {}
    steps["write_leaky"] = agent.ok("write_strategy", {**path, "text": LEAKY})
    steps["lookahead_leaky"] = agent.refused("check_lookahead", path)
    steps["paper_leaky"] = agent.refused("start_paper", path)
    steps["write_fixed"] = agent.ok("write_strategy", {**path, "text": FIXED})
    steps["lookahead_fixed"] = agent.ok("check_lookahead", path)
    steps["paper_unswept"] = agent.refused("start_paper", path)
    steps["sweep_narrow"] = agent.ok("sweep", {**path, "grid": {"signal.threshold": [0.3, 0.4]}})
    steps["paper_narrow"] = agent.refused("start_paper", path)
    grid = {"signal.threshold": [0.01, 0.02, 0.05]}
    steps["sweep_wide"] = agent.ok("sweep", {**path, "grid": grid})
    steps["paper"] = agent.ok("start_paper", path)
    return steps


@pytest.fixture(scope="module")
def paper_run(agent: Session, loop: dict[str, Any]) -> str:
    """The paper run the loop started, once it has stopped (20 bars, simulated clock)."""
    run = loop["paper"]["run"]
    for _ in range(600):  # the child's own end: polled through the status tool
        result = agent.call("status", {"run": run})  # refused until the child makes the folder
        if not result.is_error and result.structured_content.get("process") == "stopped":
            return str(run)
        agent.portal.call(anyio.sleep, 0.5)
    raise AssertionError(f"the paper run {run} did not stop")


# --- the research loop -----------------------------------------------------------------


def test_a_planted_look_ahead_is_refused_and_paper_waits_for_the_fix(loop: dict[str, Any]) -> None:
    assert loop["write_leaky"]["version"] == 1
    assert re.match(r"^strategies/mine\.yaml: .*look-ahead", loop["lookahead_leaky"])
    assert "next_return" in loop["lookahead_leaky"]
    assert "\n" not in loop["lookahead_leaky"]
    assert loop["paper_leaky"].startswith("strategies/mine.yaml: paper refused: ")
    assert loop["write_fixed"]["version"] == 2
    assert loop["lookahead_fixed"]["passed"] is True


def test_the_gate_refuses_with_the_figures_until_they_pass(loop: dict[str, Any]) -> None:
    assert loop["paper_unswept"] == (
        "strategies/mine.yaml: paper refused by the gate: no sweep of this version of the "
        "strategy: sweep it first"
    )
    narrow = loop["sweep_narrow"]
    assert re.match(
        r"^strategies/mine\.yaml: paper refused by the gate: trades \S+ < min_trades 15",
        loop["paper_narrow"],
    )
    assert loop["paper_narrow"].endswith(narrow["gate"])
    wide = loop["sweep_wide"]
    assert wide["gate"] == "passes"
    best = wide["leaderboard"][0]
    assert best["trades"] >= 15 and best["dsr"] >= 0.4 and wide["pbo"] <= 0.9
    assert [row["rank"] for row in wide["leaderboard"]] == [1, 2, 3]
    assert loop["paper"]["run"].startswith("runs/demo-paper-")
    assert loop["paper"]["max_bars"] == 20


# --- every tool --------------------------------------------------------------------------


def test_every_research_tool_answers(agent: Session, paper_run: str, folder: Path) -> None:
    assert agent.ok("validate", {"text": FIXED})["summary"].startswith(
        "text.yaml: valid strategy 'demo' (data synthetic, 2 feature columns"
    )
    assert agent.ok("validate", {"path": "strategies/demo.yaml"})["name"] == "demo"
    kinds = {c["kind"] for p in agent.ok("plugins")["plugins"] for c in p["components"]}
    assert {"rsi", "sklearn", "next_return"} <= kinds
    assert "properties" in agent.ok("schema")
    assert agent.ok("gate") == {"min_trades": 15, "max_pbo": 0.9, "min_dsr": 0.4}
    backtest = agent.ok("backtest", {"path": "strategies/demo.yaml"})
    assert backtest["stats"]["trades"] == backtest["trades"]["count"] > 0
    assert (folder / backtest["run"] / "metrics.json").is_file()
    assert backtest["report"] is None or (folder / backtest["report"]).is_file()
    assert backtest["run"] in agent.ok("runs")["runs"]
    status = agent.ok("status", {"run": paper_run})
    assert status["mode"] == "paper"
    page = agent.ok("tables", {"run": backtest["run"], "table": "trades", "limit": 3})
    assert page["total"] == backtest["trades"]["count"] and len(page["rows"]) == 3
    parity = agent.ok("parity", {"run": paper_run})
    assert parity["passed"] is True
    assert isinstance(agent.ok("pending_requests")["pending"], list)


def test_resources_and_the_prompt(agent: Session) -> None:
    resources = agent.portal.call(agent.client.list_resources).resources
    uris = {str(r.uri) for r in resources}
    assert "tradeloom://file/strategies/demo.yaml" in uris
    read = agent.portal.call(agent.client.read_resource, "tradeloom://file/strategies/demo.yaml")
    assert read.contents[0].text == strategy_text(REPORTED)
    prompt = agent.portal.call(
        agent.client.get_prompt, "improve_strategy", {"path": "strategies/demo.yaml"}
    )
    assert "check_lookahead" in prompt.messages[0].content.text


# --- refusals ----------------------------------------------------------------------------

REFUSALS = [
    ("validate", {"path": "../outside.yaml"},
     "path: '../outside.yaml' climbs out with '..'; stay in the workspace"),
    ("validate", {"path": "/etc/passwd"},
     "path: '/etc/passwd' is an absolute path; give a path relative to the workspace"),
    ("backtest", {"path": ".tradeloom-mcp/audit.jsonl"},
     "path: '.tradeloom-mcp/audit.jsonl' is the server's own folder, not the agent's"),
    ("backtest", {"path": "strategies/none.yaml"},
     "path: no strategy file 'strategies/none.yaml' in the workspace"),
    ("status", {"run": "runs/../../x"},
     "run: 'runs/../../x' climbs out with '..'; stay in the workspace"),
    ("validate", {"path": "a.yaml", "text": "x"},
     "validate: give the path of a strategy file or its text, one of them"),
    ("backtest", {"path": 3}, "backtest: path: Input should be a valid string"),
    ("backtest", {}, "backtest: path: Field required"),
    ("tables", {"run": "runs", "table": "secrets"},
     "tables: table: String should match pattern "
     "'^(trades|orders|fills|equity|positions|features)$'"),
    ("sweep", {"path": "strategies/demo.yaml", "grid": {"x": list(range(101))}},
     "grid: 101 variants, over the limit of 100"),
    ("sweep", {"path": "strategies/demo.yaml", "grid": {"a;b": [1]}},
     "sweep: grid: Value error, 'a;b' is not a key path such as signal.threshold"),
    ("kill", {"run": "runs"}, None),
    ("write_strategy", {"path": "strategies/x.yaml", "text": "name: [unclosed"}, None),
    ("write_strategy", {"path": "runs/a/strategy.yaml", "text": FIXED},
     "path: 'runs/a/strategy.yaml' is a run's file; a run's files are its record"),
    ("write_strategy", {"path": "x.txt", "text": FIXED},
     "path: 'x.txt' is not a strategy file (.yaml or .yml)"),
    ("write_strategy",
     {"path": "strategies/out.yaml",
      "text": strategy_text(data={"kind": "csv", "path": "/etc/hosts"}, seed=None)},
     "data.path: '/etc/hosts' is an absolute path; strategies stay inside"),
    ("write_strategy",
     {"path": "strategies/out.yaml",
      "text": strategy_text(data={"kind": "csv", "path": "../../x.csv"})},
     None),
    ("write_strategy", {"path": "strategies/out.yaml", "text": strategy_text(plugins=["os"])},
     "plugins: 'os' is not a plugin this workspace allows (leaky_feature); the operator allows "
     "one with --allow-plugin"),
    ("write_strategy", {"path": "strategies/big.yaml", "text": strategy_text(data={"bars": 10**7})},
     "data.bars: 10000000 is over the limit of 100000 bars"),
]  # fmt: skip


@pytest.mark.parametrize(("tool", "arguments", "message"), REFUSALS)
def test_bad_arguments_and_escapes_are_one_line_refusals(
    agent: Session, folder: Path, tool: str, arguments: dict[str, Any], message: str | None
) -> None:
    text = agent.refused(tool, arguments)

    assert "\n" not in text and "Traceback" not in text
    if message is not None:
        assert text == message
    assert not (folder / "strategies" / "out.yaml").exists()
    assert not (folder / "strategies" / "big.yaml").exists()


def test_a_link_out_of_the_workspace_is_refused(agent: Session, folder: Path) -> None:
    (folder / "strategies" / "link.yaml").symlink_to(folder.parent / "elsewhere.yaml")

    text = agent.refused("validate", {"path": "strategies/link.yaml"})

    assert text == "path: 'strategies/link.yaml' leads out of the workspace through a link"


# --- live actions behind a human --------------------------------------------------------


def test_live_tools_file_requests_that_only_a_named_human_approves(
    agent: Session,
    paper_run: str,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert {"request_live_start", "request_swap", "request_promote", "request_rollback",
            "request_flatten"} <= set(agent.tools())  # fmt: skip
    assert not {"kill", "resume", "request_kill"} & set(agent.tools())
    control = folder / paper_run / "control"
    asked = agent.ok("request_flatten", {"run": paper_run, "reason": "drawdown looks wrong"})
    assert asked["status"] == "pending"
    assert not control.exists()  # nothing asked of the run yet
    pending = agent.ok("pending_requests")["pending"]
    assert [p["id"] for p in pending] == [asked["request"]]

    monkeypatch.setenv("TRADELOOM_MCP_TOKEN", "not-the-operators")
    assert main(["mcp", "approve", str(folder), asked["request"], "--by", "alice"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{asked['request']}: its seal does not match this token; nothing was done"
    )
    assert not control.exists()

    monkeypatch.setenv("TRADELOOM_MCP_TOKEN", TOKEN)
    assert main(["mcp", "approve", str(folder), asked["request"], "--by", "alice"]) == 0
    assert capsys.readouterr().out.startswith(f"{asked['request']}: approved by alice: ")
    [written] = control.glob("*-flatten.json")
    request = json.loads(written.read_text())
    assert request["by"] == "cli" and "approved by alice" in request["reason"]
    assert main(["mcp", "approve", str(folder), asked["request"], "--by", "bob"]) == 2
    assert agent.ok("pending_requests") == {"pending": []}


HOSTILE = ["../../etc/passwd", "/etc/passwd", ".tradeloom-mcp/requests", "runs", "", "x" * 500]


def test_no_tool_sends_anything_to_a_run_without_a_human(
    agent: Session, paper_run: str, folder: Path
) -> None:
    # every tool, with hostile values in every argument it takes: nothing reaches a run's
    # mailbox, no live run starts, and every live request waits
    control = folder / paper_run / "control"
    before = sorted(control.rglob("*")) if control.exists() else []
    listed = agent.portal.call(agent.client.list_tools).tools
    for tool in listed:
        keys = list(tool.input_schema.get("properties", {})) or ["extra"]
        for value in [*HOSTILE, paper_run, 10**12, None, ["x"], {"a": 1}]:
            agent.call(tool.name, {key: value for key in keys})
        agent.call(tool.name, {**{k: paper_run for k in keys}, "reason": "x\ny"})
    after = sorted(control.rglob("*")) if control.exists() else []
    assert after == before
    assert not list((folder / "runs").glob("*-live"))
    requests = [
        json.loads(p.read_text()) for p in (folder / ".tradeloom-mcp" / "requests").glob("*.json")
    ]
    assert {r["status"] for r in requests if r["action"] != "flatten"} <= {"pending"}


# --- the audit log ----------------------------------------------------------------------


def test_every_call_is_in_the_audit_log(agent: Session, folder: Path, loop: dict[str, Any]) -> None:
    agent.refused("backtest", {"path": "/etc/passwd"})
    log = folder / ".tradeloom-mcp" / "audit.jsonl"

    entries = read_audit(log)

    agents = [e for e in entries if not e["who"].startswith("human ")]
    assert len(agents) == agent.calls
    assert verify_audit(log) == len(entries)
    last = agents[-1]
    assert last["tool"] == "backtest" and last["ok"] is False
    assert (
        last["result"]
        == "path: '/etc/passwd' is an absolute path; give a path relative to the workspace"
    )
    assert last["who"].endswith("(stdio)")
    assert len(last["arguments_sha256"]) == 64 and last["seconds"] >= 0
    lines = log.read_text().splitlines()
    changed = {**json.loads(lines[2]), "ok": True, "result": "ok"}  # a refusal made a success
    tampered = folder.parent / "tampered.jsonl"
    tampered.write_text("\n".join([*lines[:2], json.dumps(changed), *lines[3:]]) + "\n")
    with pytest.raises(
        UserError, match=r"^.*tampered\.jsonl:3: the audit log's hash chain is broken here$"
    ):
        verify_audit(tampered)


def test_each_live_request_acts_through_the_runs_mailbox_once_approved(
    agent: Session,
    paper_run: str,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TRADELOOM_MCP_TOKEN", TOKEN)
    backtest = agent.ok("runs")["runs"][0]  # a run whose folder a swap may name
    asks = {
        "promote": ("request_promote", {"challenger": "rf_deep"}),
        "rollback": ("request_rollback", {}),
        "swap": ("request_swap", {"model": backtest, "fold": 0}),
    }
    control = folder / paper_run / "control"
    for action, (tool, extra) in asks.items():
        asked = agent.ok(tool, {"run": paper_run, "reason": f"{action} it", **extra})
        assert not list(control.glob(f"*-{action}.json"))  # filed, not sent
        assert main(["mcp", "approve", str(folder), asked["request"], "--by", "carol"]) == 0
        [written] = control.glob(f"*-{action}.json")
        request = json.loads(written.read_text())
        assert (
            request["reason"]
            == f"{action} it (asked by agent mcp 0.1.0 (stdio), approved by carol)"
        )
    assert request["model"] == str((folder / backtest).absolute()) and request["fold"] == 0
    live = agent.ok("request_live_start", {"strategy": "strategies/demo.yaml", "reason": "go"})
    assert live["request"] in [p["id"] for p in agent.ok("pending_requests")["pending"]]
    assert not list((folder / "runs").glob("*-live"))  # waiting for a human
    capsys.readouterr()
