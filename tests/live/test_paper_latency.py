"""Declared latency on paper (issue 87): the emulator holds each market order for the
latency `tradeloom.core.latency` draws for it, so a paper run on the simulated clock
journals its backtest's rows; and a venue slower than the file declares
(``--venue-latency``) is a gap `tradeloom parity` names latency, to the last 1e-9.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.live.test_paper_parity import KINDS, PAPER, journaled
from tradeloom.cli.main import main
from tradeloom.diagnostics.parity import parity

pytestmark = pytest.mark.slow  # three runs through the CLI

START = 260
"""The paper run's first live bar (the simulated clock plays the second half of 520)."""

STRATEGY = """\
name: slow_venue
seed: 5
data: {kind: synthetic, symbol: BTC/USDT, timeframe: 1h, bars: 520, start: "2024-01-01T00:00:00Z"}
features:
  - {kind: log_return, period: 1}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.ensemble.RandomForestClassifier
  params: {n_estimators: 10, max_depth: 3, n_jobs: 1}
  scaler: none
  label: {horizon: 2}
  walk_forward: {train_window: 262, retrain_every: 100}
signal: {kind: threshold, threshold: 0.05, min_interval: 2}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
execution:
  kind: simulated
  initial_cash: 100000
  fee_bps: 10
  slippage_bps: 0
  allow_short: true
REALISM"""

LATENCY = """\
  realism:
    name: slow
    latency:
      send: {kind: uniform, low_ms: 0, high_ms: 9000000}
      cancel: 1800000
      seed: 4
"""
"""Orders 0 to 2.5 bar periods on their way, cancels half a period: fills move one or two
opens later, and a decision that replaces an order still on its way may be too late."""


def _fills_later(paper: Path) -> int:
    sent = {r["id"]: r["bar"] for r in journaled(paper, "order")}
    return sum(1 for r in journaled(paper, "fill") if r["bar"] > sent[r["order_id"]] + 1)


def test_a_paper_run_with_a_declared_latency_journals_its_backtests_rows(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ram_tmp_path)
    (ram_tmp_path / "slow.yaml").write_text(STRATEGY.replace("REALISM", LATENCY))
    assert main(["run", "slow.yaml", "--out", "backtest", "-q"]) == 0
    assert main(["run", "slow.yaml", *PAPER, "--out", "paper"]) == 0
    paper = ram_tmp_path / "paper" / "journal.sqlite"
    backtest = ram_tmp_path / "backtest" / "journal.sqlite"
    for kind in KINDS:
        theirs = [r for r in journaled(backtest, kind) if r["bar"] >= START]
        assert journaled(paper, kind) == theirs, kind
    assert _fills_later(paper) >= 2, "no fill moved: the case shows no latency"
    codes = [r["code"] for r in journaled(paper, "rejection")]
    assert "CANCEL_TOO_LATE" in codes


def test_parity_names_a_slower_venue_latency_to_the_last_1e9_of_the_gap(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ram_tmp_path)
    (ram_tmp_path / "plain.yaml").write_text(STRATEGY.replace("REALISM", ""))
    (ram_tmp_path / "venue.yaml").write_text(
        "name: slower\nlatency:\n  send: {kind: uniform, low_ms: 3600000, high_ms: 7000000}\n"
    )
    injected = ["--venue-latency", "venue.yaml", "--max-bars", "40"]
    assert main(["run", "plain.yaml", *PAPER, *injected, "--out", "paper"]) == 0
    assert _fills_later(ram_tmp_path / "paper" / "journal.sqlite") >= 1
    assert main(["parity", "paper", "--out", "parity"]) == 0
    summary = json.loads((ram_tmp_path / "parity" / "parity.json").read_text())
    causes = summary["causes"]
    # every order filled later than the replay's is latency; the sizes that follow the
    # equity it moved are its knock-ons; nothing else differs
    assert set(causes) == {"latency", "knock_on"}, causes
    assert causes["latency"]["count"] >= 1
    explained = math.fsum(c["pnl"] for c in causes.values())
    assert explained == pytest.approx(summary["equity_gap"], abs=1e-9)
    assert abs(summary["unexplained_pnl"]) <= 1e-9
    # until the first knock-on, the gap is latency's alone, bar by bar
    result = parity(ram_tmp_path / "paper", out=ram_tmp_path / "again")
    bars = result.bars
    knock = bars.index[bars["knock_on"] != 0.0]
    before = bars.loc[: knock[0] - 1] if len(knock) else bars
    assert (before["latency"] != 0.0).any()
    assert np.allclose(before["gap"], before["latency"], rtol=0.0, atol=1e-9)
