"""The numbers an LLM is asked for: declared fields with their ranges, and the strict
parse of an answer into them.

An answer is read as one JSON object (surrounding whitespace allowed, nothing else: no
prose, no Markdown fence) holding every declared field as a JSON number within its
range; other keys (a model's ``"reason"``) are ignored. Anything else is no answer: the
document's row is NaN and the reason says what was wrong, in one line. A field is never
read as 0 where it is missing, and a number in a string (``"0.5"``) is not a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from tradeloom.plugins.component import Params

__all__ = ["FieldRange", "Parsed", "answer_schema", "parse_answer"]

_SHOWN = 60
"""Characters of a refused answer quoted in its reason."""


class FieldRange(Params):
    """One number asked of the model per document, and its allowed range."""

    min: float = Field(description="Least value accepted; below it the answer is refused.")
    max: float = Field(description="Greatest value accepted; above it the answer is refused.")
    description: str = Field(
        default="",
        description="What the number means; the JSON schema sent to the model carries it.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> FieldRange:
        if not (math.isfinite(self.min) and math.isfinite(self.max) and self.min <= self.max):
            raise ValueError(f"need finite min <= max, was min={self.min}, max={self.max}")
        return self


Parsed = tuple[tuple[float, ...] | None, str]
"""An answer parsed: the fields' values in declared order and ``""``, or None and why."""


def answer_schema(fields: Mapping[str, FieldRange]) -> dict[str, Any]:
    """Return the JSON Schema of a valid answer (for a server's ``response_format``)."""
    properties: dict[str, Any] = {}
    for name, spec in fields.items():
        prop: dict[str, Any] = {"type": "number", "minimum": spec.min, "maximum": spec.max}
        if spec.description:
            prop["description"] = spec.description
        properties[name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": list(fields),
    }


def parse_answer(text: str, fields: Mapping[str, FieldRange]) -> Parsed:
    """Parse a model's answer into the declared fields, strictly.

    Args:
        text: The message content the model answered.
        fields: The declared fields, in column order.

    Returns:
        The values in the order of ``fields`` and ``""``; or None and the reason
        (``answer not JSON: 'Sure! Here...'``, ``sentiment: 1.5 above max 1``).
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None, f"answer not JSON: {_quoted(text)}"
    if not isinstance(data, dict):
        return None, f"answer not a JSON object: {_quoted(text)}"
    values: list[float] = []
    problems: list[str] = []
    for name, spec in fields.items():
        if name not in data:
            problems.append(f"{name}: missing")
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{name}: not a number: {_quoted(json.dumps(value))}")
            continue
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float's range
            number = math.inf
        if not math.isfinite(number):
            problems.append(f"{name}: not finite")
        elif number < spec.min:
            problems.append(f"{name}: {value} below min {spec.min:g}")
        elif number > spec.max:
            problems.append(f"{name}: {value} above max {spec.max:g}")
        else:
            values.append(number)
    if problems:
        return None, "; ".join(problems)
    return tuple(values), ""


def _quoted(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _SHOWN else flat[: _SHOWN - 3] + "...")
