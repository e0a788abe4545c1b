"""A JSON Lines file a run appends to, after a kill inside an append: its complete lines
read, a torn last line left out (and cut off before the next append), a whole one kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloom.files.json_lines import complete_length, complete_lines, end_on_newline

WHOLE = b'{"a": 1}\n{"b": "\xc3\xa9"}\n'


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"", 0),
        (WHOLE, len(WHOLE)),
        (WHOLE + b'{"c": ', len(WHOLE)),  # cut inside the JSON
        (WHOLE + b'{"c": "\xc3', len(WHOLE)),  # cut inside a character
        (WHOLE + b'{"c": 3}', len(WHOLE) + 8),  # whole, its newline not written
        (WHOLE + b"[1, 2]", len(WHOLE)),  # JSON, but no object: not a line of the file
        (b'{"c": ', 0),
    ],
)
def test_the_complete_lines_end_at_the_last_newline_or_a_whole_object(
    tmp_path: Path, data: bytes, complete: int
) -> None:
    assert complete_length(data) == complete
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    assert complete_lines(path) == (len(data), complete)


def test_a_last_line_longer_than_a_block_is_found_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    torn = b'{"text": "' + b"x" * 200_000
    path.write_bytes(WHOLE + torn)
    assert complete_lines(path) == (len(WHOLE) + len(torn), len(WHOLE))


def test_ending_on_a_newline_cuts_a_torn_line_and_ends_a_whole_one(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(WHOLE + b'{"c": ')
    assert end_on_newline(path) == 6
    assert path.read_bytes() == WHOLE
    assert end_on_newline(path) == 0  # ends on one already: unchanged
    assert path.read_bytes() == WHOLE
    path.write_bytes(WHOLE + b'{"c": 3}')
    assert end_on_newline(path) == 0
    assert path.read_bytes() == WHOLE + b'{"c": 3}\n'
    path.write_bytes(b"")
    assert end_on_newline(path) == 0
    assert path.read_bytes() == b""
