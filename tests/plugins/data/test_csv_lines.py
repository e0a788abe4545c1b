"""A CSV file's rows are numbered by their lines as an editor shows them, blank lines counted."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hunting import examples
from tradeloom.plugins.data.csv_lines import csv_line_numbers

_PIECES = st.sampled_from([b"", b" ", b"\t", b"a", b"1,2", b"\r", b"  x ", b"\x0b", b"\xc3\xa9"])
_ENDS = st.sampled_from([b"\n", b"\r\n", b""])


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.tuples(_PIECES, _ENDS), max_size=12))
def test_rows_are_numbered_by_the_lines_that_hold_more_than_whitespace(
    tmp_path_factory: pytest.TempPathFactory, lines: list[tuple[bytes, bytes]]
) -> None:
    text = b"".join(piece + end for piece, end in lines)
    path = tmp_path_factory.mktemp("csv") / "bars.csv"
    path.write_bytes(text)
    # what a line-by-line reading numbers: the header, then a data row per filled line
    filled = [n for n, line in enumerate(io.BytesIO(text), start=1) if line.strip()]
    rows = max(len(filled) - 1, 0)

    numbers = csv_line_numbers(path, rows).tolist()

    assert numbers == (filled[1:] if filled else [])
    assert csv_line_numbers(path, rows + 1).tolist() == list(range(2, rows + 3))  # no match
