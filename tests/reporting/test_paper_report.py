"""A paper run's report: the backtest's report plus the run's life from its journal (its
starts and restarts, the operator's kill, the HALTED banner), its bars and probabilities.

The run is the real paper runner on the simulated clock (the built-in exchange emulator,
no keys), killed between two of its runs with ``tradeloom kill``, then restarted.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import structlog

from tests.reporting.browser import chromium
from tests.reporting.layout_checks import plotly_layouts_checked
from tests.reporting.page_checks import CHARTS, assert_titled, by_title, open_page
from tradeloom.reporting.charts import Chart, plotly_file
from tradeloom.reporting.price_chart import price_chart
from tradeloom.reporting.report import render_report
from tradeloom.reporting.run_data import load_run

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.xdist_group("report_runs")

_SETTINGS = (
    "data.bars=2500",
    "model.walk_forward.train_window=1000",
    "model.params.n_estimators=20",
    "model.params.n_jobs=1",
    "signal.threshold=0.1",
    "model.calibration=null",  # raw forest probabilities: this threshold trades in 170 bars
)


def _tradeloom(*args: str) -> tuple[int, str]:
    """``tradeloom ARGS`` in this process (the command's own code, not its start-up:
    test_cli runs btc_rf.yaml through the installed command); return its code and stderr.

    Each call is a fresh run of the command, as a new process would be: the run's state
    is its directory's journal, which every start reads again.
    """
    from tradeloom.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    structlog.reset_defaults()  # main configured logging for the whole process
    return code, err.getvalue()


def _paper(out: Path, bars: int) -> str:
    args = ["--quiet", "run", str(ROOT / "strategies" / "btc_rf.yaml"), "--mode", "paper"]
    args += ["--clock", "simulated", "--speed", "max", "--max-bars", str(bars)]
    args += ["--out", str(out)]
    for setting in _SETTINGS:
        args += ["--set", setting]
    code, err = _tradeloom(*args)
    assert code == 0, err
    return err


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A paper run: 120 bars, killed, 30 bars halted, restarted for 20 more; reported.

    Returns the run directory and what the restart logged.
    """
    out = tmp_path_factory.mktemp("paper") / "runs" / "run"  # its report shares plotly.js
    _paper(out, 120)
    code, err = _tradeloom("kill", str(out), "--reason", "operator: stop the test")
    assert code == 0, err
    _paper(out, 30)  # the kill is latched when the run next starts
    restart = _paper(out, 20)
    code, err = _tradeloom("report", str(out))
    assert code == 0, err
    return out, restart


@pytest.fixture(scope="module")
def backtest_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The backtest of the paper run's strategy, settings and bars."""
    out = tmp_path_factory.mktemp("backtest") / "run"
    args = ["--quiet", "run", str(ROOT / "strategies" / "btc_rf.yaml"), "--out", str(out)]
    for setting in _SETTINGS:
        args += ["--set", setting]
    code, err = _tradeloom(*args)
    assert code == 0, err
    return out


def _axes(chart: Chart) -> list[str]:
    axes = sorted((k for k in chart.layout if k.startswith("yaxis")), key=lambda k: k[5:].zfill(3))
    return [chart.layout[k]["title"]["text"] for k in axes]


@pytest.mark.slow
def test_the_paper_report_draws_the_backtests_indicators_with_its_numbers(
    paper_run: tuple[Path, str], backtest_run: Path
) -> None:
    """A paper run writes the features it gave its model (features.parquet) as a backtest
    does: its price chart has the backtest's panels and overlays, drawn from the very
    numbers the backtest computed at the same bars (issue 42: the paper report had no
    indicator panels)."""
    out, _ = paper_run
    paper, backtest = load_run(out), load_run(backtest_run)
    assert paper.plots == backtest.plots and paper.plots
    paper_chart, backtest_chart = price_chart(paper), price_chart(backtest)
    panels = ["price", "volume", "rsi_14", "bb_width_20"]
    assert _axes(paper_chart) == _axes(backtest_chart) == panels
    below = backtest_chart.note.partition("; below: ")[2]
    assert below == "rsi_14, bb_width_20" and paper_chart.note.endswith(f"; below: {below}")
    assert paper.features is not None and backtest.features is not None
    drawn = ["timestamp", "probability", *paper.plots]
    live = paper.features[drawn].set_index("timestamp")
    batch = backtest.features[drawn].set_index("timestamp").loc[live.index]
    assert len(live) == 170 and live.notna().all().all()
    pd.testing.assert_frame_equal(live[list(paper.plots)], batch[list(paper.plots)])


def test_the_report_shows_the_halt_and_the_runs_life(paper_run: tuple[Path, str]) -> None:
    out, _ = paper_run
    text = (out / "report.html").read_text(encoding="utf-8")
    banner = re.search(r"<div class='halted' id='halted-banner'[^>]*>(.*?)</div>", text)
    assert banner is not None, "no HALTED banner"
    assert "HALTED" in banner.group(1) and "KILL_SWITCH" in banner.group(1)
    assert "operator: stop the test" in banner.group(1)
    assert "paper &middot;" in text  # the header says the run's mode
    for row in (
        "starts and restarts (3)",
        "operator requests (kill, resume) (1)",
        "trading state \\u002f kill switch (1)",  # plotly escapes / in its JSON
        "stops (3)",
    ):
        assert row in text, row


def test_probabilities_and_auc_come_from_the_journal(paper_run: tuple[Path, str]) -> None:
    out, _ = paper_run
    text = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    assert "outputs.features: false" not in text
    note = re.search(
        r"from the journal \(each live bar's verdict\); AUC ([0-9.]+) over (\d+)", text
    )
    assert note is not None
    assert 0.0 <= float(note.group(1)) <= 1.0 and int(note.group(2)) > 100
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "paper" and metrics["state"] == "HALTED"
    assert metrics["tearsheet"]["periods_per_year"] == pytest.approx(8760)


def test_a_restart_does_not_warn_of_the_old_kill_again(paper_run: tuple[Path, str]) -> None:
    _, restart = paper_run
    events = [json.loads(x).get("event") for x in restart.splitlines() if x.startswith("{")]
    assert "kill_switch" not in events, restart


def test_every_run_file_has_one_mode(paper_run: tuple[Path, str]) -> None:
    out, _ = paper_run
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1, modes


@pytest.mark.slow
def test_a_paper_report_after_a_kill_in_a_real_browser(paper_run: tuple[Path, str]) -> None:
    if chromium() is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
            "it): the paper report was not opened in a browser"
        )
    out, _ = paper_run
    seen = open_page(
        out / "report.html",
        "paper-report-after-kill.png",
        "({charts: " + CHARTS + ", banner: (document.getElementById('halted-banner') || "
        "{textContent: ''}).textContent, undrawn: Array.from(document.querySelectorAll("
        "'section.undrawn')).map(function (s) { return s.textContent; })})",
    )
    assert seen.errors == []
    assert seen.requests == [(out.parent / plotly_file()).resolve().as_uri()]
    # the kill switch, and what lifts it in a paper run
    assert re.fullmatch(
        r"HALTED since \d{4}-\d\d-\d\d \d\d:\d\d UTC: "
        r"KILL_SWITCH \(.*operator: stop the test.*\)\. "
        r"The kill switch: no order at all, exits included, until tradeloom resume\.",
        seen.result["banner"],
    ), seen.result["banner"]
    # 170 bars of a 720-bar window: a note, not two empty panels
    assert seen.result["undrawn"] == [
        "Rolling Sharpe and volatilitynot enough bars: the run has 170, the rolling figures "
        "need 720 (30 days)"
    ]
    charts = by_title(seen.result["charts"])
    assert_titled(seen.result["charts"])
    price = charts["Price and trades (BTC/USDT)"]
    assert price["candles"] > 0 and price["bars"] > 0
    timeline = next(c for t, c in charts.items() if t.startswith("Timeline"))
    assert timeline["marks"] >= 3
    assert charts["Model probability and the signal thresholds"]["lines"] >= 1


def test_the_paper_report_names_each_trades_entry_reason(paper_run: tuple[Path, str]) -> None:
    """A paper run writes no orders.csv or fills.csv: the reasons come from its journal, as
    a backtest's table has them (issue 42: the paper report had no entry-reason column)."""
    out, _ = paper_run
    assert not (out / "orders.csv").exists()
    trades = load_run(out).trades
    assert len(trades) and set(trades["entry_reason"]) == {"ENTRY"}
    assert "<th>entry reason</th>" in (out / "report.html").read_text(encoding="utf-8")


def test_every_chart_of_a_paper_report_is_written_as_plotly_would(
    paper_run: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's life on its timeline, its live bars: each layout is the JSON plotly's
    ``go.Layout`` writes."""
    with plotly_layouts_checked(monkeypatch) as drawn:
        render_report(load_run(paper_run[0]))
    assert any(t.startswith("Timeline: the run's life") for t in drawn)
