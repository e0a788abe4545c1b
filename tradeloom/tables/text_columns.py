"""Text columns of a table, built as pandas would build them, without its inference.

A DataFrame given a column of Python strings first infers what they are (a scan of
every value), then converts them to its string type (Arrow-backed under pandas 3).
The run's tables of events know their text columns are texts: `texts` converts them
directly (a third less), and `labelled` builds a column of a few distinct texts from
each row's code (one conversion per distinct text: a tenth of the cost). Both give
the column pandas would infer, dtype and values alike; where pandas' default is not
Arrow-backed strings (pandas 2 without ``future.infer_string``), they return the
texts as given, for the DataFrame to infer as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

__all__ = ["labelled", "texts"]

_INFERRED = pd.Series(["text"]).dtype
"""The dtype pandas infers for a column of texts."""
_ARROW = isinstance(_INFERRED, pd.StringDtype) and _INFERRED.storage == "pyarrow"


def texts(values: Sequence[Any] | npt.NDArray[Any]) -> Any:
    """Return ``values`` (str, None for missing; never bytes, which Arrow would take
    as texts) as the column pandas would infer.

    Values of another type (a number, NaN), or none but missing ones, are returned as
    given: pandas infers their column as it always did.
    """
    if not _ARROW or not len(values):
        return values
    try:
        array = pa.array(values, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return values
    if array.null_count == len(array):
        return values
    return pd.array(array, dtype=_INFERRED)


def labelled(codes: npt.NDArray[np.integer[Any]], labels: Sequence[str]) -> Any:
    """Return ``labels[codes]`` (every code a label's index) as the column pandas would
    infer for those texts."""
    if not _ARROW or not len(codes):
        taken = np.empty(len(labels), dtype=object)
        taken[:] = list(labels)
        return taken[codes]
    indices = pa.array(np.asarray(codes, dtype=np.int32))
    words = pa.array(list(labels), type=pa.large_string())
    array = pa.DictionaryArray.from_arrays(indices, words).cast(pa.large_string())
    return pd.array(array, dtype=_INFERRED)
