"""Floats written by the compiled kernel are Python's ``repr``, character for character."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.reporting.float_text import repr_floats


def cells(values: list[float]) -> list[str]:
    offsets, text = repr_floats(np.array(values, dtype=np.float64))
    data = text.tobytes().decode()
    return [data[offsets[i] : offsets[i + 1]] for i in range(len(values))]


def reference(values: list[float]) -> list[str]:
    return ["" if v != v else repr(v) for v in values]


def from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]  # type: ignore[no-any-return]


EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.1, 0.3, 2 / 3, 100.0, 1e15, 1e16]
EDGES += [9999999999999998.0, 1e17, 1e22, 1e23, 1e-4, 9.999e-5, 1e-5, 1.5e-5, -123.456e-7]
EDGES += [5e-324, -5e-324, 1e-323, 2.2250738585072009e-308, 2.2250738585072014e-308]
EDGES += [1.7976931348623157e308, -1.7976931348623157e308, 2.0**53, 2.0**53 + 2, 2.0**-1074]
EDGES += [30000.02952369511, 0.036752571942194945, -1.4551915228366852e-11, 1e100, 1e-100]


def test_the_edges_are_repr() -> None:
    assert cells(EDGES) == reference(EDGES)
    assert cells([]) == []
    assert cells([np.nan, 1.5, np.nan]) == ["", "1.5", ""]


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=60))
def test_any_floats_are_repr(values: list[float]) -> None:
    assert cells(values) == reference(values)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=60))
def test_any_bit_pattern_is_repr(patterns: list[int]) -> None:
    # every exponent equally likely: subnormals, the largest floats, every NaN payload
    values = [from_bits(b) for b in patterns]
    assert cells(values) == reference(values)


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=40),
    st.integers(-30, 30),
)
def test_decimals_of_few_digits_are_repr(mantissas: list[int], exponent: int) -> None:
    # prices and sizes: few significant digits, trailing zeros, integers
    values = [m * 10.0**exponent for m in mantissas] + [float(m) for m in mantissas]
    assert cells(values) == reference(values)


def test_a_million_floats_of_every_kind_are_repr() -> None:
    rng = np.random.default_rng(47)
    kinds = [
        rng.integers(0, 2**64, 300_000, dtype=np.uint64).view(np.float64),  # any bits
        rng.integers(1, 2**52, 50_000, dtype=np.uint64).view(np.float64),  # subnormal
        30_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, 300_000))),  # a price's walk
        np.round(rng.normal(0, 1_000, 200_000), 2),  # cents
        rng.integers(-(10**6), 10**6, 100_000).astype(np.float64),  # integers
        np.array([10.0**k for k in range(-323, 309)] + [2.0**k for k in range(-1074, 1024)]),
    ]
    values = np.concatenate(kinds).tolist()
    assert cells(values) == reference(values)
