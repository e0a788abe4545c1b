"""The knowledge-cutoff guard, as validate and a run say it; masking; the report's table."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import structlog

from tradeloom.text.cutoff import CutoffGuard, bars_affected, leaked
from tradeloom.text.documents import Documents
from tradeloom.text.masking import mask_text

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000_000_000


def tradeloom(*args: str | Path) -> tuple[int, str, str]:
    from tradeloom.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    structlog.reset_defaults()
    return code, out.getvalue(), err.getvalue()


def strategy(tmp_path: Path, *keys: str) -> Path:
    """The shipped news example (long-only, ``signal.sides: long``: it warns of nothing
    else), its first lexicon feature given ``keys`` (YAML lines)."""
    (tmp_path / "data").mkdir()
    for name in ("news.csv", "news_lexicon.csv"):
        shutil.copy(ROOT / "examples" / "data" / name, tmp_path / "data" / name)
    text = (ROOT / "examples" / "news_lexicon.yaml").read_text(encoding="utf-8")
    text = text.replace("  bars: 4000\n", "  bars: 1200\n")
    text = text.replace("train_window: 1500", "train_window: 400")
    anchor = "    half_life: 6h\n"
    assert anchor in text
    text = text.replace(anchor, anchor + "".join(f"    {k}\n" for k in keys))
    assert "  sides: long\n" in text
    path = tmp_path / "news.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def counts(cutoff: str) -> tuple[int, int]:
    """The documents BTC/USDT's bars see in a 12-hour window (its own and the market's)
    and those dated before ``cutoff``, counted with pandas from the file."""
    news = pd.read_csv(ROOT / "examples" / "data" / "news.csv", keep_default_na=False)
    time = pd.to_datetime(news["time"], utc=True)
    visible = time + pd.Timedelta("5min")
    first = pd.Timestamp("2024-01-01T01:00Z")  # the first bar's close
    last = first + pd.Timedelta(hours=1199)
    mine = news["symbols"].isin(["", "BTC/USDT"])
    seen = mine & (visible > first - pd.Timedelta("12h")) & (visible <= last)
    return int((seen & (time < pd.Timestamp(cutoff, tz="UTC"))).sum()), int(seen.sum())


def share_of_bars(cutoff: str) -> float:
    """The share of the 1,200 bars whose 12-hour window holds a document dated before
    ``cutoff`` (pandas, from the file)."""
    news = pd.read_csv(ROOT / "examples" / "data" / "news.csv", keep_default_na=False)
    time = pd.to_datetime(news["time"], utc=True)
    early = news["symbols"].isin(["", "BTC/USDT"]) & (time < pd.Timestamp(cutoff, tz="UTC"))
    visible = (time + pd.Timedelta("5min"))[early]
    closes = pd.date_range("2024-01-01T01:00Z", periods=1200, freq="h")
    hit = [((visible > t - pd.Timedelta("12h")) & (visible <= t)).any() for t in closes]
    return sum(hit) / len(hit)


def line_of(path: Path, key: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(f"    {key}") + 1


def test_validate_refuses_documents_before_the_cutoff_in_one_line(tmp_path: Path) -> None:
    path = strategy(tmp_path, "knowledge_cutoff: 2024-01", "cutoff_margin: 7d")
    code, out, err = tradeloom("validate", path)
    line = line_of(path, "knowledge_cutoff: 2024-01")
    assert (code, out) == (2, "")
    before, total = counts("2024-02-08")
    assert err == (
        f"{path}:{line}:23 features.4.knowledge_cutoff: {before} of the {total} documents of "
        f"text source 'news' it scores ({before / total:.1%}) are dated before the knowledge "
        "cutoff 2024-01 + 7d "
        "(2024-02-08T00:00Z): its model may know what followed them; use documents after it, "
        "mask them (mask: [entities, dates]) or accept it (leakage: accepted)\n"
    )
    code, _, again = tradeloom("run", path, "--out", tmp_path / "run")
    assert (code, again) == (2, err)
    assert not (tmp_path / "run").exists()


def test_accepted_leakage_is_a_warning_in_validate_the_summary_and_the_report(
    tmp_path: Path,
) -> None:
    path = strategy(tmp_path, "knowledge_cutoff: 2024-01", "leakage: accepted")
    code, out, err = tradeloom("validate", path)
    line = line_of(path, "leakage: accepted")
    assert code == 0 and out.startswith(f"{path}: valid strategy 'news_lexicon'")
    before, total = counts("2024-02-01")
    assert err == (
        f"{path}:{line}:14 features.4.leakage: warning: leakage accepted: {before} of the "
        f"{total} documents of text source 'news' it scores ({before / total:.1%}) are dated "
        "before the knowledge "
        "cutoff 2024-01 (2024-02-01T00:00Z); its model may know what followed them\n"
    )
    code, out, err = tradeloom("--quiet", "run", path, "--out", tmp_path / "run")
    assert code == 0, err
    share = share_of_bars("2024-02-01")
    said = (
        f"features.4: leakage accepted: {share:.1%} of bars see documents dated before the "
        "knowledge cutoff 2024-01 (2024-02-01T00:00Z)"
    )
    assert re.search(rf"^  warning +{re.escape(said)}$", out, re.M), out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["text_leakage_warning"] == said
    first, second = metrics["text_features"]
    assert first == {
        "feature": "features.4",
        "kind": "lexicon",
        "columns": ["lexicon_score", "lexicon_hits", "lexicon_count"],
        "source": "news",
        "scorer": first["scorer"],
        "knowledge_cutoff": "2024-01",
        "cutoff_margin": "0d",
        "leakage": "accepted",
        "mask": [],
        "bars_before_cutoff": round(share, 6),
    }
    assert second["knowledge_cutoff"] is None and second["feature"] == "features.5"
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "<section id='text-features'><h2>Text features</h2>" in page
    assert f"Warning: {said}." in page
    assert "<td>2024-01 + 0d (leakage accepted)</td>" in page
    assert "<td>none (no model)</td>" in page


def test_masking_entities_and_dates_is_the_mitigation_the_guard_accepts(tmp_path: Path) -> None:
    path = strategy(tmp_path, "knowledge_cutoff: 2024-01", "mask: [entities, dates]")
    code, _, err = tradeloom("validate", path)
    assert (code, err) == (0, "")
    (tmp_path / "half").mkdir()
    half = strategy(tmp_path / "half", "knowledge_cutoff: 2024-01", "mask: [dates]")
    code, _, err = tradeloom("validate", half)
    assert code == 2 and "are dated before the knowledge cutoff 2024-01" in err


def test_a_text_source_not_declared_is_refused_with_the_near_miss(tmp_path: Path) -> None:
    path = strategy(tmp_path)
    text = path.read_text(encoding="utf-8").replace(
        "    of: news\n    lexicon", "    of: newz\n    lexicon", 1
    )
    path.write_text(text, encoding="utf-8")
    code, _, err = tradeloom("validate", path)
    line = text.splitlines().index("    of: newz") + 1
    assert (code, err) == (
        2,
        f"{path}:{line}:9 features.4.of: no text source 'newz' (did you mean 'news'?) (the "
        "data's text sources: news); declare it under data.auxiliary with kind: text\n",
    )


def test_a_bad_text_file_is_one_line_naming_file_and_row_exit_2(tmp_path: Path) -> None:
    path = strategy(tmp_path)
    news = tmp_path / "data" / "news.csv"
    lines = news.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace("n00005", "n00004")
    news.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = tradeloom("run", path, "--out", tmp_path / "run")
    assert code == 2
    when = lines[5].split(",")[1].replace(":00Z", "Z")
    assert err.splitlines()[-1] == (
        f"data.auxiliary.0 (news): {news}: 1 row has the id of an earlier row (first at "
        f"{when}, line 6); fix or drop it, or set data.validation: repair (dropped)"
    )


@pytest.mark.parametrize(
    ("text", "what", "masked"),
    [
        (
            "BTC rallied on March 3, 2024 after the SEC ruled",
            ["dates", "entities"],
            "[ENTITY] rallied on [DATE] after the [ENTITY] ruled",
        ),
        (
            "Jerome Powell spoke on 2024-03-20; Bitcoin fell",
            ["entities"],
            "Jerome Powell spoke on 2024-03-20; Bitcoin fell",
        ),
        (
            "Shares of Binance Labs rose in Q3 2024 and in 2023",
            ["dates", "entities"],
            "Shares of [ENTITY] rose in [DATE] and in [DATE]",
        ),
        ("eth holders sold on Friday", ["dates", "entities"], "[ENTITY] holders sold on [DATE]"),
    ],
)
def test_masking_replaces_entities_and_dates(text: str, what: list[str], masked: str) -> None:
    assert mask_text(text, what, ("BTC/USDT", "ETH/USDT")) == masked


def test_leaked_counts_what_some_bar_sees_and_bars_affected_what_each_window_holds() -> None:
    documents = Documents(
        ids=("a", "b", "c"),
        stamped_ns=np.array([0, 5 * HOUR, 9 * HOUR]),
        visible_ns=np.array([HOUR, 6 * HOUR, 10 * HOUR]),
        texts=("x", "y", "z"),
        titles=("",) * 3,
        sources=("",) * 3,
        symbols=((), ("ETH",), ()),
    )
    guard = CutoffGuard("news", "symbol", 2 * HOUR, pd.Timestamp(6 * HOUR, tz="UTC"))
    assert leaked(documents, guard, ("BTC",)) == (1, 2)
    assert leaked(documents, guard, None) == (2, 3)
    assert leaked(documents, guard, ("BTC",), first_ns=4 * HOUR) == (0, 1)
    decisions = np.arange(1, 12) * HOUR
    assert bars_affected(documents, guard, "BTC", decisions) == 2  # 1h, 2h
    assert bars_affected(documents, guard, "ETH", decisions) == 4  # and 6h, 7h
