"""JSON values from Python ones, without the table libraries (`json_safe`).

Its own module so that a reader which writes JSON and reads no table (``tradeloom
status --json``) imports neither pandas nor pyarrow; `tradeloom.reporting.outputs`
re-exports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """Return ``value`` with every non-finite float (NaN, inf) as None, for strict JSON."""
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
