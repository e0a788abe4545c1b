"""A short run of the reader fuzzer (the long one: tests/journal/fuzz_reader.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.journal.fuzz_reader import check, fuzz_test, mutate, seed_journal
from tradeloom.journal import JournalError, verify


def test_damaged_journals_give_one_line_errors(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    fuzz_test(seed_journal(tmp_path), work, 60)()


@pytest.mark.parametrize(
    ("flip", "found"),
    [
        # CI's draw: a REAL column read a blob; verify raised a bare ValueError (the
        # fill table's "slippage" in its schema; 71452 before rejections had a purpose)
        ((72573, 1), "the row does not match its hash"),
        # the long fuzzer: a table's text not UTF-8 (UnicodeDecodeError)
        ((99959, 128), "the sliced_order table cannot be read (a stored text is not UTF-8"),
        # the long fuzzer: the meta table's text not UTF-8
        ((99907, 128), "damaged journal (a stored text is not UTF-8"),
    ],
)
def test_byte_flips_the_fuzzer_found(tmp_path: Path, flip: tuple[int, int], found: str) -> None:
    seed = seed_journal(tmp_path)
    path = tmp_path / "flipped.sqlite"
    path.write_bytes(mutate(bytearray(seed.read_bytes()), [("flip", *flip)]))
    check(path)
    # the flip still lands where it was found (a new SQLite's layout would move it)
    with pytest.raises(JournalError) as caught:
        verify(path)
    assert found in str(caught.value)
