"""A CSV file's rows are numbered by their lines as an editor shows them, blank lines counted;
its header reads as pandas reads it."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import PRECOMPUTED, write_bars, write_strategy
from tests.hunting import examples
from tradeloom.plugins.data.csv_lines import csv_header, csv_line_numbers, csv_row_count

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
    assert csv_row_count(path) == rows  # the validation's count of a file's bars
    assert csv_line_numbers(path, rows + 1).tolist() == list(range(2, rows + 3))  # no match


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 22])
def test_lines_are_counted_across_the_pieces_a_file_is_read_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    import tradeloom.plugins.data.csv_lines as csv_lines

    monkeypatch.setattr(csv_lines, "_CHUNK", chunk)
    path = tmp_path / "bars.csv"
    texts = (b"", b"\n", b"h", b"h\n", b"h\na\n\nb", b"h\r\na\r\n \r\nb\r\n", b"\n\n\n")
    for text in (*texts, b"h\n a\n", b" h\na\n", b"h\na\n\t\n", b"h\na\n  b  \n"):
        path.write_bytes(text)
        assert csv_lines._line_count(path)[0] == len(io.BytesIO(text).readlines())
        assert csv_lines.csv_row_count(path) == max(
            0, sum(1 for line in io.BytesIO(text) if line.strip()) - 1
        )
    path.write_bytes(b"h\na\n\nb\n")  # a blank line: its rows numbered by their lines
    assert csv_line_numbers(path, 2).tolist() == [2, 4]


_NAMES = st.sampled_from(
    [
        "timestamp",
        "open",
        "close",
        "volume",
        "p_up",
        " open",
        "open ",
        "",
        "a b",
        '"q"',
        "x\ry",
        "é",
        "#c",
    ]
)
_HEADER_ENDS = st.sampled_from(["\n", "\r\n", "\r", ""])


@settings(max_examples=examples(300), deadline=None)
@given(
    names=st.lists(_NAMES, min_size=1, max_size=6),
    end=_HEADER_ENDS,
    blank=st.sampled_from(["", "\n", " \n"]),
    bom=st.booleans(),
    rows=st.sampled_from(["", "2024-01-01,1,2\n", "1,2,3,4,5,6,7,8\n", "\xff\xfe\n"]),
)
def test_a_header_reads_as_pandas_reads_it(
    tmp_path_factory: pytest.TempPathFactory,
    names: list[str],
    end: str,
    blank: str,
    bom: bool,
    rows: str,
) -> None:
    # plain headers are split without pandas; quoted, repeated, empty or spaced names, a
    # blank first line or an undecodable file are pandas' to read: the names are its own
    body = (blank + ",".join(names) + end).encode() + rows.encode("latin-1")
    path = tmp_path_factory.mktemp("csv") / "bars.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
    try:
        want: list[str] | None = [
            str(n) for n in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
        ]
    except Exception:
        want = None
    assert csv_header(path) == want


def test_validate_reads_a_plain_csv_header_without_loading_pandas(tmp_path: Path) -> None:
    # what the fast path is for: `tradeloom validate` in an editor loop, whose strategy
    # reads a CSV file, answers without pandas' import (it loads pandas only to read one)
    write_bars(tmp_path, [100.0, 101.0, 102.0], [0.5, 0.6, 0.4])
    strategy = write_strategy(tmp_path, PRECOMPUTED)
    probe = (
        "import sys; from tradeloom.cli.main import main; "
        f"code = main(['validate', {str(strategy)!r}]); "
        "print(code, 'pandas' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.splitlines()[-1] == "0 False", done.stdout + done.stderr
