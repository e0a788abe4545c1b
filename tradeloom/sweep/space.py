"""The settings a sweep explores: axes from ``--grid`` or a sweep file, and the variants.

An axis is one key path of the strategy file and the values it takes:

- a list, ``key.path=v1,v2,...``: each value read as YAML, as ``--set`` reads one
  (``0.5`` a number, ``true`` a boolean, ``abc`` a string);
- a range, ``key.path=start:stop:step``: numbers from ``start`` to ``stop`` *inclusive*
  by ``step`` (integers when all three are; floats rounded to 12 decimals so that
  ``0.1:0.3:0.1`` gives ``0.1, 0.2, 0.3``).

The variants are the grid (every combination, the first axis slowest), a seeded random
subset of the grid (``--random N``: N distinct combinations), or the trials an optuna
sampler proposes (`tradeloom.sweep.search`). Each problem names where the axis was
written: ``--grid ARG`` or the sweep file's ``FILE:LINE:COL``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tradeloom.errors import ConfigError, Problem
from tradeloom.schemas.yaml_loader import parse_yaml_value

__all__ = [
    "Axis",
    "Space",
    "Variant",
    "axis_from_text",
    "axis_from_values",
    "override_text",
    "parse_grid",
    "range_axis",
    "repeated_axes",
]

_ROUND = 12


@dataclass(frozen=True)
class Axis:
    """One key path and its values.

    Attributes:
        key: The dotted key path of the strategy file (``signal.threshold``).
        values: The values, in order, no duplicates.
        where: Where it was written: ``--grid ARG`` or ``FILE:LINE:COL``.
        low, high, step: A range's bounds (None: a list), for samplers.
    """

    key: str
    values: tuple[Any, ...]
    where: str
    low: float | None = None
    high: float | None = None
    step: float | None = None

    @property
    def is_range(self) -> bool:
        """Return whether the axis was written as ``start:stop:step``."""
        return self.step is not None


@dataclass(frozen=True)
class Variant:
    """One combination of the axes' values, in the axes' order."""

    values: tuple[Any, ...]

    def overrides(self, axes: Sequence[Axis]) -> list[str]:
        """Return the ``--set`` strings that make this variant of the strategy file."""
        return [override_text(a.key, v) for a, v in zip(axes, self.values, strict=True)]

    def params(self, axes: Sequence[Axis]) -> dict[str, Any]:
        """Return ``{key path: value}``."""
        return {a.key: v for a, v in zip(axes, self.values, strict=True)}


def override_text(key: str, value: Any) -> str:
    """Return the ``--set`` string giving ``key`` the ``value`` (read back as the same value)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        import json

        text = json.dumps(value)  # JSON is YAML: a string stays a string, quoted
    return f"{key}={text}"


@dataclass(frozen=True)
class Space:
    """The axes of a sweep."""

    axes: tuple[Axis, ...]

    @property
    def size(self) -> int:
        """Return the number of grid combinations."""
        return math.prod(len(a.values) for a in self.axes)

    def grid(self) -> Iterator[Variant]:
        """Yield every combination, the first axis slowest."""
        for values in itertools.product(*(a.values for a in self.axes)):
            yield Variant(tuple(values))

    def sample(self, count: int, seed: int) -> list[Variant]:
        """Return ``count`` distinct combinations drawn with ``seed`` (all when fewer exist).

        The draw is a seeded sample of the grid's indices, so the same seed gives the
        same variants whatever the grid's size.
        """
        size = self.size
        picked = random.Random(seed).sample(range(size), min(count, size))
        return [self.at(index) for index in picked]

    def at(self, index: int) -> Variant:
        """Return the ``index``-th combination of `grid`."""
        values = []
        for axis in reversed(self.axes):
            index, k = divmod(index, len(axis.values))
            values.append(axis.values[k])
        return Variant(tuple(reversed(values)))


def parse_grid(texts: Sequence[str]) -> Space:
    """Return the space of ``--grid`` arguments; every problem is raised together.

    Raises:
        ConfigError: One problem per bad argument, each located at ``--grid ARG``.
    """
    axes: list[Axis] = []
    problems: list[Problem] = []
    for text in texts:
        axis = axis_from_text(text)
        if isinstance(axis, Problem):
            problems.append(axis)
        else:
            axes.append(axis)
    problems.extend(repeated_axes(axes))
    if problems:
        raise ConfigError(problems)
    return Space(tuple(axes))


def axis_from_text(text: str, where: str | None = None) -> Axis | Problem:
    """Return the axis of ``KEY.PATH=VALUES`` (a list or a range), or its problem."""
    where = where or f"--grid {text}"
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        return Problem(
            where, "", "expected KEY.PATH=V1,V2,... or KEY.PATH=START:STOP:STEP, "
            "e.g. signal.threshold=0.1,0.2,0.3"
        )  # fmt: skip
    if not all(key.split(".")):
        return Problem(where, key, "the key path has an empty part")
    parts = raw.split(":")
    if len(parts) == 3 and "," not in raw and _is_number(parts[0]):
        bounds: list[float] = []
        for name, part in zip(("start", "stop", "step"), parts, strict=True):
            value, problems = parse_yaml_value(part, key)
            if problems or isinstance(value, bool) or not isinstance(value, int | float):
                return Problem(where, key, f"{name} must be a number, was {part.strip()!r}")
            bounds.append(value)
        return _range_axis(key, bounds[0], bounds[1], bounds[2], where)
    items = raw.split(",")
    values = []
    for item in items:
        if not item.strip():
            return Problem(where, key, "a value is empty (write V1,V2,... without empty items)")
        value, problems = parse_yaml_value(item, key)
        if problems:
            return Problem(where, key, problems[0].message)
        values.append(value)
    return axis_from_values(key, values, where)


def axis_from_values(key: str, values: Sequence[Any], where: str) -> Axis | Problem:
    """Return the axis of a list of values, or its problem (empty, or a value twice)."""
    if not values:
        return Problem(where, key, "expected at least one value")
    seen: list[Any] = []
    for value in values:
        if any(_same(value, other) for other in seen):
            return Problem(where, key, f"the value {value!r} is given twice")
        seen.append(value)
    return Axis(key, tuple(values), where)


def range_axis(key: str, start: Any, stop: Any, step: Any, where: str) -> Axis | Problem:
    """Return the axis of ``start`` to ``stop`` inclusive by ``step``, or its problem."""
    for name, value in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Problem(where, key, f"{name} must be a number, was {value!r}")
    return _range_axis(key, start, stop, step, where)


def _range_axis(key: str, start: float, stop: float, step: float, where: str) -> Axis | Problem:
    if step == 0:
        return Problem(where, key, "step must not be 0")
    if step < 0:
        return Problem(where, key, f"step must be > 0, was {step!r}")
    if stop < start:
        return Problem(where, key, f"stop ({stop!r}) is before start ({start!r})")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > 1_000_000:
        return Problem(where, key, f"the range has {count:,} values; at most 1,000,000")
    integral = all(isinstance(v, int) for v in (start, stop, step))
    if integral:
        values: tuple[Any, ...] = tuple(int(start + k * step) for k in range(count))
    else:
        values = tuple(round(start + k * step, _ROUND) for k in range(count))
    return Axis(key, values, where, float(start), float(stop), float(step))


def repeated_axes(axes: Sequence[Axis]) -> list[Problem]:
    """Return a problem for each axis whose key an earlier axis sweeps already."""
    problems = []
    first: dict[str, Axis] = {}
    for axis in axes:
        if axis.key in first:
            problems.append(
                Problem(
                    axis.where, axis.key, f"the key is swept twice (also {first[axis.key].where})"
                )
            )
        else:
            first[axis.key] = axis
    return problems


def _is_number(text: str) -> bool:
    value, problems = parse_yaml_value(text, "")
    return not problems and not isinstance(value, bool) and isinstance(value, int | float)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
