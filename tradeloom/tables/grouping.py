"""Rows grouped by a key in one pass: a universe's per-symbol slices without a scan per symbol.

Picking each symbol's rows with ``values == symbol`` reads every row once per symbol, so
a universe of 500 symbols read its tables 500 times (the cost grew with the square of
the symbols). `positions_by_key` hashes the keys once and sorts their codes stably, so
each group's positions are the rows that comparison picks, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["per_distinct", "positions_by_key"]


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


def per_distinct(column: Any, text: Callable[[Any], str]) -> list[str]:
    """Return ``text`` of each value of a pandas column, called once per distinct value.

    A text (Arrow) or integer column is hashed as it is stored, not boxed value by value;
    one of floats or Python objects, whose equal values may print apart (``0.0`` and
    ``-0.0``; ``1``, ``1.0`` and ``True``), is read value by value.
    """
    import pandas as pd  # a plugin module imports this one; pandas is read when it runs

    if column.dtype == object or column.dtype.kind in "fc":
        return [text(value) for value in column.tolist()]
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    texts = np.empty(len(uniques), dtype=object)
    texts[:] = [text(value) for value in uniques]
    return texts[codes].tolist()  # type: ignore[no-any-return]
