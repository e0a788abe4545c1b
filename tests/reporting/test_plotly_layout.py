"""A layout built in plain dicts (`plain_layout`) is the JSON plotly's ``go.Layout`` writes,
and what it does not vouch for goes through plotly, which coerces or refuses it as before.

The reports of real runs are checked chart by chart in their own modules
(`tests.reporting.layout_checks`); here, layouts made to reach every rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.charts import (
    Chart,
    _plain_figure_layout,
    _plotly_figure_json,
    figure_json,
    layout,
)
from tradeloom.reporting.plotly_layout import plain_layout

TRACE = {"type": "scatter", "x": np.arange(3), "y": np.ones(3), "name": "a"}
TRACES = [TRACE, {**TRACE, "name": "b"}]


def _plain(fig: dict[str, Any], title: Any = "t") -> str:
    """Return the chart's JSON, having checked it is built in plain dicts and is plotly's."""
    chart = Chart(title, TRACES, fig)
    assert _plain_figure_layout(chart) is not None
    text = figure_json(chart)
    assert text == _plotly_figure_json(chart)
    return text


def _fallback(fig: dict[str, Any], title: Any = "t") -> str:
    """Return the chart's JSON, having checked it goes through plotly's path."""
    chart = Chart(title, TRACES, fig)
    assert _plain_figure_layout(chart) is None
    return figure_json(chart)


_titles = st.one_of(
    st.text(max_size=5),
    st.fixed_dictionaries({"text": st.text(max_size=5)}, optional={"font": st.just({"size": 11})}),
)
_fractions = st.floats(0, 1).map(lambda f: np.float64(f) if f > 0.5 else f)
_times = st.sampled_from(
    [
        np.datetime64("2024-01-02T03:04:05.123456789", "ns"),
        np.datetime64("2024-01-02T03:04", "s"),
        np.datetime64("2024-01-02T03:04:05.123", "ms"),
        np.datetime64("2024-01-02", "m"),
    ]
)
_axes = st.fixed_dictionaries(
    {},
    optional={
        "title": _titles,
        "domain": st.tuples(_fractions, _fractions).map(list),
        "range": st.one_of(st.tuples(_times, _times), st.just(np.array([0.0, 1.0]))).map(list),
        "gridcolor": st.sampled_from(["#e5e5e5", "#FFF"]),
        "tickformat": st.sampled_from([None, ".1%"]),
        "autorange": st.sampled_from(["reversed", True]),
        "type": st.sampled_from(["category", "log", "date"]),
        "anchor": st.sampled_from(["x", "y2", "free", "x domain"]),
        "rangebreaks": st.lists(
            st.just({"bounds": ["2024-01-06T00:00:00", "2024-01-08T00:00:00"]}), max_size=2
        ),
        "zeroline": st.booleans(),
    },
)
_menus = st.lists(
    st.fixed_dictionaries(
        {
            "buttons": st.lists(
                st.fixed_dictionaries(
                    {
                        "label": st.text(max_size=3),
                        "method": st.sampled_from(["update", "restyle"]),
                        "args": st.just([{"y": [np.arange(3.0)]}, {"yaxis.type": "log"}, [0, 1]]),
                    }
                ),
                max_size=2,
            )
        },
        optional={
            "type": st.just("buttons"),
            "active": st.just(0),
            "x": st.just(0.5),
            "pad": st.just({"t": 3, "b": 1}),
        },
    ),
    max_size=2,
)
_shapes = st.lists(
    st.fixed_dictionaries(
        {"type": st.just("line"), "xref": st.just("paper"), "yref": st.sampled_from(["y", "y2"])},
        optional={"y0": _fractions, "line": st.just({"dash": "dash", "color": "#d73027"})},
    ),
    max_size=2,
)


@settings(max_examples=examples(200), deadline=None)
@given(
    st.fixed_dictionaries(
        {"xaxis": _axes, "yaxis": _axes},
        optional={
            "yaxis3": _axes,
            "xaxis2": _axes,
            "yaxis2": _axes,
            "updatemenus": _menus,
            "shapes": _shapes,
            "barmode": st.just("overlay"),
            "showlegend": st.booleans(),
            "margin": st.just({"t": 110, "l": 80}),
            "legend": st.just({"yanchor": "top", "x": np.float64(0.5)}),
        },
    ),
    st.integers(100, 900),
)
def test_a_layout_of_the_properties_it_knows_is_written_as_plotly_writes_it(
    extra: dict[str, Any], height: int
) -> None:
    """Key order (extra axes last, as given), None and empty objects left out, titles as
    ``{"text": ...}``, numpy scalars and datetimes made Python's, the menus placed."""
    _plain(layout(height, **extra))


def test_a_layout_plotly_would_coerce_goes_through_plotly() -> None:
    """A number as an axis title (plotly writes it as text), a colour by name, a key it does
    not know and a title of the layout's own: plotly's path, and plotly's JSON."""
    assert '"title":{"text":"5"}' in _fallback(layout(100, xaxis={"title": 5}))
    assert '"gridcolor":"red"' in _fallback(layout(100, xaxis={"gridcolor": "red"}))
    _fallback(layout(100, annotations=[{"text": "a"}]))
    _fallback(layout(100, title="its own"))
    _fallback(layout(100, yaxis1={"gridcolor": "#fff"}))  # plotly's name for yaxis
    _fallback({"height": 100})  # no margin
    _fallback(layout(100), title=7)


def test_a_layout_plotly_would_refuse_is_still_refused() -> None:
    """A domain past the page (issue 47's 50 symbols) fails as plotly fails it, not written."""
    with pytest.raises(ValueError, match=r"'domain\[1\]' property of layout\.yaxis"):
        _fallback(layout(100, yaxis={"domain": [0.5, 1.0388]}))


@pytest.mark.parametrize(
    "fig",
    [
        {"hovermode": 0},  # plotly's False is not 0
        {"height": True},
        {"height": float("nan")},
        {"xaxis": {"range": [np.datetime64("NaT"), np.datetime64("2024-01-01")]}},
        {"xaxis": {"range": [np.datetime64("2024-01-01", "D"), np.datetime64("2024-01-02")]}},
        {"shapes": [{"line": {"dash": "5px,10px"}}]},
        {"updatemenus": [{"x": 3.5}]},
        {"xaxis": {"title": {"text": "a", "standoff": 3}}},
    ],
)
def test_what_it_cannot_vouch_for_is_left_to_plotly(fig: dict[str, Any]) -> None:
    assert plain_layout(fig) is None
