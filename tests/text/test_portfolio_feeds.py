"""A portfolio file's strategies each receive their text sources' feeds, as one strategy does.

Only the account's data (the first strategy's) had its feeds attached and started: a
later strategy's feed was never polled, its text features read nothing live, and its
restart nothing kept. Two strategies' sources of one name are one file of the run
(``documents/<name>.jsonl``, and its cursor): the same source is received once and read
by both; two that differ are refused when the portfolio is validated.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import structlog
import yaml

from tests.text.feed_fixtures import DocumentServer, document, serving, write_strategy
from tests.text.llm_fixtures import news_llm_document
from tradeloom.journal import journal_path, read_events
from tradeloom.live.lifecycle.feed_stage import TextFeeds
from tradeloom.plugins.data.received import ReceivedText, TextRules
from tradeloom.plugins.data.text_source import TextColumns
from tradeloom.plugins.text_feed.http_poll import HttpPoll, HttpPollParams
from tradeloom.testing.llm_server import ChatServer
from tradeloom.text.documents import Documents
from tradeloom.text.llm_cache import RUN_FILE, read_answers

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> tuple[int, str, str]:
    from tradeloom.cli.main import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(["--quiet", *args])
    structlog.reset_defaults()
    return code, out.getvalue(), err.getvalue()


# --- one name, one source --------------------------------------------------------------


def _member(folder: Path, name: str, symbol: str, feed: dict[str, Any]) -> Path:
    """examples/news_lexicon.yaml named ``name`` on ``symbol``, its news fed by ``feed``."""
    (folder / name).mkdir()
    path = write_strategy(folder / name, feed)
    document_ = yaml.safe_load(path.read_text(encoding="utf-8"))
    document_.update(name=name)
    document_["data"]["symbol"] = symbol
    target = folder / f"{name}.yaml"
    target.write_text(yaml.safe_dump(document_, sort_keys=False), encoding="utf-8")
    return target


def _portfolio(folder: Path, *members: Path) -> Path:
    portfolio = {
        "name": "fed",
        "initial_cash": 100000,
        "strategies": [{"file": m.name, "weight": 1 / len(members)} for m in members],
    }
    path = folder / "fed.yaml"
    path.write_text(yaml.safe_dump(portfolio, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)


def test_two_strategies_feeding_one_name_from_two_places_are_refused_at_validate(
    tmp_path: Path,
) -> None:
    first = _member(tmp_path, "btc_news", "BTC/USDT", {"kind": "http_poll", "url": "http://a/n"})
    second = _member(tmp_path, "eth_news", "ETH/USDT", {"kind": "http_poll", "url": "http://b/n"})
    code, _, err = _cli("validate", str(_portfolio(tmp_path, first, second)))
    assert code == 2
    line = _line_of(second, "url: http://b/n")
    assert re.search(
        rf"^{re.escape(str(second))}:{line}:\d+ data\.auxiliary\.0\.feed\.url: the text "
        r"source 'news' is btc_news's too, with another feed\.url; a portfolio's strategies "
        r"share documents/news\.jsonl by name: give both the same source or name one "
        r"otherwise$",
        err,
        re.MULTILINE,
    ), err
    # the same feed, a default written out in one of them: one source, valid
    same = {"kind": "http_poll", "url": "http://a/n", "interval_seconds": 5.0}
    second.unlink()
    (tmp_path / "eth_news").rename(tmp_path / "eth_old")
    second = _member(tmp_path, "eth_news", "ETH/USDT", same)
    code, _, err = _cli("validate", str(_portfolio(tmp_path, first, second)))
    assert code == 0, err


# --- the stage over a portfolio's data -----------------------------------------------------


def _rules() -> TextRules:
    return TextRules(
        name="news",
        label="data.auxiliary.0 (news)",
        delay_ns=300_000_000_000,
        columns=TextColumns(timestamp="time", symbols="symbols", source="source"),
        max_chars=200,
        policy="reject",
    )


class _Data:
    """A data source whose text sources a paper run reads live (`LiveDocuments`)."""

    def __init__(self, feeds: dict[str, Any]) -> None:
        self.feeds = feeds

    def live_documents(self) -> dict[str, Any]:
        return dict(self.feeds)


def _stage(run_dir: Path, *datas: _Data) -> TextFeeds:
    # the account's pipeline holds the first strategy's data (`account_pipeline`)
    pipelines = [SimpleNamespace(data=data) for data in datas]
    markets = SimpleNamespace(p=pipelines[0], portfolio=SimpleNamespace(pipelines=pipelines))
    now = pd.Timestamp("2024-03-01T12:00:00Z")
    files = SimpleNamespace(run_dir=run_dir, now=lambda: now)
    link = SimpleNamespace(recorder_or_fail=SimpleNamespace(record=lambda row: None))
    return TextFeeds(files, link, markets)  # type: ignore[arg-type]


def _until(stage: TextFeeds, done: Callable[[], bool]) -> None:
    for _ in range(2000):
        stage.before_bars()
        if done():
            return
        threading.Event().wait(0.005)


def _ids(documents: Documents) -> list[str]:
    return sorted(documents.ids)


def test_a_later_strategys_feed_is_polled_kept_and_read_back_at_a_restart(
    tmp_path: Path,
) -> None:
    server = DocumentServer([document(n) for n in range(6)], step=2)
    with serving(server) as url:
        poll = HttpPollParams(url=url, interval_seconds=0.01)
        fed = ReceivedText(_rules(), HttpPoll(poll), None)
        stage = _stage(tmp_path, _Data({}), _Data({"news": fed}))  # the first reads no text
        stage.restore(None)
        try:
            _until(stage, lambda: len(fed.documents()) == 6)
        finally:
            stage.close()
        assert _ids(fed.documents()) == [f"feed-{n:04d}" for n in range(6)]
        server.items += [document(n) for n in range(6, 8)]
        # a restart: what was kept is read back, and the feed resumes after its cursor
        again = ReceivedText(_rules(), HttpPoll(poll), None)
        stage = _stage(tmp_path, _Data({}), _Data({"news": again}))
        assert _ids(again.documents()) == [f"feed-{n:04d}" for n in range(6)]
        server.requests.clear()
        stage.restore(None)
        try:
            _until(stage, lambda: len(again.documents()) == 8)
        finally:
            stage.close()
    assert server.requests[0] == "feed-0005"
    assert _ids(again.documents()) == [f"feed-{n:04d}" for n in range(8)]
    lines = (tmp_path / "documents" / "news.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == _ids(again.documents())


def test_two_strategies_feeding_one_name_alike_share_one_file_and_one_poller(
    tmp_path: Path,
) -> None:
    server = DocumentServer([document(n) for n in range(6)], step=2)
    with serving(server) as url:
        poll = HttpPollParams(url=url, interval_seconds=0.01)
        first = ReceivedText(_rules(), HttpPoll(poll), None)
        second = ReceivedText(_rules(), HttpPoll(poll), None)
        stage = _stage(tmp_path, _Data({"news": first}), _Data({"news": second}))
        stage.restore(None)
        try:
            _until(stage, lambda: len(first.documents()) == 6)
        finally:
            stage.close()
    # one poller: each cursor asked once (two would each ask from the start)
    assert server.requests[:3] == [None, "feed-0001", "feed-0003"]
    assert server.requests.count(None) == 1
    assert _ids(second.documents()) == _ids(first.documents())  # read by both
    lines = (tmp_path / "documents" / "news.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == _ids(first.documents())
    assert len(lines) == 6


# --- a paper run of a portfolio --------------------------------------------------------------


def _fed_portfolio(folder: Path, llm_url: str, feed_url: str) -> Path:
    """A strategy without text first; second, one whose text_llm feature reads news fed
    over HTTP while the run runs."""
    trend = yaml.safe_load((ROOT / "examples/two_strategies/trend_btc.yaml").read_text())
    trend["data"].update(bars=400, symbol="ETH/USDT")
    trend["model"]["walk_forward"].update(train_window=150, retrain_every=400)
    news = news_llm_document(llm_url, bars=400, train_window=150, retrain_every=400, n_estimators=5)
    news["data"]["auxiliary"][0]["feed"] = {
        "kind": "http_poll",
        "url": feed_url,
        "interval_seconds": 0.02,
    }
    news["risk"]["max_holding_bars"] = trend["risk"]["max_holding_bars"]  # one account's
    (folder / "trend.yaml").write_text(yaml.safe_dump(trend, sort_keys=False))
    (folder / "news.yaml").write_text(yaml.safe_dump(news, sort_keys=False))
    portfolio = {
        "name": "fed",
        "initial_cash": 100000,
        "strategies": [{"file": "trend.yaml", "weight": 0.5}, {"file": "news.yaml", "weight": 0.5}],
    }
    path = folder / "fed.yaml"
    path.write_text(yaml.safe_dump(portfolio, sort_keys=False))
    return path


def _paper(portfolio: Path, out: Path) -> None:
    code, _, err = _cli(
        "run", str(portfolio), "--mode", "paper", "--clock", "simulated",
        "--speed", "max", "--max-bars", "12", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err


def _stories(chat: ChatServer) -> set[int]:
    """The fed headlines the LLM was asked about (only the feed has them), by number."""
    asked = [r.body["messages"][-1]["content"] for r in chat.received if r.body]
    return {int(m) for text in asked for m in re.findall(r"story (\d+)", text)}


def _kept(run: Path) -> list[str]:
    lines = (run / "documents" / "news.jsonl").read_text(encoding="utf-8").splitlines()
    return sorted(json.loads(line)["id"] for line in lines)


@pytest.mark.slow  # two paper runs of a portfolio (two forests' warm-ups), and its parity
def test_a_portfolios_second_strategy_reads_its_feed_and_a_restart_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADELOOM_LLM_CACHE", str(tmp_path / "shared"))  # (none kept there)
    # all that is new in one answer: the feed polls in real time, the run's bars are
    # simulated (the first poll, as the run starts, is answered before its 12 bars pass)
    server = DocumentServer([document(n) for n in range(12)], step=100)
    run = tmp_path / "run"
    with serving(server) as url, ChatServer() as chat:
        portfolio = _fed_portfolio(tmp_path, chat.base_url, url)
        _paper(portfolio, run)
        assert _kept(run) == [f"feed-{n:04d}" for n in range(12)]
        first = _stories(chat)
        assert first  # its text feature read what its feed brought
        server.items += [document(n) for n in range(12, 18)]
        server.requests.clear()
        chat.received.clear()
        _paper(portfolio, run)  # a restart: the same command, the same folder
        later = _stories(chat)
    assert server.requests[0] == "feed-0011"  # resumed after the cursor it kept
    assert _kept(run) == [f"feed-{n:04d}" for n in range(18)]  # each once
    # what it kept was read back (its answers too): only the new headlines were asked
    assert later and later <= set(range(12, 18))
    assert set(read_answers(run / RUN_FILE))
    code, out, err = _cli("parity", str(run))
    assert code == 0, err
    assert "no difference: every bar's probability" in out
    assert not list(read_events(journal_path(run), ["document_refused"]))
