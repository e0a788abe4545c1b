"""Floats as Python's fixed-point format writes them (``format(x, "+.2f")``), a column
at a time, as an Arrow text array.

A long run's trade markers each say their return (``return +1.23%``); Python's format
costs ~400 ns a float, more than the rest of the hover text. Python rounds the float's
exact binary value to the decimals, halves to even. Here ``x * 10**decimals`` is rounded
to an integer in numpy, which is that rounding wherever the product's rounding error
cannot cross a half (it is within ``|x| * 2**-52`` of the exact product): the few floats
that lie closer to a half, and those that are not finite or too large for an exact
integer, are written by Python's format itself. The integer's digits are Arrow's (an
integer cast to text), the point and the decimals put after them
(tests/reporting/test_fixed_text.py compares the text with ``format`` over any float).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["fixed_texts"]

_SIGNS = {True: pa.array(["+", "-"]), False: pa.array(["", "-"])}
_EXACT = 2.0**52
"""Integers below this are exact in a float, and each float there is within half of one."""
_SLACK = 2.0**-50
"""The product's rounding error (at most ``|product| * 2**-53``), with room to spare."""


def fixed_texts(
    values: npt.NDArray[np.float64], decimals: int = 2, *, plus: bool = False
) -> pa.StringArray:
    """Return ``format(x, f"{'+' if plus else ''}.{decimals}f")`` of each float.

    Args:
        values: The floats.
        decimals: Digits after the point (1 to 8).
        plus: Write a ``+`` before a number that is not negative (as ``"+"`` in a format).
    """
    if not 1 <= decimals <= 8:
        raise ValueError(f"decimals: 1 to 8, was {decimals}")
    x = np.ascontiguousarray(values, dtype=np.float64)
    scale = 10**decimals
    with np.errstate(invalid="ignore", over="ignore"):
        product = x * float(scale)
        magnitude = np.abs(product)
        half = np.abs(magnitude - np.floor(magnitude) - 0.5)
        sure = (magnitude < _EXACT) & (half > magnitude * _SLACK)  # NaN: not sure
    units = np.rint(magnitude, out=magnitude, where=sure)
    units[~sure] = 0.0
    whole, part = np.divmod(units.astype(np.int64), scale)
    digits = pc.cast(pa.array(whole), pa.string())
    fraction = pc.utf8_lpad(pc.cast(pa.array(part), pa.string()), decimals, "0")
    signs = _SIGNS[plus].take(pa.array(np.signbit(x).view(np.int8)))
    text = pc.binary_join_element_wise(signs, digits, ".", fraction, "")
    unsure = np.flatnonzero(~sure)
    if len(unsure):  # by Python's own format
        spec = f"{'+' if plus else ''}.{decimals}f"
        exact = pa.array([format(v, spec) for v in x[unsure].tolist()], pa.string())
        mask = np.zeros(len(x), dtype=bool)
        mask[unsure] = True
        text = pc.replace_with_mask(text, pa.array(mask), exact)
    return text
