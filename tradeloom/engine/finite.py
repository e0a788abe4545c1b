"""The check after the features: no infinity reaches a model or a signal.

A feature's NaN means "no value yet" (its warm-up) or "cannot be computed here", and no
model trains or predicts on a row that holds one. An infinity is different: it comes from
extreme or broken bars (a price of 1e-300 under a log return, a zero range under a
ratio) and would poison a scaler or a third-party model. The first one found, by bar and
then by column, stops the run with exit 2, naming the feature, its column and the bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tradeloom.errors import DataError
from tradeloom.time.timeframes import format_timestamp

__all__ = ["check_finite_features"]


def check_finite_features(
    frame: pd.DataFrame, owners: Sequence[tuple[str, str, list[str]]]
) -> None:
    """Raise if any feature value is infinite.

    Args:
        frame: The feature matrix, one column per feature column, indexed by bar time.
        owners: ``(key path, kind, columns)`` of each feature, in file order.

    Raises:
        DataError: The first infinite value, by bar then column, with its feature.
    """
    values = frame.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    if not infinite.any():
        return
    rows, cols = np.nonzero(infinite)
    first = int(np.argmin(rows * values.shape[1] + cols))
    bar, col = int(rows[first]), int(cols[first])
    column = str(frame.columns[col])
    path, kind = next(((p, k) for p, k, columns in owners if column in columns), ("features", "?"))
    count = int(infinite.sum())
    others = f" ({count - 1:,} more infinite values)" if count > 1 else ""
    when = format_timestamp(pd.Timestamp(frame.index[bar]))
    raise DataError(
        f"{path} ({kind}) column {column}: {values[bar, col]} at bar {bar} ({when}){others}; "
        "a feature must be finite: check the bars there (data.validation) or the "
        "feature's parameters"
    )
