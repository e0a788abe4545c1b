"""The workspace's jail, the gate's refusals, the audit log's chain and the requests' seal,
without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeloom.agent.approvals import Approvals
from tradeloom.agent.audit import AuditLog, Call, read_audit, verify_audit
from tradeloom.agent.gate import Gate
from tradeloom.agent.workspace import Limits, Workspace
from tradeloom.errors import UserError

ABSOLUTE = "is an absolute path; give a path relative to the workspace"


@pytest.fixture
def space(tmp_path: Path) -> Workspace:
    (tmp_path / "ws" / "strategies").mkdir(parents=True)
    return Workspace(tmp_path / "ws", Limits(max_runs=1, max_file_bytes=100), frozenset({"mine"}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("../x.yaml", "path: '../x.yaml' climbs out with '..'; stay in the workspace"),
        ("a/../../x", "path: 'a/../../x' climbs out with '..'; stay in the workspace"),
        ("/etc/passwd", f"path: '/etc/passwd' {ABSOLUTE}"),
        ("C:\\x.yaml", f"path: 'C:\\\\x.yaml' {ABSOLUTE}"),
        (".tradeloom-mcp/audit.jsonl",
         "path: '.tradeloom-mcp/audit.jsonl' is the server's own folder, not the agent's"),
        ("", "path: expected a path inside the workspace, was ''"),
        ("a\x00b", "path: a path holds no NUL character"),
    ],
)  # fmt: skip
def test_a_path_out_of_the_workspace_is_refused(space: Workspace, text: str, message: str) -> None:
    with pytest.raises(UserError, match=r"^") as refused:
        space.resolve(text, "path")

    assert str(refused.value) == message


def test_links_are_followed_and_held_to_the_workspace(space: Workspace, tmp_path: Path) -> None:
    (space.root / "out").symlink_to(tmp_path)
    (space.root / "in").symlink_to(space.root / "strategies")
    (space.root / "private").symlink_to(space.private)

    assert space.resolve("in/a.yaml", "path") == space.root / "in" / "a.yaml"
    for name in ("out/x.yaml", "private/audit.jsonl"):
        with pytest.raises(UserError, match=r"^path: '.+' (leads out|is the server's own)"):
            space.resolve(name, "path")


def test_a_strategys_own_paths_plugins_and_bars_are_checked(space: Workspace) -> None:
    file = space.root / "strategies" / "a.yaml"
    space.check_document({"data": {"path": "../data/bars.csv"}, "plugins": ["mine"]}, file)
    space.check_document({"model": {"estimator": "mine.models.Net", "network": "tcn"}}, file)
    cases = {
        "data.path: '/tmp/x.csv' is an absolute path; strategies stay inside": {
            "data": {"path": "/tmp/x.csv"}
        },
        "data.cache_dir: '../../x' climbs out with '..'; stay in the workspace": {
            "data": {"cache_dir": "../../../x"}
        },
        "plugins: 'os' is not a plugin this workspace allows (mine); the operator allows one "
        "with --allow-plugin": {"plugins": ["os"]},
        "data.bars: 100001 is over the limit of 100000 bars": {"data": {"bars": 100_001}},
        # an import path runs its module's code: only the model libraries' and allowed
        # plugins' packages, at any depth (a stacking estimator's parts, a challenger's model)
        "model.estimator: 'os.system' is a class of package 'os', which this workspace does "
        "not import from (catboost, lightgbm, mine, sklearn, torch, tradeloom, xgboost); the "
        "operator allows a plugin's package with --allow-plugin": {
            "model": {"estimator": "os.system"}
        },
        "challengers[0].model.estimator.params.estimators[1].class: 'antigravity.X' is a class "
        "of package 'antigravity', which this workspace does not import from (catboost, "
        "lightgbm, mine, sklearn, torch, tradeloom, xgboost); the operator allows a plugin's "
        "package with --allow-plugin": {
            "challengers": [
                {
                    "model": {
                        "estimator": {
                            "class": "sklearn.ensemble.StackingClassifier",
                            "params": {
                                "estimators": [
                                    {"class": "sklearn.linear_model.LogisticRegression"},
                                    {"class": "antigravity.X"},
                                ]
                            },
                        }
                    }
                }
            ]
        },
    }
    for message, document in cases.items():
        with pytest.raises(UserError) as refused:
            space.check_document(document, file)
        assert str(refused.value) == message


def test_files_are_bounded_and_runs_take_a_slot(space: Workspace) -> None:
    (space.root / "strategies" / "big.yaml").write_text("x" * 101)
    too_big = r"^path: 'strategies/big.yaml' is 101 bytes, over the limit of 100$"
    with pytest.raises(UserError, match=too_big):
        space.strategy_file("strategies/big.yaml")
    busy = r"^busy: 1 runs in progress \(the limit\)"
    with space.slot(), pytest.raises(UserError, match=busy), space.slot():
        pass
    with space.slot():  # released
        pass


def test_each_version_is_kept(space: Workspace) -> None:
    path = space.root / "strategies" / "a.yaml"
    assert [space.keep_version(path, text) for text in ("one", "two")] == [1, 2]
    kept = space.private / "versions" / "strategies" / "a.yaml"
    assert [p.read_text() for p in sorted(kept.iterdir())] == ["one", "two"]


def test_the_gate_names_every_figure_that_falls_short() -> None:
    gate = Gate(min_trades=20, max_pbo=0.5, min_dsr=0.5)

    assert gate.refusal({"trades": 20, "pbo": 0.5, "dsr": 0.5}) is None
    assert gate.refusal({"trades": 3, "pbo": 0.61, "dsr": float("nan")}) == (
        "trades 3 < min_trades 20; pbo 0.61 > max_pbo 0.5; dsr unknown < min_dsr 0.5"
    )
    assert gate.refusal(None) == "no sweep of this version of the strategy: sweep it first"


def test_the_audit_logs_chain_breaks_where_a_line_is_changed(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(3):
        log.record(Call("agent", "validate", {"path": f"{n}.yaml"}, n != 1, "ok", 0.01))
    assert verify_audit(log.path) == 3
    entries = read_audit(log.path)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[1]["prev"] == entries[0]["hash"]

    lines = log.path.read_text().splitlines()
    lines.pop(1)  # a refusal removed
    log.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        UserError, match=r"audit\.jsonl:2: the audit log's hash chain is broken here$"
    ):
        verify_audit(log.path)


def test_a_request_not_sealed_by_the_token_is_not_carried_out(space: Workspace) -> None:
    approvals = Approvals(space, "operator")
    asked = approvals.file("rollback", {"run": "runs/x"}, "canary looks bad", "agent")
    path = approvals.folder / f"{asked['id']}.json"
    forged = {**json.loads(path.read_text()), "target": {"run": "runs/other"}}
    path.write_text(json.dumps(forged))

    with pytest.raises(UserError, match=r": its seal does not match this token; nothing was done$"):
        Approvals(space, "operator").approve(asked["id"], "alice")
    with pytest.raises(UserError, match=r"^--by: name the person who approves$"):
        approvals.approve(asked["id"], " ")
    with pytest.raises(UserError, match=r"^reason: "):
        approvals.file("flatten", {"run": "runs/x"}, "two\nlines", "agent")
