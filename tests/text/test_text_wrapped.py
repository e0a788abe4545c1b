"""A text feature on a higher timeframe and on an informative pair reads the data's text
sources in a backtest, in paper on the simulated clock (bit for bit) and in parity."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
import structlog

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (
    "data.bars=600",
    "model.walk_forward.train_window=200",
    "model.walk_forward.retrain_every=200",
    "model.params.n_estimators=10",
)
WRAPPED = """\
  - kind: lexicon
    of: news
    name: slow_news
    lexicon: data/news_lexicon.csv
    window: 12h
    timeframe: 4h
  - kind: lexicon
    of: news
    name: eth_news
    lexicon: data/news_lexicon.csv
    window: 12h
    symbol: ETH/USDT
"""
COLUMNS = [f"slow_news_{f}@4h" for f in ("score", "hits", "count")]
COLUMNS += [f"eth_news_{f}@ETH/USDT" for f in ("score", "hits", "count")]


def tradeloom(*args: str) -> str:
    from tradeloom.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["--quiet", *args])
    structlog.reset_defaults()
    assert code == 0, err.getvalue()
    return out.getvalue()


def strategy(tmp_path: Path, wrapped: str) -> Path:
    """The shipped news example on a universe of one (so ETH/USDT can be read beside it),
    with the ``wrapped`` features added."""
    (tmp_path / "data").mkdir(exist_ok=True)
    for name in ("news.csv", "news_lexicon.csv"):
        shutil.copy(ROOT / "examples" / "data" / name, tmp_path / "data" / name)
    text = (ROOT / "examples" / "news_lexicon.yaml").read_text(encoding="utf-8")
    assert "  symbol: BTC/USDT\n" in text and "\nmodel:\n" in text
    text = text.replace("  symbol: BTC/USDT\n", "  symbols: [BTC/USDT]\n", 1)
    text = text.replace("\nmodel:\n", wrapped + "\nmodel:\n", 1)
    path = tmp_path / "news.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def counted(index: pd.DatetimeIndex, symbol: str) -> list[float]:
    """The documents ``symbol``'s bars see in a 12-hour window at each close (those about
    it and about the market, published 5 minutes after their time), counted with pandas."""
    news = pd.read_csv(ROOT / "examples" / "data" / "news.csv", keep_default_na=False)
    mine = news["symbols"].isin(["", symbol])
    visible = (pd.to_datetime(news["time"], utc=True) + pd.Timedelta("5min"))[mine]
    closes = index + pd.Timedelta("1h")
    return [float(((visible > c - pd.Timedelta("12h")) & (visible <= c)).sum()) for c in closes]


@pytest.mark.slow
def test_wrapped_text_features_read_the_text_sources(tmp_path: Path) -> None:
    path = strategy(tmp_path, WRAPPED)
    sets = [a for s in SETTINGS for a in ("--set", s)]
    tradeloom("run", str(path), "--out", str(tmp_path / "backtest"), *sets)
    batch = pd.read_parquet(tmp_path / "backtest" / "features.parquet").set_index("timestamp")
    index = pd.DatetimeIndex(batch.index)
    assert batch["eth_news_count@ETH/USDT"].tolist() == counted(index, "ETH/USDT")
    # the 4h bar opening at T closes with the base bar opening at T + 3h: that bar's row
    # holds the 4h bar's count at T + 4h, the close they share
    closing = index[(index + pd.Timedelta("1h")).hour % 4 == 0]
    assert batch.loc[closing, "slow_news_count@4h"].tolist() == counted(closing, "BTC/USDT")


@pytest.mark.slow
def test_a_higher_timeframe_text_feature_in_paper_is_the_backtests_and_parity_agrees(
    tmp_path: Path,
) -> None:
    path = strategy(tmp_path, WRAPPED.split("  - kind: lexicon\n    of: news\n    name: eth")[0])
    sets = [a for s in SETTINGS for a in ("--set", s)]
    tradeloom("run", str(path), "--out", str(tmp_path / "backtest"), *sets)
    paper = tmp_path / "paper"
    tradeloom(
        "run", str(path), "--mode", "paper", "--clock", "simulated", "--speed", "max",
        "--out", str(paper), *sets,
    )  # fmt: skip
    batch = pd.read_parquet(tmp_path / "backtest" / "features.parquet").set_index("timestamp")
    live = pd.read_parquet(paper / "features.parquet").set_index("timestamp")
    columns = COLUMNS[:3]
    assert live["slow_news_count@4h"].sum() > 100
    pd.testing.assert_frame_equal(live[columns], batch.loc[live.index, columns], check_exact=True)

    said = tradeloom("parity", str(paper))

    assert "no difference: every bar's probability" in said
