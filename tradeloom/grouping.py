"""Rows grouped by a key in one pass: a universe's per-symbol slices without a scan per symbol.

Picking each symbol's rows with ``values == symbol`` reads every row once per symbol, so
a universe of 500 symbols read its tables 500 times (the cost grew with the square of
the symbols). `positions_by_key` hashes the keys once and sorts their codes stably, so
each group's positions are the rows that comparison picks, in the same order.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["positions_by_key"]


def positions_by_key(
    keys: Sequence[Any] | npt.NDArray[Any],
) -> dict[Hashable, npt.NDArray[np.intp]]:
    """Return, for each distinct key (missing ones left out), the positions of its rows
    in increasing order."""
    import pandas as pd  # a plugin module imports this one; pandas is read when it runs

    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.searchsorted(sorted_codes, np.arange(len(uniques)), side="left")
    ends = np.searchsorted(sorted_codes, np.arange(len(uniques)), side="right")
    return {
        uniques[k]: order[start:end]
        for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True))
    }
