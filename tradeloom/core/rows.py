"""Writing event rows: the one way the core records what happened.

A row is ``kind, bar, symbol`` and `EV_VALUES` values (`tradeloom.core.layout`).
The caller guarantees room (`run_bars` checks it once per bar, Python before it
feeds a venue's events).
"""

from __future__ import annotations

import numpy as np

from tradeloom.core.layout import C_COUNT
from tradeloom.jit import core_kernel

__all__ = ["emit"]


@core_kernel
def emit(
    ev: np.ndarray,
    cur: np.ndarray,
    kind: int,
    bar: int,
    symbol: int,
    v0: float = 0.0,
    v1: float = 0.0,
    v2: float = 0.0,
    v3: float = 0.0,
    v4: float = 0.0,
    v5: float = 0.0,
    v6: float = 0.0,
    v7: float = 0.0,
    v8: float = 0.0,
    v9: float = 0.0,
) -> None:
    """Append one row to ``ev`` (``cur[C_COUNT]`` rows are used)."""
    i = cur[C_COUNT]
    ev[i, 0] = kind
    ev[i, 1] = bar
    ev[i, 2] = symbol
    ev[i, 3] = v0
    ev[i, 4] = v1
    ev[i, 5] = v2
    ev[i, 6] = v3
    ev[i, 7] = v4
    ev[i, 8] = v5
    ev[i, 9] = v6
    ev[i, 10] = v7
    ev[i, 11] = v8
    ev[i, 12] = v9
    cur[C_COUNT] = i + 1
