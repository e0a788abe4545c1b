"""Paper on the simulated clock reproduces the backtest's text features bit for bit.

The real runner (``--mode paper --clock simulated``: the exchange emulator, a real ccxt
client) reads examples/news_lexicon.yaml's news file as it would a file being written,
and steps its lexicon features bar by bar; the backtest computes them over all bars.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog

from tradeloom.plugins.data.text_source import DocumentFile, TextColumns, read_documents

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "news_lexicon.yaml"
SETTINGS = (
    "data.bars=600",
    "model.walk_forward.train_window=200",
    "model.walk_forward.retrain_every=200",
    "model.params.n_estimators=10",
)
TEXT = ["lexicon_score", "lexicon_hits", "lexicon_count"]
TEXT += ["market_news_score", "market_news_hits", "market_news_count"]


def tradeloom(*args: str) -> None:
    from tradeloom.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--quiet", *args])
    structlog.reset_defaults()
    assert code == 0, err.getvalue()


@pytest.mark.slow
def test_paper_on_the_simulated_clock_steps_the_backtests_text_features(tmp_path: Path) -> None:
    sets = [a for s in SETTINGS for a in ("--set", s)]
    tradeloom("run", str(EXAMPLE), "--out", str(tmp_path / "backtest"), *sets)
    tradeloom(
        "run",
        str(EXAMPLE),
        "--mode",
        "paper",
        "--clock",
        "simulated",
        "--speed",
        "max",
        "--out",
        str(tmp_path / "paper"),
        *sets,
    )
    batch = pd.read_parquet(tmp_path / "backtest" / "features.parquet").set_index("timestamp")
    live = pd.read_parquet(tmp_path / "paper" / "features.parquet").set_index("timestamp")
    assert len(live) == 300  # the second half is played bar by bar
    assert live["lexicon_count"].sum() > 100
    pd.testing.assert_frame_equal(live[TEXT], batch.loc[live.index, TEXT], check_exact=True)


def test_a_growing_file_is_read_again_with_its_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text("time,text\n2024-01-01T00:00:00Z,first  story\n", encoding="utf-8")

    def read() -> object:
        return read_documents(
            path,
            label="news",
            delay_ns=0,
            columns=TextColumns(timestamp="time"),
            max_chars=100,
            policy="reject",
        )

    feed = DocumentFile(read, path)  # type: ignore[arg-type]
    first = feed.documents()
    assert first.texts == ("first story",)
    assert feed.documents() is first  # unchanged: not read again
    with path.open("a", encoding="utf-8") as fh:
        fh.write("2024-01-01T01:00:00Z,second\u00a0story\n")
    grown = feed.documents()
    assert grown.texts == ("first story", "second story")  # the same normalisation
    with path.open("a", encoding="utf-8") as fh:
        fh.write("2024-01-01T00:30:00Z,late\n")  # refused under reject: the last read stays
    assert feed.documents() is grown
    assert np.array_equal(grown.stamped_ns - grown.stamped_ns[0], [0, 3_600_000_000_000])
