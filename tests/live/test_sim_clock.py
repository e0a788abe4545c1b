"""``--mode paper --clock simulated``: the real live runner on the strategy's own bars,
served by the exchange emulator, through the real command line; and the fast failure
of a real paper run whose exchange cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import BINANCE, OMIT, strategy_text
from tests.forkserver import tradeloom
from tests.live.live_emulated import rows
from tradeloom.cli.main import main
from tradeloom.journal import read_frame

STRATEGY = strategy_text(name="sim_demo")

OFFLINE = strategy_text(
    name="offline_demo",
    data={
        **BINANCE,
        "config": {"urls": {"api": {"public": "https://api.nonexistent.invalid/api/v3"}}},
    },
    features=[{"kind": "log_return", "period": 1}],
    model={"walk_forward": {"train_window": 200}, "params": OMIT},
    signal={"min_interval": OMIT},
    execution={"fee_bps": OMIT},
    seed=OMIT,
)

SHORT = strategy_text(
    name="sim_demo", data={"bars": 120}, model={"walk_forward": {"train_window": 50}}
)
"""A shorter market for tests of a restart's checks: 60 bars of history, then a few played."""


@pytest.mark.slow
def test_a_simulated_paper_run_trades_restarts_and_obeys_the_kill_switch(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(STRATEGY)
    run = tmp_path / "runs" / "sim_demo-paper-simulated"  # the default run directory
    journal = run / "journal.sqlite"

    first = tradeloom(
        "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--max-bars", "12", cwd=tmp_path,
    )  # fmt: skip

    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert [line[:20] for line in lines[:2]] == ["2024-01-09 08:00Z ba", "2024-01-09 09:00Z ba"]
    # 12 bar lines, the stop's line, then the run's refusals by code and purpose
    assert lines[12].startswith(f"paper run {run}: processed 12 bars")
    assert lines[13].startswith("refusals") and "SHORT_NOT_ALLOWED" in lines[14], lines[13:]
    assert [r["bar"] for r in rows(journal, "live_bar")] == list(range(200, 212))
    assert rows(journal, "run_started")[0]["mode"] == "paper"

    kill = tradeloom("kill", str(run), "--reason", "demo", cwd=tmp_path)
    assert kill.returncode == 0, kill.stderr
    second = tradeloom(
        "run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--max-bars", "5", "-q", cwd=tmp_path,
    )  # fmt: skip

    assert second.returncode == 0, second.stderr
    stop = [line for line in second.stdout.splitlines() if line.startswith("paper run ")]
    assert len(stop) == 1 and stop[0].endswith("state HALTED"), second.stdout
    # the restart went on from the bar after the last journaled: no bar twice, none skipped
    assert [r["bar"] for r in rows(journal, "live_bar")] == list(range(200, 217))
    assert len(rows(journal, "restarted")) == 1
    states = rows(journal, "trading_state")
    assert [(s["state"], s["code"]) for s in states] == [("HALTED", "KILL_SWITCH")]
    orders = [r["id"] for r in rows(journal, "order")]
    assert len(orders) == len(set(orders))
    assert all(r["bar"] <= states[0]["bar"] for r in rows(journal, "order"))  # none after


def test_the_simulated_clock_is_refused_outside_paper_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.yaml").write_text(STRATEGY)

    live = main(["run", str(tmp_path / "s.yaml"), "--mode", "live", "--clock", "simulated"])
    live_err = capsys.readouterr().err
    speed = main(["run", str(tmp_path / "s.yaml"), "--mode", "paper", "--speed", "60x"])
    speed_err = capsys.readouterr().err

    assert (live, live_err) == (2, "--clock simulated runs --mode paper only, not --mode live\n")
    assert (speed, speed_err) == (2, "--speed applies to --clock simulated only\n")


@pytest.mark.parametrize("text", ["fast", "0x", "2y", "nanx"])
def test_a_bad_speed_is_refused_by_the_parser(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", text])

    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tradeloom run: error: argument --speed: expected a speed such as 60x (60 times real "
        f"time) or max, was '{text}'"
    )


def test_offline_a_paper_run_fails_at_once_naming_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o.yaml").write_text(OFFLINE)

    code = main(["run", "o.yaml", "--mode", "paper", "--out", "run"])

    captured = capsys.readouterr()
    # one line, no retry warnings before it, no traceback
    assert (code, captured.err, captured.out) == (
        1,  # an unreachable exchange is a run failure, not bad input
        "data: binance BTC/USDT 1h: cannot reach api.nonexistent.invalid: its name does not "
        "resolve (this machine is offline, or the exchange's URL is wrong); nothing was sent\n",
        "",
    )
    assert rows(tmp_path / "run" / "journal.sqlite", "live_bar") == []


CSV_STRATEGY = """\
name: csv_sim
seed: 1
data: {kind: csv, path: ibm.csv, symbol: IBM, timeframe: 1h}
features:
  - {kind: log_return, period: 1}
  - {kind: rsi, window: 14}
model:
  kind: sklearn
  estimator: sklearn.linear_model.LogisticRegression
  label: {horizon: 2}
  walk_forward: {train_window: 60, retrain_every: 100}
signal: {kind: threshold, threshold: 0.02, min_interval: 1, sides: long}
risk:
  sizing: {kind: fixed_fraction, fraction: 0.5}
execution: {kind: simulated, fee_bps: 10, initial_cash: 10000}
"""


def test_a_file_without_volume_and_a_plain_symbol_play_on_the_simulated_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    open_ = np.r_[close[0], close[:-1]]
    pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=200, freq="h").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
        }
    ).to_csv("ibm.csv", index=False)  # no volume column, a symbol that is no BASE/QUOTE
    (tmp_path / "s.yaml").write_text(CSV_STRATEGY)

    # validate agrees with run: a CSV is no live feed, but the simulated clock serves it
    assert main(["validate", "s.yaml", "--mode", "paper", "--clock", "simulated"]) == 0
    assert capsys.readouterr().out.startswith(
        "s.yaml: valid strategy 'csv_sim' for --mode paper --clock simulated (data csv, "
    )
    assert main(["validate", "s.yaml", "--mode", "paper"]) == 2
    assert main(["validate", "s.yaml", "--clock", "simulated"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "--clock simulated runs --mode paper only, not --mode backtest"
    )

    run = ["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max"]
    code = main([*run, "-q", "--max-bars", "40"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    assert out.startswith("paper run ") and "processed 40 bars" in out
    journal = tmp_path / "runs" / "csv_sim-paper-simulated" / "journal.sqlite"
    bars = read_frame(journal, "live_bar")
    assert bars["bar"].tolist() == list(range(100, 140))
    assert set(bars["symbol"]) == {"IBM"}  # the run's own name, not the emulator's
    assert bars["volume"].isna().all()  # as in the file, as a backtest of it sees it
    assert bars["close"].tolist() == pytest.approx(close[100:140].tolist(), rel=1e-12)
    fills = read_frame(journal, "fill")
    assert len(fills) > 0 and set(fills["symbol"]) == {"IBM"}


def test_a_restart_takes_a_new_metrics_port_and_locates_a_refused_set_at_the_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(SHORT)
    run = ["run", "s.yaml", "--mode", "paper", "--clock", "simulated", "--speed", "max", "-q"]
    journal = tmp_path / "runs" / "sim_demo-paper-simulated" / "journal.sqlite"
    assert main([*run, "--max-bars", "1"]) == 0

    # an observer's setting (the metrics endpoint) is safe to change at a restart
    assert main([*run, "--max-bars", "1", "--set", "live.metrics.port=0"]) == 0
    assert [r["changes"] for r in rows(journal, "config_reloaded")] == [
        ["live.metrics.port: absent -> 0"]
    ]
    capsys.readouterr()

    # the seed is not; the change came from --set, so the message points there
    code = main([*run, "--set", "live.metrics.port=0", "--set", "seed=3"])

    assert (code, capsys.readouterr().err) == (
        2,
        "--set seed=3: changed since the run last traded (1 -> 3): it seeds every random "
        "source of the run; put it back, or start a new run (another --out)\n",
    )
    assert [r["bar"] for r in rows(journal, "live_bar")] == [60, 61]
