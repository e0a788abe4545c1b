"""``--json``: what a command reads or reports as one JSON object on stdout, the same
envelope for every command.

Each object's first key is ``schema``, ``tradeloom.<output>/<version>`` (``tradeloom.
status/1``): a tool reads the version before anything else. A version grows when a key
changes its meaning or goes; a key added keeps it. Each output's JSON Schema is a file of
this package (``tradeloom/reporting/json_schemas/<output>.schema.json``), which the docs page
(docs/reference/json.md) shows and the tests validate each command's real output against.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import PurePath
from typing import Any

__all__ = ["OUTPUTS", "add_json_option", "envelope", "output_schema", "print_json"]

OUTPUTS: dict[str, tuple[int, str]] = {
    "status": (1, "tradeloom status RUN_DIR --json"),
    "validate": (1, "tradeloom validate FILE --json"),
    "journal-verify": (1, "tradeloom journal verify RUN_DIR --json"),
    "plugins": (1, "tradeloom plugins --json"),
    "compare": (1, "tradeloom compare RUN_DIR RUN_DIR... --json"),
    "parity": (1, "tradeloom parity RUN_DIR --json"),
    "sweep": (1, "tradeloom sweep FILE --json"),
    "check-lookahead": (1, "tradeloom check-lookahead FILE --json"),
    "data-list": (1, "tradeloom data list --json"),
}
"""Every JSON output: its version and the command that prints it."""


def add_json_option(parser: argparse.ArgumentParser, output: str) -> None:
    """Add ``--json`` to ``parser``: print `output`'s versioned JSON object instead of text."""
    version = OUTPUTS[output][0]
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print one JSON object instead of text (schema tradeloom.{output}/{version}, "
        "documented in the docs' JSON outputs page)",
    )


def envelope(output: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``body`` as `output`'s JSON object: ``schema`` first, every value plain JSON
    (NaN and infinities as null, numpy and pandas scalars as numbers, times as ISO text)."""
    version = OUTPUTS[output][0]
    plain: dict[str, Any] = _plain(dict(body))
    return {"schema": f"tradeloom.{output}/{version}", **plain}


def print_json(output: str, body: Mapping[str, Any]) -> None:
    """Print `envelope` of ``body`` on stdout, indented."""
    print(json.dumps(envelope(output, body), indent=2, allow_nan=False))


@cache
def output_schema(output: str) -> dict[str, Any]:
    """Return the JSON Schema (2020-12) of `output`'s object, as the package ships it."""
    text = resources.files("tradeloom.reporting").joinpath("json_schemas", f"{output}.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):  # pandas' Timestamp among them
        return None if value != value else value.isoformat()  # NaT: not a time
    if getattr(value, "ndim", 0):  # a numpy array
        return _plain(value.tolist())
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item):
        return _plain(item())
    return str(value)
