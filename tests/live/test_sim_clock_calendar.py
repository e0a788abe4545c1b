"""``--clock simulated`` honours ``data.calendar`` and ``data.validation`` as the backtest
does: EUR/USD from a CSV with weekend closures (``calendar: forex``) and a bad bar
repaired (``validation: repair``) plays, and journals the backtest's rows bar by bar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.builders import strategy_text
from tests.live.test_sim_clock_universe import KINDS, journaled
from tradeloom.cli.main import main
from tradeloom.journal import read_rows

STRATEGY = strategy_text(
    name="fx",
    seed=3,
    data={
        "kind": "csv",
        "path": "eurusd.csv",
        "symbol": "EUR/USD",
        "timeframe": "1h",
        "calendar": "forex",
        "validation": "VALIDATION",
    },
    model={"params": {"n_estimators": 10}, "walk_forward": {"train_window": 560}},
    execution={"fee_bps": 1},
    live={"stale_after_bars": 2},
    outputs={"features": True},  # the backtest's probabilities, which paper's must equal
)


def _eurusd(path: Path, bad: bool) -> int:
    """Write six weeks of hourly EUR/USD, closed from Friday 22:00 to Sunday 22:00 UTC
    (and one bar with high < low when ``bad``); return the bars kept."""
    times = pd.date_range("2024-01-01T00:00Z", periods=24 * 42, freq="1h")
    day, hour = times.day_of_week, times.hour
    closed = ((day == 4) & (hour >= 22)) | (day == 5) | ((day == 6) & (hour < 22))
    times = times[~closed]
    close = 1.1 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.001, len(times))))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.0005,
            "low": np.minimum(open_, close) * 0.9995,
            "close": close,
            "volume": 1000.0,
        }
    )
    if bad:
        frame.loc[100, "high"] = frame.loc[100, "low"] * 0.99  # repaired: dropped
    frame.to_csv(path, index=False)
    return len(frame) - int(bad)


@pytest.mark.parametrize("validation", ["reject"])  # repair: tests/live/test_paper_parity.py
def test_a_forex_file_plays_on_the_simulated_clock_as_its_backtest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validation: str
) -> None:
    monkeypatch.chdir(tmp_path)
    bars = _eurusd(tmp_path / "eurusd.csv", bad=validation == "repair")
    (tmp_path / "fx.yaml").write_text(STRATEGY.replace("VALIDATION", validation))
    assert main(["run", "fx.yaml", "--out", "backtest", "-q"]) == 0
    paper = ["run", "fx.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max"]
    assert main([*paper, "--out", "paper", "-q"]) == 0

    backtest, journal = (
        tmp_path / "backtest" / "journal.sqlite",
        tmp_path / "paper" / "journal.sqlite",
    )
    start = bars // 2
    for kind in KINDS:
        theirs = [r for r in journaled(backtest, kind) if r["bar"] >= start]
        assert journaled(journal, kind) == theirs, kind
    assert len(journaled(journal, "fill")) > 20
    live = [r.bar for r in read_rows(journal, ["live_bar"])]
    assert live == list(range(start, bars))  # every bar played, the weekends skipped
    assert list(read_rows(journal, ["stale_data"])) == []  # judged by the simulated clock
    expected = pd.read_parquet(tmp_path / "backtest" / "features.parquet")["probability"]
    mine = [r.values["probability"] for r in read_rows(journal, ["live_bar"])]
    assert np.array_equal(np.asarray(mine, np.float64), expected.to_numpy()[start:], equal_nan=True)
    # the paper run's statistics annualize by the file's calendar, as its backtest's
    theirs_m = json.loads((tmp_path / "backtest" / "metrics.json").read_text())
    mine_m = json.loads((tmp_path / "paper" / "metrics.json").read_text())
    year = theirs_m["periods_per_year"]
    assert (mine_m["calendar"], theirs_m["calendar"]) == ("forex", "forex")
    assert mine_m["periods_per_year"] == year == mine_m["tearsheet"]["periods_per_year"]
    assert year == pytest.approx(6227.14, abs=0.01)  # 52 weeks of 120 hours, less holidays
    # Sharpe of the paper bars, computed here as the backtest computes its own
    equity = pd.read_csv(tmp_path / "paper" / "equity.csv")["equity"].to_numpy()
    returns = equity / np.r_[mine_m["initial_cash"], equity[:-1]] - 1.0
    sharpe = returns.mean() / returns.std(ddof=1) * np.sqrt(year)
    assert mine_m["sharpe"] == pytest.approx(sharpe, rel=1e-12)
    volatility = returns.std(ddof=1) * np.sqrt(year)
    assert mine_m["volatility"] == pytest.approx(volatility, rel=1e-12)


def test_a_gap_in_a_file_is_refused_naming_the_file_not_an_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _eurusd(tmp_path / "eurusd.csv", bad=False)
    text = STRATEGY.replace("VALIDATION", "reject").replace("calendar: forex", "calendar: crypto")
    (tmp_path / "fx.yaml").write_text(text)
    paper = ["run", "fx.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max"]

    assert main([*paper, "--out", "paper", "-q"]) == 2

    err = capsys.readouterr().err
    assert "eurusd.csv" in err and "binance" not in err, err
