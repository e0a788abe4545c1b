"""A torch model on paper with ``--clock simulated``: the paper run trains the backtest's
folds at the bars' closes, journals the backtest's probability at every bar (to float32's
last bits: one window against a batch) and makes the backtest's decisions, one market and a
universe of one network per symbol."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.builders import OMIT, strategy_text
from tests.live.live_emulated import rows
from tests.live.test_sim_clock_universe import KINDS, journaled
from tradeloom.cli.main import main
from tradeloom.journal import read_rows

pytestmark = pytest.mark.xdist_group("torch")

BARS = 400
START = BARS // 2
"""The simulated clock plays the second half; the first fold predicts after it starts, so
that the backtest has no signal or position before it either."""

MODEL: dict[str, Any] = {
    "kind": "torch",
    "network": "lstm",
    "params": {"hidden": 6},
    "window": 10,
    "training": {"epochs": 2, "batch_size": 64},
    "label": {"horizon": 3},
    "walk_forward": {"train_window": 200, "retrain_every": 40},
}


def _run_both(folder: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(folder)
    (folder / "s.yaml").write_text(text)
    assert main(["run", "s.yaml", "--out", "backtest", "-q"]) == 0
    paper = ["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max"]
    assert main([*paper, "--out", "paper", "-q"]) == 0
    return folder / "backtest" / "journal.sqlite", folder / "paper" / "journal.sqlite"


def _same_rows(mine: list[dict[str, Any]], theirs: list[dict[str, Any]], kind: str) -> None:
    """The same rows: every value equal, the probability and what is read from it (the
    signal's confidence) to 1e-9 (one window against a batch: float64's last bits)."""
    assert len(mine) == len(theirs), kind
    for a, b in zip(mine, theirs, strict=True):
        assert a.keys() == b.keys(), kind
        for key in a:
            if isinstance(a[key], float) and isinstance(b[key], float):
                assert math.isclose(a[key], b[key], rel_tol=0, abs_tol=1e-9), (kind, key, a, b)
            else:
                assert a[key] == b[key], (kind, key, a, b)


def _same_decisions(backtest: Path, paper: Path) -> None:
    for kind in KINDS:
        theirs = [r for r in journaled(backtest, kind) if r["bar"] >= START]
        _same_rows(journaled(paper, kind), theirs, kind)
    folds = [r | {"predict_end": 0} for r in journaled(paper, "model_trained")]
    assert len(folds) >= 3
    assert folds == [
        r | {"predict_end": 0}
        for r in journaled(backtest, "model_trained")
        if r["predict_start"] >= START
    ]


@pytest.mark.slow
def test_a_paper_run_decides_as_its_backtest_with_a_torch_model(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = strategy_text(
        name="torch_paper",
        seed=5,
        data={"bars": BARS},
        model=MODEL,
        signal={"threshold": 0.01, "min_interval": 1},
        outputs={"features": True},  # the backtest's probabilities, which paper's must equal
    )
    backtest, paper = _run_both(ram_tmp_path, text, monkeypatch)

    live = rows(paper, "live_bar")
    assert [r["bar"] for r in live] == list(range(START, BARS))
    mine = np.array([math.nan if r["probability"] is None else r["probability"] for r in live])
    expected = pd.read_parquet(ram_tmp_path / "backtest" / "features.parquet")["probability"]
    theirs = expected.to_numpy()[START:]
    assert np.array_equal(np.isnan(mine), np.isnan(theirs))
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-9)
    assert np.isfinite(mine).sum() > 150 and len(set(mine[np.isfinite(mine)].tolist())) > 100
    _same_decisions(backtest, paper)
    assert len(journaled(paper, "fill")) > 5


@pytest.mark.slow
def test_a_universe_trades_a_network_per_symbol_on_paper_as_in_its_backtest(
    ram_tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = strategy_text(
        name="torch_universe",
        seed=3,
        data={"symbols": ["BTC/USDT", "ETH/USDT"], "bars": BARS, "symbol": OMIT},
        model=MODEL | {"network": "tcn", "params": {"channels": 4, "levels": 2}},
        signal={"threshold": 0.01, "min_interval": 1},
        outputs={"features": True},  # the backtest's probabilities, which paper's must equal
    )
    backtest, paper = _run_both(ram_tmp_path, text, monkeypatch)

    features = pd.read_parquet(ram_tmp_path / "backtest" / "features.parquet")
    expected = {
        (t, s): p
        for t, s, p in zip(
            features["timestamp"], features["symbol"], features["probability"], strict=True
        )
    }
    bars = list(read_rows(paper, ["live_bar"]))
    assert len(bars) == (BARS - START) * 2
    mine = np.array(
        [math.nan if r.values["probability"] is None else r.values["probability"] for r in bars]
    )
    theirs = np.array([expected[(pd.Timestamp(r.timestamp), r.symbol)] for r in bars])
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-9)
    assert np.isfinite(mine).sum() > 300
    for kind in KINDS:
        theirs = [r for r in journaled(backtest, kind) if r["bar"] >= START]
        _same_rows(journaled(paper, kind), theirs, kind)
    assert {f["symbol"] for f in journaled(paper, "fill")} == {"BTC/USDT", "ETH/USDT"}
