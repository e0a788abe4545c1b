"""A short run of the reader fuzzer (the long one: tests/journal/fuzz_reader.py)."""

from __future__ import annotations

from pathlib import Path

from fuzz_reader import check, fuzz_test, mutate, seed_journal


def test_damaged_journals_give_one_line_errors(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    fuzz_test(seed_journal(tmp_path), work, 60)()


def test_a_byte_flip_that_gave_a_real_column_a_blob(tmp_path: Path) -> None:
    # found by CI's draw: verify's digests raised a bare ValueError on b'slippage'
    seed = seed_journal(tmp_path)
    path = tmp_path / "flipped.sqlite"
    path.write_bytes(mutate(bytearray(seed.read_bytes()), [("flip", 71452, 1)]))
    check(path)
