"""The shipped recorded book of examples/order_book_rf.yaml is what its script records."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "examples" / "data" / "make_order_book.py"


def test_the_script_records_the_shipped_files_again(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_order_book", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    assert script.main([str(tmp_path)]) == 0

    shipped = ROOT / "examples" / "data"
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "btc_book.parquet"),
        pd.read_parquet(shipped / "btc_book.parquet"),
    )
    assert (tmp_path / "book_bars.csv").read_bytes() == (shipped / "book_bars.csv").read_bytes()
    assert (shipped / "btc_book.parquet").stat().st_size < 200_000
