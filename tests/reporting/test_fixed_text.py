"""Floats written to fixed decimals a column at a time are Python's format of each."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.fixed_text import fixed_texts

_NEAR_HALVES = st.integers(-(10**9), 10**9).map(lambda k: (k + 0.5) / 100)
"""Floats nearest to a half of the last decimal, where numpy's product may round apart."""


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.floats() | _NEAR_HALVES | st.floats(-1e4, 1e4), max_size=40),
    st.integers(1, 8),
    st.booleans(),
)
def test_each_float_is_pythons_fixed_format(values: list[float], decimals: int, plus: bool) -> None:
    """Any float (NaN, infinities, -0.0, halves, huge and tiny ones included) is written
    as ``format`` writes it with the decimals and the sign asked for."""
    spec = f"{'+' if plus else ''}.{decimals}f"
    got = fixed_texts(np.array(values, dtype=np.float64), decimals, plus=plus).to_pylist()
    assert got == [format(v, spec) for v in values]


def test_halves_of_the_last_decimal_are_rounded_as_python_does() -> None:
    """Floats at or beside a half (exact halves go to even digits; 2.675 is below one)."""
    values = [0.125, 0.375, -0.125, 2.675, 1.005, 0.005, -0.0, 0.0, -0.004, 1e300, 1e-300]
    got = fixed_texts(np.array(values), 2, plus=True).to_pylist()
    assert got == [format(v, "+.2f") for v in values]
    assert got[:3] == ["+0.12", "+0.38", "-0.12"]
