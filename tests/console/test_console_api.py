"""The API's answers about real run folders match the schemas its OpenAPI document
publishes, and the run page's event stream sends the run as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from tests.console.console_runs import TOKENS
from tests.console.shaped_runs import make_shaped_runs
from tradeloom.console.app import create_app
from tradeloom.console.tokens import Sessions
from tradeloom.engine.status_rows import read_status

pytestmark = pytest.mark.xdist_group("console_runs")  # the run folders, made once

READ = {"Authorization": f"Bearer {TOKENS.read}"}
RUNS = ("0/many-bt", "0/one-bt", "0/one-paper-simulated")
SHAPED = ("1/pair-portfolio", "1/routed-bt", "1/perp-bt")
"""A portfolio file's, a router's and a perpetual's backtest (`make_shaped_runs`)."""


@pytest.fixture(scope="module")
def shaped_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shaped_runs(tmp_path_factory.mktemp("shaped-runs"))


@pytest.fixture(scope="module")
def client(runs_root: Path, shaped_root: Path) -> TestClient:
    return TestClient(create_app([runs_root, shaped_root], TOKENS, Sessions()))


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/api/v1/openapi.json", headers=READ)
    assert answer.status_code == 200
    return answer.json()


def check(document: dict[str, Any], name: str, value: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    assert errors == [], errors[:3]


@pytest.mark.slow
def test_the_document_names_every_endpoint(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert sorted(document["paths"]) == [
        "/api/v1/actions/{action}/{run_id}",
        "/api/v1/agent/audit",
        "/api/v1/agent/requests",
        "/api/v1/compare",
        "/api/v1/events/{run_id}",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/session",
    ]
    assert list(document["paths"]["/api/v1/actions/{action}/{run_id}"]) == ["post"]
    Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})


def test_runs_and_each_run_match_their_schemas(
    client: TestClient, document: dict[str, Any], runs_root: Path, shaped_root: Path
) -> None:
    runs = client.get("/api/v1/runs", headers=READ).json()
    check(document, "RunList", runs)
    by_id = {r["id"]: r for r in runs["runs"]}
    assert set(RUNS) | set(SHAPED) <= set(by_id)
    assert by_id["0/one-bt"]["mode"] == "backtest"
    assert by_id["0/one-paper-simulated"]["mode"] == "paper"
    roots = {"0": runs_root, "1": shaped_root}
    for run_id in RUNS + SHAPED:
        assert by_id[run_id]["error"] is None, by_id[run_id]
        detail = client.get(f"/api/v1/runs/{run_id}", headers=READ).json()
        check(document, "RunDetail", detail)
        # the same figures as `tradeloom status`, and as the run's own metrics.json
        root, name = run_id.split("/", 1)
        status = read_status(roots[root] / name)
        assert status.equity is not None, run_id
        if status.mode == "backtest":
            metrics = json.loads((roots[root] / name / "metrics.json").read_text())
            assert status.equity == pytest.approx(metrics["final_equity"], rel=1e-9), run_id
        assert detail["status"]["equity"] == pytest.approx(status.equity)
        assert by_id[run_id]["equity"] == pytest.approx(status.equity)
        assert len(detail["curve"]["equity"]) == status.bars
        assert detail["curve"]["equity"][-1] == pytest.approx(status.equity)
        assert detail["controllable"] is (run_id == "0/one-paper-simulated")
    universe = client.get("/api/v1/runs/0/many-bt", headers=READ).json()
    assert {p["symbol"] for p in universe["status"]["positions"]} <= {"BTC/USDT", "ETH/USDT"}
    # each monitor of each symbol, with its figures now (metrics.json's)
    monitors = {(m["monitor"], m["symbol"]): m for m in universe["monitoring"]}
    assert set(monitors) == {("rolling_auc", "BTC/USDT"), ("rolling_auc", "ETH/USDT")}
    metrics = json.loads((runs_root / "many-bt" / "metrics.json").read_text())["monitoring"]
    for (name, symbol), shown in monitors.items():
        figures = metrics[f"{name}[{symbol}]"]
        assert shown["figures"]["rolling_auc_last"] == pytest.approx(figures["rolling_auc_last"])
        assert shown["status"] == figures["status"]
    portfolio = client.get("/api/v1/runs/1/pair-portfolio", headers=READ).json()
    assert sorted(portfolio["status"]["strategies"]) == ["a", "b"]
    perp = client.get("/api/v1/runs/1/perp-bt", headers=READ).json()
    assert [p["symbol"] for p in perp["status"]["positions"]] in ([], ["BTC/USDT:USDT"])


def test_compare_shows_the_settings_that_differ(
    client: TestClient, document: dict[str, Any]
) -> None:
    answer = client.get("/api/v1/compare?run=0/one-bt&run=0/many-bt", headers=READ).json()
    check(document, "Compare", answer)
    settings = {s["key"]: s["values"] for s in answer["settings"]}
    assert settings["name"] == ["one", "many"]
    assert all(c["equity"][0] == pytest.approx(100.0) for c in answer["curves"])
    one = client.get("/api/v1/compare?run=0/one-bt", headers=READ)
    assert one.status_code == 400


def test_the_event_stream_sends_the_run(client: TestClient, document: dict[str, Any]) -> None:
    with client.stream("GET", "/api/v1/events/0/one-paper-simulated", headers=READ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: run"
        data = next(lines)
    assert data.startswith("data: ")
    check(document, "RunDetail", json.loads(data[6:]))
