"""examples/news_lexicon.yaml's news file is the script's, byte for byte."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_news_file_is_rewritten_byte_for_byte(tmp_path: Path) -> None:
    script = runpy.run_path(str(ROOT / "scripts" / "make_news.py"))
    out = tmp_path / "news.csv"
    script["main"]([str(out)])
    assert out.read_bytes() == (ROOT / "examples" / "data" / "news.csv").read_bytes()
