"""A column's texts worked out once per distinct value are its values' texts."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.tables.grouping import per_distinct


def shown(value: object) -> str:
    return f"{type(value).__name__}:{value!r}"


@settings(max_examples=examples(50), deadline=None)
@given(
    st.lists(st.sampled_from(["ENTRY", "<b>", "", "a/b"]) | st.none(), max_size=30),
    st.lists(st.integers(-3, 3), max_size=30),
)
def test_each_distinct_value_gives_its_own_text(
    texts: list[str | None], numbers: list[int]
) -> None:
    column = pd.Series(texts, dtype="str")
    assert per_distinct(column, repr) == [repr(v) for v in column.tolist()]
    integers = pd.Series(numbers, dtype="int64")
    assert per_distinct(integers, str) == [str(v) for v in integers.tolist()]


def test_equal_values_that_print_apart_keep_their_own_text() -> None:
    floats = pd.Series([0.0, -0.0, float("nan"), 0.0])
    assert per_distinct(floats, repr) == ["0.0", "-0.0", "nan", "0.0"]
    mixed = pd.Series([1, 1.0, True, "1"], dtype=object)
    assert per_distinct(mixed, shown) == ["int:1", "float:1.0", "bool:True", "str:'1'"]
