"""strategies/btc_lgbm.yaml, btc_xgb.yaml and btc_stack.yaml (a calibrated soft vote of
two forests) on paper with ``--clock simulated``: the paper run journals, bar by bar, the
backtest's probability (bit for bit: both go through the fold's compiled trees, btc_xgb's
through its compiled calibrator too, and btc_stack's through its compiled vote and
calibrator), and the backtest's signals, decisions, orders, fills and folds. The runs are
written in memory (``ram_tmp_path``, `ram_tmp`): a paper run commits, fsync'd, at every
bar."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.live.live_emulated import rows
from tests.live.test_sim_clock_universe import KINDS, journaled
from tradeloom.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
BARS = 900
START = BARS // 2
"""The simulated clock plays the second half; the first fold predicts after it starts, so
that the backtest has no signal or position before it either."""


SHORTER = {
    "btc_lgbm": (("n_estimators: 150", "n_estimators: 40"),),
    "btc_xgb": (("n_estimators: 150", "n_estimators: 40"),),
    "btc_stack": (("holdout: 400", "holdout: 150"), ("n_estimators: 40", "n_estimators: 10")),
}
"""Per file, what makes its estimators smaller beside the shorter market and folds."""


def _strategy(name: str) -> str:
    """The shipped file on a shorter market, with shorter folds and fewer trees."""
    text = (ROOT / "strategies" / f"{name}.yaml").read_text()
    for old, new in (
        ("bars: 4000", f"bars: {BARS}"),
        ("train_window: 1500", "train_window: 440"),
        ("retrain_every: 500", "retrain_every: 100"),
        *SHORTER[name],
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text[: text.index("\nmonitoring:")] + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHORTER))
def test_a_paper_run_journals_the_backtests_probabilities_bar_by_bar(
    name: str, ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ram_tmp_path)
    (ram_tmp_path / "s.yaml").write_text(_strategy(name))
    assert main(["run", "s.yaml", "--out", "backtest", "-q"]) == 0
    paper_args = ["--mode", "paper", "--clock", "simulated", "--speed", "max"]
    assert main(["run", "s.yaml", *paper_args, "--out", "paper", "-q"]) == 0
    backtest, paper = (
        ram_tmp_path / "backtest" / "journal.sqlite",
        ram_tmp_path / "paper" / "journal.sqlite",
    )

    if name == "btc_stack":  # the backtest reports each fold before and after calibration
        metrics = json.loads((ram_tmp_path / "backtest" / "metrics.json").read_text())
        folds = metrics["calibration_by_fold"]
        trained = [r for r in journaled(backtest, "model_trained") if r["calibration"]]
        assert [f["fold"] for f in folds] == [r["fold"] for r in trained]
        assert all(f["brier_before"] != f["brier_after"] for f in folds)
        report = (ram_tmp_path / "backtest" / "report.html").read_text()
        assert "Calibration by fold" in report and "Reliability by fold" in report

    live = rows(paper, "live_bar")
    assert [r["bar"] for r in live] == list(range(START, BARS))
    mine = [math.nan if r["probability"] is None else r["probability"] for r in live]
    expected = pd.read_parquet(ram_tmp_path / "backtest" / "features.parquet")["probability"]
    assert np.array_equal(mine, expected.to_numpy()[START:], equal_nan=True)  # exactly
    assert np.isfinite(mine).sum() > 400
    # the trees say many things, not one (an isotonic calibrator's steps fewer: tens)
    assert len(set(mine)) > (20 if name == "btc_stack" else 100)

    for kind in KINDS:
        theirs = [r for r in journaled(backtest, kind) if r["bar"] >= START]
        assert journaled(paper, kind) == theirs, kind
    assert len(journaled(paper, "fill")) > 10
    folds = [r | {"predict_end": 0} for r in journaled(paper, "model_trained")]
    assert len(folds) >= 4
    assert folds == [
        r | {"predict_end": 0}
        for r in journaled(backtest, "model_trained")
        if r["predict_start"] >= START
    ]
