"""``--log-file PATH``: a paper run's logs as JSON lines, each naming the run, and each
line of a decision its bar and correlation id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import LONG_ONLY, strategy_text
from tradeloom.cli.main import main

STRATEGY = strategy_text(LONG_ONLY, name="sim_demo")
"""test_sim_clock's strategy, long-only: its start has nothing to say on stderr."""


def test_a_paper_run_logs_json_lines_with_its_run_bar_and_correlation_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(STRATEGY)
    log = tmp_path / "logs.jsonl"

    code = main(
        ["--log-level", "debug", "--log-file", str(log), "run", "s.yaml", "--mode", "paper",
         "--clock", "simulated", "--speed", "max", "--max-bars", "6", "-q", "--out", "run"]
    )  # fmt: skip

    assert code == 0
    assert capsys.readouterr().err == ""  # the logs went to the file
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    started = next(i for i, line in enumerate(lines) if line["event"] == "live_started")
    # the run's lines; the command's own line after it (what it compiled, if anything) is not
    run = [line for line in lines[started:] if line["event"] != "kernels_compiled"]
    assert all(line["run_id"] == "run" for line in run)
    assert all(line["strategy"] == "sim_demo" and line["mode"] == "paper" for line in run)
    decisions = [line for line in lines if line["event"] in ("signal", "risk_decision", "order")]
    assert decisions, "no decision was logged"
    assert all(line["correlation_id"] == f"bar-{line['bar']}" for line in decisions)
    orders = {line["client_order_id"]: line for line in lines if line["event"] == "order"}
    fills = [line for line in lines if line["event"] == "fill"]
    assert fills and all(
        fill["correlation_id"] == orders[fill["client_order_id"]]["correlation_id"]
        for fill in fills
    )


def test_a_log_file_that_cannot_be_opened_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--log-file", str(tmp_path / "missing" / "x.log"), "plugins"])

    assert code == 2
    assert capsys.readouterr().err == (
        f"--log-file {tmp_path / 'missing' / 'x.log'}: cannot open it: No such file or directory\n"
    )
