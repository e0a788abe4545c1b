"""A paper run that starts inside a walk-forward fold predicts and trades as the backtest.

It trains the fold the backtest uses at its first bar (the same rows, the same seed),
not a fold on the newest rows, so every bar's probability is the backtest's, and its
signals, orders and fills are those of the backtest trading the same bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_emulated import rows

from tradeloom.runner.cli import main

ROOT = Path(__file__).resolve().parents[3]
BARS = 760
"""The simulated clock starts at bar 380, inside the second fold (bars 328..427)."""
PLAYED = 120
"""Bars played: the rest of that fold and the start of the next one (bar 428)."""

REFERENCE = """\
name: btc_rf
seed: 42
data: {kind: csv, path: bars.csv}
model: {kind: precomputed, column: p_up, horizon: 4}
"""


def _strategy() -> str:
    """strategies/btc_rf.yaml on a shorter market, with shorter folds and no monitor."""
    text = (ROOT / "strategies" / "btc_rf.yaml").read_text()
    for old, new in (
        ("bars: 20000", f"bars: {BARS}"),
        ("train_window: 3000", "train_window: 300"),
        ("retrain_every: 500", "retrain_every: 100"),
        ("n_estimators: 100", "n_estimators: 20"),
        ("n_jobs: -1", "n_jobs: 1"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text[: text.index("\nmonitoring:")] + "\n"


def _reference(strategy: str, backtest: Path, start: int) -> str:
    """The strategy trading the backtest's bars and probabilities from bar ``start`` on
    (before it, no prediction: the history a paper run starts from is not traded)."""
    bars = pd.read_parquet(backtest / "bars.parquet")
    probability = pd.read_parquet(backtest / "features.parquet")["probability"].to_numpy(copy=True)
    probability[:start] = np.nan
    bars["p_up"] = probability
    bars.to_csv(backtest.parent / "bars.csv", index=False)
    rest = strategy[strategy.index("\nfeatures:") :]
    model = rest[rest.index("\nmodel:") : rest.index("\nsignal:")]
    return REFERENCE + rest.replace(model, "").replace("\ndata:", "")


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "order_id")}  # client ids differ


def test_a_paper_run_started_inside_a_fold_makes_the_backtests_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    strategy = _strategy()
    (tmp_path / "s.yaml").write_text(strategy)
    assert main(["run", "s.yaml", "--out", "backtest", "-q"]) == 0
    paper_args = ["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max"]
    assert main([*paper_args, "--max-bars", str(PLAYED), "--out", "paper", "-q"]) == 0
    backtest, paper = tmp_path / "backtest", tmp_path / "paper" / "journal.sqlite"

    start = BARS // 2
    live = {r["bar"]: r["probability"] for r in rows(paper, "live_bar")}
    assert list(live) == list(range(start, start + PLAYED))
    folds = rows(backtest / "journal.sqlite", "model_trained")
    starts = [f["predict_start"] for f in folds]
    assert start not in starts and starts[0] < start < starts[-1]  # inside a fold
    # the fold in effect at the first bar and the next one: the backtest's, row for row
    in_effect = max(s for s in starts if s <= start)
    assert rows(paper, "model_trained") == [
        f for f in folds if in_effect <= f["predict_start"] < start + PLAYED
    ]
    expected = pd.read_parquet(backtest / "features.parquet")["probability"].to_numpy()
    assert [live[b] for b in live] == [float(expected[b]) for b in live]  # every bar, exactly

    (tmp_path / "reference.yaml").write_text(_reference(strategy, backtest, start))
    assert main(["run", "reference.yaml", "--out", "reference", "-q"]) == 0
    reference = tmp_path / "reference" / "journal.sqlite"
    for kind in ("signal", "risk_decision", "rejection", "order", "fill"):
        mine = [_strip(r) for r in rows(paper, kind)]
        theirs = [_strip(r) for r in rows(reference, kind) if r["bar"] < start + PLAYED]
        assert mine == theirs, kind
    assert len(rows(paper, "fill")) >= 2
