"""Floats as Python's ``repr`` writes them, a column at a time, in compiled code.

A run's CSV tables (`tradeloom.reporting.csv_table`) write each float as pandas does:
Python's ``repr``, the shortest digits that read back to the same number, in fixed
notation between 1e-4 and 1e16 and scientific notation outside. `write_repr` writes
one float where a kernel's text needs it (a cell of a line); `repr_floats`, a column's.
The shortest digits of each float are Ulf Adams' Ryu algorithm's ("Ryū: fast
float-to-string conversion", PLDI 2018): the float's interval of numbers that round to
it is scaled by a power of ten with a 128-bit reciprocal (`_POW5_INV`, `_POW5`, made
here from exact integers) and digits are dropped while both ends of the interval agree;
they are written two at a time (`write_digits`) straight into their places. Subnormal
floats included, the digits are ``repr``'s (tests/reporting/test_float_text.py compares
them over millions of floats); Arrow's shortest-digits cast and a second pass reading
its text back to lay it out as ``repr`` took twice the time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tradeloom.kernels.jit import released_kernel

__all__ = ["DIGIT_PAIRS", "REPR_WIDTH", "digit_count", "repr_floats", "write_digits", "write_repr"]

_Text = tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]
"""Cells as text: offsets (``n + 1``) into UTF-8 bytes."""

REPR_WIDTH = 24
"""The longest ``repr`` of a float: ``-1.2345678901234567e-308``."""

DIGIT_PAIRS = np.frombuffer(b"".join(b"%02d" % i for i in range(100)), np.uint8).copy()
"""The two ASCII digits of each number 0-99, at twice the number: digits two at a time."""

_POWERS_OF_TEN = np.array([10**k for k in range(20)], np.uint64)

_BITS = 125
"""The significant bits of each power of five in the tables (Ryu's ``DOUBLE_POW5_BITCOUNT``
and ``DOUBLE_POW5_INV_BITCOUNT``)."""


def _pow5_bits(e: int) -> int:
    """``ceil(log2(5**e))`` (1 for ``e == 0``), as the kernel computes it."""
    return ((e * 1217359) >> 19) + 1


def _split(values: list[int]) -> npt.NDArray[np.uint64]:
    """Return 128-bit integers as rows of their low and high 64 bits."""
    mask = (1 << 64) - 1
    return np.array([[v & mask, v >> 64] for v in values], dtype=np.uint64)


# 5**-q scaled up to 125 significant bits and rounded up, for the floats of exponent
# >= 0 (q <= 341: log10(2**1023)); 5**i scaled to 125 bits, for those below (i <= 325)
_POW5_INV = _split([(1 << (_pow5_bits(q) - 1 + _BITS)) // 5**q + 1 for q in range(342)])
_POW5 = _split(
    [
        5**i >> (_pow5_bits(i) - _BITS)
        if _pow5_bits(i) >= _BITS
        else 5**i << (_BITS - _pow5_bits(i))
        for i in range(326)
    ]
)


def repr_floats(values: npt.NDArray[np.float64]) -> _Text:
    """Return each float as ``repr`` writes it (a NaN as an empty cell).

    Args:
        values: float64 values.

    Returns:
        The cells' offsets and UTF-8 bytes.
    """
    return _repr_floats(np.ascontiguousarray(values, dtype=np.float64))


@released_kernel
def _repr_floats(values: npt.NDArray[np.float64]) -> _Text:
    """Return each float in ``repr``'s text (NaN empty)."""
    n = len(values)
    out_offsets = np.empty(n + 1, np.int64)
    out = np.empty(REPR_WIDTH * n, np.uint8)
    bits = values.view(np.uint64)
    w = 0
    out_offsets[0] = 0
    for i in range(n):
        w = write_repr(out, w, values[i], bits[i])
        out_offsets[i + 1] = w
    return out_offsets, out[:w]


@released_kernel
def write_repr(out: npt.NDArray[np.uint8], w: int, value: float, bits: np.uint64) -> int:
    """Write ``repr(value)`` (nothing for a NaN) into ``out`` from ``w``; return where it
    ended (at most `REPR_WIDTH` bytes).

    ``bits`` are the float's IEEE bits (a view of its array as ``uint64``): its sign, and
    Ryu's input. The digits are written in place, two at a time (`write_digits`), and laid
    out as ``repr`` does: fixed notation with at least one decimal for 1e-4 <= |x| < 1e16,
    else scientific with a signed exponent of at least two digits.
    """
    if np.isnan(value):
        return w
    if bits >> np.uint64(63):
        out[w] = 45  # '-'
        w += 1
    if np.isinf(value):
        out[w] = 105  # 'inf'
        out[w + 1] = 110
        out[w + 2] = 102
        return w + 3
    if value == 0.0:
        out[w] = 48
        out[w + 1] = 46
        out[w + 2] = 48
        return w + 3
    mantissa, exponent = _shortest(bits)
    ten = np.uint64(10)
    while mantissa % ten == np.uint64(0):  # Ryu's digits may end in zeros (a rounded-up digit)
        mantissa //= ten
        exponent += 1
    m = digit_count(mantissa)
    point = m + exponent  # the number is 0.D x 10**point (D: the m digits)
    k = point - 1  # the scientific exponent
    if -4 <= k < 16:
        if point <= 0:  # 0.000DDD
            out[w] = 48
            out[w + 1] = 46
            w += 2
            for _ in range(-point):
                out[w] = 48
                w += 1
            write_digits(out, w + m, mantissa)
            return w + m
        if m <= point:  # DDD000.0
            write_digits(out, w + m, mantissa)
            w += m
            for _ in range(point - m):
                out[w] = 48
                w += 1
            out[w] = 46
            out[w + 1] = 48
            return w + 2
        # DD.DDD: the digits one place right, then the integer part moved back before the point
        write_digits(out, w + m + 1, mantissa)
        for j in range(point):
            out[w + j] = out[w + j + 1]
        out[w + point] = 46
        return w + m + 1
    write_digits(out, w + m + 1, mantissa)  # D.DDDe+XX: the first digit, then the point
    out[w] = out[w + 1]
    if m > 1:
        out[w + 1] = 46
        w += m + 1
    else:
        w += 1
    out[w] = 101
    out[w + 1] = 45 if k < 0 else 43
    w += 2
    magnitude = -k if k < 0 else k
    if magnitude >= 100:
        out[w] = 48 + magnitude // 100
        w += 1
    out[w] = DIGIT_PAIRS[2 * (magnitude % 100)]
    out[w + 1] = DIGIT_PAIRS[2 * (magnitude % 100) + 1]
    return w + 2


@released_kernel
def digit_count(value: np.uint64) -> int:
    """Return how many decimal digits ``value`` has (1 for zero)."""
    count = 20
    while count > 1 and value < _POWERS_OF_TEN[count - 1]:
        count -= 1
    return count


@released_kernel
def write_digits(out: npt.NDArray[np.uint8], end: int, value: np.uint64) -> None:
    """Write the decimal digits of ``value`` into ``out`` so that the last is at ``end - 1``
    (`digit_count` of them), two at a time from `DIGIT_PAIRS`."""
    hundred = np.uint64(100)
    while value >= hundred:
        pair = np.uint64(2) * (value % hundred)
        value //= hundred
        out[end - 1] = DIGIT_PAIRS[pair + np.uint64(1)]
        out[end - 2] = DIGIT_PAIRS[pair]
        end -= 2
    if value >= np.uint64(10):
        out[end - 1] = DIGIT_PAIRS[np.uint64(2) * value + np.uint64(1)]
        out[end - 2] = DIGIT_PAIRS[np.uint64(2) * value]
    else:
        out[end - 1] = np.uint8(48) + np.uint8(value)


@released_kernel
def _shortest(bits: np.uint64) -> tuple[np.uint64, int]:
    """Return the shortest digits (an integer) and the decimal exponent of the nonzero
    finite float of IEEE ``bits`` (sign ignored) that read back to it: Ryu's ``d2d``,
    the correctly rounded digits among the shortest."""
    one, zero = np.uint64(1), np.uint64(0)
    ten, five = np.uint64(10), np.uint64(5)
    fraction = bits & ((one << np.uint64(52)) - one)
    biased = int((bits >> np.uint64(52)) & np.uint64(0x7FF))
    if biased == 0:  # subnormal: no implicit leading one
        e2 = 1 - 1023 - 52 - 2  # two more bits for the interval's ends
        m2 = fraction
    else:
        e2 = biased - 1023 - 52 - 2
        m2 = (one << np.uint64(52)) | fraction
    even = (m2 & one) == zero
    mv = np.uint64(4) * m2
    # the lower end is nearer where the fraction is zero (a power of two)
    mm_shift = one if (fraction != zero or biased <= 1) else zero
    vm_zeros = False
    vr_zeros = False
    if e2 >= 0:
        q = max(0, ((e2 * 78913) >> 18) - 1)
        e10 = q
        k = _BITS + ((q * 1217359) >> 19)
        j = -e2 + q + k
        low, high = _POW5_INV[q, 0], _POW5_INV[q, 1]
        vr = _mul_shift(mv, low, high, j)
        vp = _mul_shift(mv + np.uint64(2), low, high, j)
        vm = _mul_shift(mv - one - mm_shift, low, high, j)
        if q <= 21:  # one of mp, mv and mm at most is a multiple of five
            if mv % five == zero:
                vr_zeros = _fives(mv) >= q
            elif even:
                vm_zeros = _fives(mv - one - mm_shift) >= q
            elif _fives(mv + np.uint64(2)) >= q:
                vp -= one
    else:
        q = max(0, (((-e2) * 732923) >> 20) - 1)
        e10 = q + e2
        power = -e2 - q
        j = q - (((power * 1217359) >> 19) + 1 - _BITS)
        low, high = _POW5[power, 0], _POW5[power, 1]
        vr = _mul_shift(mv, low, high, j)
        vp = _mul_shift(mv + np.uint64(2), low, high, j)
        vm = _mul_shift(mv - one - mm_shift, low, high, j)
        if q <= 1:
            vr_zeros = True  # mv = 4 * m2 has two trailing zero bits
            if even:
                vm_zeros = mm_shift == one
            else:
                vp -= one
        elif q < 63:
            vr_zeros = (mv & ((one << np.uint64(q - 1)) - one)) == zero
    removed = 0
    last_digit = zero
    # drop the last digit while the interval's ends differ above it, then (the lower end
    # exact and in the interval) while the lower end's last digit is a zero; a bound once
    # met stays met, so one loop does both of Ryu's
    while vp // ten > vm // ten or (vm_zeros and vm % ten == zero):
        vm_zeros = vm_zeros and vm % ten == zero
        vr_zeros = vr_zeros and last_digit == zero
        last_digit = vr % ten
        vr //= ten
        vp //= ten
        vm //= ten
        removed += 1
    if vr_zeros and last_digit == five and vr % np.uint64(2) == zero:
        last_digit = np.uint64(4)  # exactly half way: to the even digit
    up = (vr == vm and (not even or not vm_zeros)) or last_digit >= five
    return vr + (one if up else zero), e10 + removed


@released_kernel
def _fives(value: np.uint64) -> int:
    """Return how many times five divides ``value`` (not zero)."""
    count = 0
    five = np.uint64(5)
    while value % five == np.uint64(0):
        value //= five
        count += 1
    return count


@released_kernel
def _mul_shift(m: np.uint64, low: np.uint64, high: np.uint64, shift: int) -> np.uint64:
    """Return ``(m * (high * 2**64 + low)) >> shift`` for ``64 < shift < 128`` (its
    value fits in 64 bits: Ryu's bounds)."""
    carry_low = _high_bits(m, low)
    product_low = m * high  # the low 64 bits (wraps)
    product_high = _high_bits(m, high)
    middle = carry_low + product_low
    if middle < carry_low:
        product_high += np.uint64(1)
    distance = np.uint64(shift - 64)
    return (product_high << (np.uint64(64) - distance)) | (middle >> distance)


@released_kernel
def _high_bits(a: np.uint64, b: np.uint64) -> np.uint64:
    """Return the high 64 bits of the 128-bit product ``a * b``."""
    mask = np.uint64(0xFFFFFFFF)
    thirty_two = np.uint64(32)
    a_low, a_high = a & mask, a >> thirty_two
    b_low, b_high = b & mask, b >> thirty_two
    low_low = a_low * b_low
    low_high = a_low * b_high
    high_low = a_high * b_low
    middle = (low_low >> thirty_two) + (low_high & mask) + (high_low & mask)
    return (
        a_high * b_high
        + (low_high >> thirty_two)
        + (high_low >> thirty_two)
        + (middle >> thirty_two)
    )
