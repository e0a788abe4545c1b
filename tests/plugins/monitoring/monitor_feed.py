"""Helpers to feed monitors by hand (imported by the tests of this folder)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tradeloom.domain import Bar
from tradeloom.plugins.protocols import MonitorInput

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def bar(i: int) -> Bar:
    """Return bar ``i`` (prices do not matter to the monitors tested here)."""
    return Bar(i, T0 + pd.Timedelta(hours=i), 1.0, 1.0, 1.0, 1.0, 1.0)


def given(i: int, **fields: Any) -> MonitorInput:
    """Return the input of bar ``i``: no prediction, nothing resolved, unless ``fields`` say."""
    values: dict[str, Any] = {
        "probability": math.nan,
        "resolved_probability": math.nan,
        "resolved_up": False,
    }
    values.update(fields)
    return MonitorInput(bar(i), **values)


def same(a: Mapping[str, float], b: Mapping[str, float], rel: float = 1e-12) -> bool:
    """Return whether two metric mappings agree (NaN equals NaN)."""
    if set(a) != set(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return False
        elif not math.isclose(x, y, rel_tol=rel, abs_tol=1e-12):
            return False
    return True
