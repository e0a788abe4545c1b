"""The report says what happened and nothing else (issue 42): a backtest halted by its
drawdown rule says nothing lifts it, once; a file without volume gets no volume panel;
a run too short for a rolling window or a year says so; months the run could not trade
in are marked; plotly.js is shared by the runs of a folder, and the single-file page
stands alone.

One backtest serves them all: four weeks of hourly EUR/USD from a CSV without volume,
closed at weekends (``calendar: forex``), prices of five decimals, halted by a drawdown
rule of 0.1%.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog

import tradeloom
from tests.builders import REPORTED, strategy_text
from tests.reporting.browser import chromium
from tests.reporting.page_checks import CHARTS, assert_titled, by_title, open_page
from tradeloom.cli.main import main
from tradeloom.reporting.charts import plotly_file

pytestmark = pytest.mark.xdist_group("report_runs")

STRATEGY = strategy_text(
    REPORTED,
    name="fx_halt",
    seed=3,
    data={
        "kind": "csv",
        "path": "eurusd.csv",
        "symbol": "EUR/USD",
        "timeframe": "1h",
        "calendar": "forex",
    },
    model={
        "params": {"n_estimators": 10},
        "walk_forward": {"train_window": 250, "retrain_every": 250},
    },
    risk={"rules": [{"kind": "drawdown_halt", "max_drawdown": 0.001}]},
    execution={"fee_bps": 1},
)


def _eurusd(path: Path) -> None:
    """Write four weeks of hourly EUR/USD without volume, closed from Friday 22:00 to
    Sunday 22:00 UTC, at five decimals."""
    times = pd.date_range("2024-01-01T00:00Z", periods=24 * 28, freq="1h")
    day, hour = times.day_of_week, times.hour
    closed = ((day == 4) & (hour >= 22)) | (day == 5) | ((day == 6) & (hour < 22))
    times = times[~closed]
    close = 1.1 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.001, len(times))))
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": open_.round(5),
            "high": (np.maximum(open_, close) * 1.0005).round(5),
            "low": (np.minimum(open_, close) * 0.9995).round(5),
            "close": close.round(5),
        }
    )
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def fx_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fx")
    _eurusd(folder / "eurusd.csv")
    (folder / "fx.yaml").write_text(STRATEGY.replace("eurusd.csv", str(folder / "eurusd.csv")))
    out = folder / "runs" / "fx"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["--quiet", "run", str(folder / "fx.yaml"), "--out", str(out)])
    structlog.reset_defaults()
    assert code == 0
    return out


def _text(run: Path) -> str:
    return (run / "report.html").read_text(encoding="utf-8")


def test_a_halted_backtest_says_once_that_nothing_lifts_its_halt(fx_run: Path) -> None:
    metrics = json.loads((fx_run / "metrics.json").read_text())
    assert metrics["halt"].startswith("MAX_DRAWDOWN_HALT")
    text = _text(fx_run)
    banner = re.search(r"<div class='halted' id='halted-banner'[^>]*>(.*?)</div>", text)
    assert banner is not None
    assert re.fullmatch(
        r"<strong>HALTED</strong> since 2024-\d\d-\d\d \d\d:00 UTC: MAX_DRAWDOWN_HALT "
        r"\(drawdown=0\.\d+, limit=0\.001\)\. A backtest's halt lasts to its end: no new "
        r"position after it, only the halt's exits\.",
        banner.group(1),
    ), banner.group(1)
    assert "resume" not in banner.group(1)
    assert "Trading halted" not in text  # the halt is said once
    assert text.count("MAX_DRAWDOWN_HALT (drawdown=") == 1


def test_a_file_without_volume_draws_no_volume_panel(fx_run: Path) -> None:
    text = _text(fx_run)
    assert '"name":"volume"' not in text
    assert "no volume panel: the data has no volume" in text
    figures = json.loads(re.search(r"const FIGURES = (\[.*?\]);\n", text, re.S).group(1))
    price = figures[0]
    assert price["data"][0]["name"] == "price"
    # the panel below the candles is the RSI's: the volume's is gone, not empty
    titles = [v["title"]["text"] for k, v in price["layout"].items() if k.startswith("yaxis")]
    assert titles == ["price", "rsi_14"]
    assert {t["yaxis"] for t in price["data"] if t["name"] == "rsi_14"} == {"y2"}


def test_weekends_are_cut_out_of_a_forex_time_axis(fx_run: Path) -> None:
    text = _text(fx_run)
    figures = json.loads(re.search(r"const FIGURES = (\[.*?\]);\n", text, re.S).group(1))
    breaks = [f["layout"]["xaxis"].get("rangebreaks") for f in figures]
    weekends = [
        {"bounds": [f"2024-01-{d:02}T22:00:00", f"2024-01-{d + 2:02}T22:00:00"]}
        for d in (5, 12, 19, 26)
    ]
    assert breaks[:3] == [weekends] * 3  # price, equity, probability: one time axis
    assert breaks[-1] is None  # the trade returns' axis is not one of time


def test_a_short_run_warns_of_its_annualised_figures_and_its_rolling_window(
    fx_run: Path,
) -> None:
    text = _text(fx_run)
    note = re.search(r"<p class='note short-run' id='short-run'>\* (.*?)</p>", text)
    assert note is not None
    bars = json.loads((fx_run / "metrics.json").read_text())["bars"]
    assert note.group(1) == (
        f"annualised from {bars:,} bars ({bars / 6227.142857142857 * 365:,.1f} days): CAGR, "
        "Sharpe, Sortino, Calmar and volatility extrapolate a short run to a year; read "
        "them with care"
    )
    for label in ("CAGR", "Sharpe (ann.)", "Sortino (ann.)", "Calmar", "volatility (ann.)"):
        assert f"<th>{label} *</th>" in text, label
    assert "<th>total return *</th>" not in text and "<th>total return</th>" in text
    rolling = re.search(
        r"<section class='undrawn' data-undrawn='Rolling Sharpe and volatility'>.*?</section>", text
    )
    assert rolling is not None and "not enough bars: the run has" in rolling.group(0)


def test_plotly_is_shared_by_the_folder_of_runs(fx_run: Path) -> None:
    shared = fx_run.parent / plotly_file()
    assert shared.is_file() and shared.stat().st_size > 3_000_000
    text = _text(fx_run)
    assert f"<script src='../{plotly_file()}'></script>" in text
    assert len(text.encode()) < 600_000  # the page without plotly.js
    assert main(["report", str(fx_run), "--single-file"]) == 0
    alone = _text(fx_run)
    assert "<script src=" not in alone and len(alone.encode()) > len(text.encode()) + 3_000_000
    assert main(["report", str(fx_run)]) == 0  # back to the shared file for the tests below
    assert _text(fx_run) == text


def test_a_run_made_in_the_current_folder_leaves_no_plotly_file_there(
    fx_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(fx_run, tmp_path / "myrun")
    assert main(["report", "myrun"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myrun"]
    assert "<script src=" not in _text(tmp_path / "myrun")  # plotly.js inside the page
    (tmp_path / plotly_file()).write_bytes((fx_run.parent / plotly_file()).read_bytes())
    assert main(["report", "myrun"]) == 0  # a folder that holds it already shares it
    assert f"<script src='../{plotly_file()}'></script>" in _text(tmp_path / "myrun")


def test_a_run_folder_outside_a_folder_of_runs_writes_nothing_beside_it(
    fx_run: Path, tmp_path: Path
) -> None:
    """Everything a run writes is inside its folder, but for the plotly.js its folder of
    runs shares (``runs/``): saved elsewhere, from the command or from Python, its
    report has plotly inside; a copy tradeloom wrote there already serves."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(fx_run, results / "a")
    assert main(["report", str(results / "a")]) == 0
    assert sorted(p.name for p in results.iterdir()) == ["a"]  # no plotly.js, no manifest
    assert "<script src=" not in _text(results / "a")
    shutil.copytree(fx_run, results / "b")
    tradeloom.open_run(results / "b").report()  # from Python: the same rule
    assert sorted(p.name for p in results.iterdir()) == ["a", "b"]
    assert "<script src=" not in _text(results / "b")
    runs = tmp_path / "runs"  # a folder of runs: one plotly.js, shared
    shutil.copytree(fx_run, runs / "c")
    assert main(["report", str(runs / "c")]) == 0
    assert (runs / plotly_file()).is_file()
    assert f"<script src='../{plotly_file()}'></script>" in _text(runs / "c")


@pytest.mark.slow
def test_a_halted_volumeless_report_in_a_real_browser(fx_run: Path) -> None:
    """Its banner, no volume panel, the rolling chart's note; plotly.js loaded from the
    file beside the run and nothing else."""
    if chromium() is None:
        pytest.skip("Chromium is not installed: the report was not opened in a browser")
    seen = open_page(
        fx_run / "report.html",
        "report-halted-no-volume.png",
        "({charts: " + CHARTS + ", banner: document.getElementById('halted-banner')"
        ".textContent, undrawn: Array.from(document.querySelectorAll('section.undrawn'))"
        ".map(function (s) { return s.textContent; }), short: "
        "document.getElementById('short-run').textContent})",
    )
    assert seen.errors == []
    assert seen.requests == [(fx_run.parent / plotly_file()).resolve().as_uri()]
    result = seen.result
    assert result["banner"].startswith("HALTED since 2024-")
    assert "MAX_DRAWDOWN_HALT (drawdown=" in result["banner"]
    assert result["banner"].endswith(
        "A backtest's halt lasts to its end: no new position after it, only the halt's exits."
    )
    (undrawn,) = result["undrawn"]
    assert undrawn.startswith("Rolling Sharpe and volatilitynot enough bars: the run has ")
    assert result["short"].startswith("* annualised from ")
    charts = by_title(result["charts"])
    assert_titled(result["charts"])
    price = charts["Price and trades (EUR/USD)"]
    assert price["candles"] > 0 and price["bars"] == 0  # candles, and no volume bars
    assert price["axisTitles"]["y2"] == "rsi_14"  # the panel below the candles
    assert "Rolling Sharpe and volatility" not in charts


@pytest.mark.slow
def test_the_single_file_report_opens_with_no_network(fx_run: Path, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip("Chromium is not installed: the report was not opened in a browser")
    import shutil

    alone = tmp_path / "alone"
    shutil.copytree(fx_run, alone)
    assert main(["report", str(alone), "--single-file"]) == 0
    assert not (tmp_path / plotly_file()).exists()
    seen = open_page(alone / "report.html", "report-single-file.png")
    assert seen.errors == [] and seen.requests == []
    assert_titled(seen.result)
