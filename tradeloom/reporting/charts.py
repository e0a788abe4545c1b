"""The page around plotly charts, shared by report.html, sweep.html and the compare page:
one HTML file with plotly.js embedded, or loading it from a file beside it (`plotly_file`).

Each chart's layout is written as plotly's own `plotly.graph_objects.Layout` writes it, so
that a title given as a string (``yaxis={"title": "equity"}``) reaches the page as the
``{"text": ...}`` object that the shipped plotly.js draws: in plain dicts
(`tradeloom.reporting.plotly_layout`), through ``go.Layout`` itself for what those do not
vouch for. The chart's title is drawn in the figure itself. Charts made with
``link=True`` share their x range: a zoom or pan of one moves the others (``LINKED`` in
the page's script).
"""

from __future__ import annotations

import html
import importlib.util
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tradeloom.reporting.downsample import minmax_indices
from tradeloom.reporting.plotly_layout import plain_layout
from tradeloom.reporting.time_text import json_times
from tradeloom.version import __version__

__all__ = [
    "CSS",
    "Chart",
    "chart_html",
    "escape",
    "figure_json",
    "json_text",
    "json_text_array",
    "json_texts",
    "layout",
    "legend_rows",
    "line",
    "naive_times",
    "page",
    "plotly_file",
    "plotly_js",
    "plotly_json",
]


def plotly_file() -> str:
    """Return the name of the plotly.js file a page may load instead of embedding it
    (``plotly-<plotly.js version>.min.js``: pages drawn by another version do not share it)."""
    return f"plotly-{_plotlyjs_version()}.min.js"


def plotly_js() -> bytes:
    """Return plotly.js, the text of `plotly_file` (about 4.7 MB)."""
    # the file `get_plotlyjs` reads, without its text decoded and encoded again (10 ms)
    folder = _plotly_folder()
    if folder is not None:
        try:
            return (folder / "package_data" / "plotly.min.js").read_bytes()
        except OSError:
            pass
    from plotly.offline import get_plotlyjs

    text: str = get_plotlyjs()
    return text.encode("utf-8")


@cache
def _plotlyjs_version() -> str:
    """plotly.js's version as `plotly.offline.get_plotlyjs_version` returns it: the constant
    of the module it reads it from, read from that module's file where it is one line."""
    folder = _plotly_folder()
    if folder is not None:
        try:
            text = (folder / "offline" / "_plotlyjs_version.py").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        found = re.findall(r'^__plotlyjs_version__ = "([0-9A-Za-z.+-]+)"$', text, re.M)
        if len(found) == 1:
            return str(found[0])
    from plotly.offline import get_plotlyjs_version

    return str(get_plotlyjs_version())


@cache
def _plotly_folder() -> Path | None:
    """The folder of the installed plotly package, found without importing it: a report
    reads two of its files, and ``import plotly`` (with the importlib.metadata its
    ``__init__`` imports for its version) costs a small run more than its report's
    charts."""
    spec = importlib.util.find_spec("plotly")
    places = list(spec.submodule_search_locations or ()) if spec is not None else []
    return Path(places[0]) if len(places) == 1 else None


class Chart:
    """One plotly chart of the page: a title, its traces and layout, and a note.

    Args:
        link: Its x axis (time) zooms and pans with the other linked charts of the page.
    """

    def __init__(
        self,
        title: str,
        data: list[dict[str, Any]],
        layout: dict[str, Any],
        note: str = "",
        *,
        link: bool = False,
    ) -> None:
        self.title = title
        self.data = data
        self.layout = layout
        self.note = note
        self.link = link


_TITLE_PX, _LEGEND_ROW_PX, _MENU_PX = 46, 22, 30
_LEGEND_WIDTH_PX, _ENTRY_PX, _CHAR_PX = 1100, 46, 6.5
"""The legend's rows are estimated from its entries' names: plotly lays a horizontal
legend out in rows of the plot's width, each entry a symbol (~46 px) and its text."""


def legend_rows(chart: Chart) -> int:
    """Return how many rows the chart's legend takes when the page opens (estimated)."""
    if chart.layout.get("showlegend") is False:
        return 0
    shown = [t for t in chart.data if t.get("visible", True) is True]
    if len(shown) == 1 and shown[0].get("showlegend") is not True:
        return 0  # plotly shows no legend for a single trace
    names = dict.fromkeys(
        str(t["name"]) for t in shown if t.get("showlegend") is not False and t.get("name")
    )
    rows, used = (1, 0.0) if names else (0, 0.0)
    for name in names:
        width = _ENTRY_PX + _CHAR_PX * len(name)
        if used and used + width > _LEGEND_WIDTH_PX:
            rows, used = rows + 1, 0.0
        used += width
    return rows


_FLAT = frozenset({str, int, float, bool, type(None)})
"""The types `_compact` returns as they are: a list of only these is copied, not walked."""


def _compact(value: Any) -> Any:
    """Return ``value`` with its time arrays as the page writes them: to the minute (the
    second, when a time has seconds), not numpy's nanoseconds, a third of their length.
    No number is changed: a time is written shorter only when that is exact.

    Every array is made what orjson writes as it is, as plotly's cleaning would make it
    (`to_json_plotly` otherwise walks the whole figure in Python to clean it, for the
    same text): numbers in one piece of memory, times to the minute or second as their
    JSON text (`json_times`), text and other times as lists of text (numpy's, every
    digit: orjson's own cuts nanoseconds to microseconds)."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if _FLAT.issuperset(map(type, value)):  # a trade's hover texts: nothing to compact
            return list(value)
        return [_compact(v) for v in value]
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.kind in "biuf":
        return np.ascontiguousarray(value)
    if value.dtype.kind != "M":
        return value.tolist() if value.dtype.kind in "OU" else value
    if not np.isnat(value).any():
        for unit in ("m", "s"):
            if np.array_equal(value.astype(f"datetime64[{unit}]"), value):
                text = json_times(value, unit)
                return np.datetime_as_string(value, unit=unit).tolist() if text is None else text
    return np.datetime_as_string(value).tolist()


def figure_json(chart: Chart) -> str:
    """Return the chart as plotly JSON: its layout as plotly's ``go.Layout`` normalises it
    (`plain_layout`, or plotly's own path for what that does not vouch for), the chart's
    title drawn in the figure, room made above the plot; its arrays compacted (`_compact`)."""
    layout = _plain_figure_layout(chart)
    if layout is None:
        return _plotly_figure_json(chart)
    return plotly_json({"data": _compact(chart.data), "layout": layout})


_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
"""The options of plotly's orjson engine (`plotly.io.json.to_json_plotly`)."""


def plotly_json(figure: dict[str, Any]) -> str:
    """Return ``figure`` as plotly's ``to_json_plotly`` writes it with its orjson engine
    (its default where orjson is installed, as tradeloom needs), every < written
    \\u003c (`_SAFE`): no "</" ends the page's script early.

    Written here, not by plotly: importing ``plotly.io`` imports narwhals and PIL, 40 ms
    of CPU of each run that draws a report. What orjson cannot write as it is goes
    through plotly's own cleaning. ``_plotly_figure_json``, plotly's path, is the
    reference the tests hold this to, byte for byte.
    """
    try:
        text = orjson.dumps(figure, option=_ORJSON).decode("utf-8")
    except TypeError:  # an object orjson does not know: plotly cleans it first
        from plotly.io.json import to_json_plotly

        return str(to_json_plotly(figure, engine="orjson"))
    for char, escaped in _SAFE:
        if char in text:
            text = text.replace(char, escaped)
    return text


def _title(text: str) -> dict[str, Any]:
    """Return the chart's title as drawn in the figure (at the top left, above the legend),
    its keys in the order plotly writes them."""
    return {
        "font": {"size": 15},
        "pad": {"t": 12},
        "text": text,
        "x": 0.0,
        "xanchor": "left",
        "y": 1.0,
        "yanchor": "top",
        "yref": "container",
    }


def _top(rows: int, menus: bool) -> int:
    """Return the top margin that holds the title, the legend's ``rows`` and the menus."""
    return _TITLE_PX + _LEGEND_ROW_PX * rows + (_MENU_PX if menus else 0)


def _plain_figure_layout(chart: Chart) -> dict[str, Any] | None:
    """Return the layout `_plotly_figure_json` writes, built in plain dicts, or None when
    the chart's layout needs plotly's path (`plain_layout`, a title given in the layout, no
    margin) or its title is not a string."""
    layout = plain_layout(_compact(chart.layout))
    if layout is None or "margin" not in layout or type(chart.title) is not str:
        return None
    layout["title"] = _title(chart.title)  # set after the others: plotly writes it last
    # the legend sits between the title and the plot: make room for its rows
    rows = legend_rows(chart)
    menus = layout.get("updatemenus", [])
    margin = layout["margin"]  # a dict's new key comes last, as plotly's does
    margin["t"] = max(margin.get("t") or 0, _top(rows, bool(menus)))
    for menu in menus:  # above the legend, at the right
        menu.update(x=1.0, xanchor="right", y=1.0, yanchor="bottom")
        menu["pad"] = {"b": _LEGEND_ROW_PX * rows + 4}
    return layout


def _plotly_figure_json(chart: Chart) -> str:
    """Return `figure_json` of the chart through plotly's ``go.Layout`` and
    ``to_json_plotly``: the reference `_plain_figure_layout` and `plotly_json` match, and
    the path of a layout they do not vouch for."""
    import plotly.graph_objects as go
    from plotly.io.json import to_json_plotly

    checked = go.Layout(_compact(chart.layout))
    checked.title = _title(chart.title)
    # the legend sits between the title and the plot: make room for its rows
    rows = legend_rows(chart)
    checked.margin.t = max(checked.margin.t or 0, _top(rows, bool(checked.updatemenus)))
    for menu in checked.updatemenus:  # above the legend, at the right
        menu.update(x=1.0, xanchor="right", y=1.0, yanchor="bottom")
        menu.pad = {"b": _LEGEND_ROW_PX * rows + 4}
    figure = {"data": _compact(chart.data), "layout": checked.to_plotly_json()}
    # plotly writes every < as \u003c: no "</" ends the page's script early
    return str(to_json_plotly(figure))


_SAFE = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("/", "\\u002f"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)
"""The characters plotly's JSON escapes to keep a page's script whole (`to_json_plotly`)."""


def json_text(text: str) -> str:
    """Return ``text`` as the inside of a JSON string as `figure_json` writes it (plotly
    escapes <, >, / and the line separators), for `json_texts`."""
    inside = orjson.dumps(text).decode("utf-8")[1:-1]
    for char, escaped in _SAFE:
        if char in inside:
            inside = inside.replace(char, escaped)
    return inside


def json_texts(insides: Sequence[str]) -> orjson.Fragment:
    """Return the JSON array of the texts whose insides (`json_text`) are given, for
    orjson to write as it is: a trace's texts made of a few parts each escaped once,
    rather than every text escaped in the figure's JSON (a long run's hover texts: tens
    of thousands of "<br>")."""
    if not insides:
        return orjson.Fragment(b"[]")
    return orjson.Fragment(('["' + '","'.join(insides) + '"]').encode("utf-8"))


def json_text_array(insides: pa.StringArray) -> orjson.Fragment:
    """Return `json_texts` of an Arrow array of insides: joined in Arrow, without a Python
    string each."""
    if not len(insides):
        return orjson.Fragment(b"[]")
    whole = pa.ListArray.from_arrays(pa.array([0, len(insides)], pa.int32()), insides)
    joined = pc.binary_join(whole, '","')[0].as_buffer()
    return orjson.Fragment(b'["' + joined.to_pybytes() + b'"]')


REPORT_REMEDY = (
    "Run tradeloom report RUN_DIR again, or tradeloom report RUN_DIR --single-file for a "
    "page that stands alone."
)


def page(
    title: str,
    body: Sequence[str],
    charts: Sequence[Chart],
    *,
    plotly_src: str | None = None,
    remedy: str = REPORT_REMEDY,
) -> str:
    """Return a full HTML page with ``charts`` drawn into their divs.

    Args:
        plotly_src: The relative URL of plotly.js (`plotly_file`) for the page to load;
            None embeds plotly.js in the page, which then stands alone.
        remedy: What the page says to do when it cannot load plotly.js (the command
            that writes it again).

    Each chart's div is ``<div class="chart" id="chart-<i>">``, numbered as in ``charts``;
    once drawn, it gets ``data-rendered="true"`` (the browser test waits for it).
    """
    figures = ",".join(figure_json(c) for c in charts)
    linked = [i for i, c in enumerate(charts) if c.link]
    script = "const FIGURES = [" + figures + "];\nconst LINKED = " + str(linked) + ";\n" + _SCRIPT
    if plotly_src is None:
        plotly = f"<script>{plotly_js().decode('utf-8')}</script>"
    else:  # a page that cannot load it says so, instead of staying blank
        missing = (
            "document.body.insertAdjacentHTML('afterbegin', \"<div class='alert'>"
            f"{escape(plotly_src)} is missing: the charts cannot be drawn. "
            f'{escape(remedy)}</div>")'
        )
        plotly = (
            f"<script src='{escape(plotly_src)}'></script>"
            f"<script>if (typeof Plotly === 'undefined') {{ window.addEventListener("
            f"'DOMContentLoaded', function () {{ {missing}; }}); }}</script>"
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{CSS}</style>"
        f"{plotly}</head><body>\n"
        + "\n".join(body)
        + f"\n<p class='foot'>tradeloom {escape(__version__)}</p>"
        + f"\n<script>{script}</script></body></html>\n"
    )


_SCRIPT = """\
var syncing = false;
function xRange(update) {
  for (var key in update) {
    var m = key.match(/^xaxis[0-9]*\\.(range|autorange)/);
    if (!m) continue;
    if (m[1] === 'autorange') return {'xaxis.autorange': true};
    var axis = key.split('.')[0];
    if (update[axis + '.range']) return {'xaxis.range': update[axis + '.range'].slice()};
    if (update[axis + '.range[0]'] !== undefined) {
      return {'xaxis.range': [update[axis + '.range[0]'], update[axis + '.range[1]']]};
    }
  }
  return null;
}
FIGURES.forEach(function (fig, i) {
  var div = document.getElementById('chart-' + i);
  Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false})
    .then(function () {
      div.setAttribute('data-rendered', 'true');
      if (LINKED.indexOf(i) < 0) return;
      div.on('plotly_relayout', function (update) {
        var range = xRange(update);
        if (syncing || !range) return;
        syncing = true;
        Promise.all(LINKED.filter(function (j) { return j !== i; }).map(function (j) {
          return Plotly.relayout(document.getElementById('chart-' + j), range);
        })).then(function () { syncing = false; }, function () { syncing = false; });
      });
    });
});
"""


def chart_html(i: int, chart: Chart) -> str:
    """Return the chart's section: its note and the div it is drawn into."""
    note = f"<p class='note'>{escape(chart.note)}</p>" if chart.note else ""
    linked = " data-linked='true'" if chart.link else ""
    return (
        f"<section><div class='chart' id='chart-{i}' "
        f"data-title='{escape(chart.title)}'{linked}></div>{note}</section>"
    )


def layout(height: int, **extra: Any) -> dict[str, Any]:
    """Return a chart's layout: the page's look, then ``extra`` (titles as strings or dicts).

    The top margin leaves room for the chart's title, its legend and plotly's toolbar
    above the plotting area, so that the toolbar never covers a heatmap's cells.
    """
    out: dict[str, Any] = {
        "height": height + 60,
        "margin": {"l": 80, "r": 20, "t": 50, "b": 50},
        "hovermode": "closest",
        "plot_bgcolor": "#fbfbfb",
        "paper_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
        "xaxis": {"gridcolor": "#e5e5e5"},
        "yaxis": {"gridcolor": "#e5e5e5"},
    }
    out.update(extra)
    return out


def naive_times(frame: pd.DataFrame) -> np.ndarray:
    """Return the timestamps as naive UTC datetime64 (shorter in the page than with +00:00)."""
    stamps = frame["timestamp"]
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # its UTC instants, seen without a copy
        return np.asarray(stamps.array.asi8.view(f"datetime64[{stamps.dtype.unit}]"))
    return np.asarray(stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())


def line(x: np.ndarray, y: np.ndarray, name: str, color: str, **extra: Any) -> dict[str, Any]:
    keep = minmax_indices(y)
    trace = {
        "type": "scatter",
        "mode": "lines",
        "x": x[keep],
        "y": y[keep],
        "name": name,
        "line": {"color": color, "width": 1.2},
    }
    trace.update(extra)
    return trace


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1280px;padding:16px 24px;color:#222;background:#fff}
h1{margin:8px 0 0;font-size:24px}h2{font-size:17px;margin:24px 0 6px;color:#333}
.sub{color:#666;margin:2px 0 12px}.note{color:#777;font-size:13px;margin:2px 0 6px}
.alert{background:#fff4e5;border-left:4px solid #fd8d3c;padding:8px 12px;margin:8px 0}
.halted{background:#d73027;color:#fff;padding:10px 14px;margin:8px 0;font-size:15px;
border-radius:3px}.halted code{color:#fff;font-weight:600}
.filters label{margin-right:14px;font-size:13px;color:#444}
.stats table.drawdowns td,.stats table.drawdowns th{padding:2px 8px;text-align:right}
.stats{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.stats table{border-collapse:collapse;min-width:300px}
.stats caption{text-align:left;font-weight:600;padding:4px 0;color:#444}
.stats th{text-align:left;font-weight:400;color:#555;padding:2px 16px 2px 0}
.stats td{text-align:right;font-variant-numeric:tabular-nums;padding:2px 0}
.scroll{max-height:480px;overflow:auto;border:1px solid #eee}
table.trades{border-collapse:collapse;font-size:13px;width:100%}
table.trades th{position:sticky;top:0;background:#f5f5f5;text-align:right;padding:4px 8px}
table.trades td{text-align:right;padding:2px 8px;font-variant-numeric:tabular-nums;
border-top:1px solid #f0f0f0}
table.trades th.group,table.trades tr th:first-child{text-align:left}
table.execution{border-collapse:collapse;font-size:13px;width:100%}
table.execution th{background:#f5f5f5;text-align:right;padding:4px 8px}
table.execution td{text-align:right;padding:2px 8px;font-variant-numeric:tabular-nums;
border-top:1px solid #f0f0f0}
table.execution td:nth-child(-n+2),table.execution th:nth-child(-n+2){text-align:left}
table.execution tr.total td{font-weight:600}
table.refusals{border-collapse:collapse;font-size:13px;width:100%}
table.refusals th{position:sticky;top:0;background:#f5f5f5;text-align:right;padding:4px 8px}
table.refusals td{text-align:right;padding:2px 8px;font-variant-numeric:tabular-nums;
border-top:1px solid #f0f0f0}
table.refusals td:nth-child(-n+2),table.refusals th:nth-child(-n+2){text-align:left}
.exit{background:#fff4e5}.exit.protective{background:#fde0dd;font-weight:600}
.pos{color:#1a9850}.neg{color:#d73027}.idle{color:#888;font-style:italic}.foot{color:#aaa;font-size:12px;margin-top:24px}
"""
