"""check-lookahead covers text: a document used before it is visible is found; the shipped
news example, whose lexicon features keep the point-in-time rule, passes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tradeloom.diagnostics.lookahead import check_lookahead
from tradeloom.schemas import load_strategy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "plugins"


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def example(tmp_path: Path, *, plugins: str = "", feature: str = "") -> Path:
    (tmp_path / "data").mkdir()
    for name in ("news.csv", "news_lexicon.csv"):
        shutil.copy(ROOT / "examples" / "data" / name, tmp_path / "data" / name)
    text = (ROOT / "examples" / "news_lexicon.yaml").read_text(encoding="utf-8")
    text = text.replace("  bars: 4000\n", "  bars: 900\n")
    text = text.replace("train_window: 1500", "train_window: 300")
    text = text.replace("retrain_every: 500", "retrain_every: 300")
    text = text.replace("n_estimators: 100", "n_estimators: 10")
    text = text.replace("seed: 42\n", f"seed: 42\n{plugins}")
    text = text.replace("  - kind: rsi\n", f"{feature}  - kind: rsi\n")
    path = tmp_path / "news.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_the_news_example_has_no_look_ahead(tmp_path: Path) -> None:
    config, _ = load_strategy(example(tmp_path))
    report = check_lookahead(config, points=2)
    assert report.finding is None, report.summary


def test_a_headline_used_before_it_is_published_is_caught(tmp_path: Path) -> None:
    path = example(
        tmp_path,
        plugins="plugins: [leaky_text]\n",
        feature="  - kind: early_news\n    of: news\n",
    )
    # planted: a headline at half past every hour, published an hour later, so every bar's
    # close has one stamped before it and visible only after it
    times = pd.date_range("2024-01-01T00:30Z", periods=900, freq="h")
    rows = [f"p{i},{t:%Y-%m-%dT%H:%M:%SZ},BTC/USDT,wire,BTC rallies" for i, t in enumerate(times)]
    news = tmp_path / "data" / "news.csv"
    news.write_text("id,time,symbols,source,text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    text = path.read_text(encoding="utf-8").replace("available_after: 5m", "available_after: 1h")
    path.write_text(text, encoding="utf-8")
    config, _ = load_strategy(path)
    report = check_lookahead(config, points=3)
    finding = report.finding
    assert finding is not None
    assert (finding.layer, finding.alteration) == ("features", "truncated")
    assert finding.bar == finding.cut  # the bar of the cut: its close sees what is stamped
    assert re.fullmatch(
        r"look-ahead: features\.2 \(kind early_news, plugin leaky_text\) column early_news "
        r"at bar \d+ \(\S+\) changed from (\d+) to (\d+) when bars after \d+ were truncated",
        finding.message,
    ), finding.message
    assert "changed from 6 to 5" in finding.message  # the unpublished headline is gone
