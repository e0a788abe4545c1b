"""Writing event rows: the one way the core records what happened.

A row is ``kind, bar, symbol`` and `VALUES` values, each kind's declared in
`tradeloom.core.records`. The caller guarantees room (`run_bars` checks it once per
bar, Python before it feeds a venue's events).
"""

from __future__ import annotations

import numpy as np

from tradeloom.core.layout import C_COUNT
from tradeloom.core.records import BAR, HEAD, KIND, SYMBOL
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
    ev[i, KIND] = kind
    ev[i, BAR] = bar
    ev[i, SYMBOL] = symbol
    ev[i, HEAD] = v0
    ev[i, HEAD + 1] = v1
    ev[i, HEAD + 2] = v2
    ev[i, HEAD + 3] = v3
    ev[i, HEAD + 4] = v4
    ev[i, HEAD + 5] = v5
    ev[i, HEAD + 6] = v6
    ev[i, HEAD + 7] = v7
    ev[i, HEAD + 8] = v8
    ev[i, HEAD + 9] = v9
    cur[C_COUNT] = i + 1
