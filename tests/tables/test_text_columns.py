"""The text columns built without pandas' inference are the columns it infers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from tradeloom.tables.text_columns import labelled, texts

_TEXTS = st.text(max_size=12)


def _same(built: object, values: object) -> None:
    got, want = pd.Series(built), pd.Series(values)
    assert got.dtype == want.dtype
    assert got.equals(want)
    assert got.to_csv(index=False) == want.to_csv(index=False)


@given(st.lists(st.one_of(_TEXTS, st.none()), min_size=1, max_size=40))
def test_texts_are_the_column_pandas_infers(values: list[str | None]) -> None:
    _same(texts(values), values)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    _same(texts(array), array)


@given(st.lists(st.one_of(_TEXTS, st.integers(), st.floats()), min_size=1, max_size=20))
def test_texts_of_other_values_are_left_to_pandas(values: list[object]) -> None:
    _same(texts(values), values)


@given(
    st.lists(_TEXTS, min_size=1, max_size=5).flatmap(
        lambda labels: st.tuples(
            st.just(labels),
            st.lists(st.integers(0, len(labels) - 1), min_size=1, max_size=40),
        )
    )
)
def test_labelled_texts_are_the_column_pandas_infers(
    case: tuple[list[str], list[int]],
) -> None:
    labels, codes = case
    _same(labelled(np.array(codes, np.int8), labels), [labels[k] for k in codes])
