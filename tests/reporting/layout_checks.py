"""The check that a page's charts are written as plotly's ``go.Layout`` would write them.

`tradeloom.reporting.charts.figure_json` builds each layout in plain dicts
(`tradeloom.reporting.plotly_layout`); plotly's own path (``_plotly_figure_json``) is the
reference. Tests of real reports draw their pages inside `plotly_layouts_checked`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tradeloom.reporting import charts
from tradeloom.reporting.charts import Chart


@contextmanager
def plotly_layouts_checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Check every chart drawn inside the block (`charts.page`): its layout is one
    `plain_layout` vouches for, and its JSON is plotly's path's, byte for byte.

    Yields the titles of the charts checked, in the order they were drawn.
    """
    drawn: list[str] = []
    written = charts.figure_json

    def checked(chart: Chart) -> str:
        text = written(chart)
        assert charts._plain_figure_layout(chart) is not None, (
            f"{chart.title!r} goes through plotly's go.Layout: teach "
            "tradeloom/reporting/plotly_layout.py its properties"
        )
        assert text == charts._plotly_figure_json(chart), chart.title
        drawn.append(chart.title)
        return text

    with monkeypatch.context() as patch:
        patch.setattr(charts, "figure_json", checked)
        yield drawn
