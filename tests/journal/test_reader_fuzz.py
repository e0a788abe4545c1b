"""A short run of the reader fuzzer (the long one: tests/journal/fuzz_reader.py)."""

from __future__ import annotations

from pathlib import Path

from fuzz_reader import fuzz_test, seed_journal


def test_damaged_journals_give_one_line_errors(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    fuzz_test(seed_journal(tmp_path), work, 60)()
