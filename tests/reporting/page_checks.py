"""What the browser tests read from a rendered page: each chart's drawn title and axis
titles, its traces, and what a zoom of one linked chart does to the others.

Everything is read from the SVG that plotly.js drew in headless Chromium, not from the
figures' JSON: a title the shipped plotly.js ignores is not in the SVG.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.reporting.browser import PageVisit, visit

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
"""Screenshots the browser tests leave for a person to look at (ignored by git)."""

RENDERED = (
    "Array.from(document.querySelectorAll('div.chart'))"
    ".every(function (d) { return d.dataset.rendered === 'true'; })"
)

CHARTS = """Array.from(document.querySelectorAll('div.chart')).map(function (div) {
    var titles = {};
    div.querySelectorAll('.infolayer text').forEach(function (t) {
        var m = (t.getAttribute('class') || '').match(/^([xy][0-9]*)title$/);
        if (m && t.textContent.trim()) { titles[m[1]] = t.textContent.trim(); }
    });
    var drawn = {};
    div.querySelectorAll('.cartesianlayer .subplot').forEach(function (sp) {
        var ids = Array.from(sp.classList).filter(function (c) {
            return /^x[0-9]*y[0-9]*$/.test(c);
        })[0];
        if (!ids) { return; }
        var m = ids.match(/^(x[0-9]*)(y[0-9]*)$/);
        ['x', 'y'].forEach(function (letter, i) {
            var layer = '.' + letter + 'axislayer-above .' + letter + 'tick text';
            var labels = sp.querySelectorAll(layer);
            var shown = Array.from(labels).some(function (t) { return t.textContent.trim(); });
            if (shown) { drawn[m[i + 1]] = true; }
        });
    });
    var legend = Array.from(div.querySelectorAll('.legendtext')).map(function (t) {
        return t.textContent;
    });
    var title = div.querySelector('.gtitle');
    return {
        title: div.dataset.title,
        drawnTitle: title ? title.textContent.trim() : '',
        rendered: div.dataset.rendered === 'true',
        linked: div.dataset.linked === 'true',
        axes: Object.keys(drawn).sort(),
        axisTitles: titles,
        legend: legend,
        candles: div.querySelectorAll('.boxlayer .trace path').length,
        bars: div.querySelectorAll('.barlayer .point').length,
        lines: Array.from(div.querySelectorAll('.scatterlayer .trace path.js-line'))
            .filter(function (p) { return (p.getAttribute('d') || '').length > 10; }).length,
        marks: div.querySelectorAll(
            '.scatterlayer path, .barlayer path, .boxlayer path, .hm image, ' +
            '.heatmaplayer image, .parcoords path'
        ).length,
        menus: div.querySelectorAll('.updatemenu-header-group, .updatemenu-button').length,
        width: div.getBoundingClientRect().width,
    };
})"""

ZOOM = """(async function () {
    var linked = Array.from(document.querySelectorAll('div.chart[data-linked=true]'));
    function ticks(div) {
        return Array.from(div.querySelectorAll('.xaxislayer-above .xtick text'))
            .map(function (t) { return t.textContent; }).join('|');
    }
    function ms(value) { return Date.parse(String(value).replace(' ', 'T') + 'Z'); }
    var before = linked.map(ticks);
    var range = linked[0].layout.xaxis.range.map(ms);
    var span = range[1] - range[0];
    var wanted = [range[0] + 0.4 * span, range[0] + 0.5 * span].map(function (t) {
        return new Date(t).toISOString().replace('T', ' ').replace('Z', '');
    });
    await Plotly.relayout(linked[0], {'xaxis.range': wanted});
    // the others follow through the report's relayout handler: wait until each shows the
    // range and has redrawn its ticks (the assertions say which did not, after 20 s)
    function near(div) {
        var shown = div.layout.xaxis.range.map(ms);
        return [0, 1].every(function (i) { return Math.abs(shown[i] - ms(wanted[i])) < 1000; });
    }
    var deadline = Date.now() + 20000;
    while (Date.now() < deadline && !linked.every(function (div, i) {
        return near(div) && ticks(div) !== before[i];
    })) {
        await new Promise(function (done) { setTimeout(done, 50); });
    }
    return {
        titles: linked.map(function (d) { return d.dataset.title; }),
        before: before,
        after: linked.map(ticks),
        wanted: wanted.map(ms),
        ranges: linked.map(function (d) { return d.layout.xaxis.range.map(ms); }),
    };
})()"""


def shared_plotly(report: Path) -> list[str]:
    """Return the requests a report makes: plotly.js from the folder of its run
    directory, nothing else (a ``--single-file`` report makes none)."""
    from tradeloom.reporting.charts import plotly_file

    return [(report.parent.parent / plotly_file()).absolute().as_uri()]


def open_page(page: Path, screenshot: str, check: str = CHARTS) -> PageVisit:
    """Open a page in Chromium once every chart is drawn; run ``check``; save a screenshot."""
    return visit(page, check, wait_for=RENDERED, screenshot=ARTIFACTS / screenshot)


def assert_titled(charts: list[dict[str, Any]]) -> None:
    """Every chart drew its title, every axis drawn with tick labels has its title."""
    assert charts, "no chart on the page"
    for chart in charts:
        name = chart["title"]
        assert chart["rendered"] and chart["width"] > 600, chart
        assert chart["drawnTitle"] == name, f"{name}: drew title {chart['drawnTitle']!r}"
        missing = [a for a in chart["axes"] if a not in chart["axisTitles"]]
        assert not missing, f"{name}: axes {missing} have no title ({chart['axisTitles']})"


def assert_linked_zoom(page: Path, screenshot: str) -> list[str]:
    """Zoom the first linked chart; assert every linked chart shows the same range and
    redrew its time axis. Return the linked charts' titles."""
    seen = open_page(page, screenshot, ZOOM)
    assert seen.errors == []
    zoom = seen.result
    assert len(zoom["titles"]) >= 3, zoom["titles"]
    for title, before, after, shown in zip(
        zoom["titles"], zoom["before"], zoom["after"], zoom["ranges"], strict=True
    ):
        assert after != before, f"{title}: its time axis did not move"
        assert abs(shown[0] - zoom["wanted"][0]) < 1000, (title, shown, zoom["wanted"])
        assert abs(shown[1] - zoom["wanted"][1]) < 1000, (title, shown, zoom["wanted"])
    return list(zoom["titles"])


def by_title(charts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the charts keyed by title."""
    return {c["title"]: c for c in charts}


def page_figures(page: Path) -> dict[str, dict[str, Any]]:
    """Return the page's plotly figures by chart title (as the page draws them)."""
    text = page.read_text(encoding="utf-8")
    titles = re.findall(r"data-title='([^']*)'", text)
    start = text.index("const FIGURES = [") + len("const FIGURES = ")
    end = text.index("];\nconst LINKED", start) + 1
    figures = json.loads(text[start:end].replace("<\\/", "</"))
    return dict(zip(titles, figures, strict=True))
