"""``tradeloom sweep`` as a user runs it: the summary, random and optuna searches, walk-forward,
a sweep file, and one exact line per bad input with exit 2."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.cli.main import main
from tradeloom.reporting.charts import plotly_file

STRATEGY = Path(__file__).resolve().parent / "small_strategy.yaml"


def _sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", str(STRATEGY), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_random_sweep_prints_the_leaderboard_and_the_statistics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    code, stdout, _ = _sweep(
        capsys,
        "--grid", "signal.threshold=0.02:0.1:0.02",
        "--grid", "risk.sizing.fraction=0.1,0.5",
        "--random", "6", "--seed", "1", "--objective", "total_return",
        "--out", str(out), "--partitions", "4", "--keep-top", "2",
    )  # fmt: skip
    assert code == 0
    assert "best 6 of 6 by total_return" in stdout
    assert (
        "variants: 6 (6 run now, 0 from earlier parts); objective total_return (maximize); "
        "NaN objective: 0 (ranked last)" in stdout
    )
    assert "deflated Sharpe ratio of row " in stdout
    assert "probability of backtest overfitting: " in stdout
    # the two kept runs, beside the plotly.js their reports share, and sweep.html loads too
    assert len([p for p in (out / "runs").iterdir() if p.is_dir()]) == 2
    page = (out / "sweep.html").read_text(encoding="utf-8")
    assert f"<script src='runs/{plotly_file()}'></script>" in page
    assert len(page) < 1_000_000 and (out / "runs" / plotly_file()).is_file()
    assert not (out / plotly_file()).exists()
    results = pd.read_parquet(out / "results.parquet")
    assert len(results) == 6
    best = results.sort_values("rank").iloc[0]
    assert best["total_return"] == results["total_return"].max()
    again, stdout, _ = _sweep(
        capsys,
        "--grid", "signal.threshold=0.02:0.1:0.02",
        "--grid", "risk.sizing.fraction=0.1,0.5",
        "--random", "6", "--seed", "1", "--objective", "total_return",
        "--out", str(out), "--partitions", "4", "--keep-top", "2", "--single-file",
    )  # fmt: skip
    assert again == 0
    page = (out / "sweep.html").read_text(encoding="utf-8")
    assert "<script src=" not in page and len(page) > 4_000_000  # a page to send on its own
    assert "variants: 6 (0 run now, 6 from earlier parts)" in stdout
    assert "stages computed: none (all cached)" in stdout


def test_optuna_proposes_grid_values_and_is_seeded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grids = ["--grid", "signal.threshold=0.02:0.1:0.01", "--grid", "risk.sizing.fraction=0.1,0.5"]
    runs = []
    for name in ("a", "b"):
        code, stdout, _ = _sweep(
            capsys, *grids, "--search", "optuna", "--trials", "8", "--seed", "3",
            "--out", str(tmp_path / name), "--partitions", "2",
        )  # fmt: skip
        assert code == 0, stdout
        runs.append(pd.read_parquet(tmp_path / name / "results.parquet"))
        # every trial accounted for: the distinct variants run, plus the repeats
        said = re.search(r"optuna: 8 trials, (\d+) distinct variants; (\d+) proposed", stdout)
        assert said is not None, stdout
        assert int(said.group(1)) == len(runs[-1])
        assert int(said.group(1)) + int(said.group(2)) == 8
    a, b = runs
    assert list(a["param.signal.threshold"]) == list(b["param.signal.threshold"])
    assert set(a["param.signal.threshold"]) <= {round(0.02 + 0.01 * k, 12) for k in range(9)}
    assert 1 <= len(a) <= 8


def test_walk_forward_reports_each_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stdout, _ = _sweep(
        capsys, "--grid", "signal.threshold=0.02,0.06,0.1", "--out", str(tmp_path / "wf"),
        "--partitions", "4", "--walk-forward", "in_sample=500,out_of_sample=250",
    )  # fmt: skip
    assert code == 0
    assert "walk-forward: 4 windows (in-sample 500, out-of-sample 250 bars)" in stdout
    assert "walk-forward" in (tmp_path / "wf" / "sweep.html").read_text().lower()


def test_walk_forward_windows_without_a_prediction_are_reported_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The model's first fold predicts from bar 400 on: the windows whose in-sample bars
    end before it have nothing to choose by; none is chosen, and the summary says so."""
    code, stdout, _ = _sweep(
        capsys, "--grid", "signal.threshold=0.02,0.06,0.1", "--out", str(tmp_path / "wf"),
        "--partitions", "4", "--walk-forward", "in_sample=200,out_of_sample=200",
    )  # fmt: skip
    assert code == 0, stdout
    chosen = re.search(r"chosen rows per window: ([-0-9, ]+);", stdout)
    assert chosen is not None, stdout
    rows = chosen.group(1).split(", ")
    assert rows[:2] == ["-", "-"] and "-" not in rows[2:] and len(rows) == 7
    assert "walk-forward: 2 windows had no prediction in-sample (windows 1, 2)" in stdout
    assert "the choice changed" in stdout
    page = (tmp_path / "wf" / "sweep.html").read_text()
    assert "2 windows had no prediction in-sample" in page


def test_a_sweep_file_runs_and_the_command_line_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(STRATEGY, tmp_path / "small.yaml")
    sweep_file = tmp_path / "small.sweep.yaml"
    sweep_file.write_text(
        "strategy: small.yaml\ngrid:\n  signal.threshold: [0.02, 0.06]\nobjective: sortino\n"
    )
    code = main(["sweep", str(sweep_file), "--objective", "sharpe", "--out", str(tmp_path / "o"),
                 "--partitions", "2"])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0
    assert "best 2 of 2 by sharpe" in stdout
    identity = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert identity["axes"] == [["signal.threshold", [0.02, 0.06]]]


@pytest.mark.parametrize(
    ("argv", "lines"),
    [
        (
            ["--grid", "signal.treshold=0.1,0.2", "--grid", "risk.sizing.fraction=0.1,abc"],
            [
                "--grid risk.sizing.fraction=0.1,abc risk.sizing.fraction: "
                "expected a number, was 'abc'",
                "--grid signal.treshold=0.1,0.2 signal.treshold: "
                "unknown key (did you mean 'threshold'?)",
            ],
        ),
        (
            ["--grid", "risk.stop_loss=0.1:0.05:0.01", "--grid", "risk.take_profit=0.1:0.2:0"],
            [
                "--grid risk.stop_loss=0.1:0.05:0.01 risk.stop_loss: "
                "stop (0.05) is before start (0.1)",
                "--grid risk.take_profit=0.1:0.2:0 risk.take_profit: step must not be 0",
            ],
        ),
        (
            ["--grid", "signal.threshold=0:1:0.0001", "--grid", "risk.sizing.fraction=0.01:1:0.01"],
            [
                "the sweep has 1,000,100 variants (a grid of 10001 x 100), more than "
                "--max-variants 100,000; narrow the axes, use --random N, or raise --max-variants"
            ],
        ),
        (
            ["--grid", "signal.threshold=0.1,0.2", "--objective", "sharp"],
            [
                "--objective: unknown objective 'sharp' (did you mean 'sharpe'? one of: "
                "total_return, cagr, sharpe, sortino, sharpe_daily, sortino_daily, calmar, "
                "max_drawdown, max_drawdown_duration_bars, max_drawdown_duration_days, "
                "volatility, trades, win_rate, avg_trade_return, profit_factor, exposure, fees, "
                "final_equity, "
                "buy_and_hold_return, signals, orders, fills, model_trainings, "
                "model_folds_skipped, bars, periods_per_year)"
            ],
        ),
        (
            ["--grid", "risk.sizing.fraction=0.5,1.5"],
            ["--grid risk.sizing.fraction=0.5,1.5 risk.sizing.fraction: must be <= 1, was 1.5"],
        ),
        (
            ["--search", "optuna", "--grid", "signal.threshold=0.1,0.2"],
            ["--search optuna needs --trials N"],
        ),
        ([], [f"{STRATEGY}: nothing to sweep; give --grid KEY.PATH=V1,V2,... (repeatable)"]),
    ],
)
def test_bad_input_is_one_line_each_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], lines: list[str]
) -> None:
    code, _, stderr = _sweep(capsys, *argv, "--out", str(tmp_path / "s"))
    assert code == 2
    assert stderr.splitlines() == lines
    assert not (tmp_path / "s").exists()  # refused before anything ran


def test_a_bad_variant_reference_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(STRATEGY), "--variant", f"{tmp_path}:0"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [f"--variant: no results.parquet in {tmp_path}"]


def test_an_unreachable_scheduler_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, stderr = _sweep(
        capsys, "--grid", "signal.threshold=0.02,0.06", "--out", str(tmp_path / "s"),
        "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "1",
    )  # fmt: skip
    assert code == 2
    assert stderr.splitlines() == [
        "no Dask scheduler answered at tcp://127.0.0.1:9 within 1 s (start one with"
        " `dask scheduler`, or wait longer with --scheduler-timeout)"
    ]


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:notaport", "tcp://127.0.0.1:99999", "127.0.0.1", "tcp://:8786"]
)
def test_a_malformed_scheduler_address_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    code, _, stderr = _sweep(
        capsys, "--grid", "signal.threshold=0.02,0.06", "--out", str(tmp_path / "s"),
        "--scheduler", address,
    )  # fmt: skip
    assert code == 2
    assert stderr.splitlines() == [
        "--scheduler: expected a Dask scheduler's address tcp://HOST:PORT with a port from 1"
        f" to 65535 (e.g. tcp://127.0.0.1:8786), was {address!r}"
    ]
    assert not (tmp_path / "s").exists()  # refused before anything ran


@pytest.mark.slow
def test_two_local_workers_give_the_serial_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grids = ["--grid", "signal.threshold=0.02,0.04,0.06", "--grid", "risk.stop_loss=0.01,0.2"]
    frames = []
    for name, workers in (("serial", "1"), ("pool", "2")):
        code, _, _ = _sweep(
            capsys, *grids, "--workers", workers, "--out", str(tmp_path / name),
            "--partitions", "2",
        )  # fmt: skip
        assert code == 0
        frames.append(pd.read_parquet(tmp_path / name / "results.parquet"))
    columns = ["key", "sharpe", "final_equity", "trades", "dsr", "rank"]
    pd.testing.assert_frame_equal(frames[0][columns], frames[1][columns])
