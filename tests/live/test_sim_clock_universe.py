"""``--mode paper --clock simulated`` over a universe, through the command line: the
emulator serves every symbol's bars on one clock, and the paper run journals, bar by bar,
the backtest's model probabilities, signals, decisions, refusals, orders and fills."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.builders import OMIT, strategy_text
from tests.live.live_emulated import rows
from tradeloom.cli.main import main
from tradeloom.journal import read_rows

BARS = 300
START = BARS // 2
"""The simulated clock plays the second half; the first fold predicts from bar 163 on."""

STRATEGY = strategy_text(
    name="sim_universe",
    seed=3,
    data={"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "bars": "BARS", "symbol": OMIT},
    features=[
        {"kind": "log_return", "period": 1},
        {"kind": "log_return", "period": 6},
        {"kind": "rsi", "window": 14},
        {"kind": "cross_rank", "of": "log_return_6"},
    ],
    model={
        "params": {"n_estimators": 10, "max_depth": 4, "min_samples_leaf": 10},
        "label": {"horizon": 3},
        "walk_forward": {"train_window": 160, "retrain_every": 40},
        "pooling": "POOLING",
    },
    signal={"threshold": 0.04, "min_interval": 2, "top_k": 2},
    risk={"sizing": {"fraction": 0.3}},
    execution={"initial_cash": 50000},
    outputs={"features": True},  # the backtest's probabilities, which paper's must equal
)

KINDS = ("signal", "risk_decision", "rejection", "order", "fill", "order_cancelled")


def journaled(path: Path, kind: str) -> list[dict[str, Any]]:
    """Every row of ``kind`` with its bar and symbol, client order ids left out."""
    return [
        {"bar": r.bar, "symbol": r.symbol}
        | {k: v for k, v in r.values.items() if k not in ("id", "order_id")}
        for r in read_rows(path, [kind])
    ]


def compare(backtest: Path, paper: Path, start: int) -> None:
    """Assert the paper journal holds the backtest's rows from bar ``start`` on, and each
    of its bars' probabilities is the backtest's."""
    for kind in KINDS:
        theirs = [r for r in journaled(backtest / "journal.sqlite", kind) if r["bar"] >= start]
        assert journaled(paper / "journal.sqlite", kind) == theirs, kind
    folds = [r for r in journaled(backtest / "journal.sqlite", "model_trained")]
    live_folds = journaled(paper / "journal.sqlite", "model_trained")
    assert len(live_folds) >= 2
    # the last fold's predict_end is the data's end in the backtest, open-ended on paper
    assert [r | {"predict_end": 0} for r in live_folds] == [
        r | {"predict_end": 0} for r in folds if r["predict_start"] >= start
    ]
    features = pd.read_parquet(backtest / "features.parquet")
    expected = {
        (t, s): p
        for t, s, p in zip(
            features["timestamp"], features["symbol"], features["probability"], strict=True
        )
    }
    live = rows(paper / "journal.sqlite", "live_bar")
    assert len(live) == (BARS - start) * 3
    bars = list(read_rows(paper / "journal.sqlite", ["live_bar"]))
    times = {r.bar: pd.Timestamp(r.timestamp) for r in bars}
    symbols = [r.symbol for r in bars]
    mine = [math.nan if r["probability"] is None else r["probability"] for r in live]
    theirs = [expected[(times[r["bar"]], s)] for r, s in zip(live, symbols, strict=True)]
    assert np.array_equal(mine, theirs, equal_nan=True)  # every bar, exactly
    assert np.isfinite(mine).sum() > len(mine) // 2


@pytest.mark.parametrize("pooling", ["per_symbol"])  # pooled: tests/live/test_paper_parity.py
def test_a_simulated_paper_universe_journals_the_backtests_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pooling: str
) -> None:
    monkeypatch.chdir(tmp_path)
    text = STRATEGY.replace("BARS", str(BARS)).replace("POOLING", pooling)
    (tmp_path / "u.yaml").write_text(text)
    assert main(["run", "u.yaml", "--out", "backtest", "-q"]) == 0
    paper = ["run", "u.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max"]
    assert main([*paper, "--out", "paper", "-q"]) == 0

    compare(tmp_path / "backtest", tmp_path / "paper", START)
    fills = journaled(tmp_path / "paper" / "journal.sqlite", "fill")
    assert len(fills) > 10
    assert {f["symbol"] for f in fills} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


def test_a_universe_whose_symbol_misses_bars_is_refused_by_the_simulated_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    index = pd.date_range("2024-01-01", periods=200, freq="1h", tz="UTC")
    frames = [
        pd.DataFrame({"timestamp": index[first:], "symbol": symbol})
        for symbol, first in (("BTC/USDT", 0), ("ETH/USDT", 5))
    ]
    frame = pd.concat(frames).assign(open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0)
    frame.to_csv("bars.csv", index=False)
    text = STRATEGY.replace("BARS", "200").replace("POOLING", "pooled")
    data = text[text.index("data:") : text.index("features:")]
    files = (
        "data:\n  kind: csv\n  path: bars.csv\n  symbol_column: symbol\n"
        "  symbols: [BTC/USDT, ETH/USDT]\n  timeframe: 1h\n"
    )
    (tmp_path / "u.yaml").write_text(text.replace(data, files))
    paper = ["run", "u.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max"]

    assert main([*paper, "--out", "paper", "-q"]) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        "data.symbols: --clock simulated serves every market on one clock; ETH/USDT has "
        "195 bars where the clock has 200 (from 2024-01-01T00:00Z); backtest it instead"
    ), err
