"""A run's report charts as one plotly figure, for a notebook's cell (`tradeloom.Run.plot`).

The report draws each chart as a figure of its own (`tradeloom.reporting.report`); a cell
shows one figure. `composed_figure` stacks the charts the report drew, in the order given,
into one, each as the page draws it (`figure_json`): its own axes (the report's stacked
panels, equity over drawdown over exposure, keep their one time axis), its title, its
legend under the title (plotly's ``legend2``, ``legend3``...), its menus and its note
under it; the time axes zoom and pan together, as the page's linked charts do. The
traces are the report's own, thinned for display as the report thins them
(`tradeloom.reporting.downsample`): no number is changed.

plotly's ``make_subplots`` lays out a grid of one x and one y axis per cell; a report
chart's panels are several y axes over one x axis (their ``domain``), which its grid
cannot hold, so the axes are laid out here, from each chart's heights in pixels.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from tradeloom.errors import UserError
from tradeloom.reporting.charts import Chart, figure_json, legend_rows
from tradeloom.reporting.report import PANELS
from tradeloom.suggestions import did_you_mean

__all__ = ["LAID_OUT", "chosen_panels", "composed_figure", "panel_figure"]

_EDGE_PX = 10
"""The figure's margin above its first chart and below its last."""

_NOTE_LINE_PX, _NOTE_CHARS, _NOTE_FONT, _NOTE_GAP_PX = 16, 110, 12, 16
"""A note's lines under its chart: ~6.5 px a character at 12 px, within a notebook's
narrower plots (~800 px); below the axis's title, which two-line ticks (a day and its
year) push down."""

_TITLE_PAD_PX = 12
_NARROW_PLOT_PX = 800
"""The plot width a chart's wider left margin (the timeline's event names) is reckoned
against: a notebook's cell is narrower than the page."""

_AXIS = re.compile(r"^([xy])axis(\d*)$")
_REF = re.compile(r"^([xy]\d*)( domain)?$")
_BARS = frozenset({"bar", "histogram"})
_SCALES = frozenset({"heatmap", "contour", "histogram2d"})

LAID_OUT = frozenset(
    {
        "height",
        "margin",
        "title",
        "legend",
        "showlegend",
        "updatemenus",
        "shapes",
        "annotations",
        "barmode",
        "hovermode",
        "plot_bgcolor",
        "paper_bgcolor",
    }
)
"""The layout keys (besides axes) a chart may have that `composed_figure` places; the
tests hold every chart of the report to them."""

_SHARED = ("hovermode", "plot_bgcolor", "paper_bgcolor")
"""Layout keys every chart of the report sets alike (`tradeloom.reporting.charts.layout`):
the first chart's are the figure's."""


def chosen_panels(panels: Mapping[str, Chart], panel: str | Sequence[str] | None) -> list[str]:
    """Return the names of the panels ``panel`` asks for (None: every one drawn).

    Args:
        panels: A run's charts by name (`tradeloom.reporting.report.report_panels`).
        panel: A panel's name, a sequence of names, or None.

    Raises:
        UserError: Not a panel's name, a panel the run does not draw, or no panel.
    """
    drawn = [name for name, chart in panels.items() if chart.data]
    if panel is None:
        return drawn
    listed = f"this run draws {', '.join(drawn)}"
    if not isinstance(panel, str | Sequence):
        raise UserError(f"panel: expected a panel's name or a list of names, was {panel!r}")
    names = [panel] if isinstance(panel, str) else list(panel)
    if not names:
        raise UserError(f"panel: no panel given; {listed}")
    for name in names:
        if not isinstance(name, str) or name not in PANELS:
            hint = did_you_mean(name, PANELS)
            raise UserError(f"panel: no panel {name!r}{hint}; {listed}")
        if name not in panels:
            raise UserError(f"panel: this run has no {name} chart; it draws {', '.join(drawn)}")
        if not panels[name].data:
            note = panels[name].note
            raise UserError(f"panel: {name} is not drawn: {note}; it draws {', '.join(drawn)}")
    return names


def panel_figure(chart: Chart) -> dict[str, Any]:
    """Return one chart as the report's page draws it (``data`` and ``layout``)."""
    figure: dict[str, Any] = orjson.loads(figure_json(chart))
    return figure


@dataclass(frozen=True)
class _Band:
    """Where a chart sits in the figure, in pixels from the bottom of its plotting area
    (the figure less its edges): the top of its title, its plot's top and bottom, and the
    bottom of its note."""

    top: float
    plot_top: float
    plot_bottom: float
    bottom: float


def composed_figure(charts: Sequence[Chart]) -> dict[str, Any]:
    """Return the charts stacked into one figure (``data`` and ``layout``), top to bottom.

    Args:
        charts: Charts with data (`Chart.data`), as the report drew them.
    """
    figures = [panel_figure(chart) for chart in charts]
    notes = [textwrap.wrap(chart.note, _NOTE_CHARS) for chart in charts]
    left = min(int(f["layout"]["margin"]["l"]) for f in figures)
    right = max(int(f["layout"]["margin"]["r"]) for f in figures)
    bands: list[_Band] = []
    heights = [
        float(f["layout"]["height"]) + (_NOTE_GAP_PX + _NOTE_LINE_PX * len(lines) if lines else 0)
        for f, lines in zip(figures, notes, strict=True)
    ]
    top = total = sum(heights)
    for figure, height in zip(figures, heights, strict=True):
        margin = figure["layout"]["margin"]
        plot_top = top - float(margin["t"])
        plot_bottom = plot_top - (float(figure["layout"]["height"]) - margin["t"] - margin["b"])
        bands.append(_Band(top, plot_top, plot_bottom, top - height))
        top -= height
    first = figures[0]["layout"]
    layout: dict[str, Any] = {
        "height": round(total) + 2 * _EDGE_PX,
        "margin": {"l": left, "r": right, "t": _EDGE_PX, "b": _EDGE_PX},
        **{key: first[key] for key in _SHARED if key in first},
        "annotations": [],
        "shapes": [],
        "updatemenus": [],
    }
    data: list[dict[str, Any]] = []
    counts = {"x": 0, "y": 0}
    linked: str | None = None
    times: list[np.ndarray] = []
    for i, (chart, figure, band, lines) in enumerate(
        zip(charts, figures, bands, notes, strict=True)
    ):
        place = _Place(band, total, left)
        names = _axis_names(figure["layout"], counts)
        if chart.link:  # the time axes zoom and pan together
            linked = linked or names["x"]
        legend = "legend" if i == 0 else f"legend{i + 1}"
        _place_axes(layout, figure["layout"], names, place, linked if chart.link else None)
        shown = legend_rows(chart) > 0
        overlay = figure["layout"].get("barmode") == "overlay"
        offset = len(data)
        if chart.link:
            times.extend(_times(trace) for trace in figure["data"])
        for trace in figure["data"]:
            data.append(_trace(trace, names, legend, shown, f"panel-{i}" if overlay else None))
            if trace.get("type") in _SCALES and trace.get("showscale") is not False:
                data[-1]["colorbar"] = {**trace.get("colorbar", {}), **place.colorbar()}
        layout[legend] = {
            **figure["layout"].get("legend", {}),
            "x": 0,
            "y": place.fraction(band.plot_top),
            "yanchor": "bottom",
            "yref": "paper",
        }
        layout["annotations"].append(place.title(chart.title))
        if lines:
            layout["annotations"].append(place.note(lines))
        for item in figure["layout"].get("annotations", []):
            layout["annotations"].append(place.reference(item, names))
        for item in figure["layout"].get("shapes", []):
            layout["shapes"].append(place.reference(item, names))
        for menu in figure["layout"].get("updatemenus", []):
            layout["updatemenus"].append(
                _menu(menu, names, range(offset, len(data)), place.fraction(band.plot_top))
            )
    if linked is not None:
        _span(layout, linked, times)
    return {"data": data, "layout": layout}


def _times(trace: Mapping[str, Any]) -> np.ndarray:
    """Return a time axis trace's x as times (none: no x, or not times)."""
    try:
        return np.asarray(trace.get("x") or [], dtype="datetime64[ns]")
    except (TypeError, ValueError):
        return np.empty(0, dtype="datetime64[ns]")


def _span(layout: dict[str, Any], linked: str, times: Sequence[np.ndarray]) -> None:
    """Set the linked time axes' range to the first and last time drawn on them.

    Each autoranged alone, as on the page; matched, they would take the widest: the
    price chart's trade markers pad its range by weeks past the last bar.
    """
    drawn = np.concatenate([t[~np.isnat(t)] for t in times]) if times else np.empty(0)
    if not len(drawn):
        return
    # to the millisecond: the most plotly.js reads of a date
    span = [np.datetime_as_string(t, unit="ms") for t in (drawn.min(), drawn.max())]
    for key, axis in layout.items():
        if _AXIS.match(key) and key.startswith("x") and axis.get("matches") == linked:
            axis.pop("range", None)
    layout[_layout_key(linked)]["range"] = span


class _Place:
    """A chart's band of the figure, and how its positions become the figure's."""

    def __init__(self, band: _Band, total: float, left: int) -> None:
        self.band = band
        self.total = total
        self.left = left

    def fraction(self, px: float) -> float:
        """Return a height in pixels from the bottom as a fraction of the plotting area."""
        return min(1.0, max(0.0, px / self.total))

    def y_domain(self, domain: Sequence[float]) -> list[float]:
        """Return a fraction of the chart's plot (an axis's ``domain``) in the figure's."""
        low, high = self.band.plot_bottom, self.band.plot_top
        return [self.fraction(low + (high - low) * float(d)) for d in domain]

    def x_domain(self, domain: Sequence[float], margin_left: float) -> list[float]:
        """Return an x ``domain`` of a chart whose left margin is ``margin_left`` (wider
        than the figure's: the room its axis's labels take)."""
        start = min(0.5, max(0.0, (margin_left - self.left) / _NARROW_PLOT_PX))
        return [start + (1.0 - start) * float(d) for d in domain]

    def colorbar(self) -> dict[str, Any]:
        """Return a colour bar's place: beside the chart's plot, its height."""
        low, high = self.band.plot_bottom, self.band.plot_top
        return {
            "y": self.fraction((low + high) / 2),
            "yanchor": "middle",
            "len": (high - low) / self.total,
            "lenmode": "fraction",
        }

    def title(self, text: str) -> dict[str, Any]:
        """Return the chart's title, at the top left of its band."""
        return {
            "text": text,
            "font": {"size": 15},
            "showarrow": False,
            "x": 0,
            "xanchor": "left",
            "xref": "paper",
            "y": self.fraction(self.band.top - _TITLE_PAD_PX),
            "yanchor": "top",
            "yref": "paper",
        }

    def note(self, lines: Sequence[str]) -> dict[str, Any]:
        """Return the chart's note, under it, as the page writes it."""
        return {
            "text": "<br>".join(lines),
            "align": "left",
            "font": {"size": _NOTE_FONT, "color": "#777777"},
            "showarrow": False,
            "x": 0,
            "xanchor": "left",
            "xref": "paper",
            "y": self.fraction(self.band.bottom),
            "yanchor": "bottom",
            "yref": "paper",
        }

    def reference(self, item: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
        """Return a shape or an annotation of the chart on the figure's axes: a position
        on the chart's ``paper`` on its axes' domain (x) or its band (y)."""
        out = dict(item)
        for letter in "xy":
            key = f"{letter}ref"
            ref = str(item.get(key, "paper"))
            if ref == "paper" and letter == "x":
                out[key] = f"{names['x']} domain"
            elif ref == "paper":
                low, high = self.band.plot_bottom, self.band.plot_top
                for end in ("y", "y0", "y1"):
                    if isinstance(item.get(end), int | float):
                        out[end] = self.fraction(low + (high - low) * float(item[end]))
            else:
                out[key] = _renamed(ref, names)
        return out


def _axis_names(layout: Mapping[str, Any], counts: dict[str, int]) -> dict[str, str]:
    """Return the figure's axis (``x3``, ``y7``) of each of a chart's (``x``, ``y2``),
    numbering on from ``counts``."""
    found = {("x", ""), ("y", "")}
    found |= {(m.group(1), m.group(2)) for m in map(_AXIS.match, layout) if m is not None}
    names = {}
    for letter, number in sorted(found, key=lambda a: (a[0], int(a[1] or 1))):
        counts[letter] += 1
        names[f"{letter}{number}"] = f"{letter}{counts[letter] if counts[letter] > 1 else ''}"
    return names


def _renamed(ref: str, names: Mapping[str, str]) -> str:
    """Return an axis reference (``y2``, ``x domain``) on the figure's axes."""
    match = _REF.match(ref)
    if match is None or match.group(1) not in names:
        return ref
    return names[match.group(1)] + (match.group(2) or "")


def _layout_key(ref: str) -> str:
    """Return an axis's layout key: ``x`` -> ``xaxis``, ``y3`` -> ``yaxis3``."""
    return f"{ref[0]}axis{ref[1:]}"


def _place_axes(
    layout: dict[str, Any],
    chart: Mapping[str, Any],
    names: Mapping[str, str],
    place: _Place,
    linked: str | None,
) -> None:
    """Add a chart's axes to the figure's ``layout``: renamed, in its band, anchored to
    its own axes; its time axis matching ``linked``'s (None: its own)."""
    margin_left = float(chart["margin"]["l"])
    for old, new in names.items():
        axis = dict(chart.get(_layout_key(old), {}))
        for key in ("anchor", "overlaying", "matches", "scaleanchor"):
            if isinstance(axis.get(key), str):
                axis[key] = _renamed(axis[key], names)
        if old.startswith("x"):
            axis.setdefault("anchor", names["y"])
            axis["domain"] = place.x_domain(axis.get("domain", (0.0, 1.0)), margin_left)
            if linked is not None and new != linked and old == "x":
                axis["matches"] = linked
        else:
            axis.setdefault("anchor", names["x"])
            axis["domain"] = place.y_domain(axis.get("domain", (0.0, 1.0)))
        layout[_layout_key(new)] = axis


def _trace(
    trace: Mapping[str, Any],
    names: Mapping[str, str],
    legend: str,
    shown: bool,
    overlay: str | None,
) -> dict[str, Any]:
    """Return a chart's trace on the figure's axes and in the chart's legend."""
    out = dict(trace)
    out["xaxis"] = names[str(trace.get("xaxis", "x"))]
    out["yaxis"] = names[str(trace.get("yaxis", "y"))]
    out["legend"] = legend
    if not shown:  # the page shows no legend for this chart (one trace, or none asked)
        out["showlegend"] = False
    if overlay is not None and trace.get("type") in _BARS:
        out["offsetgroup"] = overlay  # one place per bin: the chart's barmode overlay
    return out


def _menu(
    menu: Mapping[str, Any], names: Mapping[str, str], traces: range, y: float
) -> dict[str, Any]:
    """Return a chart's menu acting on its own traces and axes, above its plot at the
    right."""
    buttons = []
    for button in menu.get("buttons", []):
        args = list(button.get("args", []))
        method = button.get("method")
        if method in ("restyle", "update"):
            at = 1 if method == "restyle" else 2
            given = args[at] if len(args) > at and args[at] is not None else None
            if isinstance(given, int):
                given = [given]
            while len(args) <= at:
                args.append({})
            args[at] = list(traces) if given is None else [traces[k] for k in given]
        if method == "update":
            args[1] = {_renamed_key(k, names): v for k, v in args[1].items()}
        if method == "relayout":
            args[0] = {_renamed_key(k, names): v for k, v in args[0].items()}
        buttons.append({**button, "args": args})
    return {**menu, "buttons": buttons, "x": 1.0, "xanchor": "right", "y": y, "yanchor": "bottom"}


def _renamed_key(key: str, names: Mapping[str, str]) -> str:
    """Return a relayout key (``yaxis.type``) on the figure's axes (``yaxis4.type``)."""
    head, dot, rest = key.partition(".")
    match = _AXIS.match(head)
    if match is None:
        return key
    old = match.group(1) + match.group(2)
    return _layout_key(names.get(old, old)) + dot + rest
