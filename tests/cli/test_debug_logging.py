"""``--log-level debug`` logs every signal, risk decision, order and fill of a backtest, one
line each with its bar and client order id, decoded from the compiled run's rows; the
default level logs none of them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.builders import FAST
from tradeloom.cli.main import main
from tradeloom.journal import read_frames

ROOT = Path(__file__).resolve().parents[2]


def test_debug_logs_each_signal_decision_order_and_fill_of_a_backtest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    strategy = ROOT / "strategies" / "btc_rf.yaml"
    code = main(["--quiet", "--log-level", "debug", "run", str(strategy), "--out", str(out), *FAST])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    logged = Counter(line["event"] for line in lines)
    frames = read_frames(out / "journal.sqlite", ["signal", "risk_decision", "order", "fill"])
    assert {k: logged[k] for k in frames} == {k: len(f) for k, f in frames.items()}
    assert min(len(f) for f in frames.values()) > 0
    fills = [line for line in lines if line["event"] == "fill"]
    assert [f["client_order_id"] for f in fills] == list(frames["fill"]["order_id"])
    assert [f["bar"] for f in fills] == list(frames["fill"]["bar"])
    orders = [line for line in lines if line["event"] == "order"]
    assert [o["client_order_id"] for o in orders] == list(frames["order"]["id"])
    assert all(o["correlation_id"] == f"bar-{o['bar']}" for o in orders)
    # the default level logs none of them
    code = main(["--quiet", "run", str(strategy), "--out", str(tmp_path / "quiet"), *FAST])
    assert code == 0
    assert capsys.readouterr().err == ""
