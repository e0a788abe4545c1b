"""A portfolio file's strategies keep their LLM answers with the run, as one strategy's do.

Only the account's pipeline's features (the first strategy's) were looked at: a
strategy after the first with a ``text_llm`` feature wrote none of its answers into
``llm_answers.jsonl``, a restart asked it every headline again (and traded on what the
model said then), and ``tradeloom parity`` replayed its features from a file without
them, asking no model: NaN where the run had numbers.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
import yaml

from tests.text.llm_fixtures import news_llm_document
from tradeloom.journal import read_events
from tradeloom.live.lifecycle.text_stage import TextAnswers
from tradeloom.testing.llm_server import ChatServer, Reply
from tradeloom.text.llm_cache import RUN_FILE, AnswerCache, CachedAnswer, read_answers, request_key

ROOT = Path(__file__).resolve().parents[2]


def _answer(n: int) -> CachedAnswer:
    request = {"model": "m", "document": f"doc {n}"}
    return CachedAnswer(request_key(request), request, f'{{"sentiment": {n / 10}}}')


def _text(cache: AnswerCache) -> Any:
    return SimpleNamespace(scorer=SimpleNamespace(cache=cache), reasons={})


def _portfolio_stage(run_dir: Path, first: AnswerCache, second: AnswerCache) -> TextAnswers:
    # the account's pipeline holds the first strategy's features (`account_pipeline`)
    one, two = [_text(first)], [_text(second)]
    markets = SimpleNamespace(
        p=SimpleNamespace(features=one),
        portfolio=SimpleNamespace(
            pipelines=[SimpleNamespace(features=one), SimpleNamespace(features=two)]
        ),
    )
    files = SimpleNamespace(run_dir=run_dir)
    return TextAnswers(files, None, markets)  # type: ignore[arg-type]


def test_each_strategys_answers_are_written_and_read_back_at_a_restart(tmp_path: Path) -> None:
    first, second = AnswerCache(), AnswerCache()
    stage = _portfolio_stage(tmp_path, first, second)
    first.put(_answer(0))
    second.put(_answer(1))
    stage.before_commit()  # the first write: the whole file
    second.put(_answer(2))
    stage.before_commit()  # appended
    assert read_answers(tmp_path / RUN_FILE) == {a.key: a for a in map(_answer, (0, 1, 2))}
    # a restart: the second strategy's scorer reads its answers first, asks none again
    again = AnswerCache()
    restarted = _portfolio_stage(tmp_path, AnswerCache(), again)
    restarted.check(SimpleNamespace(unscored=set()))  # type: ignore[arg-type]  # a restart's state
    assert again.get(_answer(2).key) == _answer(2)
    restarted.close()
    assert set(read_answers(tmp_path / RUN_FILE)) == {_answer(n).key for n in (0, 1, 2)}


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def record(self, row: Any) -> None:
        self.rows.append(row)


def _unscored(prefix: str, reasons: dict[str, str]) -> Any:
    return SimpleNamespace(scorer=SimpleNamespace(), reasons=reasons, prefix=prefix, of="news")


def _strategy(name: str, features: list[Any]) -> Any:
    return SimpleNamespace(config=SimpleNamespace(name=name), features=features, data=None)


def test_each_strategys_unscored_documents_are_journaled_under_its_name(tmp_path: Path) -> None:
    """Only the account's features (the first strategy's) were looked at, and a row named
    no strategy: two strategies whose features share a prefix journaled one row."""
    first = [_unscored("llm", {"doc-1": "timeout after 30 s"})]
    second = [_unscored("llm", {"doc-1": "answer not JSON: 'Sure!'"})]
    recorder = _Recorder()
    markets = SimpleNamespace(
        p=SimpleNamespace(features=first, data=None),  # the account's: the first's features
        portfolio=SimpleNamespace(pipelines=[_strategy("trend", first), _strategy("news", second)]),
    )
    link = SimpleNamespace(recorder_or_fail=recorder)
    stage = TextAnswers(SimpleNamespace(run_dir=tmp_path), link, markets)  # type: ignore[arg-type]

    assert stage.after_tick(1)
    said = [(r.strategy, r.feature, r.document_id, r.reason) for r in recorder.rows]
    assert said == [
        ("trend", "llm", "doc-1", "timeout after 30 s"),
        ("news", "llm", "doc-1", "answer not JSON: 'Sure!'"),
    ]
    second[0].reasons["doc-2"] = "sentiment: 1.5 above max 1"
    assert stage.after_tick(1)  # the next tick: only what is new, of either
    assert [(r.strategy, r.document_id) for r in recorder.rows[2:]] == [("news", "doc-2")]
    assert not stage.after_tick(1)


def _files(tmp_path: Path, base_url: str) -> Path:
    """A portfolio: a strategy without text first, one with a text_llm feature second."""
    trend = yaml.safe_load((ROOT / "examples/two_strategies/trend_btc.yaml").read_text())
    trend["data"]["bars"] = 400
    trend["model"]["walk_forward"].update(train_window=150, retrain_every=400)
    news = news_llm_document(
        base_url, bars=400, train_window=150, retrain_every=400, n_estimators=5
    )
    for feature in news["features"]:
        if feature["kind"] == "text_llm":
            feature["client"].update(max_attempts=1, backoff_seconds=0.01)
    news["risk"]["max_holding_bars"] = trend["risk"]["max_holding_bars"]  # one account's
    news["data"]["symbol"] = "ETH/USDT"  # a market of its own (the news names both)
    (tmp_path / "trend.yaml").write_text(yaml.safe_dump(trend, sort_keys=False))
    (tmp_path / "news.yaml").write_text(yaml.safe_dump(news, sort_keys=False))
    portfolio = {
        "name": "two",
        "initial_cash": 100000,
        "allocation": {"kind": "fixed"},
        "strategies": [{"file": "trend.yaml", "weight": 0.5}, {"file": "news.yaml", "weight": 0.5}],
    }
    path = tmp_path / "portfolio.yaml"
    path.write_text(yaml.safe_dump(portfolio, sort_keys=False))
    return path


def _tradeloom(*args: str) -> int:
    from tradeloom.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--quiet", *args])
    structlog.reset_defaults()
    assert code in (0, 1), err.getvalue()
    return code


def _paper(portfolio: Path, out: Path, bars: int) -> None:
    code = _tradeloom(
        "run", str(portfolio), "--mode", "paper", "--clock", "simulated",
        "--speed", "max", "--max-bars", str(bars), "--out", str(out),
    )  # fmt: skip
    assert code == 0


def _asked(server: ChatServer) -> set[str]:
    return {r.body["messages"][-1]["content"] for r in server.received if r.body}


def _otherwise(body: Any) -> Reply:
    return Reply(json.dumps({"sentiment": -0.5, "relevance": 0.25}))


@pytest.mark.slow  # two paper runs of a portfolio, and its parity
def test_a_portfolio_keeps_its_second_strategys_answers_restarts_on_them_and_replays_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADELOOM_LLM_CACHE", str(tmp_path / "shared"))  # (none kept there)
    run = tmp_path / "run"
    with ChatServer() as server:
        portfolio = _files(tmp_path, server.base_url)
        _paper(portfolio, run, 3)
        asked = _asked(server)
        kept = read_answers(run / RUN_FILE)
        assert asked and len(kept) == len(asked)
        server.answer = _otherwise  # the model answers each headline otherwise now
        server.received.clear()
        _paper(portfolio, run, 3)
        assert not asked & _asked(server)  # none asked again
        after = read_answers(run / RUN_FILE)
        assert {key: after[key] for key in kept} == kept
        server.received.clear()
        _tradeloom("parity", str(run))
        assert server.received == []  # the replay read the run's answers, asked nothing
    # each answer the run read is named, none a backtest's (the shared folder holds none)
    summary = json.loads((run / "parity" / "parity.json").read_text())
    assert {a["key"] for a in summary["llm_answers"]} == set(after)


@pytest.mark.slow  # a portfolio backtest of two walk-forward forests
def test_a_portfolio_backtest_keeps_every_strategys_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a paper portfolio reads its backtest's with answers: RUN_DIR; the backtest wrote none
    monkeypatch.setenv("TRADELOOM_LLM_CACHE", str(tmp_path / "shared"))
    with ChatServer() as server:
        server.script = [Reply("Sure! Bullish.")]  # the first headline: left unscored
        portfolio = _files(tmp_path, server.base_url)
        assert _tradeloom("run", str(portfolio), "--out", str(tmp_path / "backtest")) == 0
        asked = _asked(server)
    kept = read_answers(tmp_path / "backtest" / RUN_FILE)
    assert asked and len(kept) == len(asked)  # the answer not JSON too, as given
    # journaled by its strategy, as a paper portfolio journals it (none was journaled)
    (row,) = read_events(tmp_path / "backtest" / "journal.sqlite", ["document_unscored"])
    assert (row.strategy, row.reason[:15]) == ("news_llm", "answer not JSON")  # type: ignore[attr-defined]
