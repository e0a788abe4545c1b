"""`Run.plot`: the report's charts stacked into one plotly figure for a notebook's cell
(`tradeloom.reporting.notebook_figure`), checked in its JSON on a universe's run (menus
of symbols, a heatmap, overlaid histograms, a wide left margin) and in a real browser:
drawn without an error, each menu acting on its own chart only, the time axes zooming
together."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import tradeloom
from tests.builders import OMIT, REPORTED, strategy
from tests.reporting.browser import chromium, visit
from tests.reporting.page_checks import ARTIFACTS
from tradeloom.reporting.charts import plotly_js
from tradeloom.reporting.notebook_figure import LAID_OUT, chosen_panels, composed_figure
from tradeloom.reporting.report import PANELS, report_panels
from tradeloom.reporting.run_data import load_run

_AXIS = re.compile(r"^[xy]axis\d*$")


@pytest.fixture(scope="module")
def universe_run(tmp_path_factory: pytest.TempPathFactory) -> tradeloom.Run:
    """A universe of two symbols with a monitor: every kind of chart a run draws but a
    portfolio's."""
    folder = tmp_path_factory.mktemp("notebook-figure")
    doc = strategy(
        REPORTED,  # the figure is the report's, from the run's features.parquet too
        data={"symbol": OMIT, "symbols": ["BTC/USDT", "ETH/USDT"], "bars": 400},
        monitoring=[{"kind": "rolling_auc", "window": 50, "min_samples": 20}],
    )
    (folder / "strategy.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tradeloom.load(folder / "strategy.yaml").backtest(folder / "run", quiet=True)


@pytest.fixture(scope="module")
def figure(universe_run: tradeloom.Run) -> dict[str, Any]:
    """`Run.plot()` as the JSON a notebook receives."""
    plotted: dict[str, Any] = json.loads(universe_run.plot().to_json())
    return plotted


def _panels(run: tradeloom.Run) -> dict[str, Any]:
    return report_panels(load_run(run.run_dir))


def test_the_panels_are_named_in_the_pages_order(universe_run: tradeloom.Run) -> None:
    panels = _panels(universe_run)
    assert list(panels) == [name for name in PANELS if name in panels]
    assert {"price", "equity", "monitoring", "attribution_by_symbol"} <= set(panels)
    # every layout key of every chart is one the figure places
    keys = {k for chart in panels.values() for k in chart.layout if not _AXIS.match(k)}
    assert keys <= LAID_OUT


def test_each_chart_keeps_its_axes_its_legend_and_its_band(
    universe_run: tradeloom.Run, figure: dict[str, Any]
) -> None:
    layout = figure["layout"]
    panels = [c for c in _panels(universe_run).values() if c.data]
    titles = [a["text"] for a in layout["annotations"] if a["font"].get("size") == 15]
    assert titles == [c.title for c in panels]
    traces = figure["data"]
    assert len(traces) == sum(len(c.data) for c in panels)
    bands: list[tuple[float, float]] = []
    start = 0
    for i, chart in enumerate(panels):
        mine = traces[start : start + len(chart.data)]
        start += len(chart.data)
        assert {t["legend"] for t in mine} == {"legend" if i == 0 else f"legend{i + 1}"}
        assert [t.get("name") for t in mine] == [t.get("name") for t in chart.data]
        ys = {t["yaxis"] for t in mine}
        xs = {t["xaxis"] for t in mine}
        assert len(xs) == 1  # a chart's panels share its one x axis
        (x,) = xs
        domains = [layout[f"yaxis{y[1:]}"]["domain"] for y in ys]
        bands.append((min(d[0] for d in domains), max(d[1] for d in domains)))
        for y in ys:  # each y axis on its chart's x axis, and the x axis on one of them
            assert layout[f"yaxis{y[1:]}"]["anchor"] == x
        assert layout[f"xaxis{x[1:]}"]["anchor"] in ys
    # the charts stacked top to bottom, none over another
    assert all(low >= 0 for low, _ in bands) and bands[0][1] <= 1
    assert all(a[0] > b[1] for a, b in itertools.pairwise(bands))


def test_the_time_axes_zoom_together_over_the_runs_span(
    universe_run: tradeloom.Run, figure: dict[str, Any]
) -> None:
    layout = figure["layout"]
    panels = [c for c in _panels(universe_run).values() if c.data]
    x_of: dict[str, str] = {}  # each chart's x axis, by its legend (a chart's own)
    for trace in figure["data"]:
        x_of.setdefault(trace["legend"], trace["xaxis"])
    axes = [layout[f"xaxis{x[1:]}"] for x in x_of.values()]
    linked = [axis for axis, chart in zip(axes, panels, strict=True) if chart.link]
    others = [axis for axis, chart in zip(axes, panels, strict=True) if not chart.link]
    assert len(linked) >= 4 and others
    assert "matches" not in linked[0] and {a.get("matches") for a in linked[1:]} == {"x"}
    assert all("matches" not in axis for axis in others)  # months, trade returns: their own
    equity = universe_run.equity
    first, last = (t.tz_localize(None).isoformat() for t in (equity.index[0], equity.index[-1]))
    assert [np.datetime64(t) for t in linked[0]["range"]] == [
        np.datetime64(first),
        np.datetime64(last),
    ]


def test_a_menu_acts_on_its_own_charts_traces_and_axes(
    universe_run: tradeloom.Run, figure: dict[str, Any]
) -> None:
    traces, menus = figure["data"], figure["layout"]["updatemenus"]
    of_legend: dict[str, list[int]] = {}
    for i, trace in enumerate(traces):
        of_legend.setdefault(trace["legend"], []).append(i)
    price = of_legend["legend"]  # the first chart
    symbols = next(m for m in menus if m["buttons"][0]["label"] == "BTC/USDT")
    for button in symbols["buttons"]:
        visible, indices = button["args"]
        assert indices == price and len(visible["visible"]) == len(price)
    scale = next(m for m in menus if m["buttons"][1]["label"] == "log")
    _, relayout, indices = scale["buttons"][1]["args"]
    assert indices == of_legend["legend2"][:2]  # the equity and the benchmark
    (equity_axis,) = {traces[i]["yaxis"] for i in indices}
    assert relayout == {
        f"yaxis{equity_axis[1:]}.type": "log",
        f"yaxis{equity_axis[1:]}.title.text": "equity (log scale)",
    }


def test_a_panel_is_chosen_by_its_name_in_one_line(universe_run: tradeloom.Run) -> None:
    panels = _panels(universe_run)
    drawn = ", ".join(name for name, chart in panels.items() if chart.data)
    assert chosen_panels(panels, None) == [n for n, c in panels.items() if c.data]
    assert chosen_panels(panels, ["equity", "price"]) == ["equity", "price"]
    assert universe_run.plot("equity").layout.title.text.startswith("Equity against")
    assert len(universe_run.plot(["equity", "price"]).layout.annotations) >= 2
    for panel, message in (
        ("eqity", f"no panel 'eqity' (did you mean 'equity'?); this run draws {drawn}"),
        (["price", "strategies"], f"this run has no strategies chart; it draws {drawn}"),
        ([], f"no panel given; this run draws {drawn}"),
        (3, "expected a panel's name or a list of names, was 3"),
    ):
        with pytest.raises(tradeloom.UserError, match=rf"^panel: {re.escape(message)}$"):
            universe_run.plot(panel)  # type: ignore[arg-type]
    undrawn = dict(panels)
    undrawn["rolling"].data = []
    undrawn["rolling"].note = "not enough bars"
    with pytest.raises(tradeloom.UserError, match=r"^panel: rolling is not drawn: not enough "):
        chosen_panels(undrawn, "rolling")


def test_a_chart_with_one_trace_shows_no_legend_as_on_the_page() -> None:
    from tradeloom.reporting.charts import Chart, layout

    one = Chart("One", [{"type": "scatter", "x": [1, 2], "y": [3, 4], "name": "a"}], layout(100))
    two = Chart("Two", [{"type": "bar", "x": [1], "y": [2], "name": "b"}] * 2, layout(100))
    data = composed_figure([one, two])["data"]
    assert [t.get("showlegend") for t in data] == [False, None, None]


@pytest.mark.slow
def test_the_figure_in_a_real_browser(
    universe_run: tradeloom.Run, figure: dict[str, Any], tmp_path: Path
) -> None:
    """plotly.js draws every chart without an error; the symbol menu changes the price
    chart alone, the scale menu the equity's axis alone, and a zoom of one time axis
    moves the others."""
    if chromium() is None:
        pytest.skip("Chromium is not installed: the figure was not drawn in a browser")
    page = tmp_path / "figure.html"
    (tmp_path / "plotly.min.js").write_bytes(plotly_js())
    page.write_text(
        "<html><head><script src='plotly.min.js'></script></head><body>"
        "<div id='figure'></div><script>Plotly.newPlot('figure', "
        f"{json.dumps(figure['data'])}, {json.dumps(figure['layout'])})</script></body></html>"
    )
    check = """(async function () {
        var gd = document.getElementById('figure');
        var subplots = gd.querySelectorAll('.cartesianlayer .subplot').length;
        var menus = gd.layout.updatemenus;
        var symbols = menus.filter(function (m) { return m.buttons[0].label === 'BTC/USDT'; })[0];
        var scale = menus.filter(function (m) { return m.buttons[1].label === 'log'; })[0];
        await Plotly.update(gd, ...scale.buttons[1].args);
        await Plotly.restyle(gd, ...symbols.buttons[1].args);
        var full = gd._fullLayout;
        var logs = Object.keys(full).filter(function (k) {
            return /^yaxis[0-9]*$/.test(k) && full[k].type === 'log';
        });
        var shown = gd.data.map(function (t) { return t.visible !== false; });
        var times = Object.keys(full).filter(function (k) {
            return /^xaxis[0-9]*$/.test(k) && full[k].type === 'date';
        });
        var range = full[times[0]].range.slice();
        var zoom = {}; zoom[times[1] + '.range'] = [range[0], '2024-01-05'];
        await Plotly.relayout(gd, zoom);
        full = gd._fullLayout;
        return {subplots: subplots, logs: logs, shown: shown,
                ranges: times.map(function (k) { return String(full[k].range[1]); })};
    })()"""
    seen = visit(
        page,
        check,
        wait_for="document.querySelector('#figure .cartesianlayer') !== null",
        screenshot=ARTIFACTS / "notebook-figure.png",
    )
    assert seen.errors == []
    assert seen.requests == [(tmp_path / "plotly.min.js").as_uri()]  # nothing else
    result = seen.result
    layout, traces = figure["layout"], figure["data"]
    y_axes = [k for k in layout if re.match(r"^yaxis\d*$", k)]
    assert result["subplots"] == len(y_axes)
    scale = next(m for m in layout["updatemenus"] if m["buttons"][1]["label"] == "log")
    equity_axis = traces[scale["buttons"][1]["args"][2][0]]["yaxis"]
    assert result["logs"] == [f"yaxis{equity_axis[1:]}"]
    symbols = next(m for m in layout["updatemenus"] if m["buttons"][0]["label"] == "BTC/USDT")
    visible, price = symbols["buttons"][1]["args"]
    expected = [t.get("visible", True) is not False for t in traces]
    for k, i in enumerate(price):
        expected[i] = visible["visible"][k]
    assert result["shown"] == expected  # ETH/USDT's price traces; every other chart as it was
    assert set(result["ranges"]) == {"2024-01-05"}  # every time axis moved with the zoom
