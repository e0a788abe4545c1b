"""A chart's layout as plotly's ``go.Layout(...).to_plotly_json()`` writes it, in plain dicts.

Building a ``plotly.graph_objects.Layout`` runs about a hundred and fifty validators, sets
each property through plotly's object model and deep-copies the result: ~4 ms of CPU a
chart, ~30 ms a report, whatever the run's size (issue 47). What it does to the layouts
tradeloom builds is small and fixed, and is written here:

- each object's keys come out in the order plotly's class sets its properties (the
  ``_ORDER`` tuples below, copied from plotly 7's generated ``__init__``), then a
  layout's extra axes (``xaxis2``, ``yaxis3``, ...) in the order they were given;
- a key whose value is None is left out;
- an axis title given as a string becomes ``{"text": ...}``;
- the items of an info array (``domain``, ``range``, a rangebreak's ``bounds``, a
  button's ``args``) become Python scalars and lists (numpy's ``datetime64`` a
  ``datetime``, as plotly's ``to_scalar_or_list`` makes them).

Only what this module knows is vouched for: a key it does not list, a value plotly
would coerce (a number given as a title's text) or refuse (a domain past 1, an unknown
enumerated value, a colour that is not ``#rgb`` or ``#rrggbb``) makes `plain_layout`
return None, and the chart goes through plotly's own path, which coerces or refuses it
as it always did. tests/reporting/test_plotly_layout.py compares both paths on every
chart of real reports.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["plain_layout"]


class _Unvouched(Exception):
    """A value this module cannot vouch plotly would keep as it is."""


_Check = Callable[[Any], Any]


def _number(low: float | None = None, high: float | None = None) -> _Check:
    def check(value: Any) -> Any:
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
            raise _Unvouched
        if not math.isfinite(value):
            raise _Unvouched
        if (low is not None and value < low) or (high is not None and value > high):
            raise _Unvouched
        return value

    return check


def _integer(low: int) -> _Check:
    def check(value: Any) -> Any:
        if type(value) is not int or value < low:
            raise _Unvouched
        return value

    return check


def _enum(*values: Any) -> _Check:
    def check(value: Any) -> Any:
        # by type too: plotly's False is not 0
        if not any(type(value) is type(v) and value == v for v in values):
            raise _Unvouched
        return value

    return check


def _matching(pattern: str, *values: str) -> _Check:
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if type(value) is not str or (value not in values and not compiled.fullmatch(value)):
            raise _Unvouched
        return value

    return check


def _boolean(value: Any) -> Any:
    if type(value) is not bool:
        raise _Unvouched
    return value


def _string(value: Any) -> Any:
    if type(value) is not str:  # plotly would write a number as its text
        raise _Unvouched
    return value


_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def _color(value: Any) -> Any:
    if type(value) is not str or not _HEX.fullmatch(value):
        raise _Unvouched
    return value


def _anything(value: Any) -> Any:
    return value  # plotly's "any": kept as it is


def _scalar_or_list(value: Any) -> Any:
    """Return ``value`` as plotly's ``to_scalar_or_list`` makes an info array's items."""
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            if value.dtype == np.dtype("datetime64[ns]"):
                value = value.astype("datetime64[us]")
            if np.isnat(value) or np.datetime_data(value.dtype)[0] not in _DATE_UNITS:
                raise _Unvouched  # .item() would be None, an int or a date
        return value.item()
    if isinstance(value, list | tuple):
        return [_scalar_or_list(v) for v in value]
    if isinstance(value, np.ndarray):  # each item a numpy scalar, as plotly walks it
        if value.ndim == 0:
            return _scalar_or_list(value[()])
        return [_scalar_or_list(v) for v in value]
    if isinstance(value, dict | str | int | float | type(None)):
        return value
    raise _Unvouched


_DATE_UNITS = frozenset({"h", "m", "s", "ms", "us"})
"""The units whose ``datetime64.item()`` is a ``datetime`` (ns is made us first)."""


def _info_array(length: int, item: _Check, *, free: bool = False) -> _Check:
    def check(value: Any) -> Any:
        if not isinstance(value, list | tuple | np.ndarray):
            raise _Unvouched
        items = _scalar_or_list(value)
        if (len(items) > length) if free else (len(items) != length):
            raise _Unvouched
        return [item(i) for i in items]

    return check


class _Compound:
    """The check of a plotly object or array of objects: plotly leaves an empty one out."""

    def __init__(self, check: _Check) -> None:
        self.check = check

    def __call__(self, value: Any) -> Any:
        return self.check(value)


def _fields(value: dict[str, Any], props: dict[str, _Check]) -> dict[str, Any]:
    """Return the known properties of ``value`` checked, in ``props``' order, without the
    None ones and the empty objects, as plotly keeps them."""
    out = {}
    for key, check in props.items():
        if value.get(key) is None:
            continue
        checked = check(value[key])
        if not isinstance(check, _Compound) or checked:
            out[key] = checked
    return out


def _object(props: dict[str, _Check]) -> _Compound:
    """Return the check of a plotly object: its known properties, in ``props``' order."""

    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not value.keys() <= props.keys():
            raise _Unvouched
        return _fields(value, props)

    return _Compound(check)


def _objects(item: _Compound) -> _Compound:
    def check(value: Any) -> list[dict[str, Any]]:
        if not isinstance(value, list | tuple):
            raise _Unvouched
        return [item(v) for v in value]  # an empty object in an array is kept

    return _Compound(check)


def _title_of(font: _Compound) -> _Compound:
    title = _object({"font": font, "text": _string})
    return _Compound(lambda value: title({"text": value} if type(value) is str else value))


_ANCHOR = r"(?:x|y)(?:[2-9]|[1-9][0-9]+)?(?: domain)?"
_FONT = _object({"color": _color, "size": _number(1)})


def _axis(*, x: bool) -> _Check:
    """Return the check of an x (with its range slider) or a y axis."""
    props: dict[str, _Check] = {
        "anchor": _matching(_ANCHOR, "free"),
        "automargin": _boolean,
        "autorange": _enum(True, False, "reversed", "min reversed", "max reversed", "min", "max"),
        "domain": _info_array(2, _number(0, 1)),
        "gridcolor": _color,
        "range": _info_array(2, _anything),
        "rangebreaks": _objects(_object({"bounds": _info_array(2, _anything)})),
        "rangeslider": _object({"visible": _boolean}),
        "tickformat": _string,
        "title": _title_of(_FONT),
        "type": _enum("-", "linear", "log", "date", "category", "multicategory"),
        "zeroline": _boolean,
    }
    if not x:
        del props["rangeslider"]
    return _object(props)


_BUTTON = _object(
    {
        "args": _info_array(3, _anything, free=True),
        "label": _string,
        "method": _enum("restyle", "relayout", "animate", "update", "skip"),
    }
)


_SIDES = ("auto", "left", "center", "right"), ("auto", "top", "middle", "bottom")
_LAYOUT: dict[str, _Check] = {
    "barmode": _enum("stack", "group", "overlay", "relative"),
    "height": _number(10),
    "hovermode": _enum("x", "y", "closest", False, "x unified", "y unified"),
    "legend": _object(
        {
            "orientation": _enum("v", "h"),
            "x": _number(),
            "xanchor": _enum(*_SIDES[0]),
            "y": _number(),
            "yanchor": _enum(*_SIDES[1]),
        }
    ),
    "margin": _object({"b": _number(0), "l": _number(0), "r": _number(0), "t": _number(0)}),
    "paper_bgcolor": _color,
    "plot_bgcolor": _color,
    "shapes": _objects(
        _object(
            {
                "line": _object(
                    {
                        "color": _color,
                        "dash": _enum("solid", "dot", "dash", "longdash", "dashdot", "longdashdot"),
                        "width": _number(0),
                    }
                ),
                "type": _enum("circle", "rect", "path", "line"),
                "x0": _anything,
                "x1": _anything,
                "xref": _matching(r"x(?:[2-9]|[1-9][0-9]+)?(?: domain)?", "paper"),
                "y0": _anything,
                "y1": _anything,
                "yref": _matching(r"y(?:[2-9]|[1-9][0-9]+)?(?: domain)?", "paper"),
            }
        )
    ),
    "showlegend": _boolean,
    "updatemenus": _objects(
        _object(
            {
                "active": _integer(-1),
                "buttons": _objects(_BUTTON),
                "direction": _enum("left", "right", "up", "down"),
                "pad": _object({"b": _number(), "l": _number(), "r": _number(), "t": _number()}),
                "showactive": _boolean,
                "type": _enum("dropdown", "buttons"),
                "x": _number(-2, 3),
                "xanchor": _enum(*_SIDES[0]),
                "y": _number(-2, 3),
                "yanchor": _enum(*_SIDES[1]),
            }
        )
    ),
    "xaxis": _axis(x=True),
    "yaxis": _axis(x=False),
}
"""The layout properties tradeloom's charts set, in the order plotly sets them."""

_MORE_AXES = re.compile(r"(x|y)axis(?:[2-9]|[1-9][0-9]+)")
_X_AXIS, _Y_AXIS = _LAYOUT["xaxis"], _LAYOUT["yaxis"]


def plain_layout(layout: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``layout`` as ``go.Layout(layout).to_plotly_json()`` would, or None when it
    holds something this module does not vouch for (plotly's path must decide).

    The returned dicts are new; arrays inside a button's ``args`` are the given ones.
    """
    try:
        more = [k for k in layout if k not in _LAYOUT]
        kinds = [_MORE_AXES.fullmatch(k) for k in more]
        if not all(kinds):
            return None
        out = _fields(layout, _LAYOUT)
        for key, kind in zip(more, kinds, strict=True):  # plotly sets these after the others
            if layout[key] is not None and kind is not None:
                axis = (_X_AXIS if kind[1] == "x" else _Y_AXIS)(layout[key])
                if axis:
                    out[key] = axis
    except _Unvouched:
        return None
    return out
