"""sweep.html: every chart and table, down to what a browser shows."""

from __future__ import annotations

import itertools
import math
import re
import sys
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeloom.reporting.shared_plotly import shared_plotly
from tradeloom.sweep.leaderboard import rank
from tradeloom.sweep.objective import parse_constraints
from tradeloom.sweep.overfitting import DSR_THRESHOLD, Overfitting, overfitting_statistics
from tradeloom.sweep.report import (
    LEADERBOARD_ROWS,
    _parameters_chart,
    render_sweep_report,
    write_sweep_report,
)
from tradeloom.sweep.walk_forward import Evaluation, WalkForwardResult, walk_forward

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
sys.path.insert(0, str(ROOT / "tests" / "reporting"))
from tests.reporting.browser import chromium, visit  # noqa: E402
from tests.reporting.layout_checks import plotly_layouts_checked  # noqa: E402
from tests.reporting.page_checks import assert_titled, open_page  # noqa: E402

N_BARS = 600
PARAMS = ["signal.threshold", "risk.kelly_fraction", "signal.side"]
GRID = list(itertools.product([0.1, 0.2, 0.3, 0.4], [0.25, 0.5, 1.0], ["long", "both"]))


class Sweep:
    """A small synthetic sweep: each variant trades a sign pattern on one market."""

    def __init__(self) -> None:
        rng = np.random.default_rng(42)
        self.market = rng.normal(0.0003, 0.01, N_BARS)
        self.returns = np.column_stack([self.variant(i) for i in range(len(GRID))])
        results = pd.DataFrame(GRID, columns=PARAMS)
        r = self.returns
        results["sharpe"] = r.mean(0) / r.std(0, ddof=1) * math.sqrt(365)
        results["total_return"] = np.prod(1 + r, 0) - 1
        results.loc[5, "sharpe"] = math.nan
        self.results = results
        self.overfitting = overfitting_statistics(r, n_partitions=8, periods_per_year=365)
        self.walk_forward = walk_forward(
            N_BARS,
            in_sample=120,
            out_of_sample=60,
            variants=list(range(len(GRID))),
            evaluate=self.evaluate,
            objective="sharpe",
            params={i: dict(zip(PARAMS, g, strict=True)) for i, g in enumerate(GRID)},
            timestamps=pd.date_range("2024-01-01", periods=N_BARS, freq="D", tz="UTC"),
            initial_equity=1000.0,
        )

    def variant(self, i: int) -> np.ndarray:
        threshold, fraction, side = GRID[i]
        sign = np.sign(np.sin(np.arange(N_BARS) * threshold))
        if side == "long":
            sign = np.maximum(sign, 0.0)
        return fraction * sign * self.market

    def evaluate(self, start: int, stop: int, variants: Sequence[Hashable]) -> list[Evaluation]:
        out = []
        for v in variants:
            r = self.variant(int(v))[start:stop]  # type: ignore[call-overload]
            out.append(Evaluation(float(r.mean() / r.std(ddof=1)), r))
        return out


@pytest.fixture(scope="module")
def sweep() -> Sweep:
    return Sweep()


def _render(
    sweep: Sweep,
    params: list[str] | None = None,
    overfitting: Overfitting | None = None,
    wf: WalkForwardResult | None = None,
) -> str:
    return render_sweep_report(
        sweep.results,
        params=PARAMS if params is None else params,
        objective="sharpe",
        overfitting=overfitting,
        walk_forward=wf,
        title="btc_rf sweep",
    )


def _titles(text: str) -> list[str]:
    return re.findall(r"<div class='chart' id='chart-\d+' data-title='([^']*)'>", text)


def test_the_page_holds_every_chart_and_the_statistics_with_their_inputs(sweep: Sweep) -> None:
    text = _render(sweep, overfitting=sweep.overfitting, wf=sweep.walk_forward)
    assert _titles(text) == [
        "Sharpe (ann.) across the parameters",
        "Walk-forward optimisation: out-of-sample equity",
        "Probability of backtest overfitting: logits",
        "Performance degradation: in-sample against out-of-sample",
    ]
    assert "24 variants ranked by Sharpe (ann.); 1 with no Sharpe (ann.) (NaN) rank last" in text
    d = sweep.overfitting.deflated
    for shown in (
        f"<th>trials (N)</th><td>{d.n_trials}</td>",
        f"<td>{d.trial_sharpe_variance:.4g}</td>",
        f"<td>{d.sharpe:.5f}</td>",
        f"<td>{d.sr0:.5f}</td>",
        f"<th>returns (T)</th><td>{N_BARS}</td>",
        f"<td>{d.skewness:.3f}</td>",
        f"<td>{d.kurtosis:.3f}</td>",
    ):
        assert shown in text
    pbo = sweep.overfitting.pbo
    assert pbo is not None
    assert (
        f"<th>probability of backtest overfitting (PBO)</th><td>{pbo.probability:.3f}</td>" in text
    )
    assert "<th>combinations</th><td>70</td>" in text
    # one row per walk-forward window, with the chosen parameters
    table = text.split("Walk-forward windows and the stability")[1].split("</table>")[0]
    assert table.count("<tr>") == len(sweep.walk_forward.windows) + 1
    first = sweep.walk_forward.windows[0]
    threshold, fraction, side = GRID[int(first.chosen)]  # type: ignore[call-overload]
    assert f"<td>{threshold:g}</td><td>{fraction:g}</td><td>{side}</td>" in table
    assert "bars 0-119 (2024-01-01 00:00 to 2024-04-29 00:00)" in table


def test_the_leaderboard_ranks_nan_last_and_marks_a_low_deflated_sharpe(sweep: Sweep) -> None:
    text = _render(sweep, overfitting=sweep.overfitting)
    board = text.split("<h2>Leaderboard</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(\d+)</td>(.*?)</tr>", board)
    assert len(rows) == len(GRID)
    best = sweep.results["sharpe"].idxmax()
    assert rows[0][1].startswith(
        "".join(f"<td>{v:g}</td>" if isinstance(v, float) else f"<td>{v}</td>" for v in GRID[best])
    )
    threshold, fraction, side = GRID[5]  # the NaN objective
    assert rows[-1][1].startswith(f"<td>{threshold:g}</td><td>{fraction:g}</td><td>{side}</td>")
    low = int((sweep.overfitting.variant_dsr < DSR_THRESHOLD).sum())
    assert low > 0
    assert sum(cells.count("&#9888;") for _, cells in rows) == low
    assert f"({low} of {len(GRID)} variants)" in text


def test_the_leaderboard_marks_only_a_deflated_sharpe_under_the_threshold() -> None:
    results = pd.DataFrame(
        {"a": [1, 2, 3, 4], "sharpe": [2.0, 1.0, 0.5, 0.1], "dsr": [0.99, 0.95, 0.9, math.nan]}
    )
    board = render_sweep_report(results, params=["a"], objective="sharpe").split("Leaderboard")[1]
    assert "<td>0.990</td>" in board and "<td>0.950</td>" in board and "<td>-</td>" in board
    assert board.count("&#9888;") == 2  # the one under 0.95, and the note's legend
    assert "0.900 &#9888;" in board
    assert "(1 of 3 variants)" in board


def test_the_leaderboard_shows_the_best_rows_only() -> None:
    results = pd.DataFrame({"a": np.arange(120), "sharpe": np.arange(120) / 10.0})
    text = render_sweep_report(results, params=["a"], objective="sharpe")
    board = text.split("<h2>Leaderboard</h2>")[1]
    assert f"the best {LEADERBOARD_ROWS} of 120 variants by Sharpe (ann.)" in board
    assert board.count("<tr><td>") == LEADERBOARD_ROWS
    assert "<tr><td>1</td><td>119</td><td><b>11.90</b></td>" in board


def test_the_chart_of_the_parameters_follows_their_count(sweep: Sweep) -> None:
    r = sweep.results
    one = _parameters_chart(r, ["signal.threshold"], "sharpe")
    assert one is not None and one.data[0]["type"] == "scatter"
    # each threshold's best Sharpe ratio, over every other setting
    assert one.data[0]["y"].tolist() == r.groupby("signal.threshold")["sharpe"].max().tolist()
    two = _parameters_chart(r, ["signal.threshold", "risk.kelly_fraction"], "sharpe")
    assert two is not None and two.data[0]["type"] == "heatmap"
    assert two.data[0]["x"] == ["0.1", "0.2", "0.3", "0.4"]
    assert two.data[0]["y"] == ["0.25", "0.5", "1"]
    cell = r[(r["signal.threshold"] == 0.3) & (r["risk.kelly_fraction"] == 0.5)]["sharpe"].max()
    assert two.data[0]["z"][1][2] == pytest.approx(cell)
    many = pd.DataFrame({"x": np.linspace(0, 1, 100), "y": np.linspace(1, 2, 100), "s": 1.0})
    scatter = _parameters_chart(many, ["x", "y"], "s")
    assert scatter is not None and scatter.data[0]["mode"] == "markers"
    three = _parameters_chart(r, PARAMS, "sharpe")
    assert three is not None and three.data[0]["type"] == "parcoords"
    side = three.data[0]["dimensions"][2]
    assert side["ticktext"] == ["both", "long"]
    assert len(side["values"]) == len(r) - 1  # the NaN objective is not drawn


def test_bad_arguments_are_named(sweep: Sweep) -> None:
    with pytest.raises(ValueError, match=r"^results has no column 'signal\.thresold'$"):
        _render(sweep, params=["signal.thresold"])
    short = overfitting_statistics(sweep.returns[:, :5], n_partitions=8)
    with pytest.raises(ValueError, match=r"^overfitting has 5 variants, results 24 rows$"):
        _render(sweep, overfitting=short)


def test_a_sweep_too_short_for_the_pbo_says_why(sweep: Sweep) -> None:
    stats = overfitting_statistics(sweep.returns[:20], n_partitions=16)
    text = _render(sweep, overfitting=stats)
    assert "The probability of backtest overfitting was not computed: 20 bars cannot be cut" in text
    assert "Probability of backtest overfitting: logits" not in _titles(text)


@pytest.mark.slow
def test_sweep_html_in_a_real_browser(sweep: Sweep, tmp_path: Path) -> None:
    if chromium() is None:
        pytest.skip(
            "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
            "it): sweep.html was not opened in a browser"
        )
    pages = {
        "sweep.png": (PARAMS, 4),
        "sweep-heatmap.png": (["signal.threshold", "risk.kelly_fraction"], 4),
    }
    for shot, (params, charts) in pages.items():
        # the first page stands alone, the second loads plotly.js shared beside it
        shared = shared_plotly(tmp_path, tmp_path, option="--out") if "heatmap" in shot else None
        path = write_sweep_report(
            tmp_path / "sweep.html",
            sweep.results,
            params=params,
            objective="sharpe",
            overfitting=sweep.overfitting,
            walk_forward=sweep.walk_forward,
            plotly_src=shared,
        )
        seen = visit(
            path,
            """Array.from(document.querySelectorAll('div.chart')).map(function (div) {
                return {
                    title: div.dataset.title,
                    rendered: div.dataset.rendered === 'true',
                    svg: div.querySelectorAll('.main-svg').length,
                    marks: div.querySelectorAll(
                        '.scatterlayer path, .barlayer path, .heatmaplayer image, '
                        + '.hm image, .parcoords .axis'
                    ).length,
                    width: div.getBoundingClientRect().width,
                };
            })""",
            wait_for="Array.from(document.querySelectorAll('div.chart'))"
            ".every(function (d) { return d.dataset.rendered === 'true'; })",
            screenshot=ARTIFACTS / shot,
        )
        assert seen.errors == []
        # nothing fetched but the shared plotly.js: no network
        assert seen.requests == ([] if shared is None else [(tmp_path / shared).resolve().as_uri()])
        assert len(seen.result) == charts
        for chart in seen.result:
            assert chart["rendered"] and chart["svg"] > 0 and chart["width"] > 600, chart
            assert chart["marks"] > 0, f"{chart['title']}: nothing drawn"
        # what the page says, as drawn: every chart's title and every axis's
        drawn = open_page(path, shot.replace(".png", "-titles.png"))
        assert_titled(drawn.result)
        if "sweep-heatmap" in shot:
            heatmap = next(c for c in drawn.result if " and " in c["title"])
            assert heatmap["axisTitles"] == {
                "x": "signal.threshold",
                "y": "risk.kelly_fraction",
            }


def test_walk_forward_parameters_come_from_the_results_rows_without_params(sweep: Sweep) -> None:
    bare = walk_forward(
        N_BARS,
        in_sample=120,
        out_of_sample=60,
        variants=list(range(len(GRID))),
        evaluate=sweep.evaluate,
        objective="sharpe",
    )
    assert bare.stability.params == ()
    text = _render(sweep, wf=bare)
    table = text.split("Walk-forward windows and the stability")[1].split("</table>")[0]
    for w in bare.windows:
        threshold, fraction, side = GRID[int(w.chosen)]  # type: ignore[call-overload]
        assert f"<td>{threshold:g}</td><td>{fraction:g}</td><td>{side}</td>" in table
    assert "bars 0-119</td>" in table  # no timestamps: bars only


def test_every_chart_of_a_sweep_page_is_written_as_plotly_would(
    sweep: Sweep, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parameters' chart of one, two and three parameters, the walk-forward equity, the
    PBO's logits and the degradation: each layout is the JSON plotly's ``go.Layout`` writes."""
    with plotly_layouts_checked(monkeypatch) as drawn:
        _render(sweep, overfitting=sweep.overfitting, wf=sweep.walk_forward)
        for count in (1, 2):
            _render(sweep, params=PARAMS[:count])
    assert len(drawn) == 6
    assert drawn[4:] == [
        "Sharpe (ann.) by signal.threshold",
        "Sharpe (ann.) by signal.threshold and risk.kelly_fraction",
    ]


def test_the_leaderboard_follows_the_sweeps_rank_a_missed_constraint_last() -> None:
    # the best Sharpe misses the minimum trade count: the sweep ranked it after the rest
    frame = pd.DataFrame({"a": [1, 2, 3], "sharpe": [3.0, 1.0, 2.0], "trades": [4, 30, 25]})
    ranked = rank(frame, "sharpe", "maximize", constraints=parse_constraints({"min_trades": 20}))
    board = render_sweep_report(ranked.sort_values("a"), params=["a"], objective="sharpe").split(
        "<h2>Leaderboard</h2>"
    )[1]
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", board)]
    assert [(row[0], row[1]) for row in rows] == [("1", "3"), ("2", "2"), ("3", "1")]
    assert rows[0][-1] == "" and rows[2][-1] == "trades 4 misses trades &gt;= 20"
    assert "<th>constraint missed</th>" in board and "<th>rank</th>" not in board
    assert "1 miss a constraint and rank after every variant that meets them" in board
